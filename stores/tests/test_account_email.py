"""One e-mail rule (issue 15, finding 8): the signup form, `user_signup` and both store charts'
`adminEmail` schema accept and refuse the same addresses, tested with one table."""

from __future__ import annotations

import json

import jsonschema
import pytest

from charts.tests.rendering import CHARTS_DIR
from stores.exceptions import EmailInvalid
from stores.forms import SignupForm
from stores.services import user_signup
from stores.validators import ACCOUNT_EMAIL_PATTERN

PASSWORD = "correct horse battery staple"

# (address, accepted everywhere?)
TABLE = [
    ("owner@example.com", True),
    ("first.last+shop@sub.example.co.uk", True),
    ("o'brien@example.com", False),
    ('"quoted"@example.com', False),
    ("owner@example", False),
    ("no-at-sign.example.com", False),
    ("two@@example.com", False),
    ("white space@example.com", False),
]


def _admin_email_schemas():
    for chart in ("woocommerce", "medusa"):
        schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
        yield chart, schema["properties"]["store"]["properties"]["adminEmail"]


def test_both_charts_use_the_platforms_pattern_verbatim():
    assert {chart: s["pattern"] for chart, s in _admin_email_schemas()} == {
        "woocommerce": ACCOUNT_EMAIL_PATTERN,
        "medusa": ACCOUNT_EMAIL_PATTERN,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("email", "accepted"), TABLE)
def test_form_service_and_charts_agree(email, accepted):
    form = SignupForm({"email": email, "password": PASSWORD, "organisation": "Shop"})
    assert form.is_valid() is accepted, form.errors

    for chart, schema in _admin_email_schemas():
        valid = jsonschema.Draft7Validator(schema).is_valid(email.lower())
        # Never stricter than the platform (that breaks stores); the quote rule is the same on both.
        if accepted or "'" in email or '"' in email:
            assert valid is accepted, chart

    if accepted:
        assert user_signup(email=email, password=PASSWORD, organisation="Shop").email == email.lower()
    else:
        with pytest.raises(EmailInvalid):
            user_signup(email=email, password=PASSWORD, organisation="Shop")


@pytest.mark.django_db
def test_a_quote_is_refused_with_a_reason_a_person_can_act_on(client):
    response = client.post(
        "/signup/", {"email": "o'brien@example.com", "password": PASSWORD, "organisation": "X"}
    )
    assert response.status_code == 400
    assert "quote characters" in response.content.decode().replace("&#x27;", "'")
    with pytest.raises(EmailInvalid) as refused:
        user_signup(email="o'brien@example.com", password=PASSWORD, organisation="X")
    assert "quote characters" in refused.value.message and refused.value.fields["email"]
