"""Each store records its cluster (issue 18): existing stores belong to the default cluster; tenants
may prefer a region."""

import django.db.models.deletion
from django.db import migrations, models


def place_existing_stores(apps, schema_editor):
    Cluster = apps.get_model("provisioning", "Cluster")
    Store = apps.get_model("stores", "Store")
    default, _ = Cluster.objects.get_or_create(is_default=True, defaults={"name": "default", "connection": "ambient"})
    Store.objects.filter(cluster__isnull=True).update(cluster=default)


class Migration(migrations.Migration):
    dependencies = [("stores", "0007_store_host"), ("provisioning", "0002_clusters")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="region",
            field=models.CharField(blank=True, default="", help_text="Preferred cluster region; empty: any cluster.", max_length=63),
        ),
        migrations.AddField(
            model_name="store",
            name="cluster",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="stores", to="provisioning.cluster"),
        ),
        migrations.RunPython(place_existing_stores, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="store",
            name="cluster",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="stores", to="provisioning.cluster"),
        ),
    ]
