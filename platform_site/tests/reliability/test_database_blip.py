"""A worker loses its PostgreSQL connection right after helm finished: nothing is half-written.

The worker reaches PostgreSQL through a TCP proxy owned by the test; the proxy drops every connection
and refuses new ones for a few seconds (the shared PostgreSQL server itself is never stopped).
"""

import socket
import stat
import textwrap
import threading
import time

import pytest
from django.db import connection

from provisioning.choices import RunStatus
from provisioning.models import CommandRecord, ProvisioningRun
from stores.choices import StoreEventKind, StoreStatus
from stores.lifecycle import store_create
from stores.models import Store, StoreEvent
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class CuttableProxy:
    """Forwards TCP connections to PostgreSQL until cut; while cut, new connections are refused."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_off = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self.cut_off.set()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets.clear()

    def restore(self) -> None:
        self.cut_off.clear()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy():
    if connection.vendor != "postgresql":
        pytest.skip("a database connection that can be cut needs PostgreSQL (the CI's second run)")
    params = connection.settings_dict
    cuttable = CuttableProxy((params.get("HOST") or "127.0.0.1", int(params.get("PORT") or 5432)))
    yield cuttable
    cuttable.close()


def _helm_pausing_after_install(tmp_path):
    marker = tmp_path / "helm-finished"
    script = tmp_path / "helm"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/bash
            "{HELM_BINARIES["helm4"]}" "$@"
            code=$?
            if [ "$1" = upgrade ]; then touch {marker}; sleep 2; fi
            exit $code
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, marker


def test_worker_rides_out_a_database_blip_after_helm(kube_api, tenant, start_worker, proxy, tmp_path):
    params = connection.settings_dict
    helm, helm_finished = _helm_pausing_after_install(tmp_path)
    store, _ = store_create(tenant=tenant, name="blip", engine="woocommerce")
    database_url = f"postgres://{params['USER'] or 'postgres'}@127.0.0.1:{proxy.port}/{params['NAME']}"
    start_worker(kube_api, helm, DATABASE_URL=database_url)

    wait_for(helm_finished.exists, timeout=60, what="helm to finish the install")
    proxy.cut()  # the worker records the helm call and finishes during the outage
    time.sleep(4)
    assert Store.objects.get(pk=store.pk).status == StoreStatus.PROVISIONING
    proxy.restore()

    wait_for(
        lambda: Store.objects.get(pk=store.pk).status == StoreStatus.READY, timeout=60, what="store ready"
    )
    run = ProvisioningRun.objects.get(store=store)
    assert run.status == RunStatus.SUCCEEDED and run.finished_at is not None
    installs = [c for c in CommandRecord.objects.filter(run=run, tool="helm") if "upgrade" in c.argv]
    assert len(installs) == 1
    ready_events = StoreEvent.objects.filter(
        store=store, kind=StoreEventKind.TRANSITION, new_status=StoreStatus.READY
    )
    assert ready_events.count() == 1
