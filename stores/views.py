"""Merchant pages. Each view parses input, calls one service or selector and renders the result.

Every store page is scoped to the signed-in user's tenant: another tenant's store is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from platform_site.errors import ApplicationError
from platform_site.security import client_ip
from provisioning.choices import ClusterHealth
from stores.activity import store_activity
from stores.backups import backup_request, backup_restore
from stores.choices import STORE_RUNNING_STATUSES, Engine, StoreStatus, SuspensionSource
from stores.credentials import store_credentials_reveal
from stores.domains import (
    domain_add,
    domain_check,
    domain_remove,
    domain_required_records,
    domain_set_primary,
    domain_unset_primary,
)
from stores.engines import ENGINE_CATALOGUE, engine_spec
from stores.forms import (
    BackupNewStoreForm,
    BackupRestoreForm,
    DeleteStoreForm,
    DomainAddForm,
    EmailAuthenticationForm,
    SignupForm,
    StoreLaunchForm,
    WebhookEndpointForm,
    apply_application_error,
)
from stores.launch_guards import (
    email_verification_confirm,
    email_verification_pending,
    email_verification_start,
)
from stores.lifecycle import (
    store_create,
    store_create_check,
    store_create_from_backup,
    store_request_teardown,
    store_retry,
)
from stores.models import Plan, PlanResources, Store, StoreDomain, Tenant
from stores.permissions import Action, TenantAccess, access_for_user
from stores.presentation import (
    domain_is_changing,
    engine_offers,
    failure_in_plain_words,
    is_changing,
    store_admin_url,
    store_timeline,
)
from stores.ratelimit import TooManyAttempts, rate_limit_consume
from stores.selectors import (
    backups_for_store,
    store_domain_by_id,
    store_domains,
    store_events,
    store_get_for_tenant,
    store_list_for_tenant,
    tenant_live_store_count,
    webhook_deliveries_for_endpoint,
    webhook_endpoints_for_tenant,
)
from stores.services import user_signup
from stores.suspension import store_can_resume, store_resume, store_suspend
from stores.tokens import api_token_create, api_token_list, api_token_revoke
from stores.validators import suggest_store_name
from stores.webhooks import (
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
)

MerchantView = Callable[..., HttpResponse]
# Tag of the notices about work in progress ("… is on its way"): the status panel clears them once the
# store has settled, so they never outlive what they announce.
PROGRESS = "progress"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def merchant_view(view: MerchantView) -> MerchantView:
    """Require a signed-in member of a tenant; pass the tenant to the view.

    An htmx request whose session expired gets `HX-Redirect` to the login page, so the login page is
    never swapped into a fragment.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if _is_htmx(request):
                response = HttpResponse(status=204)
                # Encoded: a path may hold CR/LF or "&", which must not reach the header as they are.
                response["HX-Redirect"] = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': request.path})}"
                return response
            return redirect_to_login(request.get_full_path())
        access = access_for_user(user=request.user)
        if access is None:
            raise PermissionDenied("This account does not belong to an organisation.")
        # Templates read request.tenant_access.refusals to disable what the role may not do.
        request.tenant_access = access  # type: ignore[attr-defined]
        return view(request, *args, tenant=access.tenant, **kwargs)

    return wrapper


def _require(request: HttpRequest, action: Action) -> None:
    """403 with the reason unless the signed-in role allows `action` (stores/permissions.py)."""
    access: TenantAccess = request.tenant_access  # type: ignore[attr-defined]
    if not access.can(action):
        raise PermissionDenied(access.refusal(action))


def _store_or_404(tenant: Tenant, name: str) -> Store:
    store = store_get_for_tenant(tenant=tenant, name=name)
    if store is None:
        raise Http404("No such store.")
    return store


def _too_many(
    request: HttpRequest, template: str, context: dict[str, Any], exc: TooManyAttempts
) -> HttpResponse:
    context["rate_limited"] = exc.message
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


