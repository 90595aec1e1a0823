"""Project-wide pytest fixtures."""

from __future__ import annotations

import pytest

from stores.tests.factories import MembershipFactory

pytest_plugins = [
    "testkit.plugins.kube_double",
    "testkit.plugins.worker",
    "testkit.plugins.real_cluster",
]


@pytest.fixture
def owner(db):
    """A user who owns a tenant on the default plan."""
    return MembershipFactory().user


@pytest.fixture
def tenant(owner):
    return owner.memberships.get().tenant


@pytest.fixture
def other_owner(db):
    """A user of a second, unrelated tenant."""
    return MembershipFactory().user


@pytest.fixture
def other_tenant(other_owner):
    return other_owner.memberships.get().tenant
