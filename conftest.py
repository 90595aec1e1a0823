"""Project-wide pytest fixtures."""

from __future__ import annotations

import pytest

from stores.tests.factories import MembershipFactory

pytest_plugins = [
    "testkit.plugins.kube_double",
    "testkit.plugins.worker",
    "testkit.plugins.real_cluster",
    "testkit.plugins.backup_servers",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(request, settings):
    """PBKDF2 at Django's 1,000,000 iterations costs ~0.3 s per user created or logged in; in-process
    tests get a fast hasher. Slow tests keep the real one: the servers and workers they start are
    other processes, which must be able to verify the hashes these tests write."""
    if request.node.get_closest_marker("slow") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
