"""Tenants, users and tokens for the benchmarks (created through the same services as production)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from stores.models import Plan, PlanResources, Tenant
from stores.permissions import access_for_user
from stores.services import tenant_create
from stores.tokens import api_token_create


def bench_plan(max_stores: int = 100_000) -> Plan:
    """A plan big enough for every benchmark, with the seeded per-engine resources."""
    plan, created = Plan.objects.get_or_create(name="Benchmark", defaults={"max_stores": max_stores})
    if created:
        for engine, cpu, memory in (("woocommerce", 1000, 1024), ("medusa", 2000, 2048)):
            PlanResources.objects.create(
                plan=plan, engine=engine, cpu_millicores=cpu, memory_mib=memory, storage_gib=10
            )
    return plan


def merchant(name: str) -> tuple[Any, Tenant, str]:
    """A user owning a tenant on the benchmark plan, and an API token for them."""
    user = get_user_model().objects.create_user(
        username=f"{name}@bench.example", password="bench-password-1234"
    )
    tenant = tenant_create(name=name, plan=bench_plan(), owner=user)
    _, token = api_token_create(user=user, access=access_for_user(user=user))
    return user, tenant, token
