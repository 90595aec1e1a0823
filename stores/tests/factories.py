"""factory_boy factories for tenants, users and stores."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from stores.choices import MembershipRole
from stores.models import Membership, Plan, PlanResources, Tenant


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
