"""Template helpers for the merchant pages: the status badge and accessible form fields."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django import template
from django.forms import BoundField
from django.utils import timezone
from django.utils.timesince import timesince

from stores.choices import DomainStatus, StoreStatus
from stores.models import StoreEvent
from stores.presentation import (
    DOMAIN_STATUS_COLOURS,
    DOMAIN_STATUS_HINTS,
    STATUS_COLOURS,
    STATUS_HINTS,
    domain_is_changing,
    event_label,
    is_changing,
)

register = template.Library()


@register.inclusion_tag("includes/status_badge.html")
def status_badge(status: str, size: str = "") -> dict[str, Any]:
    """The one status badge: colour from STATUS_COLOURS, a pulsing dot while the store changes."""
    return {
        "status": status,
        "label": StoreStatus(status).label if status in StoreStatus.values else status,
        # The colour itself is in static/css/status-colours.css, keyed by status (no inline style).
        "colour_key": status if status in STATUS_COLOURS else StoreStatus.REQUESTED,
        "changing": is_changing(status),
        "hint": STATUS_HINTS.get(status, ""),
        "size": size,
    }


@register.filter
def status_hint(status: str) -> str:
    return STATUS_HINTS.get(status, "")


@register.inclusion_tag("includes/field.html")
def form_field(field: BoundField, extra_describedby: str = "", **attrs: Any) -> dict[str, Any]:
    """A labelled field whose help text and errors are tied to the input with aria-describedby."""
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}_help")
    if field.errors:
        described.append(f"{field.auto_id}_errors")
    if extra_describedby:
        described.append(extra_describedby)
    widget_attrs = {key.replace("_", "-"): value for key, value in attrs.items()}
    if described:
        widget_attrs["aria-describedby"] = " ".join(described)
    if field.errors:
        widget_attrs["aria-invalid"] = "true"
    if field.field.required:
        widget_attrs["aria-required"] = "true"
    return {"field": field, "widget": field.as_widget(attrs=widget_attrs)}


@register.filter(name="is_changing")
def is_changing_filter(status: str) -> bool:
    """True while a page should keep polling this status."""
    return is_changing(status)


@register.filter
def url_host(url: str) -> str:
    """`https://shop.example.com/` → `shop.example.com`, for display."""
    return urlsplit(url).netloc or url


@register.filter
def event_title(event: StoreEvent) -> str:
    """A history line's title in plain words."""
    return event_label(event)


@register.filter
def ago(moment: datetime | None) -> str:
    """ "just now", "5 minutes ago", "2 days ago": the largest unit only."""
    if moment is None:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment).split(',')[0]} ago"


@register.inclusion_tag("includes/status_badge.html")
def domain_badge(status: str) -> dict[str, Any]:
    """A custom domain's badge: the same pill as the store's, with the domain colours."""
    return {
        "status": status,
        "label": DomainStatus(status).label if status in DomainStatus.values else status,
        "colour_key": f"domain-{status if status in DOMAIN_STATUS_COLOURS else DomainStatus.PENDING_VERIFICATION}",
        "changing": domain_is_changing(status),
        "hint": DOMAIN_STATUS_HINTS.get(status, ""),
        "size": "",
    }
