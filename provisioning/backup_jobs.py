"""Backup, restore and drill Jobs in a store's namespace: the machinery, given a frozen spec.

`stores.backups` decides what to back up and where; this module turns a `BackupJobSpec` into a Secret
(the bucket's credentials), a ConfigMap (deploy/backup/store-backup.sh) and a Job, waits for the Job
and returns a typed `JobOutcome`. It never imports `stores`. Every call that changes something goes
through the caller's `record` callback, like provisioning/cluster.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from kubernetes import client
from kubernetes.client import ApiClient, ApiException, BatchV1Api, CoreV1Api

from provisioning.cluster import MANAGED_BY_LABEL, MANAGED_BY_VALUE, Recorder, _recorded
from provisioning.redaction import register_secret

SCRIPT_CONFIGMAP = "store-backup-script"
CREDENTIALS_SECRET = "store-backup-credentials"  # noqa: S105 - the Secret's name, not a secret
BACKUP_COMPONENT_LABEL = "platform.example/backup"
# Selected by the store charts' backup-to-object-store NetworkPolicy (backup.egress.cidrs and port).
BACKUP_EGRESS_LABEL = "platform.example/backup-egress"
RESULT_PATTERN = re.compile(r"BACKUP-RESULT (ok|failed)(?: reason=(\S+))?(.*)")


@dataclass(frozen=True)
class BucketCredentials:
    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the store's database answers inside its namespace; the password is a key of the
    store's own credentials Secret, so it never leaves the cluster."""

    engine: str  # woocommerce | medusa
    host: str
    port: int
    name: str
    user: str
    password_secret: str
    password_key: str


@dataclass(frozen=True)
class BackupJobSpec:
    namespace: str
    job_name: str
    mode: str  # backup | restore | verify
    prefix: str  # object key prefix
    database: DatabaseTarget
    image: str
    run_as_user: int
    expected_sha256: str = ""
    check_query: str = ""  # the drill's readiness check (an order count), recorded at backup time
    uploads_claim: str = ""  # PVC holding the uploads; empty when the store keeps none locally
    uploads_subpath: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    deadline_seconds: int = 1800


@dataclass(frozen=True)
class JobOutcome:
    succeeded: bool
    reason: str = ""  # machine reason: bucket-unreachable, dump-failed, quota-refused, deadline, ...
    message: str = ""


def script_text() -> str:
    return Path(settings.BACKUP_SCRIPT_PATH).read_text()


def ensure_backup_prerequisites(
    api: ApiClient, *, namespace: str, credentials: BucketCredentials, record: Recorder | None = None
) -> None:
    """The bucket credentials Secret and the script ConfigMap, created or replaced (both are ours
    and carry nothing a store owns)."""
    core = CoreV1Api(api)
    register_secret(credentials.secret_key)
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, BACKUP_COMPONENT_LABEL: "true"}
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=CREDENTIALS_SECRET, labels=labels),
        type="Opaque",
        string_data={
            "S3_ENDPOINT": credentials.endpoint,
            "S3_BUCKET": credentials.bucket,
            "S3_REGION": credentials.region,
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        },
    )
    configmap = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=SCRIPT_CONFIGMAP, labels=labels),
        data={"store-backup.sh": script_text()},
    )

    def create_secret() -> Any:
        return core.create_namespaced_secret(namespace, secret)

    def replace_secret() -> Any:
        return core.replace_namespaced_secret(CREDENTIALS_SECRET, namespace, secret)

    def create_configmap() -> Any:
        return core.create_namespaced_config_map(namespace, configmap)

    def replace_configmap() -> Any:
        return core.replace_namespaced_config_map(SCRIPT_CONFIGMAP, namespace, configmap)

    # Created, or replaced when a previous backup made them: the bucket's key may have been rotated.
    for kind, name, create, replace in (
        ("secret", CREDENTIALS_SECRET, create_secret, replace_secret),
        ("configmap", SCRIPT_CONFIGMAP, create_configmap, replace_configmap),
    ):
        try:
            _recorded(record, ["create", kind, name, "-n", namespace], create)
        except ApiException as exc:
            if exc.status != 409:
                raise
            _recorded(record, ["replace", kind, name, "-n", namespace], replace)