# --- Public pages -----------------------------------------------------------------------------------


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    plan = Plan.objects.filter(is_default=True).first()
    resources = PlanResources.objects.filter(plan=plan) if plan else PlanResources.objects.none()
    return render(
        request,
        "stores/landing.html",
        {"offers": engine_offers(plan=plan, resources=resources), "plan": plan},
    )


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("stores:dashboard")
    form = SignupForm(request.POST if request.method == "POST" else None)
    context = {"form": form}
    if request.method == "POST":
        try:
            rate_limit_consume(scope="signup", values=[client_ip(request)])
        except TooManyAttempts as exc:
            return _too_many(request, "registration/signup.html", context, exc)
        if form.is_valid():
            try:
                user = user_signup(
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    organisation=form.cleaned_data["organisation"],
                    verification_base_url=request.build_absolute_uri("/"),
                )
            except ApplicationError as exc:
                apply_application_error(form, exc)
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(
                    request,
                    "Welcome! Your account is ready. Confirm your e-mail with the link we just sent you, "
                    "then launch your first store.",
                )
                return redirect("stores:dashboard")
    return render(request, "registration/signup.html", context, status=400 if form.errors else 200)


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login with email labels. Failed sign-ins are limited by django-axes in authenticate()
    (stores/auth_limits.py), the same for this page and /admin/login/."""

    authentication_form = EmailAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class RateLimitedPasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per client and per e-mail (any e-mail, so the limit says
    nothing about which accounts exist): one address cannot flood a mailbox or the mail relay."""

    def form_valid(self, form: Any) -> HttpResponse:
        try:
            rate_limit_consume(
                scope="password-reset", values=[client_ip(self.request), form.cleaned_data["email"]]
            )
        except TooManyAttempts as exc:
            template = self.template_name or "registration/password_reset_form.html"
            return _too_many(self.request, template, self.get_context_data(form=form), exc)
        return super().form_valid(form)


# --- Stores -----------------------------------------------------------------------------------------


