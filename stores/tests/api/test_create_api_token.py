"""`manage.py create_api_token`: prints a working token, creating the account and organisation once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from stores.models import Tenant
from stores.tests.api.conftest import client_with_token

pytestmark = pytest.mark.django_db


def _token(*args: str) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().strip()


def test_the_printed_token_authenticates_and_reruns_reuse_the_account():
    first = _token("partner@example.com", "--organisation", "Acme Hosting")
    second = _token("partner@example.com")

    assert first != second
    for token in (first, second):
        assert client_with_token(token).get("/api/v1/plan/").status_code == 200
    assert get_user_model().objects.filter(username="partner@example.com").count() == 1
    assert list(Tenant.objects.values_list("name", flat=True)) == ["Acme Hosting"]