def job_manifest(spec: BackupJobSpec) -> client.V1Job:
    """The Job: one container running the script, admitted by Pod Security `restricted` and the
    store's ResourceQuota (explicit requests and limits), credentials only as Secret env."""
    db = spec.database
    env = [
        client.V1EnvVar(name="BACKUP_ENGINE", value=db.engine),
        client.V1EnvVar(name="BACKUP_PREFIX", value=spec.prefix),
        client.V1EnvVar(name="BACKUP_SHA256", value=spec.expected_sha256),
        client.V1EnvVar(name="BACKUP_WORK_DIR", value="/work"),
        client.V1EnvVar(name="BACKUP_CHECK_QUERY", value=spec.check_query),
    ]
    password = client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name=db.password_secret, key=db.password_key)
    )
    if db.engine == "woocommerce":
        env += [
            client.V1EnvVar(name="DB_HOST", value=db.host),
            client.V1EnvVar(name="DB_PORT", value=str(db.port)),
            client.V1EnvVar(name="DB_NAME", value=db.name),
            client.V1EnvVar(name="DB_USER", value=db.user),
            client.V1EnvVar(name="DB_PASSWORD", value_from=password),
        ]
    else:
        env += [
            client.V1EnvVar(name="PGHOST", value=db.host),
            client.V1EnvVar(name="PGPORT", value=str(db.port)),
            client.V1EnvVar(name="PGDATABASE", value=db.name),
            client.V1EnvVar(name="PGUSER", value=db.user),
            client.V1EnvVar(name="PGPASSWORD", value_from=password),
        ]
    mounts = [
        client.V1VolumeMount(name="script", mount_path="/scripts", read_only=True),
        client.V1VolumeMount(name="work", mount_path="/work"),
        client.V1VolumeMount(name="tmp", mount_path="/tmp"),  # noqa: S108 - an emptyDir in the pod
    ]
    volumes = [
        client.V1Volume(
            name="script",
            config_map=client.V1ConfigMapVolumeSource(name=SCRIPT_CONFIGMAP, default_mode=0o555),
        ),
        client.V1Volume(name="work", empty_dir=client.V1EmptyDirVolumeSource(size_limit="2Gi")),
        client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource(size_limit="64Mi")),
    ]
    if spec.uploads_claim and spec.mode != "verify":
        env.append(client.V1EnvVar(name="UPLOADS_DIR", value="/uploads"))
        mounts.append(
            client.V1VolumeMount(
                name="uploads",
                mount_path="/uploads",
                sub_path=spec.uploads_subpath or None,
                read_only=spec.mode == "backup",
            )
        )
        volumes.append(
            client.V1Volume(
                name="uploads",
                persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                    claim_name=spec.uploads_claim
                ),
            )
        )
    labels = {
        **spec.labels,
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        BACKUP_COMPONENT_LABEL: spec.mode,
        # The store charts' NetworkPolicies let pods with these labels reach the database and the
        # object store, and nothing else (the issue: "egress only to the object store"): never
        # internet-egress, which opens everything outside the cluster ranges.
        "platform.example/db-client": "true",
        BACKUP_EGRESS_LABEL: "true",
    }
    container = client.V1Container(
        name="backup",
        image=spec.image,
        image_pull_policy="IfNotPresent",
        command=["/bin/bash", "/scripts/store-backup.sh", spec.mode],
        env=env,
        env_from=[client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=CREDENTIALS_SECRET))],
        volume_mounts=mounts,
        # The script's last line (its BACKUP-RESULT) becomes the termination message the platform
        # reads for the failure reason.
        termination_message_policy="FallbackToLogsOnError",
        # Small enough to fit next to a running store in its own quota: the default plan's WooCommerce
        # store (web, its wp-cron sidecar, MariaDB) leaves 200m CPU and 192Mi of limits free (on the
        # real control plane 500m was refused). The dump streams, so memory does not grow with the shop.
        resources=client.V1ResourceRequirements(
            requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "200m", "memory": "192Mi"}
        ),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
        ),
    )
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=spec.job_name, labels=labels),
        spec=client.V1JobSpec(
            backoff_limit=0,  # a dump that failed once fails the same way again; the reason matters more
            active_deadline_seconds=spec.deadline_seconds,
            ttl_seconds_after_finished=3600,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    automount_service_account_token=False,
                    enable_service_links=False,
                    security_context=client.V1PodSecurityContext(
                        run_as_non_root=True,
                        run_as_user=spec.run_as_user,
                        run_as_group=spec.run_as_user,
                        fs_group=spec.run_as_user,
                        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
                    ),
                    containers=[container],
                    volumes=volumes,
                ),
            ),
        ),
    )


