"""Store the host instead of the URL: the page and the Ingress both derive from it (issue 14)."""

from urllib.parse import urlsplit

from django.db import migrations, models


def host_from_url(apps, schema_editor):
    Store = apps.get_model("stores", "Store")
    for store in Store.objects.only("pk", "public_url").iterator():
        Store.objects.filter(pk=store.pk).update(host=urlsplit(store.public_url).hostname or "")


class Migration(migrations.Migration):
    dependencies = [("stores", "0006_email_verification")]

    operations = [
        migrations.AddField(
            model_name="store",
            name="host",
            field=models.CharField(
                default="",
                help_text="<name>.<base domain>, fixed at creation; the Ingress and the URL use it.",
                max_length=253,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(host_from_url, migrations.RunPython.noop),
        migrations.RemoveField(model_name="store", name="public_url"),
    ]
