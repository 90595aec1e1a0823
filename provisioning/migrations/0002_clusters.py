"""Clusters (issue 18): the model, its health events, each run's cluster, and the default cluster
every existing store and run belongs to (the platform's own kubeconfig or in-cluster account)."""

import django.db.models.deletion
from django.db import migrations, models


def create_default_cluster(apps, schema_editor):
    Cluster = apps.get_model("provisioning", "Cluster")
    ProvisioningRun = apps.get_model("provisioning", "ProvisioningRun")
    default, _ = Cluster.objects.get_or_create(is_default=True, defaults={"name": "default", "connection": "ambient"})
    ProvisioningRun.objects.filter(cluster__isnull=True).update(cluster=default)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Cluster",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.SlugField(max_length=63, unique=True)),
                ("region", models.CharField(blank=True, default="", help_text="e.g. eu-west; matched to a tenant's preference.", max_length=63)),
                ("labels", models.JSONField(blank=True, default=dict)),
                ("connection", models.CharField(choices=[("ambient", "The platform's own kubeconfig or in-cluster account"), ("kubeconfig", "A kubeconfig stored sealed")], default="ambient", max_length=12)),
                ("kubeconfig_sealed", models.TextField(blank=True, default="", help_text="The kubeconfig, encrypted (credential_box).")),
                ("context", models.CharField(blank=True, default="", help_text="kubeconfig context; empty: its current one.", max_length=253)),
                ("is_default", models.BooleanField(default=False, help_text="The ambient cluster of single-cluster set-ups.")),
                ("draining", models.BooleanField(default=False, help_text="No new store is placed here; existing ones stay.")),
                ("helm_concurrency", models.PositiveIntegerField(default=4, help_text="Most helm runs at once on this cluster.")),
                ("health", models.CharField(choices=[("unknown", "Unknown"), ("healthy", "Healthy"), ("unreachable", "Unreachable")], default="unknown", max_length=12)),
                ("health_reason", models.TextField(blank=True, default="")),
                ("health_changed_at", models.DateTimeField(blank=True, null=True)),
                ("health_checked_at", models.DateTimeField(blank=True, null=True)),
                ("allocatable_cpu_millicores", models.PositiveBigIntegerField(blank=True, help_text="Sum over its Ready, schedulable nodes; empty until measured.", null=True)),
                ("allocatable_memory_mib", models.PositiveBigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddConstraint(
            model_name="cluster",
            constraint=models.UniqueConstraint(condition=models.Q(("is_default", True)), fields=("is_default",), name="one_default_cluster"),
        ),
        migrations.AddConstraint(
            model_name="cluster",
            constraint=models.CheckConstraint(
                condition=models.Q(("connection", "ambient"), models.Q(("kubeconfig_sealed", ""), _negated=True), _connector="OR"),
                name="stored_connection_has_credentials",
            ),
        ),
        migrations.CreateModel(
            name="ClusterEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("old_health", models.CharField(choices=[("unknown", "Unknown"), ("healthy", "Healthy"), ("unreachable", "Unreachable")], max_length=12)),
                ("new_health", models.CharField(choices=[("unknown", "Unknown"), ("healthy", "Healthy"), ("unreachable", "Unreachable")], max_length=12)),
                ("reason", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("cluster", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="events", to="provisioning.cluster")),
            ],
            options={"ordering": ["created_at", "id"]},
        ),
        migrations.AddField(
            model_name="provisioningrun",
            name="cluster",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="runs", to="provisioning.cluster"),
        ),
        migrations.RunPython(create_default_cluster, migrations.RunPython.noop),
    ]
