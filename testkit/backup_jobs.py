"""Runs the backup Jobs the platform creates on the Kubernetes API double, natively.

The double (and kwok) run no containers. `JobExecutor` takes the backup, restore and drill Jobs away
from the double's own Job controller (which would mark them complete at once; every other workload,
e.g. a drill's helm install, is still settled by it), watches for them, runs the container's command the way a kubelet would: the script from the
ConfigMap the platform shipped, with the Job's own env (values, `secretKeyRef`, `envFrom` Secrets,
resolved from the double), and writes the outcome back as the Job's and its pod's status (the
termination message is the script's last line). Only the in-cluster addresses are rewritten to the
test's loopback servers (`overrides`), so a test proves the Job spec carries everything the script
needs, and nothing the platform did not put there.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubeapi_double import KubeApiDouble


class JobExecutor:
    def __init__(
        self, double: KubeApiDouble, *, overrides: dict[str, str], mounts: dict[str, str] | None = None
    ):
        self.double = double
        self.overrides = overrides
        self.mounts = mounts or {}  # mount path in the pod -> local directory
        self.runs: list[dict[str, Any]] = []  # what ran: job, env (secret values included), result line
        self._seen: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> JobExecutor:
        controllers = self.double.controllers
        self._original_job = controllers._job

        def job_unless_backup(job: dict[str, Any]) -> None:
            if "platform.example/backup" not in (job["metadata"].get("labels") or {}):
                self._original_job(job)

        controllers._job = job_unless_backup
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        del self.double.controllers._job  # the class's own method again

    def _loop(self) -> None:
        while not self._stop.is_set():
            for job in self.double.objects("jobs"):
                meta = job["metadata"]
                key = (meta["namespace"], meta["name"])
                if key in self._seen or "platform.example/backup" not in (meta.get("labels") or {}):
                    continue
                self._seen.add(key)
                self._execute(job)
            time.sleep(0.05)

    def _secret(self, namespace: str, name: str) -> dict[str, str]:
        secret = self.double.get("secrets", name, namespace) or {}
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        data.update(secret.get("stringData") or {})
        return data

    def _execute(self, job: dict[str, Any]) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        pod_spec = job["spec"]["template"]["spec"]
        container = pod_spec["containers"][0]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            env.update(self._secret(namespace, source["secretRef"]["name"]))
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = var["value"]
            elif "valueFrom" in var:
                ref = var["valueFrom"]["secretKeyRef"]
                env[var["name"]] = self._secret(namespace, ref["name"])[ref["key"]]
        env.update(self.overrides)
        work = Path(tempfile.mkdtemp(prefix="job-"))
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
        for path, local in self.mounts.items():
            if path in mounts and env.get("UPLOADS_DIR") == path:
                env["UPLOADS_DIR"] = local
        env["BACKUP_WORK_DIR"] = str(work)
        configmap = self.double.get("configmaps", "store-backup-script", namespace) or {}
        script = work / "store-backup.sh"
        script.write_text((configmap.get("data") or {})["store-backup.sh"])
        command = container["command"]
        assert command[:2] == ["/bin/bash", "/scripts/store-backup.sh"], command
        env["PATH"] = os.environ["PATH"]
        done = subprocess.run(
            ["bash", str(script), *command[2:]], env=env, capture_output=True, text=True, timeout=300
        )
        last = (done.stdout.strip().splitlines() or [""])[-1]
        self.runs.append({"job": name, "env": env, "result": last, "stderr": done.stderr})
        succeeded = done.returncode == 0
        self.double.create(
            "pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-pod",
                    "labels": {"batch.kubernetes.io/job-name": name},
                    # Owned by its Job, as the Job controller makes them: the double leaves owned pods
                    # to their controller and would otherwise mark this one running.
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": name,
                            "uid": job["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": pod_spec,
            },
            namespace,
        )
        state = {
            "terminated": {
                "exitCode": done.returncode,
                "message": last,
                "reason": "Completed" if succeeded else "Error",
            }
        }
        self.double.set_status(
            "pods",
            f"{name}-pod",
            {
                "phase": "Succeeded" if succeeded else "Failed",
                # Every field a kubelet always sets (the Python client refuses a status without them).
                "containerStatuses": [
                    {
                        "name": "backup",
                        "image": container["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": state,
                    }
                ],
            },
            namespace,
        )
        condition = "Complete" if succeeded else "Failed"
        self.double.set_status(
            "jobs",
            name,
            {
                "conditions": [
                    {
                        "type": condition,
                        "status": "True",
                        "reason": "BackoffLimitExceeded" if not succeeded else "",
                    }
                ],
                "succeeded" if succeeded else "failed": 1,
            },
            namespace,
        )
