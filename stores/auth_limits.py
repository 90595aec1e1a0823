"""Sign-in lockout (merchant login and /admin/login/): django-axes, counting each attempt before its
password is checked.

Failures count per (account, client address) pair, so nobody can lock someone else out of an account
from their own address; a separate, higher ceiling per client address stops one client guessing
across many accounts. Both are checked and counted in one short transaction that holds a lock per
client address, so a burst of concurrent wrong passwords can never get more checks than the limit
(axes' stock handler checks before it counts: issue 15 measured 15 of 16 concurrent guesses checked
against a limit of 5). The password itself is checked outside that transaction; a sign-in that
succeeds gives its pair's count back.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import connections, router, transaction
from django.db.models import F, Max, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from platform_site.security import client_ip

logger = logging.getLogger(__name__)


def lockout_client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the same client address the other limits use."""
    return client_ip(request)


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """AXES_USERNAME_CALLABLE: accounts are lowercased emails, so `Victim@X` and `victim@x` are one
    account to the limit whichever login form (merchant or admin) was used."""
    raw = (credentials or {}).get("username")
    if raw is None:
        raw = request.POST.get("username") if hasattr(request, "POST") else None
    return raw.strip().lower() if isinstance(raw, str) else None


def _cool_off() -> timedelta:
    return timedelta(seconds=settings.AUTH_RATE_LIMIT_WINDOW_SECONDS)


def _serialise_client(using: str, ip_address: str | None) -> None:
    """Hold a lock for this client address until the transaction ends."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"axes:{ip_address}".encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    # SQLite: settings begin every transaction IMMEDIATE, which takes the database's write lock, so
    # attempts are already one at a time.


class AtomicLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler (AccessAttempt rows, the admin's view of them, `axes_reset`), with the
    attempt reserved atomically in `is_allowed` instead of counted after the password check."""

    def is_allowed(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        if self.is_blacklisted(request, credentials):
            return False
        if self.is_whitelisted(request, credentials):
            return True
        return self._reserve_attempt(request, credentials)

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        pair, per_client = self._recent_failures(request, credentials)
        return pair >= settings.AUTH_LOCKOUT_ATTEMPTS or per_client >= settings.AUTH_LOCKOUT_CLIENT_ATTEMPTS

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        return self._recent_failures(request, credentials)[0]

    def _recent_failures(self, request: Any, credentials: dict[str, Any] | None) -> tuple[int, int]:
        recent = AccessAttempt.objects.filter(
            ip_address=request.axes_ip_address, attempt_time__gte=get_cool_off_threshold(request)
        )
        username = get_client_username(request, credentials)
        per_client = recent.aggregate(n=Sum("failures_since_start"))["n"] or 0
        pair = recent.filter(username=username).aggregate(n=Sum("failures_since_start"))["n"] or 0
        return pair, per_client

    def _reserve_attempt(self, request: Any, credentials: dict[str, Any] | None) -> bool:
        """Count this attempt as a failure now, unless a limit is already used up (then refuse it)."""
        username = get_client_username(request, credentials)
        using = router.db_for_write(AccessAttempt)
        with transaction.atomic(using=using):
            _serialise_client(using, request.axes_ip_address)
            self.clean_expired_user_attempts(request, credentials)
            pair, per_client = self._recent_failures(request, credentials)
            if pair >= settings.AUTH_LOCKOUT_ATTEMPTS or per_client >= settings.AUTH_LOCKOUT_CLIENT_ATTEMPTS:
                request.axes_locked_out = True
                request.axes_retry_after = self._retry_after(
                    request, username, pair_locked=pair >= settings.AUTH_LOCKOUT_ATTEMPTS
                )
                return False
            attempt, created = AccessAttempt.objects.get_or_create(
                username=username,
                ip_address=request.axes_ip_address,
                user_agent=request.axes_user_agent[:255],
                defaults={
                    "get_data": "",
                    "post_data": "",
                    "http_accept": request.axes_http_accept[:1025],
                    "path_info": request.axes_path_info[:255],
                    "failures_since_start": 1,
                    "attempt_time": request.axes_attempt_time,
                },
            )
            if not created:
                AccessAttempt.objects.filter(pk=attempt.pk).update(
                    failures_since_start=F("failures_since_start") + 1,
                    attempt_time=request.axes_attempt_time,
                    path_info=request.axes_path_info[:255],
                )
        request.axes_reserved = True
        return True

    def _retry_after(self, request: Any, username: str | None, *, pair_locked: bool) -> int:
        rows = AccessAttempt.objects.filter(ip_address=request.axes_ip_address)
        if pair_locked:
            rows = rows.filter(username=username)
        latest = rows.aggregate(t=Max("attempt_time"))["t"] or timezone.now()
        return max(1, int((latest + _cool_off() - timezone.now()).total_seconds()))

    def user_login_failed(self, sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
        if request is None:
            return
        if getattr(request, "axes_reserved", False):
            return  # counted when it was reserved
        if getattr(request, "axes_locked_out", False):
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=get_client_username(request, credentials),
                ip_address=request.axes_ip_address,
            )
            return
        super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        if request is None or request.axes_ip_address is None:
            return  # force_login in code: no client, nothing was reserved
        # The pair's reservation is given back; the client's failures on other accounts still count.
        AccessAttempt.objects.filter(
            username=user.get_username().lower(), ip_address=request.axes_ip_address
        ).delete()

    def user_logged_out(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        return None  # no access log is kept (AXES_DISABLE_ACCESS_LOG): nothing to close


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page that was asked for (merchant or admin), its form
    carrying the lockout message instead of "wrong password", with 429 and Retry-After."""
    wait = getattr(request, "axes_retry_after", settings.AUTH_RATE_LIMIT_WINDOW_SECONDS)
    minutes = max(1, round(wait / 60))
    message = (
        f"Too many failed sign-ins from here. For your security, please wait about {minutes} "
        f"minute{'s' if minutes != 1 else ''} and try again."
    )
    response: HttpResponse
    if isinstance(original_response, TemplateResponse) and original_response.context_data:
        context = dict(original_response.context_data)
        form = context.get("form")
        if form is not None and form.is_bound:
            # The form was validated already; only its "wrong email or password" is replaced.
            form.errors[NON_FIELD_ERRORS] = form.error_class([message])
        context["rate_limited"] = "" if form is not None else message
        response = TemplateResponse(
            request, original_response.template_name, context, status=429, using=original_response.using
        )
        response.render()
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    logger.warning(
        "sign-in refused after repeated failures (client %s)", getattr(request, "axes_ip_address", None)
    )
    return response