def create_job(api: ApiClient, *, spec: BackupJobSpec, record: Recorder | None = None) -> bool:
    """Create the Job; False if one of that name exists already (a redelivered task: wait for it)."""
    batch = BatchV1Api(api)
    try:
        _recorded(
            record,
            ["create", "job", spec.job_name, "-n", spec.namespace],
            lambda: batch.create_namespaced_job(spec.namespace, job_manifest(spec)),
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def _termination_message(core: CoreV1Api, namespace: str, job_name: str) -> str:
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}")
    for pod in pods.items:
        for status in (pod.status and pod.status.container_statuses) or []:
            terminated = status.state and status.state.terminated
            if terminated and terminated.message:
                return terminated.message
    return ""


def _quota_refusal(core: CoreV1Api, namespace: str, job_name: str) -> str:
    """The Job controller's FailedCreate event, when admission (ResourceQuota, Pod Security) refused
    its pod: the Job then has no pod at all, so only the event says why."""
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={job_name}")
    for event in events.items:
        if event.reason == "FailedCreate" and event.message:
            return event.message
    return ""


def wait_job(
    api: ApiClient,
    *,
    namespace: str,
    job_name: str,
    timeout_seconds: float,
    # A pod on its way out (a finished setup Job's, a rollout's old one) can hold the quota's headroom
    # for a few seconds; the Job controller retries the pod meanwhile, so only a refusal that lasts
    # is the quota's answer.
    refused_after_seconds: float = 45,
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> JobOutcome:
    """Poll the Job until Complete or Failed; a pod admission refused for `refused_after_seconds`
    (the Job controller keeps retrying it) ends it as quota-refused with the apiserver's words."""
    batch, core = BatchV1Api(api), CoreV1Api(api)
    started = time.monotonic()
    while True:
        job = batch.read_namespaced_job(job_name, namespace)
        for condition in (job.status and job.status.conditions) or []:
            if condition.status != "True":
                continue
            if condition.type in ("Complete", "SuccessCriteriaMet"):
                return JobOutcome(succeeded=True)
            if condition.type in ("Failed", "FailureTarget"):
                return _failed(core, namespace, job_name, condition.reason or "", condition.message or "")
        elapsed = time.monotonic() - started
        if elapsed >= refused_after_seconds and not (job.status and (job.status.active or job.status.failed)):
            refusal = _quota_refusal(core, namespace, job_name)
            if refusal:
                reason = "quota-refused" if "quota" in refusal.lower() else "admission-refused"
                return JobOutcome(succeeded=False, reason=reason, message=refusal)
        if elapsed >= timeout_seconds:
            return JobOutcome(
                succeeded=False,
                reason="timeout",
                message=f"the Job did not finish in {timeout_seconds:.0f} s",
            )
        sleep(poll)


def _failed(core: CoreV1Api, namespace: str, job_name: str, reason: str, message: str) -> JobOutcome:
    text = _termination_message(core, namespace, job_name)
    for line in reversed(text.splitlines()):
        match = RESULT_PATTERN.search(line)
        if match and match.group(1) == "failed":
            return JobOutcome(
                succeeded=False, reason=match.group(2) or "failed", message=match.group(3).strip()
            )
    if reason == "DeadlineExceeded":
        return JobOutcome(succeeded=False, reason="deadline", message=message)
    return JobOutcome(succeeded=False, reason="job-failed", message=(message or text)[-500:])


def delete_job(api: ApiClient, *, namespace: str, job_name: str, record: Recorder | None = None) -> None:
    """Delete the Job and its pods (foreground: nothing of it keeps running); gone already is fine."""
    batch = BatchV1Api(api)
    try:
        _recorded(
            record,
            ["delete", "job", job_name, "-n", namespace],
            lambda: batch.delete_namespaced_job(
                job_name, namespace, body=client.V1DeleteOptions(propagation_policy="Foreground")
            ),
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
