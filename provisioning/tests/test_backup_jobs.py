"""The backup Job's manifest: what lets its pod out of the store namespace."""

from __future__ import annotations

from kubernetes.client import ApiClient

from provisioning.backup_jobs import BackupJobSpec, DatabaseTarget, job_manifest


def backup_spec(mode: str = "backup", engine: str = "medusa") -> BackupJobSpec:
    return BackupJobSpec(
        namespace="store-demo",
        job_name=f"{mode}-1",
        mode=mode,
        prefix="tenants/1/stores/1-x",
        database=DatabaseTarget(
            engine=engine,
            host="postgres",
            port=5432,
            name="medusa",
            user="medusa",
            password_secret="store-credentials",
            password_key="database-password",
        ),
        image="orchestrator:local",
        run_as_user=10001,
        labels={"platform.example/store": "demo"},
    )


def test_the_pod_reaches_the_database_and_the_object_store_never_the_internet():
    for mode in ("backup", "restore", "verify"):
        for engine in ("medusa", "woocommerce"):
            job = ApiClient().sanitize_for_serialization(job_manifest(backup_spec(mode, engine)))
            for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
                assert labels["platform.example/db-client"] == "true"
                assert labels["platform.example/backup-egress"] == "true"
                assert "platform.example/internet-egress" not in labels
                assert labels["platform.example/store"] == "demo"
