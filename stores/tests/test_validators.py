import re

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from stores.validators import (
    host_for_store,
    namespace_for_store,
    release_name_for_store,
    suggest_store_name,
    validate_store_name,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# Valid names that YAML reads as numbers, booleans or null: the store charts must quote them
# (charts/tests/test_store_names.py renders each one).
YAML_AMBIGUOUS_NAMES = ["123", "2024", "yes", "off", "true", "1e5", "0x1f", "0o17", "null", "nan"]


@pytest.mark.parametrize(
    "name", ["shop", "my-shop", "a1b", "abc123", "x" * 57, "ab-c", "coffee-2024", *YAML_AMBIGUOUS_NAMES]
)
def test_valid_names_are_accepted(name):
    validate_store_name(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "required"),
        ("ab", "at least 3"),
        ("x" * 58, "at most 57"),
        ("MyShop", "lowercase"),
        ("my_shop", "underscores"),
        ("my.shop", "dots"),
        ("-shop", "start and end"),
        ("shop-", "start and end"),
        ("xn--shop", "third and fourth"),
        ("ab--shop", "third and fourth"),
        ("my shop", "whitespace"),
        (" shop", "whitespace"),
        ("shop\n", "whitespace"),
        ("sh\x00op", "control"),
        ("sh\u200bop", "control or invisible"),
        ("shоp", "look-alike"),  # Cyrillic o
        ("café", "look-alike"),
        ("www", "reserved"),
        ("api", "reserved"),
        ("admin", "reserved"),
        ("kube-system", "reserved"),
        ("kube-anything", "reserved"),
        ("default", "reserved"),
        ("shop!", "letters a-z"),
        ("shop/evil", "letters a-z"),
        ("a\r\nSet-Cookie: x", "whitespace"),
    ],
)
def test_invalid_names_are_rejected_with_reason_and_valid_suggestion(name, message):
    with pytest.raises(ValidationError) as raised:
        validate_store_name(name)
    text = raised.value.messages[0]
    assert message in text
    suggestion = raised.value.params["suggestion"]
    assert f"Try “{suggestion}”" in text
    validate_store_name(suggestion)


def test_non_string_is_rejected():
    with pytest.raises(ValidationError):
        validate_store_name(123)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_every_accepted_name_yields_valid_namespace_host_and_release(name):
    try:
        validate_store_name(name)
    except ValidationError:
        return
    namespace = namespace_for_store(name)
    assert len(namespace) <= 63 and DNS_LABEL.match(namespace)
    host = host_for_store(name, "127.0.0.1.nip.io")
    assert all(DNS_LABEL.match(label) for label in host.split(".")) and len(host) <= 253
    release = release_name_for_store(name)
    assert len(release) <= 53 and RELEASE_NAME.match(release)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[a-z0-9][a-z0-9-]{1,55}[a-z0-9]", fullmatch=True))
def test_well_formed_labels_are_accepted_unless_reserved_or_idna(name):
    try:
        validate_store_name(name)
    except ValidationError as exc:
        assert "reserved" in exc.messages[0] or "third and fourth" in exc.messages[0]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_suggestion_is_always_valid(raw):
    validate_store_name(suggest_store_name(raw))


def test_the_dashboards_own_host_is_reserved_whatever_it_is(settings):
    """Issue 15: `dashboard` was hard-coded while the chart's ingress.subdomain is configurable."""
    settings.STORE_BASE_DOMAIN = "shops.example"
    settings.DASHBOARD_HOST = "admin-panel.shops.example"
    with pytest.raises(ValidationError, match="reserved"):
        validate_store_name("admin-panel")
    validate_store_name("dashboard")  # no longer the platform's host: a merchant may have it
    settings.DASHBOARD_HOST = "dashboard.shops.example"
    with pytest.raises(ValidationError, match="reserved"):
        validate_store_name("dashboard")
    settings.DASHBOARD_HOST = "platform.elsewhere.example"  # another domain: no store name collides
    validate_store_name("platform-shop")