@require_GET
@merchant_view
def dashboard(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    stores = list(store_list_for_tenant(tenant=tenant))
    used = len(stores)
    return render(
        request,
        "stores/store_list.html",
        {
            "tenant": tenant,
            "stores": stores,
            "used": used,
            "limit": tenant.plan.max_stores,
            "at_limit": used >= tenant.plan.max_stores,
            "email_unverified": email_verification_pending(user=request.user),
        },
    )


@require_GET
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed at signup: confirms the address (following it twice is harmless)."""
    try:
        email_verification_confirm(token=token)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Thank you: your e-mail is confirmed. You can launch stores now.")
    return redirect("stores:dashboard" if request.user.is_authenticated else settings.LOGIN_URL)


@require_POST
@merchant_view
def verify_email_resend(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    """Mail a new confirmation link (limited per user like other mailed links)."""
    try:
        rate_limit_consume(scope="verify-email", values=[str(request.user.pk)])
        if email_verification_pending(user=request.user):
            email_verification_start(user=request.user, base_url=request.build_absolute_uri("/"))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"We sent a new link to {getattr(request.user, 'email', '')}.")
    return redirect("stores:dashboard")


@require_GET
@merchant_view
def store_row(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    """One dashboard row, polled while the store changes; empty once deleted (the row disappears)."""
    store = _store_or_404(tenant, name)
    if store.status == StoreStatus.DELETED:
        return HttpResponse("")
    return render(request, "includes/store_row.html", {"store": store})


@require_http_methods(["GET", "POST"])
@merchant_view
def store_new(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    if request.method == "POST":
        _require(request, Action.LAUNCH)
    form = StoreLaunchForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            store, created = store_create(
                tenant=tenant,
                name=form.cleaned_data["name"],
                engine=form.cleaned_data["engine"],
                actor=request.user,
            )
        except ApplicationError as exc:
            apply_application_error(form, exc)
        else:
            if created:
                messages.success(
                    request,
                    f"“{store.name}” is on its way. This page updates by itself.",
                    extra_tags=PROGRESS,
                )
            else:
                messages.info(request, f"“{store.name}” was already requested; here it is.")
            return redirect("stores:detail", name=store.name)
    used = tenant_live_store_count(tenant=tenant)
    return render(
        request,
        "stores/store_form.html",
        {
            "form": form,
            "offers": engine_offers(plan=tenant.plan, resources=tenant.plan.resources.all()),
            "used": used,
            "limit": tenant.plan.max_stores,
            "at_limit": used >= tenant.plan.max_stores,
            "base_domain": settings.STORE_BASE_DOMAIN,
        },
        status=400 if form.errors else 200,
    )


@require_GET
@merchant_view
def store_check_name(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    """Live feedback for the name field: the shared validator's message and a suggestion."""
    typed = request.GET.get("name", "")
    name = typed.strip()
    engine = request.GET.get("engine", "")
    if engine not in Engine.values:  # the radio buttons send one; a stray value checks the name alone
        engine = str(next(iter(ENGINE_CATALOGUE)))
    errors: list[str] = []
    existing = None
    suggestion = ""
    try:
        existing = store_create_check(tenant=tenant, name=name, engine=engine)
    except ApplicationError as exc:
        errors = exc.fields.get("name") or [exc.message]
        if "name" in exc.fields:
            candidate = suggest_store_name(typed)
            suggestion = candidate if candidate != typed else ""
    return render(
        request,
        "includes/name_feedback.html",
        {
            "name": name,
            "errors": errors,
            "suggestion": suggestion,
            "existing": existing,
            "base_domain": settings.STORE_BASE_DOMAIN,
        },
    )


def _detail_context(store: Store) -> dict[str, Any]:
    events = list(store_events(store=store))
    return {
        "store": store,
        "engine": engine_spec(store.engine),
        "timeline": store_timeline(store=store, events=events),
        "events": list(reversed(events)),
        "changing": is_changing(store.status),
        "failure": failure_in_plain_words(store.status_reason) if store.status == StoreStatus.FAILED else "",
        "admin_url": store_admin_url(store),
        "cluster_unreachable": store.cluster.health == ClusterHealth.UNREACHABLE,
        # Only a pause the organisation made can be lifted from its page; the page says why not.
        "resume_refusal": store_can_resume(store=store, source=SuspensionSource.TENANT)
        if store.status == StoreStatus.SUSPENDED
        else "",
    }


@require_GET
@merchant_view
def store_detail(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    context = _detail_context(store)
    context["delete_form"] = DeleteStoreForm(store=store)
    context.update(_domains_context(store))
    context.update(_backups_context(store))
    # Settled before the page was first shown: a notice of work in progress would be stale already.
    context["clear_progress_notices"] = not context["changing"]
    return render(request, "stores/store_detail.html", context)


@require_GET
@merchant_view
def store_status(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    """The status panel alone, polled by htmx while the store changes."""
    store = _store_or_404(tenant, name)
    context = _detail_context(store)
    context["clear_progress_notices"] = not context["changing"]
    response = render(request, "includes/store_status.html", context)
    add_never_cache_headers(response)
    return response


@require_POST
@merchant_view
def store_retry_view(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    _require(request, Action.RETRY)
    try:
        store_retry(store=store, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Retrying. This page updates by itself.", extra_tags=PROGRESS)
    return redirect("stores:detail", name=store.name)


@require_POST
@merchant_view
def store_suspend_view(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    _require(request, Action.SUSPEND)
    try:
        store_suspend(
            store=store,
            source=SuspensionSource.TENANT,
            reason=request.POST.get("reason", "")[:500],
            actor=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Pausing your store. This page updates by itself.", extra_tags=PROGRESS)
    return redirect("stores:detail", name=store.name)


@require_POST
@merchant_view
def store_resume_view(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    _require(request, Action.SUSPEND)
    try:
        store_resume(store=store, source=SuspensionSource.TENANT, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Resuming your store. This page updates by itself.", extra_tags=PROGRESS)
    return redirect("stores:detail", name=store.name)


@require_POST
@merchant_view
def store_delete(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    _require(request, Action.DELETE)
    form = DeleteStoreForm(request.POST, store=store)
    if form.is_valid():
        try:
            store_request_teardown(store=store, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, f"Deleting “{store.name}”. You can follow the progress here.", extra_tags=PROGRESS
            )
        return redirect("stores:detail", name=store.name)
    context = _detail_context(store)
    context["delete_form"] = form
    context.update(_domains_context(store))
    return render(request, "stores/store_detail.html", context, status=400)


@require_POST
@merchant_view
def store_credentials(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    """Reveal the admin login once per click. The response must never be stored by any cache."""
    store = _store_or_404(tenant, name)
    _require(request, Action.REVEAL_CREDENTIALS)
    context: dict[str, Any] = {"store": store}
    status = 200
    try:
        # Each reveal is a Kubernetes call and an audit event on the store's timeline: bounded per user.
        rate_limit_consume(
            scope="credentials-reveal",
            values=[str(request.user.pk)],
            limit=settings.CREDENTIALS_REVEAL_ATTEMPTS,
        )
        context["credentials"] = store_credentials_reveal(store=store, actor=request.user)
    except ApplicationError as exc:
        context["error"] = exc.message
        status = exc.http_status
    template = "includes/credentials.html" if _is_htmx(request) else "stores/store_credentials.html"
    response = render(request, template, context, status=status)
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


@require_GET
@merchant_view
def store_activity_view(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    """The store's events, pods, log tails and usage, read from its namespace now."""
    store = _store_or_404(tenant, name)
    context: dict[str, Any] = {
        "store": store,
        "pod": request.GET.get("pod", ""),
        "lines": request.GET.get("lines", ""),
    }
    try:
        context["activity"] = store_activity(
            store=store,
            actor=request.user,
            pod=context["pod"],
            container=request.GET.get("container", ""),
            lines=context["lines"],
        )
    except TooManyAttempts as exc:
        return _too_many(request, "stores/store_activity.html", context, exc)
    except ApplicationError as exc:
        context["error"] = exc.message
        response = render(request, "stores/store_activity.html", context, status=exc.http_status)
    else:
        response = render(request, "stores/store_activity.html", context)
    # Logs are read fresh and may be sensitive despite redaction: never cached.
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


# --- API tokens -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@merchant_view
def token_list(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    """List the user's tokens for this organisation; a POST creates one and shows its secret in this
    response only. Members see why they cannot."""
    access: TenantAccess = request.tenant_access  # type: ignore[attr-defined]
    new_token = ""
    error = ""
    status = 200
    if request.method == "POST":
        _require(request, Action.MANAGE_TOKENS)
        try:
            rate_limit_consume(scope="token-create", values=[str(request.user.pk)])
            _, new_token = api_token_create(
                user=request.user, access=access, read_only=request.POST.get("read_only") == "on"
            )
        except ApplicationError as exc:
            error, status = exc.message, exc.http_status
        else:
            status = 201
    response = render(
        request,
        "stores/token_list.html",
        {
            "tokens": api_token_list(user=request.user, tenant=tenant)
            if access.can(Action.MANAGE_TOKENS)
            else [],
            "new_token": new_token,
            "error": error,
            "ttl_days": settings.API_TOKEN_TTL_DAYS,
        },
        status=status,
    )
    if new_token:
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True, private=True)
    return response


@require_POST
@merchant_view
def token_revoke(request: HttpRequest, token_key: str, *, tenant: Tenant) -> HttpResponse:
    _require(request, Action.MANAGE_TOKENS)
    try:
        api_token_revoke(user=request.user, access=request.tenant_access, token_key=token_key)  # type: ignore[attr-defined]
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    messages.success(request, f"Token {token_key}… revoked. Programs using it can no longer sign in.")
    return redirect("stores:tokens")


# --- Custom domains ---------------------------------------------------------------------------------


def _domains_context(store: Store, form: DomainAddForm | None = None) -> dict[str, Any]:
    domains = list(store_domains(store=store))
    return {
        "store": store,
        "domains": [{"domain": d, "records": domain_required_records(d)} for d in domains],
        "domains_changing": any(domain_is_changing(d.status) for d in domains),
        "domain_form": form or DomainAddForm(),
    }


def _domains_response(
    request: HttpRequest, store: Store, form: DomainAddForm | None = None, status: int = 200
) -> HttpResponse:
    """The Domains section alone for htmx; otherwise back to the store page (messages say what happened)."""
    if _is_htmx(request):
        # The section shows this request's messages itself: htmx swaps only the section.
        context = {**_domains_context(store, form), "inline_messages": True}
        response = render(request, "includes/store_domains.html", context, status=status)
        add_never_cache_headers(response)
        return response
    if form is not None and form.errors:
        context = _detail_context(store)
        context["delete_form"] = DeleteStoreForm(store=store)
        context.update(_domains_context(store, form))
        return render(request, "stores/store_detail.html", context, status=status)
    return redirect("stores:detail", name=store.name)


def _domain_or_404(store: Store, domain_id: int) -> StoreDomain:
    domain = store_domain_by_id(store=store, domain_id=domain_id)
    if domain is None:
        raise Http404("No such domain.")
    return domain


@require_GET
@merchant_view
def store_domains_view(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    """The Domains section alone, polled by htmx while a domain is being verified or issued."""
    store = _store_or_404(tenant, name)
    response = render(request, "includes/store_domains.html", _domains_context(store))
    add_never_cache_headers(response)
    return response


@require_POST
@merchant_view
def store_domain_add(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    _require(request, Action.MANAGE_DOMAINS)
    form = DomainAddForm(request.POST)
    if not form.is_valid():
        return _domains_response(request, store, form, status=400)
    try:
        domain = domain_add(store=store, domain=form.cleaned_data["domain"], actor=request.user)
    except ApplicationError as exc:
        form.add_error("domain", exc.message)
        return _domains_response(request, store, form, status=exc.http_status)
    messages.success(request, f"{domain.domain} added: create the records shown to verify it.")
    return _domains_response(request, store)


def _domain_action(
    request: HttpRequest,
    tenant: Tenant,
    name: str,
    domain_id: int,
    act: Callable[[StoreDomain], object],
    done: Callable[[Store, StoreDomain], str] | None = None,
) -> HttpResponse:
    """One merchant action on one of the store's domains: 404 for another store's, the permission,
    the service's refusal shown as a message, and the Domains section redrawn."""
    store = _store_or_404(tenant, name)
    domain = _domain_or_404(store, domain_id)
    _require(request, Action.MANAGE_DOMAINS)
    try:
        act(domain)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if done is not None:
            messages.success(request, done(store, domain))
    return _domains_response(request, store)


@require_POST
@merchant_view
def store_domain_check(request: HttpRequest, name: str, domain_id: int, *, tenant: Tenant) -> HttpResponse:
    return _domain_action(
        request, tenant, name, domain_id, lambda domain: domain_check(domain_id=domain.pk, actor=request.user)
    )


@require_POST
@merchant_view
def store_domain_remove(request: HttpRequest, name: str, domain_id: int, *, tenant: Tenant) -> HttpResponse:
    return _domain_action(
        request,
        tenant,
        name,
        domain_id,
        lambda domain: domain_remove(domain=domain, actor=request.user),
        lambda store, domain: f"{domain.domain} removed.",
    )


@require_POST
@merchant_view
def store_domain_primary(request: HttpRequest, name: str, domain_id: int, *, tenant: Tenant) -> HttpResponse:
    """Make an active domain the store's primary."""
    return _domain_action(
        request,
        tenant,
        name,
        domain_id,
        lambda domain: domain_set_primary(domain=domain, actor=request.user),
        lambda store, domain: f"{domain.domain} is now the primary domain; the store is being updated.",
    )


@require_POST
@merchant_view
def store_domain_unset_primary(
    request: HttpRequest, name: str, domain_id: int, *, tenant: Tenant
) -> HttpResponse:
    """Go back to the platform address as the store's primary."""
    return _domain_action(
        request,
        tenant,
        name,
        domain_id,
        lambda domain: domain_unset_primary(domain=domain, actor=request.user),
        lambda store, domain: f"The store uses {store.host} as its address again.",
    )


# --- Backups ----------------------------------------------------------------------------------------


def _backups_context(store: Store) -> dict[str, Any]:
    return {
        "backups": list(backups_for_store(store=store)[:50]),
        "restore_form": BackupRestoreForm(),
        # A deleted store's final backup goes into another running store of the same engine.
        "restore_targets": [
            other.name
            for other in store_list_for_tenant(tenant=store.tenant)
            .filter(engine=store.engine, status__in=STORE_RUNNING_STATUSES)
            .order_by("name")
        ],
    }


@require_POST
@merchant_view
def store_backup_create(request: HttpRequest, name: str, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    _require(request, Action.MANAGE_BACKUPS)
    try:
        backup_request(store=store, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Backup queued: it appears below as it runs.")
    return redirect("stores:detail", name=store.name)


@require_POST
@merchant_view
def store_backup_restore(request: HttpRequest, name: str, backup_id: int, *, tenant: Tenant) -> HttpResponse:
    store = _store_or_404(tenant, name)
    backup = backups_for_store(store=store).filter(pk=backup_id).first()
    if backup is None:
        raise Http404("No such backup.")
    _require(request, Action.MANAGE_BACKUPS)
    form = BackupRestoreForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Type the target store's name to confirm the restore.")
        return redirect("stores:detail", name=store.name)
    target = _store_or_404(tenant, form.cleaned_data["target_store"] or store.name)
    try:
        backup_restore(
            backup=backup, target=target, confirm_name=form.cleaned_data["confirm_name"], actor=request.user
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("stores:detail", name=store.name)
    messages.success(request, f"Restore into {target.name} started: a safety backup is taken first.")
    return redirect("stores:detail", name=target.name)


@require_POST
@merchant_view
def store_backup_new_store(
    request: HttpRequest, name: str, backup_id: int, *, tenant: Tenant
) -> HttpResponse:
    """A new store that starts with this backup's data (e.g. a deleted store's final backup)."""
    store = _store_or_404(tenant, name)
    backup = backups_for_store(store=store).filter(pk=backup_id).first()
    if backup is None:
        raise Http404("No such backup.")
    _require(request, Action.LAUNCH)
    _require(request, Action.MANAGE_BACKUPS)
    form = BackupNewStoreForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the new store a name.")
        return redirect("stores:detail", name=store.name)
    try:
        created = store_create_from_backup(backup=backup, name=form.cleaned_data["name"], actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("stores:detail", name=store.name)
    messages.success(
        request, f"{created.name} is being launched; the backup is loaded into it once it is provisioned."
    )
    return redirect("stores:detail", name=created.name)


# --- Webhooks ---------------------------------------------------------------------------------------


def _secret_response(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


@require_http_methods(["GET", "POST"])
@merchant_view
def webhook_list(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    """The organisation's webhook endpoints; a POST adds one and shows its secret in this response only."""
    form = WebhookEndpointForm(request.POST or None)
    new_secret = ""
    status = 200
    if request.method == "POST":
        _require(request, Action.MANAGE_WEBHOOKS)
        if form.is_valid():
            try:
                endpoint, new_secret = webhook_endpoint_create(
                    tenant=tenant, actor=request.user, **form.cleaned_data
                )
            except ApplicationError as exc:
                apply_application_error(form, exc)
                status = exc.http_status
            else:
                status = 201
                form = WebhookEndpointForm()
        else:
            status = 400
    response = render(
        request,
        "stores/webhook_list.html",
        {"endpoints": webhook_endpoints_for_tenant(tenant=tenant), "form": form, "new_secret": new_secret},
        status=status,
    )
    return _secret_response(response) if new_secret else response


def _endpoint_or_404(tenant: Tenant, endpoint_id: int) -> Any:
    endpoint = webhook_endpoints_for_tenant(tenant=tenant).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


@require_http_methods(["GET", "POST"])
@merchant_view
def webhook_detail(request: HttpRequest, endpoint_id: int, *, tenant: Tenant) -> HttpResponse:
    """One endpoint: its delivery log; POST `action` rotates the secret, enables, deletes or resends."""
    endpoint = _endpoint_or_404(tenant, endpoint_id)
    new_secret = ""
    if request.method == "POST":
        _require(request, Action.MANAGE_WEBHOOKS)
        action = request.POST.get("action", "")
        try:
            if action == "rotate":
                new_secret = webhook_endpoint_rotate_secret(endpoint=endpoint)
                endpoint.refresh_from_db()
            elif action == "enable":
                endpoint = webhook_endpoint_enable(endpoint=endpoint)
                messages.success(request, "Endpoint enabled. New events are sent to it again.")
            elif action == "delete":
                webhook_endpoint_delete(endpoint=endpoint)
                messages.success(request, f"Endpoint {endpoint.url} deleted.")
                return redirect("stores:webhooks")
            elif action == "resend":
                delivery_id = request.POST.get("delivery", "")
                delivery = (
                    webhook_deliveries_for_endpoint(endpoint=endpoint).filter(pk=int(delivery_id)).first()
                    if delivery_id.isdigit()
                    else None
                )
                if delivery is None:
                    raise Http404("No such delivery.")
                webhook_delivery_resend(delivery=delivery)
                messages.success(request, f"Event {delivery.message.msg_id} queued to be sent again.")
            else:
                return HttpResponse("Unknown action.", status=400, content_type="text/plain")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        if not new_secret:
            return redirect("stores:webhook", endpoint_id=endpoint.pk)
    response = render(
        request,
        "stores/webhook_detail.html",
        {
            "endpoint": endpoint,
            "deliveries": webhook_deliveries_for_endpoint(endpoint=endpoint)[:50],
            "new_secret": new_secret,
        },
    )
    return _secret_response(response) if new_secret else response
