"""List scaling: 1k, 10k and 50k stores across 500 tenants (bulk insert). For the merchant dashboard,
`GET /api/v1/stores/` and the admin changelist: p50/p95 latency and SQL queries per request."""

from __future__ import annotations

import time
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.environment import Process, free_port, peak_rss_mib, percentile
from bench.fixtures import bench_plan
from provisioning.clusters import cluster_default
from stores.choices import MembershipRole, StoreEventKind, StoreStatus
from stores.models import Membership, Store, StoreEvent, Tenant
from stores.permissions import access_for_user
from stores.tokens import api_token_create

TENANTS = 500
REQUESTS = 40
WARM_UP = 3
STATUSES = [StoreStatus.READY] * 7 + [StoreStatus.FAILED, StoreStatus.PROVISIONING, StoreStatus.DELETED]


def _seed_tenants() -> list[Tenant]:
    plan = bench_plan()
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"lister{i}@bench.example") for i in range(TENANTS)]
    )
    tenants = Tenant.objects.bulk_create(
        [Tenant(name=f"Lister {i}", slug=f"lister-{i}", plan=plan) for i in range(TENANTS)]
    )
    Membership.objects.bulk_create(
        [Membership(user=u, tenant=t, role=MembershipRole.OWNER) for u, t in zip(users, tenants, strict=True)]
    )
    return tenants


def _seed_stores(tenants: list[Tenant], start: int, stop: int) -> None:
    now = timezone.now()
    cluster = cluster_default()
    batch: list[Store] = []
    for index in range(start, stop):
        name = f"list-{index:06d}"
        status = STATUSES[index % len(STATUSES)]
        batch.append(
            Store(
                tenant=tenants[index % TENANTS], cluster=cluster, name=name, engine="woocommerce" if index % 3 else "medusa",
                status=status, namespace=f"store-{name}", release_name=name,
                host=f"{name}.127.0.0.1.nip.io", ready_at=now if status == StoreStatus.READY else None,
            )
        )  # fmt: skip
        if len(batch) == 5000:
            _insert(batch)
            batch = []
    if batch:
        _insert(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _insert(stores: list[Store]) -> None:
    created = Store.objects.bulk_create(stores)
    StoreEvent.objects.bulk_create(
        [
            StoreEvent(store=s, kind=StoreEventKind.TRANSITION, new_status=s.status, reason="Seeded.")
            for s in created
        ]
    )


def _measure(client: Client, path: str) -> tuple[float, float, int]:
    for _ in range(WARM_UP):
        assert client.get(path).status_code == 200, path
    timings, queries = [], set()
    for _ in range(REQUESTS):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        queries.add(len(captured))
    return percentile(timings, 0.5), percentile(timings, 0.95), max(queries)


def _web_worker_peak_rss(session_cookie: str, token: str) -> float:
    """Serve the three lists from a real gunicorn worker for a while and read its peak RSS."""
    port = free_port()
    web = Process(
        "gunicorn",
        [".venv/bin/gunicorn", "platform_site.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
    )
    try:
        web.wait_for_output("Booting worker")
        time.sleep(1)
        for _ in range(30):
            for path, headers in (
                ("/stores/", {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_cookie}"}),
                ("/api/v1/stores/", {"Authorization": f"Token {token}"}),
            ):
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
        worker_pids = [pid for pid in web.tree_pids() if pid != web.process.pid]
        return max(peak_rss_mib(pid) for pid in worker_pids)
    finally:
        web.stop()


def run(sizes: tuple[int, ...] = (1_000, 10_000, 50_000)) -> dict[str, object]:
    tenants = _seed_tenants()
    merchant_user = Membership.objects.get(tenant=tenants[0]).user
    staff = get_user_model().objects.create_superuser(username="bench-staff", password="bench-password-1234")
    _, token = api_token_create(user=merchant_user, access=access_for_user(user=merchant_user))
    merchant_client, staff_client = Client(), Client()
    merchant_client.force_login(merchant_user)
    staff_client.force_login(staff)
    api_client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    results: dict[str, object] = {}
    seeded = 0
    for size in sizes:
        _seed_stores(tenants, seeded, size)
        seeded = size
        for label, client, path in (
            ("dashboard", merchant_client, "/stores/"),
            ("api list", api_client, "/api/v1/stores/"),
            ("admin changelist", staff_client, "/admin/stores/store/"),
        ):
            p50, p95, queries = _measure(client, path)
            results[f"{label} @ {size:,}"] = f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, {queries} queries"
    results["web worker peak RSS MiB"] = round(
        _web_worker_peak_rss(merchant_client.cookies[settings.SESSION_COOKIE_NAME].value, token), 1
    )
    return results
