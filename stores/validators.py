"""The one store-name validator, shared by the form, the API, the admin and the services.

A store name becomes a namespace (`store-<name>`), a host label (`<name>.<domain>`) and a helm
release name, so it must be a lowercase RFC 1123 label short enough for all three.
"""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

STORE_NAME_MIN_LENGTH = 3
# `store-` + 57 = 63, the longest Kubernetes namespace and DNS label.
STORE_NAME_MAX_LENGTH = 57
NAMESPACE_PREFIX = "store-"
HELM_RELEASE_NAME_MAX_LENGTH = 53

RESERVED_STORE_NAMES = frozenset(
    {
        "www", "api", "admin", "app", "apps", "static", "media", "assets", "cdn", "mail", "email", "smtp",
        "imap", "pop", "pop3", "mx", "ns", "ns1", "ns2", "dns", "ftp", "sftp", "ssh", "vpn", "status",
        "docs", "help", "support", "auth", "login", "logout", "signup", "register", "account", "accounts",
        "billing", "default", "platform", "system", "root", "console", "portal", "store",
        "stores", "new", "blog", "webmail", "metrics", "grafana", "prometheus", "ingress", "traefik",
        "localhost", "healthz", "readyz", "internal", "test", "demo-platform",
    }
)  # fmt: skip
RESERVED_STORE_NAME_PREFIXES = ("kube-", "kubernetes", "system-", "ingress-", "cert-manager", "openshift")

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _reason_store_name_is_invalid(name: object) -> str | None:
    """Return a plain-words reason why `name` cannot be a store name, or None when it can."""
    if not isinstance(name, str):
        return "Store name must be text."
    if name == "":
        return "Store name is required."
    if any(ch.isspace() for ch in name):
        return "Store name cannot contain spaces or other whitespace."
    if any(unicodedata.category(ch) == "Cc" or unicodedata.category(ch) == "Cf" for ch in name):
        return "Store name cannot contain control or invisible characters."
    if not name.isascii():
        return (
            "Store name can only use the letters a-z, digits and hyphens (no accents or look-alike letters)."
        )
    if name != name.lower():
        return "Store name must be lowercase."
    if len(name) < STORE_NAME_MIN_LENGTH:
        return f"Store name must be at least {STORE_NAME_MIN_LENGTH} characters long."
    if len(name) > STORE_NAME_MAX_LENGTH:
        return f"Store name must be at most {STORE_NAME_MAX_LENGTH} characters long (it has {len(name)})."
    if "_" in name or "." in name:
        return "Store name cannot contain underscores or dots; use hyphens instead."
    if name.startswith("-") or name.endswith("-"):
        return "Store name must start and end with a letter or digit, not a hyphen."
    if not _LABEL.match(name):
        return "Store name can only use the letters a-z, digits and hyphens."
    if name[2:4] == "--":
        # Labels with "--" at positions 3-4 are reserved for IDNA (xn--) and future encodings.
        return "Store name cannot have two hyphens as its third and fourth characters (like xn--)."
    if (
        name in RESERVED_STORE_NAMES
        or name.startswith(RESERVED_STORE_NAME_PREFIXES)
        or name == dashboard_store_label()
    ):
        return f"“{name}” is reserved by the platform."
    return None


def dashboard_store_label() -> str | None:
    """The store name that would shadow the dashboard's own host: `dashboard` for the default
    dashboard.<domain>, whatever ingress.subdomain the chart was given otherwise (DASHBOARD_HOST)."""
    host = settings.DASHBOARD_HOST.lower().rstrip(".")
    suffix = f".{settings.STORE_BASE_DOMAIN.lower()}"
    if host.endswith(suffix) and "." not in host[: -len(suffix)]:
        return host[: -len(suffix)]
    return None


def suggest_store_name(raw: object) -> str:
    """Turn anything a person typed into the closest valid store name."""
    text = raw if isinstance(raw, str) else str(raw)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)[:STORE_NAME_MAX_LENGTH].strip("-")
    if len(slug) < STORE_NAME_MIN_LENGTH:
        slug = f"{slug}-shop".strip("-") if slug else "my-shop"
    if slug[2:4] == "--":
        slug = slug[:2] + slug[4:]
    if _reason_store_name_is_invalid(slug) is not None:
        slug = f"{slug[: STORE_NAME_MAX_LENGTH - 5]}-shop".strip("-")
        if slug.startswith(RESERVED_STORE_NAME_PREFIXES):
            slug = f"my-{slug}"[:STORE_NAME_MAX_LENGTH].strip("-")
    return slug if _reason_store_name_is_invalid(slug) is None else "my-shop"


def validate_store_name(name: object) -> None:
    """Raise ValidationError saying exactly what is wrong with `name` and suggesting a valid one."""
    reason = _reason_store_name_is_invalid(name)
    if reason is not None:
        suggestion = suggest_store_name(name)
        raise ValidationError(
            f"{reason} Try “{suggestion}”.", code="invalid_store_name", params={"suggestion": suggestion}
        )


def namespace_for_store(name: str) -> str:
    """The Kubernetes namespace that holds exactly one store."""
    return f"{NAMESPACE_PREFIX}{name}"


def release_name_for_store(name: str) -> str:
    """The helm release name: helm caps release names at 53 characters; it is unique per namespace."""
    return name[:HELM_RELEASE_NAME_MAX_LENGTH].rstrip("-")


def host_for_store(name: str, base_domain: str) -> str:
    """The public host of a store."""
    return f"{name}.{base_domain}"


# The one rule for an account's e-mail, used by the signup form, `user_signup` and, verbatim, by both
# store charts' values.schema.json `adminEmail` pattern: an account's e-mail becomes the admin e-mail of
# each store it launches, so an address the charts refuse would break every one of them. Quote
# characters are refused because the store setup hands the address to wp-cli and Medusa's scripts.
ACCOUNT_EMAIL_PATTERN = "^[^@\\s'\"]+@[^@\\s'\"]+\\.[^@\\s'\"]+$"
ACCOUNT_EMAIL_MAX_LENGTH = 150
_ACCOUNT_EMAIL = re.compile(ACCOUNT_EMAIL_PATTERN)
_django_email = EmailValidator()


def validate_account_email(email: object) -> None:
    """Raise ValidationError saying why `email` cannot be an account's (and so a store admin's) e-mail."""
    if not isinstance(email, str) or not email.strip():
        raise ValidationError("Enter your email address.", code="invalid_email")
    if len(email) > ACCOUNT_EMAIL_MAX_LENGTH:
        raise ValidationError(
            f"Email addresses can be at most {ACCOUNT_EMAIL_MAX_LENGTH} characters long.",
            code="invalid_email",
        )
    if "'" in email or '"' in email:
        raise ValidationError(
            "Email addresses with quote characters (' or \") cannot be used here: your address becomes "
            "the admin login of your stores. Please use another address.",
            code="invalid_email",
        )
    _django_email(email)
    if not _ACCOUNT_EMAIL.match(email):
        raise ValidationError("Enter a valid email address.", code="invalid_email")
