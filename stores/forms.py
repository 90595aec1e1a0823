"""Merchant forms. They parse and check input; the services do the writing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import password_validators_help_texts, validate_password
from django.core.exceptions import ValidationError

from platform_site.errors import ApplicationError
from stores.choices import WebhookEventType
from stores.engines import engine_choices
from stores.models import Store
from stores.validators import STORE_NAME_MAX_LENGTH, validate_account_email


def apply_application_error(form: forms.Form, exc: ApplicationError) -> None:
    """Put a service error on the form: per-field messages where the service named fields."""
    placed = False
    for field, messages in exc.fields.items():
        if field in form.fields:
            for message in messages:
                form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


class SignupForm(forms.Form):
    email = forms.EmailField(
        label="Work email", max_length=150, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; not only digits and not a common password.",
    )
    organisation = forms.CharField(
        label="Organisation name",
        max_length=120,
        help_text="Your company or shop brand. You can run several stores under it.",
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        validate_account_email(email)  # the rule the service and the store charts apply too
        return email

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        password, email = cleaned.get("password"), cleaned.get("email")
        if password:
            # The validators compare the password with the would-be user's attributes.
            candidate = get_user_model()(username=email or "", email=email or "")
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned

    @staticmethod
    def password_rules() -> list[str]:
        return password_validators_help_texts()


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, labelled for people who sign up with an email address."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "inputmode": "email"})

    def clean_username(self) -> str:
        # Accounts are created with a lowercased email as username.
        return (self.cleaned_data.get("username") or "").strip().lower()


class StoreLaunchForm(forms.Form):
    """Parses the launch request. The name is checked once, by store_create, whose errors the view
    puts back on this form; the live check beside the field asks store_create_check."""

    name = forms.CharField(
        label="Store name",
        # Not required and no max_length here: the shared validator's messages explain an empty or an
        # over-long name better than Django's generic ones.
        required=False,
        strip=True,
        help_text="Lowercase letters, digits and hyphens. It becomes your store's web address.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "none",
                "spellcheck": "false",
                "maxlength": STORE_NAME_MAX_LENGTH + 20,
            }
        ),
    )
    engine = forms.ChoiceField(label="Engine", choices=engine_choices, widget=forms.RadioSelect)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and "engine" not in self.initial:
            self.initial["engine"] = engine_choices()[0][0]


class DeleteStoreForm(forms.Form):
    confirm_name = forms.CharField(label="Type the store name to confirm", strip=True)

    def __init__(self, *args: Any, store: Store, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = store
        self.fields["confirm_name"].widget.attrs.update(
            {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        )

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"]
        if typed != self.store.name:
            raise ValidationError(f"That does not match. Type “{self.store.name}” exactly to delete it.")
        return typed


class BackupRestoreForm(forms.Form):
    """Restore a backup: only parsed here; stores.backups.backup_restore judges the confirmation, the
    target and the backup, with the same words as the API."""

    target_store = forms.CharField(label="Restore into", max_length=63, required=False, strip=True)
    confirm_name = forms.CharField(label="Type the target store's name to confirm", max_length=63, strip=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["confirm_name"].widget.attrs.update(
            {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        )


class BackupNewStoreForm(forms.Form):
    """Create a store from a backup: only parsed here; stores.lifecycle.store_create_from_backup
    judges the name and the backup, with the same words as the API."""

    name = forms.CharField(label="New store's name", max_length=63, strip=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs.update(
            {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        )


class DomainAddForm(forms.Form):
    # Only parsed here: stores.domains.domain_normalize judges it, with the same words as the API.
    domain = forms.CharField(
        label="Domain",
        max_length=300,
        strip=True,
        help_text="A domain you own, e.g. shop.example.com or example.com.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["domain"].widget.attrs.update(
            {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false", "inputmode": "url"}
        )


class WebhookEndpointForm(forms.Form):
    """Add a webhook endpoint; the service checks the URL (SSRF guard) and the event names."""

    url = forms.CharField(
        label="Endpoint URL",
        max_length=2000,
        strip=False,
        widget=forms.URLInput(
            attrs={"placeholder": "https://example.com/webhooks/stores", "inputmode": "url"}
        ),
        help_text="We POST signed JSON here. It must be reachable from the internet.",
    )
    description = forms.CharField(label="Description", max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=WebhookEventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )
