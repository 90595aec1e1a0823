"""Where a webhook may be sent, and the one HTTP POST that sends it.

A partner-supplied URL is a request the platform makes from inside its network, so every address the
host resolves to is checked (loopback, link-local, private, the cluster's own ranges, anything not
publicly routable) unless staff allowed its range in WEBHOOK_ALLOWED_TARGET_CIDRS. The check runs when
the endpoint is saved and again before every attempt, and the POST connects to the very address that
passed, so a DNS answer that changes in between (rebinding) cannot redirect it. Redirects are never
followed; connect and read have their own timeouts.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

from platform_site.errors import ApplicationError
from provisioning.redaction import redact

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]
# What a receiver said is kept only as far as a person needs to see why it refused.
RESPONSE_EXCERPT_BYTES = 1000


class WebhookTargetRefused(ApplicationError):
    """The URL is not one the platform will send to; the message says which rule refused it."""

    code = "webhook_target_refused"
    http_status = 400


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL: its parts and the one resolved address the POST connects to."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class PostResult:
    """What one POST got: a status code, or an error when no response came; always a duration."""

    status_code: int | None
    duration_ms: int
    error: str = ""
    response_excerpt: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _networks(cidrs: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def address_refusal(address: IPAddress) -> str:
    """Why `address` may not receive webhooks, in plain words ("" when it may)."""
    # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address inside.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in _networks(settings.WEBHOOK_ALLOWED_TARGET_CIDRS)):
        return ""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if any(address in network for network in _networks(settings.STORE_CLUSTER_CIDRS)):
        return "inside the cluster's own address ranges"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a publicly routable address"
    return ""


def webhook_target_parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-and-query) of an http(s) URL without credentials; refused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookTargetRefused(f"This is not a valid URL: {exc}.") from exc
    if parts.scheme not in {"http", "https"}:
        raise WebhookTargetRefused("Webhook URLs must start with https:// or http://.")
    if not parts.hostname:
        raise WebhookTargetRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused(
            "Put credentials in your receiver, not in the URL; the URL is shown in logs."
        )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def webhook_target_resolve(url: str, *, resolver: Resolver | None = None) -> WebhookTarget:
    """Check `url` and every address its host resolves to; the target to connect to, or
    WebhookTargetRefused naming the rule."""
    scheme, host, port, path = webhook_target_parse(url)
    try:
        answers = (resolver or socket.getaddrinfo)(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookTargetRefused(f"The host {host} cannot be resolved ({exc}).") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(answer[4][0].split("%")[0]) for answer in answers))
    if not addresses:
        raise WebhookTargetRefused(f"The host {host} has no address.")
    # Every answer must pass: a name that also resolves inward could be steered to that answer.
    for address in addresses:
        refusal = address_refusal(address)
        if refusal:
            raise WebhookTargetRefused(
                f"{host} resolves to {address}, {refusal}; webhooks are not sent there."
            )
    return WebhookTarget(scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))


def webhook_post(*, target: WebhookTarget, headers: dict[str, str], body: bytes) -> PostResult:
    """POST `body` to the checked address once: no retries, no redirects, bounded connect and read."""
    timeout = urllib3.Timeout(
        connect=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS, read=settings.WEBHOOK_READ_TIMEOUT_SECONDS
    )
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:
        host_header = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        # Connect to the checked address but verify the certificate (and send SNI) for the URL's host.
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)
    started = time.monotonic()
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header, "User-Agent": "store-platform-webhooks/1"},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            excerpt = response.read(RESPONSE_EXCERPT_BYTES, decode_content=False)
        finally:
            response.release_conn()
        elapsed = int((time.monotonic() - started) * 1000)
        return PostResult(
            status_code=response.status,
            duration_ms=elapsed,
            error=_status_error(response.status, response.headers.get("Location", "")),
            response_excerpt=redact(excerpt.decode("utf-8", "replace")),
        )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return PostResult(status_code=None, duration_ms=elapsed, error=redact(_plain_error(exc)))
    finally:
        pool.close()


def _status_error(status: int, location: str) -> str:
    if 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        return f"Answered {status} (a redirect to {location or 'nowhere'}); redirects are not followed."
    return f"Answered {status}; only 2xx counts as delivered."


def _plain_error(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"No connection within {settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS} s."
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"No answer within {settings.WEBHOOK_READ_TIMEOUT_SECONDS} s."
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"Connection refused or unreachable: {exc}"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS failed: {exc}"
    return f"{type(exc).__name__}: {exc}"
