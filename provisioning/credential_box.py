"""Cluster credentials at rest: a kubeconfig is stored only sealed (Fernet: AES-128-CBC with an
HMAC-SHA256, from the `cryptography` package), never in plain text in the database or a log.

The key is CLUSTER_CREDENTIALS_KEY (a Fernet key). Without one, local development derives a key
from SECRET_KEY, so `make run` works with nothing configured; production mode refuses to seal or
open anything without an explicit key, because rotating SECRET_KEY must never lock the platform
out of its clusters.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from platform_site.errors import ApplicationError


class SealedCredentialsUnreadable(ApplicationError):
    """Stored credentials cannot be opened with the configured key (it changed, or they were altered)."""

    code = "cluster_credentials_unreadable"
    http_status = 503


def _fernet() -> Fernet:
    key = settings.CLUSTER_CREDENTIALS_KEY
    if key:
        return Fernet(key.encode())
    if settings.PLATFORM_ENV == "prod":
        raise ImproperlyConfigured(
            "CLUSTER_CREDENTIALS_KEY is required in production to store cluster credentials; generate one "
            "with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cluster-credentials").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(plain: str) -> str:
    """The text, encrypted and authenticated, as a string safe to store."""
    return _fernet().encrypt(plain.encode()).decode()


def unseal(sealed: str) -> str:
    """The text `seal` was given; SealedCredentialsUnreadable if the key does not open it."""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise SealedCredentialsUnreadable(
            "The cluster's stored credentials cannot be opened with CLUSTER_CREDENTIALS_KEY; "
            "paste its kubeconfig again in the admin."
        ) from exc
