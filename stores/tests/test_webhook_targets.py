"""The SSRF guard: every forbidden class of webhook target is refused, unless staff allowed its range."""

from __future__ import annotations

import socket

import pytest

from stores.webhook_targets import WebhookTargetRefused, webhook_target_resolve


def resolving_to(*addresses: str):
    """A getaddrinfo stand-in: the host resolves to exactly these addresses."""

    def resolve(host, port, type=0):
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in address], socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    return resolve


@pytest.fixture(autouse=True)
def cluster_and_allowed_ranges(settings):
    # 34.118.224.0/20 is publicly routable: only the cluster rule can refuse it (a GKE-style service
    # range); nothing is staff-allowed unless a test says so.
    settings.STORE_CLUSTER_CIDRS = ["34.118.224.0/20", "10.0.0.0/8"]
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = []


@pytest.mark.parametrize(
    ("url", "addresses", "words"),
    [
        ("http://127.0.0.1/hook", None, "loopback"),
        ("http://127.8.9.10:8080/hook", None, "loopback"),
        ("http://[::1]/hook", None, "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", None, "loopback"),  # IPv4-mapped IPv6
        ("http://2130706433/hook", None, "loopback"),  # 127.0.0.1 as one decimal number
        ("http://localhost:9000/hook", None, "loopback"),  # a name, resolved for real
        ("http://169.254.169.254/latest/meta-data/", None, "link-local"),  # cloud metadata
        ("http://[fe80::1]/hook", None, "link-local"),
        ("http://10.96.0.1/hook", None, "cluster"),
        ("http://34.118.230.5/hook", None, "cluster"),
        ("http://172.16.4.2/hook", None, "private"),
        ("http://192.168.1.1/hook", None, "private"),
        ("http://[fd00::5]/hook", None, "private"),  # unique local IPv6
        ("http://0.0.0.0/hook", None, "unspecified"),
        ("http://224.0.0.1/hook", None, "multicast"),
        ("http://100.64.0.7/hook", None, "not a publicly routable"),  # carrier-grade NAT
        ("http://240.0.0.1/hook", None, "reserved"),
        ("https://inward.example/hook", ("10.1.2.3",), "cluster"),  # a name pointing inward
        # One inward answer among public ones is enough: a client could be steered to it.
        ("https://mixed.example/hook", ("93.184.215.14", "192.168.0.9"), "private"),
    ],
)
def test_forbidden_targets_are_refused_in_plain_words(url, addresses, words):
    resolver = resolving_to(*addresses) if addresses else None
    with pytest.raises(WebhookTargetRefused, match=words) as refused:
        webhook_target_resolve(url, resolver=resolver)
    assert "webhooks are not sent there" in refused.value.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/hook", "https:// or http://"),
        ("file:///etc/passwd", "https:// or http://"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https:///hook", "no host"),
        ("https://example.com:99999/hook", "not a valid URL"),
        ("https://no-such-host.invalid/hook", "cannot be resolved"),
    ],
)
def test_malformed_urls_are_refused(url, words):
    with pytest.raises(WebhookTargetRefused, match=words):
        webhook_target_resolve(url)


def test_a_public_address_is_accepted_and_pinned():
    target = webhook_target_resolve("https://hooks.example/in?x=1", resolver=resolving_to("93.184.215.14"))
    assert (target.scheme, target.host, target.port, target.path, target.address) == (
        "https",
        "hooks.example",
        443,
        "/in?x=1",
        "93.184.215.14",
    )
    # Just outside the configured cluster range is public again.
    assert webhook_target_resolve("http://34.118.240.1/").address == "34.118.240.1"


def test_a_staff_allowed_range_permits_what_the_guard_would_refuse(settings):
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = ["127.0.0.0/8", "10.20.0.0/16"]
    assert webhook_target_resolve("http://127.0.0.1:8000/hook").address == "127.0.0.1"
    assert webhook_target_resolve("http://10.20.1.1/hook").address == "10.20.1.1"
    # Only the allowed ranges: the rest of the cluster range stays refused.
    with pytest.raises(WebhookTargetRefused, match="cluster"):
        webhook_target_resolve("http://10.21.0.1/hook")
