"""A merchant backs a store up, sees it verified, restores it, pauses it (its visitors see the paused
page on the store's own host) and resumes it, in Debian's Chromium: live server, a real Celery worker, the Kubernetes API double (helm 4 installs the drill copy there), SeaweedFS's S3
and PostgreSQL; testkit.backup_jobs runs each Job's container command natively from the Job's env."""

from __future__ import annotations

import base64

import pytest
from django.core.cache import cache

from stores.choices import BackupStatus, Engine, StoreStatus
from stores.models import Store, StoreBackup
from stores.release import store_namespace_labels
from stores.tests.factories import MembershipFactory, StoreFactory, UserFactory, default_plan
from testkit.backup_jobs import JobExecutor
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery staple"


def test_back_up_see_it_verified_restore_pause_and_resume(
    browser, settings, kube_api, start_worker, live_server, object_store, backup_bucket, pg_database
):
    from playwright.sync_api import expect

    creds = object_store.credentials
    bucket = {
        "BACKUP_S3_ENDPOINT": creds.endpoint,
        "BACKUP_S3_BUCKET": backup_bucket,
        "BACKUP_S3_REGION": creds.region,
        "BACKUP_S3_ACCESS_KEY": creds.access_key,
        "BACKUP_S3_SECRET_KEY": creds.secret_key,
        "BACKUP_JOB_TIMEOUT": "60",
    }
    for name, value in bucket.items():
        setattr(settings, name, int(value) if name == "BACKUP_JOB_TIMEOUT" else value)
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)
    settings.CLUSTER_IS_SIMULATED = True
    default_plan()
    cache.clear()
    start_worker(kube_api, HELM_BINARIES["helm4"], **bucket)

    user = UserFactory(username="backup-walk@example.com")
    tenant = MembershipFactory(user=user).tenant
    store = StoreFactory(tenant=tenant, engine=Engine.MEDUSA, ready=True, name="walk-shop")
    # The namespace as provisioning left it (labelled ours): the pause's helm upgrade adopts it.
    labels = store_namespace_labels(store)
    kube_api.create(
        "namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": store.namespace, "labels": labels}},
    )
    kube_api.create(
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "store-credentials"},
            "data": {"database-password": base64.b64encode(b"unused-on-loopback").decode()},
        },
        store.namespace,
    )
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 21);')
    overrides = {"PGHOST": pg_database.host, "PGPORT": str(pg_database.port), "PGUSER": pg_database.user}
    overrides["PGDATABASE"] = pg_database.name

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/stores/{store.name}/")

    with JobExecutor(kube_api, overrides=overrides):
        page.get_by_role("button", name="Back up now").click()
        expect(page.get_by_text("Backup queued")).to_be_visible()
        wait_for(
            lambda: StoreBackup.objects.filter(store=store, status=BackupStatus.VERIFIED).exists(),
            timeout=120,
            what="backup verified by its drill",
        )
        page.reload()
        row = page.locator("tr[data-status='verified']")
        expect(row).to_be_visible()
        expect(row.locator("[data-drill]")).to_contain_text("Yes")

        pg_database.sql('DELETE FROM "order" WHERE id > 3;')
        row.get_by_text("Restore…").click()
        row.get_by_label("Type the store's name to confirm its data is replaced").fill("not-the-name")
        row.get_by_role("button", name="Restore this backup").click()
        expect(page.get_by_text("Type the store's name (walk-shop) to confirm")).to_be_visible()
        row = page.locator("tr[data-status='verified']")
        row.get_by_text("Restore…").click()
        row.get_by_label("Type the store's name to confirm its data is replaced").fill(store.name)
        row.get_by_role("button", name="Restore this backup").click()
        expect(page.get_by_text("Restore into walk-shop started")).to_be_visible()
        wait_for(
            lambda: (
                Store.objects.get(pk=store.pk).status == StoreStatus.READY
                and StoreBackup.objects.filter(store=store, kind="safety", status="completed").exists()
            ),
            timeout=120,
            what="restore finished",
        )
    assert pg_database.sql('SELECT COUNT(*) FROM "order"').strip() == "21"
    page.reload()
    expect(page.locator("tr[data-backup]")).to_have_count(2)  # the backup and the safety backup

    # Pause it: the worker's helm upgrade scales it to zero; visitors of its host see the paused page.
    page.get_by_text("Pause store…").click()
    page.get_by_label("Why (optional, shown on the timeline)").fill("Stocktaking")
    page.get_by_role("button", name="Pause: scale to zero, keep the data").click()
    wait_for(
        lambda: Store.objects.get(pk=store.pk).status == StoreStatus.SUSPENDED,
        timeout=120,
        what="store paused",
    )
    store_front = f"http://{store.host}:{live_server.url.rsplit(':', 1)[1]}/"
    visitor = browser.new_context().new_page()
    answer = visitor.goto(store_front)
    assert answer is not None and answer.status == 503
    expect(visitor.get_by_role("heading", name="Walk Shop is paused")).to_be_visible()
    assert "Stocktaking" not in visitor.content()  # the reason is for the merchant, not the visitors
    page.reload()
    expect(page.get_by_text("Paused by the organisation: Stocktaking")).to_be_visible()

    page.get_by_role("button", name="Resume store").click()
    wait_for(
        lambda: Store.objects.get(pk=store.pk).status == StoreStatus.READY,
        timeout=120,
        what="store resumed",
    )
    answer = visitor.goto(store_front)
    assert answer is not None and answer.status != 503
    expect(visitor.get_by_role("heading", name="Walk Shop is paused")).to_have_count(0)
