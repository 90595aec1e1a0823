"""Seed the plans. WooCommerce gets 1 CPU / 1 GiB (the seed's figure); Medusa 2 CPU / 2 GiB, since
Medusa documents 2 GB of memory as its minimum."""

from django.db import migrations

PLANS = [
    # name, max stores, default?, {engine: (millicores, MiB, GiB storage)}
    ("Starter", 3, True, {"woocommerce": (1000, 1024, 10), "medusa": (2000, 2048, 10)}),
    ("Business", 20, False, {"woocommerce": (2000, 2048, 20), "medusa": (2000, 2048, 20)}),
]


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("stores", "Plan")
    PlanResources = apps.get_model("stores", "PlanResources")
    for name, max_stores, is_default, resources in PLANS:
        plan, _ = Plan.objects.get_or_create(name=name, defaults={"max_stores": max_stores, "is_default": is_default})
        for engine, (cpu, memory, storage) in resources.items():
            PlanResources.objects.get_or_create(
                plan=plan,
                engine=engine,
                defaults={"cpu_millicores": cpu, "memory_mib": memory, "storage_gib": storage},
            )


def unseed_plans(apps, schema_editor):
    apps.get_model("stores", "Plan").objects.filter(name__in=[p[0] for p in PLANS], tenants__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("stores", "0001_initial")]
    operations = [migrations.RunPython(seed_plans, unseed_plans)]
