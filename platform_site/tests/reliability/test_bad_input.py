"""Suite 4, bad input: arbitrary names through every interface that creates a store (the launch form,
its live name check, the partner API, the admin add form), plus malformed API requests.

Every answer is a clear 4xx or a form with an error, never a 5xx; a name the shared validator refuses
never becomes a Store row or a ProvisioningRun (the only way anything reaches helm). Each example runs
in a savepoint that is rolled back, so examples do not see each other's stores.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from provisioning.models import ProvisioningRun
from stores.models import Store
from stores.tests.api.conftest import token_for
from stores.tests.factories import MembershipFactory
from stores.validators import validate_store_name
from testkit.reporting import report_lines

pytestmark = pytest.mark.django_db

# Letters that look like a-z but are not ASCII, invisible characters, whitespace and header breakers.
LOOK_ALIKES = "аеіјорсхуѕԁһӏ０１ｓℎ\u0131\u017f"
NASTY = "\x00\x01\x7f\t\r\n \u00a0\u200b\u200d\u2028\u202e\ufeff_./:%;<>\"'`\\"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-" + LOOK_ALIKES + NASTY

NAMES = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=ALPHABET, max_size=70),
    st.from_regex(r"[a-z0-9][a-z0-9-]{1,60}[a-z0-9]", fullmatch=True),
    st.builds(
        lambda a, b: f"{a}\r\nX-Injected: {b}", st.from_regex(r"[a-z]{3,8}", fullmatch=True), st.text()
    ),
    st.text(alphabet=ALPHABET, min_size=58, max_size=4000),
    st.sampled_from(
        ["xn--shop", "kube-system", "admin", "-shop", "shop-", "ab", "Shop", "ѕhop", "shop\u200b"]
    ),
)
EXAMPLES = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# What each run saw, for docs/reliability.md (printed by the last test of the module).
FIGURES: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_figures(request):
    """After the module: what the property tests sent, per interface (a report, not a test)."""
    yield
    if FIGURES:
        report_lines(request.config, ["", f"bad-input figures: {json.dumps(FIGURES, sort_keys=True)}"])


@pytest.fixture(autouse=True)
def generous_throttles(settings):
    """Hundreds of requests from one client; throttling is tested elsewhere."""
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "1000000/min", "ip": "1000000/min"},
    }


def _is_valid(name: str) -> bool:
    try:
        validate_store_name(name)
    except ValidationError:
        return False
    return True


def _attempt(interface: str, name: str, send) -> None:
    """Send `name` through one interface in a rolled-back savepoint and check what reached the database."""
    with transaction.atomic():
        runs_before = ProvisioningRun.objects.count()
        response = send(name)
        assert response.status_code < 500, (interface, name, response.status_code)
        created = Store.objects.filter(name=name).exists() if "\x00" not in name else False
        new_runs = ProvisioningRun.objects.count() - runs_before
        figures = FIGURES.setdefault(interface, {"sent": 0, "rejected": 0, "accepted": 0})
        figures["sent"] += 1
        if _is_valid(name):
            figures["accepted"] += created
        else:
            figures["rejected"] += 1
            assert not created and new_runs == 0, (interface, name)
            assert response.status_code in {200, 400}, (interface, name, response.status_code)
        if created:
            assert _is_valid(name) and new_runs == 1
        transaction.set_rollback(True)


@pytest.fixture
def merchant(owner):
    client = Client()
    client.force_login(owner)
    return client


@given(name=NAMES)
@EXAMPLES
def test_launch_form_refuses_every_invalid_name(merchant, name):
    def send(value):
        response = merchant.post("/stores/new/", {"name": value, "engine": "woocommerce"})
        if response.status_code == 400:
            assert b"field__errors" in response.content or b'role="alert"' in response.content
        else:
            assert response.status_code == 302
        return response

    # The form strips surrounding whitespace on purpose (people paste names); what it then stores
    # must still pass the validator, which _attempt checks for the stripped name too.
    _attempt("launch form", name, send)
    if name.strip() != name:
        stripped = name.strip()
        with transaction.atomic():
            merchant.post("/stores/new/", {"name": name, "engine": "woocommerce"})
            stored = Store.objects.filter(name=stripped).exists() if "\x00" not in stripped else False
            assert not stored or _is_valid(stripped)
            transaction.set_rollback(True)


@given(name=NAMES)
@EXAMPLES
def test_live_name_check_answers_every_name(merchant, name):
    def send(value):
        response = merchant.get("/stores/new/check-name/", {"name": value, "engine": "medusa"})
        assert response.status_code == 200
        return response

    _attempt("live name check", name, send)
    assert not Store.objects.exists()


@pytest.fixture
def api_client(owner):
    return Client(HTTP_AUTHORIZATION=f"Token {token_for(owner, expiry=None)}")


@given(name=NAMES)
@EXAMPLES
def test_api_refuses_every_invalid_name(api_client, name):
    def send(value):
        response = api_client.post(
            "/api/v1/stores/", {"name": value, "engine": "woocommerce"}, content_type="application/json"
        )
        if response.status_code == 400:
            assert (
                response.json()["error"]["code"] == "invalid" and "name" in response.json()["error"]["fields"]
            )
        else:
            assert response.status_code == 202
        return response

    _attempt("partner API", name, send)


@pytest.fixture
def staff(db):
    membership = MembershipFactory()
    client = Client()
    client.force_login(
        type(membership.user).objects.create_superuser("staff@example.com", "staff@example.com", "x" * 20)
    )
    return client, membership.tenant


@given(name=NAMES)
@EXAMPLES
def test_admin_add_form_refuses_every_invalid_name(staff, name):
    client, tenant = staff

    def send(value):
        response = client.post(
            "/admin/stores/store/add/", {"tenant": tenant.pk, "name": value, "engine": "medusa", "_save": "1"}
        )
        if response.status_code == 200:
            assert b"errornote" in response.content or b"errorlist" in response.content
        else:
            assert response.status_code == 302
        return response

    _attempt("admin add form", name, send)


# --- Malformed API requests --------------------------------------------------------------------------


def test_oversized_bodies_are_refused_not_crashed(api_client, merchant):
    huge = "a" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)
    api = api_client.post(
        "/api/v1/stores/", json.dumps({"name": huge, "engine": "medusa"}), content_type="application/json"
    )
    form = merchant.post("/stores/new/", {"name": huge, "engine": "medusa"})
    assert api.status_code in {400, 413}, api.content[:300]
    assert form.status_code in {400, 413}
    assert not Store.objects.exists() and not ProvisioningRun.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "name=shop&engine=medusa"),
        ("application/xml", "<store><name>shop</name></store>"),
        ("application/x-www-form-urlencoded", "name=shop&engine=medusa"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nshop\r\n--x--\r\n',
        ),
    ],
)
def test_wrong_content_types_get_415(api_client, content_type, body):
    response = api_client.post("/api/v1/stores/", body, content_type=content_type)
    assert response.status_code == 415, response.content
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not Store.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "fine-shop", "engine": "medusa", "status": "ready"},
        {"name": "fine-shop", "engine": "medusa", "tenant": 1},
        {"name": "fine-shop", "engine": "medusa", "namespace": "kube-system"},
        {"name": ["fine-shop"], "engine": "medusa"},
        {"name": {"$ne": ""}, "engine": "medusa"},
        {"name": 12345, "engine": "medusa"},
        {"name": None, "engine": "medusa"},
        {"name": "fine-shop", "engine": "magento"},
        ["fine-shop", "medusa"],
        "fine-shop",
    ],
)
def test_unknown_fields_and_wrong_shapes_get_400(api_client, body):
    response = api_client.post("/api/v1/stores/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert not Store.objects.exists() and not ProvisioningRun.objects.exists()


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe\x00", b'{"name": "a\\ud800"}', b"[" * 5000 + b"]" * 5000])
def test_malformed_json_gets_400(api_client, raw):
    response = api_client.post("/api/v1/stores/", raw, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert not Store.objects.exists()
