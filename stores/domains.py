"""A store's custom domains: validation, ownership proof over DNS, the status writer, routing.

A domain is routed (put in the store's helm values: Ingress host, TLS, a cert-manager Certificate) only
after a TXT record `_<prefix>.<domain>` holding its token has been seen by a real resolver. The one
writer of `StoreDomain.status` is `domain_transition` (conditional UPDATE plus an event row).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dns.exception
import dns.nameserver
import dns.resolver
from confusable_homoglyphs import confusables
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from provisioning.certificates import CertificatesNotServed, read_certificates
from provisioning.choices import RunKind, RunStatus
from provisioning.cluster_access import ClusterAccess, ClusterNotConfigured
from provisioning.models import ProvisioningRun
from stores.choices import (
    STORE_RUNNING_STATUSES,
    DomainStatus,
    StoreStatus,
)
from stores.domain_transitions import domain_transition
from stores.exceptions import DomainInvalid, DomainTaken, InvalidDomainState, InvalidStoreState
from stores.lifecycle import store_reconfigure
from stores.models import Store, StoreDomain, StoreDomainEvent

logger = logging.getLogger(__name__)

DOMAIN_MAX_LENGTH = 253
# A merchant adds a shop and perhaps its apex; more is a support conversation, not a form.
DOMAINS_PER_STORE = 5
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_EXAMPLE = "shop.example.com"


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------


def _platform_hosts() -> set[str]:
    """Hosts a merchant may never claim: the base domain (and so every store host under it), the
    dashboard, the ingress CNAME target and any configured extra."""
    hosts = {
        settings.STORE_BASE_DOMAIN,
        settings.DASHBOARD_HOST,
        settings.DOMAIN_INGRESS_CNAME_TARGET,
        *settings.DOMAIN_RESERVED_HOSTS,
    }
    return {host.strip().rstrip(".").lower() for host in hosts if host.strip()}


def _under(name: str, host: str) -> bool:
    return name == host or name.endswith("." + host)


def _skeleton(text: str) -> str:
    """What `text` looks like in ASCII: each character that Unicode's confusables table says resembles
    a Latin one becomes that letter, accents dropped. Only for comparison, never stored."""
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        if ch.isascii():
            out.append(ch)
            continue
        found = confusables.is_confusable(ch, greedy=True, preferred_aliases=["latin"]) or []
        ascii_glyphs = [g["c"] for hit in found for g in hit["homoglyphs"] if g["c"].isascii()]
        if ascii_glyphs:
            out.append(ascii_glyphs[0].lower())
            continue
        stripped = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(stripped.lower() if stripped.isascii() else ch)
    return "".join(out)


def _to_ascii_label(label: str) -> tuple[str, str]:
    """(ASCII, Unicode) forms of one label; DomainInvalid when it is not a valid IDN label."""
    try:
        if label.isascii():
            unicode_label = label.encode("ascii").decode("idna") if label.startswith("xn--") else label
            return label, unicode_label
        return label.encode("idna").decode("ascii"), label
    except UnicodeError as error:
        raise DomainInvalid(f"“{label}” is not a valid internationalised domain label.") from error


def domain_normalize(raw: object) -> str:
    """The ASCII, lower-case form of a merchant's domain, or DomainInvalid saying why it is refused."""
    if not isinstance(raw, str):
        raise DomainInvalid("A domain must be text.")
    name = raw.strip().lower()
    if not name:
        raise DomainInvalid(f"Enter a domain, e.g. {_EXAMPLE}.")
    # An IP first: an IPv6 address would otherwise read as a host with a port.
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise DomainInvalid("An IP address is not a domain; enter the domain name that points to the store.")
    if "*" in name:
        raise DomainInvalid("Wildcard domains are not supported; add each domain on its own.")
    if any(mark in name for mark in ("://", "/", "@", ":")):
        raise DomainInvalid(f"Enter only the domain name, e.g. {_EXAMPLE}, without a scheme, port or path.")
    if any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf"} for ch in name):
        raise DomainInvalid("A domain cannot contain spaces, control or invisible characters.")
    name = name.rstrip(".")
    labels = name.split(".")
    if len(labels) < 2 or any(label == "" for label in labels):
        raise DomainInvalid(f"“{raw.strip()}” is not a full domain name; enter one like {_EXAMPLE}.")
    pairs = [_to_ascii_label(label) for label in labels]
    ascii_name = ".".join(ascii_label for ascii_label, _ in pairs)
    unicode_name = ".".join(unicode_label for _, unicode_label in pairs)
    for ascii_label, _ in pairs:
        if not _LABEL.match(ascii_label):
            raise DomainInvalid(
                f"“{ascii_label}” is not a valid domain label: letters, digits and inner hyphens only, "
                "at most 63 characters."
            )
    if len(ascii_name) > DOMAIN_MAX_LENGTH:
        raise DomainInvalid(f"A domain is at most {DOMAIN_MAX_LENGTH} characters long.")
    if labels[-1].isdigit():
        raise DomainInvalid(f"“{raw.strip()}” has no valid top-level domain.")
    for host in _platform_hosts():
        if _under(ascii_name, host):
            raise DomainInvalid(
                f"{ascii_name} belongs to the platform ({host}); every store already has its own address "
                "there. Add a domain you own instead."
            )
    if unicode_name != ascii_name:
        skeleton = _skeleton(unicode_name)
        for host in _platform_hosts():
            if _under(skeleton, host):
                raise DomainInvalid(
                    f"{unicode_name} ({ascii_name}) looks like the platform's own {host} and is refused "
                    "to protect shoppers from look-alike addresses."
                )
    return ascii_name


# ---------------------------------------------------------------------------------------------------
# What the merchant must create
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsRecord:
    """One record the merchant creates at their DNS provider, exactly as it must read."""

    type: str
    name: str
    value: str
    note: str = ""


def domain_verification_name(domain: str) -> str:
    """The TXT record's name: `_<prefix>.<domain>`."""
    return f"_{settings.DOMAIN_VERIFICATION_PREFIX}.{domain}"


def domain_required_records(domain: StoreDomain) -> list[DnsRecord]:
    """The TXT record proving ownership and the record that sends traffic to the platform's ingress."""
    records = [
        DnsRecord(
            "TXT", domain_verification_name(domain.domain), domain.token, "Proves you control the domain."
        ),
        DnsRecord(
            "CNAME",
            domain.domain,
            settings.DOMAIN_INGRESS_CNAME_TARGET,
            "Sends shoppers to the store (for a subdomain such as www or shop).",
        ),
    ]
    for address in settings.DOMAIN_INGRESS_ADDRESSES:
        kind = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
        records.append(
            DnsRecord(kind, domain.domain, address, "For an apex domain, which cannot have a CNAME.")
        )
    return records


# ---------------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------------


def domain_add(*, store: Store, domain: object, actor: Any = None) -> StoreDomain:
    """Attach a domain to a store, pending verification. DomainInvalid or DomainTaken say why not."""
    name = domain_normalize(domain)
    if store.status not in {*STORE_RUNNING_STATUSES, StoreStatus.REQUESTED, StoreStatus.PROVISIONING}:
        raise InvalidStoreState(f"Domains can be added to a live store; this one is {store.status}.")
    claim = (
        StoreDomain.objects.filter(domain=name).exclude(status=DomainStatus.REMOVED).select_related("store")
    )
    existing = claim.first()
    if existing is not None:
        raise _taken(existing, store, name)
    live = StoreDomain.objects.filter(store=store).exclude(status=DomainStatus.REMOVED).count()
    if live >= DOMAINS_PER_STORE:
        raise DomainInvalid(f"A store can have at most {DOMAINS_PER_STORE} domains; remove one first.")
    try:
        with transaction.atomic():
            row = StoreDomain.objects.create(
                store=store,
                domain=name,
                token=secrets.token_urlsafe(24),
                created_by=actor if getattr(actor, "pk", None) else None,
                next_check_at=timezone.now(),
            )
            StoreDomainEvent.objects.create(
                domain=row,
                new_status=DomainStatus.PENDING_VERIFICATION,
                reason="Domain added; waiting for its TXT record.",
                actor=actor if getattr(actor, "pk", None) else None,
            )
    except IntegrityError as error:
        # Lost a race with another add of the same name: the constraint, not the check above, decides.
        winner = claim.first()
        if winner is None:
            raise
        raise _taken(winner, store, name) from error
    return row


def _taken(existing: StoreDomain, store: Store, name: str) -> DomainTaken:
    if existing.store.tenant_id != store.tenant_id:
        return DomainTaken(f"{name} is already claimed by another account.")
    if existing.store_id == store.pk:
        return DomainTaken(f"{name} is already added to this store.")
    return DomainTaken(f"{name} is already added to your store {existing.store.name}; remove it there first.")


class DnsUnavailable(Exception):
    """No nameserver answered in time: say so and check again later; this proves nothing either way."""


def _resolver() -> dns.resolver.Resolver:
    configured = [entry.strip() for entry in settings.DOMAIN_DNS_NAMESERVERS if entry.strip()]
    resolver = dns.resolver.Resolver(configure=not configured)
    if configured:
        resolver.nameservers = [_nameserver(entry) for entry in configured]
    resolver.lifetime = settings.DOMAIN_DNS_LIFETIME_SECONDS
    # A cached "not there yet" would hide a record the merchant has just created.
    resolver.cache = None
    return resolver


def _nameserver(entry: str) -> dns.nameserver.Nameserver:
    """ "ip", "ip:port", "[v6]:port" or a bare v6 address."""
    if entry.startswith("["):
        host, _, port = entry[1:].partition("]:")
        return dns.nameserver.Do53Nameserver(host.rstrip("]"), int(port or 53))
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return dns.nameserver.Do53Nameserver(host, int(port))
    return dns.nameserver.Do53Nameserver(entry, 53)


