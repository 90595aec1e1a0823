"""Suite 5, secrets: provision a WooCommerce and a Medusa store through a real worker, reveal their
credentials, tear them down, then search every place a secret could leak for the generated passwords
and SECRET_KEY. The reveal responses must hold the password (proving the search finds it); nothing
else may.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import subprocess
from pathlib import Path
from unittest import mock

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client

from platform_site.celery import app as celery_app
from platform_site.tests.reliability.support import helm_processes
from provisioning.models import CommandRecord, ProvisioningRun
from provisioning.services import EXECUTE_RUN_TASK
from stores.choices import StoreStatus
from stores.engines import CREDENTIALS_OBJECT_NAME, engine_spec
from stores.models import Store
from stores.tests.api.conftest import token_for
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NOT_SECRET_KEYS = {"admin-username", "admin-email"}
STORES = {"leak-woo": "woocommerce", "leak-medusa": "medusa"}


def _status(name: str) -> str | None:
    return Store.objects.filter(name=name).values_list("status", flat=True).first()


def _wait_status(name: str, status: StoreStatus, worker) -> None:
    """Wait for a store's status; on a timeout show the runs and the worker's log, to tell why."""
    try:
        wait_for(lambda: _status(name) == status, timeout=90, what=f"{name} {status}")
    except BaseException:
        runs = ProvisioningRun.objects.values_list("store__name", "kind", "status", "error", "dispatch_count")
        print(list(runs), worker.log[-5000:], sep="\n")
        raise


def _environ(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
    except OSError:  # the process ended between listing and reading
        return ""


def _database_text() -> str:
    """Every row of every installed model, plus decoded session contents."""
    dump = io.StringIO()
    call_command("dumpdata", *{model._meta.app_label for model in apps.get_models()}, stdout=dump)
    sessions = [json.dumps(session.get_decoded(), default=str) for session in Session.objects.all()]
    return dump.getvalue() + "\n".join(sessions)


def test_no_password_or_secret_key_leaks_anywhere(owner, tenant, kube_api, start_worker, caplog, settings):
    caplog.set_level(logging.DEBUG)
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)  # the reveals read the Secret from the double
    worker_secret_key = secrets.token_urlsafe(40)
    token = token_for(owner, expiry=None)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    page = Client()
    page.force_login(owner)
    bodies: dict[str, bytes] = {}  # every response except the explicit reveals
    reveals: dict[str, bytes] = {}

    def keep(label: str, response) -> None:
        assert response.status_code < 500, (label, response.status_code)
        bodies[label] = response.content

    woo_namespace = "store-leak-woo"
    kube_api.set_never_ready(woo_namespace)  # hold the first helm install so its environment can be read
    worker = start_worker(kube_api, HELM_BINARIES["helm4"], SECRET_KEY=worker_secret_key)
    with mock.patch.object(celery_app, "send_task", wraps=celery_app.send_task) as sent:
        for name, engine in STORES.items():
            keep(
                f"create {name}",
                api.post(
                    "/api/v1/stores/", {"name": name, "engine": engine}, content_type="application/json"
                ),
            )
        wait_for(lambda: helm_processes(woo_namespace), timeout=60, what="helm install running")
        helm_environments = [_environ(pid) for pid in _helm_pids(woo_namespace)]
        worker_environments = [_environ(worker.process.pid)] + [_environ(p) for p in worker.child_pids()]
        kube_api.set_never_ready(woo_namespace, enabled=False)
        for name in STORES:
            _wait_status(name, StoreStatus.READY, worker)

        passwords = {}
        release_values = {}
        for name in STORES:
            store = Store.objects.get(name=name)
            secret = kube_api.get("secrets", CREDENTIALS_OBJECT_NAME, store.namespace)
            for key, encoded in secret["data"].items():
                if key not in NOT_SECRET_KEYS:
                    passwords[f"{name}/{key}"] = base64.b64decode(encoded).decode()
            release_values[name] = json.dumps(
                kube_api.helm_release_values(store.namespace, store.release_name)
            )

        reveals["api leak-woo"] = api.post("/api/v1/stores/leak-woo/credentials/").content
        reveals["page leak-medusa"] = page.post("/stores/leak-medusa/credentials/").content
        for name in STORES:
            keep(f"api get {name}", api.get(f"/api/v1/stores/{name}/"))
            keep(f"api events {name}", api.get(f"/api/v1/stores/{name}/events/"))
            keep(f"page {name}", page.get(f"/stores/{name}/"))
            keep(f"page status {name}", page.get(f"/stores/{name}/status/"))
        keep("api list", api.get("/api/v1/stores/"))
        keep("dashboard", page.get("/stores/"))

        for name in STORES:
            keep(f"delete {name}", api.delete(f"/api/v1/stores/{name}/"))
        for name in STORES:
            _wait_status(name, StoreStatus.DELETED, worker)
        keep("api list deleted", api.get("/api/v1/stores/?status=deleted"))

    # Celery task arguments: a run id and nothing else, for every dispatch.
    run_ids = set(ProvisioningRun.objects.values_list("pk", flat=True))
    assert sent.call_count >= 4
    for call in sent.call_args_list:
        assert call.args == (EXECUTE_RUN_TASK,)
        assert call.kwargs["args"] == [call.kwargs["args"][0]] and call.kwargs["args"][0] in run_ids
        # Besides the run id: its dispatch number, the task id, a countdown and the cleared time limits
        # (None), nothing else.
        assert set(call.kwargs) <= {"args", "kwargs", "task_id", "countdown", "time_limit", "soft_time_limit"}
        assert list(call.kwargs["kwargs"]) == ["dispatch"] and isinstance(
            call.kwargs["kwargs"]["dispatch"], int
        )
        assert call.kwargs.get("time_limit") is None and call.kwargs.get("soft_time_limit") is None

    woo_password = passwords["leak-woo/admin-password"]
    assert woo_password in reveals["api leak-woo"].decode()
    assert passwords["leak-medusa/admin-password"] in reveals["page leak-medusa"].decode()
    generated = sum(len(set(engine_spec(engine).secret_keys) - NOT_SECRET_KEYS) for engine in STORES.values())
    assert len(passwords) == generated and helm_environments and all(helm_environments)

    haystacks = {
        "helm and Kubernetes argv recorded on runs": json.dumps(
            [[record.argv, record.output] for record in CommandRecord.objects.all()]
        ),
        "helm release values": "\n".join(release_values.values()),
        "worker log": worker.log,
        "helm process environments": "\n".join(helm_environments),
        "test process log records": "\n".join(
            f"{record.getMessage()} {record.args!r} {record.exc_text or ''}" for record in caplog.records
        ),
        "database": _database_text(),
        **{f"response {label}": body.decode(errors="replace") for label, body in bodies.items()},
    }
    needles = {**passwords, "SECRET_KEY": django_settings.SECRET_KEY, "worker SECRET_KEY": worker_secret_key}
    leaks = [
        f"{needle_name} in {place}"
        for needle_name, needle in needles.items()
        for place, text in haystacks.items()
        if needle in text
    ]
    # The worker itself is given SECRET_KEY through its environment (as in production); the passwords
    # must never be there.
    leaks += [
        f"{name} in a worker process environment"
        for name, value in passwords.items()
        if any(value in environment for environment in worker_environments)
    ]
    helm_requests = [
        f"{name} in a request helm sent to the Kubernetes API"
        for name, value in needles.items()
        for request in kube_api.search_requests(value)
        if "helm" in request.user_agent.lower()
    ]
    assert any("helm" in r.user_agent.lower() for r in kube_api.requests())  # the filter is not vacuous
    print(
        f"secrets scan: {len(needles)} values x {len(haystacks) + 2} places, leaks: {leaks + helm_requests}"
    )
    assert leaks + helm_requests == []


def _helm_pids(namespace: str) -> list[int]:
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=False
    ).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if namespace in line and "upgrade --install" in line and "helm" in line.split()[1]
    ]
