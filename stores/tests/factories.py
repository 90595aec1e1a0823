"""factory_boy factories for tenants, users, stores and their runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from provisioning.choices import RunKind, RunStatus
from provisioning.clusters import cluster_default
from provisioning.models import ProvisioningRun
from provisioning.services import run_transition
from stores.choices import Engine, MembershipRole, StoreStatus
from stores.models import Membership, Plan, PlanResources, Store, Tenant
from stores.transitions import store_record_created, store_transition
from stores.validators import host_for_store, namespace_for_store, release_name_for_store


def default_plan() -> Plan:
    """The seeded default plan; re-seeded when a transactional test has flushed the tables."""
    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:
        plan = Plan.objects.create(name="Starter", max_stores=3, is_default=True)
        PlanResources.objects.create(
            plan=plan, engine="woocommerce", cpu_millicores=1000, memory_mib=1024, storage_gib=10
        )
        PlanResources.objects.create(
            plan=plan, engine="medusa", cpu_millicores=2000, memory_mib=2048, storage_gib=10
        )
    return plan


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"merchant{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct horse battery staple")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.Sequence(lambda n: f"merchant-{n}")
    plan = factory.LazyFunction(default_plan)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = MembershipRole.OWNER


# The path a store takes to each status, walked through the one writer so its events are real.
STATUS_PATHS: dict[str, tuple[StoreStatus, ...]] = {
    StoreStatus.REQUESTED: (),
    StoreStatus.PROVISIONING: (StoreStatus.PROVISIONING,),
    StoreStatus.READY: (StoreStatus.PROVISIONING, StoreStatus.READY),
    StoreStatus.FAILED: (StoreStatus.PROVISIONING, StoreStatus.FAILED),
    StoreStatus.DELETING: (StoreStatus.PROVISIONING, StoreStatus.READY, StoreStatus.DELETING),
    StoreStatus.DELETED: (
        StoreStatus.PROVISIONING,
        StoreStatus.READY,
        StoreStatus.DELETING,
        StoreStatus.DELETED,
    ),
}


# The reason a worker would leave on a store that reached the status (unless a test gives one).
DEFAULT_REASONS = {StoreStatus.READY: "Store is ready.", StoreStatus.FAILED: "helm timed out"}


class ProvisioningRunFactory(factory.django.DjangoModelFactory):
    """A run row; the traits give it the fields a worker would have written."""

    class Meta:
        model = ProvisioningRun

    kind = RunKind.PROVISION
    attempt = factory.LazyAttribute(
        lambda run: ProvisioningRun.objects.filter(store=run.store, kind=run.kind).count() + 1
    )
    celery_task_id = factory.Faker("uuid4")

    class Params:
        running = factory.Trait(
            status=RunStatus.RUNNING,
            started_at=factory.LazyFunction(timezone.now),
            deadline=factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1)),
            worker="factory-host:1",
        )
        succeeded = factory.Trait(
            status=RunStatus.SUCCEEDED,
            started_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
            helm_seconds=1.0,
        )
        failed = factory.Trait(
            status=RunStatus.FAILED,
            started_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
            error="helm timed out",
        )


class StoreFactory(factory.django.DjangoModelFactory):
    """A store as store_create makes it (requested, with its event and queued run), then walked to
    `status` through store_transition with runs to match: `StoreFactory(ready=True)`,
    `StoreFactory(status=StoreStatus.FAILED, reason="helm timed out")`."""

    class Meta:
        model = Store

    tenant = factory.SubFactory(TenantFactory)
    cluster = factory.LazyFunction(cluster_default)
    name = factory.Sequence(lambda n: f"shop-{n:04d}")
    engine = Engine.WOOCOMMERCE
    namespace = factory.LazyAttribute(lambda store: namespace_for_store(store.name))
    release_name = factory.LazyAttribute(lambda store: release_name_for_store(store.name))
    host = factory.LazyAttribute(lambda store: host_for_store(store.name, settings.STORE_BASE_DOMAIN))
    status = StoreStatus.REQUESTED
    reason = factory.LazyAttribute(lambda store: DEFAULT_REASONS.get(store.status, ""))

    class Params:
        provisioning = factory.Trait(status=StoreStatus.PROVISIONING)
        ready = factory.Trait(status=StoreStatus.READY)
        failed = factory.Trait(status=StoreStatus.FAILED)
        deleting = factory.Trait(status=StoreStatus.DELETING)
        deleted = factory.Trait(status=StoreStatus.DELETED)

    @classmethod
    def _create(cls, model_class: type[Store], *args: Any, **kwargs: Any) -> Store:
        target = StoreStatus(kwargs.pop("status"))
        reason = kwargs.pop("reason")
        store = model_class.objects.create(
            *args, status_reason="Queued: waiting for a worker to start provisioning.", **kwargs
        )
        store_record_created(store=store, reason="Store requested.")
        provision = ProvisioningRunFactory(store=store, cluster=store.cluster)
        for step in STATUS_PATHS[target]:
            if step == StoreStatus.PROVISIONING:
                run_transition(
                    run_id=provision.pk,
                    to=RunStatus.RUNNING,
                    started_at=timezone.now(),
                    worker="factory-host:1",
                )
            elif step == StoreStatus.READY:
                run_transition(run_id=provision.pk, to=RunStatus.SUCCEEDED, helm_seconds=1.0)
            elif step == StoreStatus.FAILED:
                run_transition(run_id=provision.pk, to=RunStatus.FAILED, error=reason or "helm timed out")
            elif step == StoreStatus.DELETING:
                teardown = ProvisioningRunFactory(store=store, cluster=store.cluster, kind=RunKind.TEARDOWN)
            elif step == StoreStatus.DELETED:
                run_transition(run_id=teardown.pk, to=RunStatus.RUNNING, started_at=timezone.now())
                run_transition(run_id=teardown.pk, to=RunStatus.SUCCEEDED)
            assert store_transition(store_id=store.pk, to=step, reason=reason if step == target else "")
        store.refresh_from_db()
        return store