def dns_txt_values(name: str) -> list[str]:
    """The TXT strings at `name` (empty when the name or record does not exist); DnsUnavailable when
    no nameserver answered."""
    try:
        answer = _resolver().resolve(name, "TXT", search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
        raise DnsUnavailable(str(error)) from error
    values = []
    for rdata in answer.rrset or []:
        values.append(b"".join(rdata.strings).decode("utf-8", errors="replace"))
    return values


def _backoff(attempts: int) -> timedelta:
    first, cap = settings.DOMAIN_RECHECK_FIRST_SECONDS, settings.DOMAIN_RECHECK_MAX_SECONDS
    return timedelta(seconds=min(cap, first * 2 ** min(attempts, 20)))


def domain_check(*, domain_id: int, actor: Any = None, now: datetime | None = None) -> StoreDomain:
    """Look the domain's TXT record up now. Found: verified, and the store is re-installed to route it.
    Not found: still pending, with what was seen, and the next check backed off; failed past the
    deadline. A failed domain checked by a person starts over."""
    now = now or timezone.now()
    row = StoreDomain.objects.select_related("store").get(pk=domain_id)
    if row.status == DomainStatus.FAILED and actor is not None:
        domain_transition(
            domain_id=row.pk,
            to=DomainStatus.PENDING_VERIFICATION,
            reason="Checking again, as asked.",
            actor=actor,
            only_from=[DomainStatus.FAILED],
            fields={"check_attempts": 0, "next_check_at": now},
        )
        row.refresh_from_db()
    if row.status != DomainStatus.PENDING_VERIFICATION:
        if row.status == DomainStatus.REMOVED or row.status == DomainStatus.FAILED:
            raise InvalidDomainState(f"{row.domain} is {row.get_status_display().lower()}; nothing to check.")
        return row
    record = domain_verification_name(row.domain)
    try:
        values = dns_txt_values(record)
    except DnsUnavailable as error:
        reason = f"No nameserver answered for {record} ({error}); checking again later."
    else:
        if row.token in values:
            domain_transition(
                domain_id=row.pk,
                to=DomainStatus.VERIFIED,
                reason=f"Ownership proven: TXT {record} holds the token.",
                actor=actor,
                actor_label="" if actor else "domain check",
                only_from=[DomainStatus.PENDING_VERIFICATION],
                fields={"verified_at": now, "last_checked_at": now, "next_check_at": None},
            )
            domain_route(domain_id=row.pk)
            row.refresh_from_db()
            return row
        if values:
            shown = ", ".join(f"“{value[:80]}”" for value in values[:3])
            reason = f"TXT {record} holds {shown}, not this domain's token; set it to the token shown."
        else:
            reason = f"No TXT record {record} found yet; create it with the token shown."
    if now - row.created_at >= timedelta(seconds=settings.DOMAIN_VERIFY_DEADLINE_SECONDS) and not actor:
        domain_transition(
            domain_id=row.pk,
            to=DomainStatus.FAILED,
            reason=f"Not verified in time: {reason} Press “Check now” once the record exists.",
            actor_label="domain check",
            only_from=[DomainStatus.PENDING_VERIFICATION],
            fields={"last_checked_at": now, "next_check_at": None},
        )
    else:
        # Not a status change, so no event row: only what the last look saw and when to look again.
        StoreDomain.objects.filter(pk=row.pk, status=DomainStatus.PENDING_VERIFICATION).update(
            status_reason=reason,
            last_checked_at=now,
            check_attempts=F("check_attempts") + 1,
            next_check_at=now + _backoff(row.check_attempts),
        )
    row.refresh_from_db()
    return row


def domain_route(*, domain_id: int) -> None:
    """Bring a verified domain's route into the cluster: once an install that started after the
    verification has succeeded the domain is issuing; otherwise ask for that install (a no-op while
    the store is busy; the periodic pass asks again)."""
    row = StoreDomain.objects.select_related("store").get(pk=domain_id)
    if row.status != DomainStatus.VERIFIED or row.verified_at is None:
        return
    installed = ProvisioningRun.objects.filter(
        store_id=row.store_id,
        kind=RunKind.PROVISION,
        status=RunStatus.SUCCEEDED,
        started_at__gte=row.verified_at,
    ).exists()
    if installed:
        domain_transition(
            domain_id=row.pk,
            to=DomainStatus.ISSUING,
            reason="Routed to the store; the certificate is being issued.",
            actor_label="domain check",
            only_from=[DomainStatus.VERIFIED],
        )
        return
    store_reconfigure(
        store_id=row.store_id,
        reason=f"Routing the verified domain {row.domain}.",
        actor_label="domains",
    )


def domain_remove(*, domain: StoreDomain, actor: Any = None) -> StoreDomain:
    """Remove a domain: the name is free again, and a routed one leaves the Ingress and its
    Certificate with the next install, which is asked for now."""
    if (
        not domain_transition(domain_id=domain.pk, to=DomainStatus.REMOVED, reason="Removed.", actor=actor)
        and not StoreDomain.objects.filter(pk=domain.pk, status=DomainStatus.REMOVED).exists()
    ):
        raise InvalidDomainState(f"{domain.domain} cannot be removed now.")
    # Read after the move: proven once means it may be in the Ingress. If the store is busy now, the
    # periodic pass asks again (domains_unroute_removed).
    if StoreDomain.objects.filter(pk=domain.pk, verified_at__isnull=False).exists():
        store_reconfigure(
            store_id=domain.store_id, reason=f"Unrouting the removed domain {domain.domain}.", actor=actor
        )
    domain.refresh_from_db()
    return domain


def _reconfigure_or_refuse(*, store_id: int, reason: str, actor: Any) -> None:
    """Ask for the install that applies a primary-domain change, or refuse the change (the caller's
    transaction rolls back): a store busy installing would otherwise keep the old address unnoticed."""
    if not store_reconfigure(store_id=store_id, reason=reason, actor=actor):
        status = Store.objects.filter(pk=store_id).values_list("status", flat=True).first()
        raise InvalidStoreState(
            f"The store is {StoreStatus(status).label.lower() if status else 'gone'}; "
            "change its primary domain once it is ready."
        )


def domain_set_primary(*, domain: StoreDomain, actor: Any = None) -> StoreDomain:
    """Make an active domain the address the shop calls itself by (WordPress's home URL, Medusa's
    public URL), replacing any other primary, and re-install the store to apply it. Only an active
    domain qualifies: the shop must never send shoppers to a host without a certificate."""
    with transaction.atomic():
        # The store's row serialises primary changes of one store; the conditional UPDATEs below decide
        # on the domain's status as stored now, not as read by the caller.
        Store.objects.select_for_update().filter(pk=domain.store_id).values_list("pk", flat=True).first()
        if not StoreDomain.objects.filter(pk=domain.pk, is_primary=True, status=DomainStatus.ACTIVE).exists():
            StoreDomain.objects.filter(store_id=domain.store_id, is_primary=True).exclude(
                pk=domain.pk
            ).update(is_primary=False)
            if (
                StoreDomain.objects.filter(pk=domain.pk, status=DomainStatus.ACTIVE).update(is_primary=True)
                == 0
            ):
                current = StoreDomain.objects.filter(pk=domain.pk).values_list("status", flat=True).first()
                label = DomainStatus(current).label.lower() if current else "removed"
                raise InvalidDomainState(
                    f"{domain.domain} is {label}; only an active domain (one with a certificate) can be "
                    "the primary domain, so shoppers are never sent to an address without HTTPS."
                )
            _reconfigure_or_refuse(
                store_id=domain.store_id, reason=f"Making {domain.domain} the primary domain.", actor=actor
            )
    domain.refresh_from_db()
    return domain


def domain_unset_primary(*, domain: StoreDomain, actor: Any = None) -> StoreDomain:
    """Stop using a domain as the primary: the shop calls itself by its platform host again. The
    domain stays routed. Re-installs the store only if the release used it (it was active)."""
    with transaction.atomic():
        Store.objects.select_for_update().filter(pk=domain.store_id).values_list("pk", flat=True).first()
        status = (
            StoreDomain.objects.filter(pk=domain.pk, is_primary=True).values_list("status", flat=True).first()
        )
        if status is not None:
            StoreDomain.objects.filter(pk=domain.pk).update(is_primary=False)
            if status == DomainStatus.ACTIVE:
                _reconfigure_or_refuse(
                    store_id=domain.store_id,
                    reason=f"{domain.domain} is no longer the primary domain; using the platform address.",
                    actor=actor,
                )
    domain.refresh_from_db()
    return domain


def domains_recheck_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """The periodic pass: check pending domains whose backoff has passed, and route verified ones whose
    store could not be re-installed earlier. Returns how many domains it looked at."""
    now = now or timezone.now()
    due = list(
        StoreDomain.objects.filter(status=DomainStatus.PENDING_VERIFICATION, next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", flat=True)[:limit]
    )
    for domain_id in due:
        domain_check(domain_id=domain_id, now=now)
    verified = list(
        StoreDomain.objects.filter(status=DomainStatus.VERIFIED).values_list("pk", flat=True)[:limit]
    )
    for domain_id in verified:
        domain_route(domain_id=domain_id)
    domains_unroute_removed()
    domains_reapply_stale_primaries()
    stores = list(
        StoreDomain.objects.filter(status__in=[DomainStatus.ISSUING, DomainStatus.ACTIVE])
        .values_list("store_id", flat=True)
        .distinct()[:limit]
    )
    for store_id in stores:
        try:
            domains_follow_certificates(store_id=store_id)
        except (ApiException, CertificatesNotServed, ClusterNotConfigured, HTTPError, OSError) as exc:
            # One unreachable cluster must not stop the pass; the next pass asks again.
            logger.warning("Certificates of store %s not read: %s", store_id, exc)
    return len(due) + len(verified) + len(stores)


def domains_follow_certificates(*, store_id: int, access: ClusterAccess | None = None) -> int:
    """Move the store's routed domains after their Certificates: Ready makes a domain active (with
    the expiry shown), a failed issuance makes it failed with cert-manager's words, and an active
    domain whose Certificate stopped being Ready without failing goes back to issuing. Returns how
    many domains moved. Renewals change only the expiry; they need nothing from us."""
    store = Store.objects.select_related("cluster").get(pk=store_id)
    followed = list(
        StoreDomain.objects.filter(store_id=store_id, status__in=[DomainStatus.ISSUING, DomainStatus.ACTIVE])
    )
    if not followed:
        return 0
    access = access or ClusterAccess.for_cluster(store.cluster)
    api = access.api_client_factory()
    try:
        states = {state.domain: state for state in read_certificates(api, namespace=store.namespace)}
    finally:
        api.close()
    moved = 0
    primary_moved = ""
    for domain in followed:
        state = states.get(domain.domain)
        if state is None:
            continue  # the install that renders it has not run yet
        if state.ready:
            if domain.status == DomainStatus.ISSUING:
                became_active = domain_transition(
                    domain_id=domain.pk,
                    to=DomainStatus.ACTIVE,
                    reason="The certificate is issued; the domain serves HTTPS.",
                    actor_label="cert-manager",
                    only_from=[DomainStatus.ISSUING],
                    fields={"certificate_not_after": state.not_after},
                )
                moved += became_active
                if became_active and domain.is_primary:
                    primary_moved = f"The primary domain {domain.domain} is active again; using it."
            elif state.not_after != domain.certificate_not_after:
                # A renewal: not a status change, so no event row.
                StoreDomain.objects.filter(pk=domain.pk).update(certificate_not_after=state.not_after)
        elif state.issuance_failed:
            failed = domain_transition(
                domain_id=domain.pk,
                to=DomainStatus.FAILED,
                reason=f"The certificate could not be issued ({state.reason}): {state.message} "
                "Check the domain's CNAME/A record, then press “Check now”.",
                actor_label="cert-manager",
                only_from=[DomainStatus.ISSUING, DomainStatus.ACTIVE],
            )
            moved += failed
            if failed and domain.is_primary and domain.status == DomainStatus.ACTIVE:
                primary_moved = f"The primary domain {domain.domain} failed; using the platform address until it is active."
        elif domain.status == DomainStatus.ACTIVE:
            # Neither Ready nor failed: cert-manager is issuing it again (its Secret was lost, its
            # spec changed). The domain says so until the certificate is Ready again.
            reissuing = domain_transition(
                domain_id=domain.pk,
                to=DomainStatus.ISSUING,
                reason=f"The certificate is being issued again ({state.reason or 'not ready'}): "
                f"{state.message or 'cert-manager reports it not ready.'}",
                actor_label="cert-manager",
                only_from=[DomainStatus.ACTIVE],
            )
            moved += reissuing
            if reissuing and domain.is_primary:
                primary_moved = (
                    f"The primary domain {domain.domain} has no valid certificate right now; using the "
                    "platform address until it is active again."
                )
    if primary_moved:
        # The values follow the primary's status (stores.selectors.store_primary_domain); the store's
        # URL changes only with an install. The merchant's choice stays, so it returns once active.
        store_reconfigure(store_id=store_id, reason=primary_moved, actor_label="domains")
    return moved


def _installed_since_its_status_moved() -> Exists:
    """For a StoreDomain query: a successful install of its store began after the domain's status
    last moved, so the store's release renders the domain as it is now."""
    return Exists(
        ProvisioningRun.objects.filter(
            store_id=OuterRef("store_id"),
            kind=RunKind.PROVISION,
            status=RunStatus.SUCCEEDED,
            started_at__gte=OuterRef("status_changed_at"),
        )
    )


def domains_reapply_stale_primaries() -> int:
    """Re-install each running store whose primary domain became active, or stopped being active,
    after the store's last successful install began: the store was busy when that happened, so its
    release still carries the old address. Returns how many re-installs were asked for."""
    stale = (
        StoreDomain.objects.filter(is_primary=True, store__status__in=STORE_RUNNING_STATUSES)
        .exclude(_installed_since_its_status_moved())
        .values_list("store_id", "domain", "status")
    )
    asked = 0
    for store_id, domain, status in stale:
        reason = (
            f"The primary domain {domain} is active; using it."
            if status == DomainStatus.ACTIVE
            else f"The primary domain {domain} is not active; using the platform address until it is."
        )
        asked += store_reconfigure(store_id=store_id, reason=reason, actor_label="domains")
    return asked


def domains_unroute_removed() -> int:
    """Re-install each running store that still has a removed, once-verified domain in its release
    (no install has succeeded since the removal, e.g. the store was busy then). Returns how many
    re-installs were asked for."""
    stale = (
        StoreDomain.objects.filter(
            status=DomainStatus.REMOVED,
            verified_at__isnull=False,
            store__status__in=STORE_RUNNING_STATUSES,
        )
        .exclude(_installed_since_its_status_moved())
        .values_list("store_id", "domain")
    )
    asked = 0
    for store_id, domain in {store_id: domain for store_id, domain in stale}.items():
        asked += store_reconfigure(
            store_id=store_id, reason=f"Unrouting the removed domain {domain}.", actor_label="domains"
        )
    return asked
