"""The partner API: read-only store views plus explicit commands, all scoped to the caller's tenant.

Views parse input, call one service or selector and render the result; the services decide. Another
tenant's store is indistinguishable from a missing one (404).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning.models import ProvisioningRun
from stores.activity import store_activity
from stores.api import examples
from stores.api.errors import NoTenant
from stores.api.idempotency import IDEMPOTENCY_HEADER, KEY_MAX_LENGTH, respond_idempotently
from stores.api.serializers import (
    ActivityQuerySerializer,
    ActivitySerializer,
    BackupRestoreIntoNewStoreSerializer,
    BackupRestoreSerializer,
    CredentialsSerializer,
    ErrorSerializer,
    PlanSerializer,
    StoreBackupSerializer,
    StoreCreateSerializer,
    StoreDomainAddSerializer,
    StoreDomainSerializer,
    StoreEventSerializer,
    StoreListFilterSerializer,
    StoreSerializer,
    StoreSuspendSerializer,
)
from stores.backups import backup_request, backup_restore
from stores.choices import StoreStatus, SuspensionSource
from stores.credentials import store_credentials_reveal
from stores.domains import domain_add, domain_check, domain_remove, domain_set_primary, domain_unset_primary
from stores.lifecycle import store_create, store_create_from_backup, store_request_teardown, store_retry
from stores.models import Store, StoreBackup, StoreDomain, Tenant
from stores.permissions import Action, TenantAccess, access_for_user, access_require
from stores.selectors import (
    backup_get_for_tenant,
    backups_for_store,
    backups_for_tenant,
    store_domain_get,
    store_domains,
    store_events,
    store_get_for_tenant,
    store_list_for_tenant,
    tenant_live_store_count,
)
from stores.suspension import store_resume, store_suspend


def _error(description: str, *example_list: OpenApiExample) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description, examples=list(example_list))


AUTH_ERRORS = {
    401: _error(
        "No token, or an invalid, expired or revoked one (a password change revokes every token; so "
        "does leaving the token's organisation).",
        examples.NOT_AUTHENTICATED,
    ),
    403: _error(
        "The account belongs to no organisation, or its role (or a read-only token) does not allow this.",
        examples.NO_TENANT,
    ),
    429: _error("Too many requests; the `Retry-After` header says when to retry.", examples.THROTTLED),
}
NOT_FOUND = {404: _error("No such store in your organisation.", examples.NOT_FOUND)}
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    # Printable ASCII without surrounding spaces (HTTP strips those), as idempotency_key_claim checks.
    {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": "^[!-~]([ -~]*[!-~])?$"},
    OpenApiParameter.HEADER,
    description="Optional. The same key with the same body within 24 hours replays the first response; "
    "with a different body it is a 422.",
)


class TenantScopedMixin:
    """The caller's tenant and role, resolved once per request: from the token's scope for a token
    (never from the user's memberships), from the first membership for a browser session."""

    request: Request

    def get_access(self) -> TenantAccess:
        if not hasattr(self, "_access"):
            access = getattr(self.request.auth, "access", None)
            if access is None and not isinstance(self.request.auth, AuthToken):
                access = access_for_user(user=self.request.user)
            if access is None:
                raise NoTenant("Your account does not belong to an organisation.")
            self._access = access
        return self._access

    def get_tenant(self) -> Tenant:
        return self.get_access().tenant

    def require(self, action: Action) -> None:
        """403 unless the caller's role (and token) allows `action`."""
        access_require(access=self.get_access(), action=action)


class StoreViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Stores of the caller's organisation. State is read-only; changes go through commands."""

    serializer_class = StoreSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filter_backends = [OrderingFilter]
    ordering_fields = ["created_at", "name", "status", "status_changed_at"]
    ordering = ["-created_at", "-id"]
    # No OPTIONS: the OpenAPI schema documents the API, and every method on a store stays 404 or 405
    # for another tenant.
    http_method_names = ["get", "post", "delete", "head"]

    def get_queryset(self) -> QuerySet[Store]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Store.objects.none()
        wanted: dict[str, str] = {}
        if self.action == "list":
            filters = StoreListFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            wanted = filters.validated_data
        # Detail routes see deleted stores too, so a merchant can read how a teardown ended.
        include_deleted = self.action != "list" or wanted.get("status") == StoreStatus.DELETED
        stores = store_list_for_tenant(tenant=self.get_tenant(), include_deleted=include_deleted)
        return (
            stores.filter(**wanted)
            .select_related("cluster")
            .prefetch_related(
                Prefetch(
                    "runs",
                    queryset=ProvisioningRun.objects.order_by("-created_at", "-id"),
                    to_attr="runs_newest_first",
                )
            )
        )

    def get_object(self) -> Store:
        store = store_get_for_tenant(tenant=self.get_tenant(), name=self.kwargs[self.lookup_field])
        if store is None:
            raise NotFound()
        return store

    def _render(self, store: Store, *, status_code: int, headers: dict[str, str] | None = None) -> Response:
        data = StoreSerializer(store, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    @extend_schema(
        summary="List stores",
        parameters=[StoreListFilterSerializer],
        description="Newest first unless `ordering` says otherwise. Deleted stores are listed only when "
        "asked for with `status=deleted`.",
        responses={
            200: StoreSerializer(many=True),
            400: _error("An unknown status or engine filter.", examples.INVALID_FILTER),
            404: _error("A page past the last one.", examples.INVALID_PAGE),
            **AUTH_ERRORS,
        },
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Get a store", responses={200: StoreSerializer, **NOT_FOUND, **AUTH_ERRORS})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Create a store",
        description="Accepted at once; provisioning runs in the background. Poll the store until its "
        "`status` is `ready` (or `failed`). Asking again for a live store of the same name returns it "
        "with 200 instead of creating a second one.",
        request=StoreCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[examples.CREATE_REQUEST],
        responses={
            202: OpenApiResponse(
                StoreSerializer, "Accepted: the store and its queued run.", [examples.STORE]
            ),
            200: OpenApiResponse(StoreSerializer, "You already have this store; nothing new was created."),
            400: _error(
                "The name, the engine or the Idempotency-Key is not valid.",
                examples.INVALID_NAME,
                examples.UNKNOWN_FIELD,
                examples.INVALID_KEY,
            ),
            409: _error(
                "The name is taken, the plan's store limit is reached, or a request with the same "
                "Idempotency-Key is still running.",
                examples.NAME_TAKEN,
                examples.PLAN_LIMIT,
            ),
            415: _error("The body is not JSON.", examples.UNSUPPORTED_MEDIA_TYPE),
            422: _error("The Idempotency-Key was used with a different body.", examples.KEY_REUSED),
            **AUTH_ERRORS,
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        tenant = self.get_tenant()
        self.require(Action.LAUNCH)
        return respond_idempotently(request, tenant=tenant, handler=lambda: self._create(request, tenant))

    def _create(self, request: Request, tenant: Tenant) -> Response:
        payload = StoreCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        store, created = store_create(tenant=tenant, actor=request.user, **payload.validated_data)
        store = self.get_queryset().get(pk=store.pk)
        data = StoreSerializer(store, context=self.get_serializer_context()).data
        # str(): the serializer returns a Hyperlink (a str subclass), which WSGI servers refuse in headers.
        return Response(
            data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
            headers={"Location": str(data["url"])},
        )

    @extend_schema(
        summary="Delete a store",
        description="Starts the teardown (release, namespace, volumes) and returns at once. Repeating it "
        "is harmless; the store reaches `deleted` when the teardown has finished.",
        responses={202: OpenApiResponse(StoreSerializer, "Teardown requested."), **NOT_FOUND, **AUTH_ERRORS},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        target = self.get_object()
        self.require(Action.DELETE)
        store = store_request_teardown(store=target, actor=request.user)
        return self._render(self.get_queryset().get(pk=store.pk), status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Retry a failed store",
        description="Queues a new attempt of the operation that failed (provisioning, or a teardown that "
        "did not finish). Only a `failed` store can be retried.",
        request=None,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            202: OpenApiResponse(StoreSerializer, "A new run is queued."),
            400: _error("The Idempotency-Key header is not usable.", examples.INVALID_KEY),
            409: _error(
                "The store is not failed, or a request with the same Idempotency-Key is still running.",
                examples.INVALID_STATE,
            ),
            422: _error("The Idempotency-Key was used with a different request.", examples.KEY_REUSED),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, name: str) -> Response:
        store = self.get_object()
        self.require(Action.RETRY)
        return respond_idempotently(
            request, tenant=self.get_tenant(), handler=lambda: self._retry(request, store)
        )

    def _retry(self, request: Request, store: Store) -> Response:
        store_retry(store=store, actor=request.user)
        return self._render(self.get_queryset().get(pk=store.pk), status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Pause a store",
        description="Scales the store's workloads to zero (its data and volumes stay) and answers its "
        "hosts with a paused page. The store moves to `suspending`, then `suspended`; the "
        "`store.suspended` webhook announces it. Only a `ready` or `degraded` store can be paused; "
        "asking again while it is paused is harmless.",
        request=StoreSuspendSerializer,
        responses={
            202: OpenApiResponse(StoreSerializer, "The pause is queued."),
            409: _error("The store is not ready or degraded.", examples.INVALID_STATE),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["post"], serializer_class=StoreSuspendSerializer)
    def suspend(self, request: Request, name: str) -> Response:
        store = self.get_object()
        self.require(Action.SUSPEND)
        body = StoreSuspendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        store_suspend(
            store=store,
            source=SuspensionSource.TENANT,
            reason=body.validated_data["reason"],
            actor=request.user,
        )
        return self._render(self.get_queryset().get(pk=store.pk), status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Resume a paused store",
        description="Brings a `suspended` store back (`resuming`, then `ready`; `store.resumed` announces "
        "it). Only a pause the organisation asked for can be lifted here: a store paused by platform "
        "staff or for an unpaid account answers 403 with the reason.",
        request=None,
        responses={
            202: OpenApiResponse(StoreSerializer, "The resume is queued."),
            409: _error("The store is not suspended.", examples.INVALID_STATE),
            **NOT_FOUND,
            **AUTH_ERRORS,
            403: _error(
                "The caller's role or token does not allow it, or staff or billing paused the store "
                "(the organisation cannot resume it)."
            ),
        },
    )
    @action(detail=True, methods=["post"], serializer_class=None)
    def resume(self, request: Request, name: str) -> Response:
        store = self.get_object()
        self.require(Action.SUSPEND)
        store_resume(store=store, source=SuspensionSource.TENANT, actor=request.user)
        return self._render(self.get_queryset().get(pk=store.pk), status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="A store's timeline",
        description="Status changes, provisioning steps and audited actions, oldest first.",
        responses={200: StoreEventSerializer(many=True), **NOT_FOUND, **AUTH_ERRORS},
    )
    @action(detail=True, methods=["get"], serializer_class=StoreEventSerializer, filter_backends=[])
    def events(self, request: Request, name: str) -> Response:
        page = self.paginate_queryset(store_events(store=self.get_object()))
        return self.get_paginated_response(StoreEventSerializer(page, many=True).data)

    @extend_schema(
        summary="A store's events, pods, logs and usage",
        description="Read from the store's own namespace on each call: recent Kubernetes events, pods "
        "with restarts and OOM kills, the last `lines` of each container's log (or only `pod`'s / "
        "`container`'s), and CPU/memory against the plan's quota when the cluster has metrics-server. "
        "A part the cluster does not give is listed in `problems` in plain words. Redacted; "
        "rate-limited per user.",
        parameters=[ActivityQuerySerializer],
        responses={
            200: ActivitySerializer,
            400: _error("An unknown pod or container, or lines out of range.", examples.INVALID_FILTER),
            409: _error("The store is deleted, or still waiting for a worker.", examples.INVALID_STATE),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["get"], serializer_class=ActivitySerializer, filter_backends=[])
    def activity(self, request: Request, name: str) -> Response:
        store = self.get_object()
        query = ActivityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        activity = store_activity(store=store, actor=request.user, **query.validated_data)
        return Response(ActivitySerializer(ActivitySerializer.for_activity(activity)).data)

    @extend_schema(
        summary="Reveal a store's admin credentials",
        description="Reads the store's admin login from the cluster. Every call is recorded in the "
        "store's timeline; the values appear in no other response and are never cached.",
        request=None,
        responses={
            200: OpenApiResponse(CredentialsSerializer, "The admin login.", [examples.CREDENTIALS]),
            409: _error("The store is not ready yet.", examples.CREDENTIALS_UNAVAILABLE),
            503: _error("The cluster did not answer.", examples.CLUSTER_UNAVAILABLE),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["post"], serializer_class=CredentialsSerializer)
    def credentials(self, request: Request, name: str) -> Response:
        store = self.get_object()
        self.require(Action.REVEAL_CREDENTIALS)
        credentials = store_credentials_reveal(store=store, actor=request.user)
        data = CredentialsSerializer(credentials).data
        return Response(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _domain(self, store: Store, domain: str) -> StoreDomain:
        found = store_domain_get(store=store, domain=domain)
        if found is None:
            raise NotFound("No such domain on this store.")
        return found

    @extend_schema(
        methods=["GET"],
        summary="A store's custom domains",
        description="Each with its status and the DNS records to create (the TXT record proving "
        "ownership, and the CNAME or A/AAAA record pointing at the platform).",
        responses={200: StoreDomainSerializer(many=True), **NOT_FOUND, **AUTH_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a custom domain",
        description="The domain starts `pending_verification`; create the records shown, then it is "
        "verified (checked periodically, or at once with `check`), routed and given a certificate.",
        request=StoreDomainAddSerializer,
        responses={
            201: StoreDomainSerializer,
            400: _error("Not a domain the store can use; the message says why.", examples.DOMAIN_INVALID),
            409: _error("Another store already claims the domain.", examples.DOMAIN_TAKEN),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["get", "post"], serializer_class=StoreDomainSerializer, filter_backends=[])
    def domains(self, request: Request, name: str) -> Response:
        store = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(store_domains(store=store))
            return self.get_paginated_response(StoreDomainSerializer(page, many=True).data)
        self.require(Action.MANAGE_DOMAINS)
        payload = StoreDomainAddSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        domain = domain_add(store=store, domain=payload.validated_data["domain"], actor=request.user)
        return Response(StoreDomainSerializer(domain).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Check a domain's TXT record now",
        description="Looks the record up at once; a failed domain starts verification over.",
        request=None,
        responses={
            200: StoreDomainSerializer,
            409: _error("The domain was removed.", examples.INVALID_STATE),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"domains/(?P<domain>[^/]+)/check",
        serializer_class=StoreDomainSerializer,
    )
    def domain_check(self, request: Request, name: str, domain: str) -> Response:
        found = self._domain(self.get_object(), domain)
        self.require(Action.MANAGE_DOMAINS)
        return Response(StoreDomainSerializer(domain_check(domain_id=found.pk, actor=request.user)).data)

    @extend_schema(
        summary="Remove a custom domain",
        description="Its route and certificate leave the store with the next install, queued now; the "
        "name is free for any store again.",
        responses={200: StoreDomainSerializer, **NOT_FOUND, **AUTH_ERRORS},
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"domains/(?P<domain>[^/]+)",
        serializer_class=StoreDomainSerializer,
    )
    def domain_remove(self, request: Request, name: str, domain: str) -> Response:
        found = self._domain(self.get_object(), domain)
        self.require(Action.MANAGE_DOMAINS)
        return Response(StoreDomainSerializer(domain_remove(domain=found, actor=request.user)).data)

    @extend_schema(
        methods=["POST"],
        summary="Make a domain the store's primary",
        description="The shop calls itself by this domain (WordPress's home URL, Medusa's public URL) "
        "instead of its platform host; any other primary stops being one. Only an active domain (one "
        "with a certificate) qualifies. The store is re-installed to apply it.",
        request=None,
        responses={
            200: StoreDomainSerializer,
            409: _error("The domain is not active, or the store is busy.", examples.DOMAIN_NOT_ACTIVE),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Stop using the domain as the primary",
        description="The shop calls itself by its platform host again; the domain stays routed. The "
        "store is re-installed if the domain was in use.",
        request=None,
        responses={
            200: StoreDomainSerializer,
            409: _error("The store is busy.", examples.STORE_BUSY_FOR_PRIMARY),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(
        detail=True,
        methods=["post", "delete"],
        url_path=r"domains/(?P<domain>[^/]+)/primary",
        serializer_class=StoreDomainSerializer,
    )
    def domain_primary(self, request: Request, name: str, domain: str) -> Response:
        found = self._domain(self.get_object(), domain)
        self.require(Action.MANAGE_DOMAINS)
        if request.method == "POST":
            changed = domain_set_primary(domain=found, actor=request.user)
        else:
            changed = domain_unset_primary(domain=found, actor=request.user)
        return Response(StoreDomainSerializer(changed).data)

    @extend_schema(
        summary="List a store's backups, or back it up now",
        description="GET lists the store's backups, newest first. POST queues a backup (202): a Job "
        "dumps the database and the uploads to the backup storage; the backup goes `requested → "
        "running → completed → verified`, or `failed` with a reason.",
        request=None,
        responses={
            200: StoreBackupSerializer(many=True),
            202: StoreBackupSerializer,
            409: _error(
                "The store is not running, a backup already runs, or backups are off.", examples.INVALID_STATE
            ),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["get", "post"], serializer_class=StoreBackupSerializer, filter_backends=[])
    def backups(self, request: Request, name: str) -> Response:
        store = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(backups_for_store(store=store))
            return self.get_paginated_response(StoreBackupSerializer(page, many=True).data)
        self.require(Action.MANAGE_BACKUPS)
        backup = backup_request(store=store, actor=request.user)
        return Response(StoreBackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)


class BackupViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Every backup of the organisation's stores, deleted stores' final backups included."""

    serializer_class = StoreBackupSerializer
    lookup_value_regex = "[0-9]+"
    http_method_names = ["get", "post", "head"]

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return StoreBackup.objects.none()
        return backups_for_tenant(tenant=self.get_tenant())

    @extend_schema(
        summary="List the organisation's backups",
        description="Newest first; a deleted store's final backup stays listed until it expires.",
        responses={
            200: StoreBackupSerializer(many=True),
            404: _error("A page past the last one.", examples.INVALID_PAGE),
            **AUTH_ERRORS,
        },
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Get a backup", responses={200: StoreBackupSerializer, **NOT_FOUND, **AUTH_ERRORS})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    def get_object(self) -> StoreBackup:
        backup = backup_get_for_tenant(tenant=self.get_tenant(), backup_id=int(self.kwargs["pk"]))
        if backup is None:
            raise NotFound()
        return backup

    @extend_schema(
        summary="Restore a backup",
        description="Replaces the target store's data with the backup (the backup's own store unless "
        "`target_store` names another running store of the organisation and engine, e.g. a new store "
        "after the original was deleted). `confirm_name` must repeat the target's name. A safety backup "
        "of the target is taken first; the store is `restoring` until the load ends (202).",
        request=BackupRestoreSerializer,
        responses={
            202: StoreBackupSerializer,
            400: _error("The confirmation does not match the store's name.", examples.INVALID_STATE),
            409: _error(
                "The backup or the store cannot be restored now; the message says why.",
                examples.INVALID_STATE,
            ),
            404: _error("No such backup (or target store) in your organisation.", examples.NOT_FOUND),
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["post"], serializer_class=BackupRestoreSerializer)
    def restore(self, request: Request, pk: str) -> Response:
        backup = self.get_object()
        self.require(Action.MANAGE_BACKUPS)
        payload = BackupRestoreSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        target_name = payload.validated_data.get("target_store") or backup.store.name
        target = store_get_for_tenant(tenant=self.get_tenant(), name=target_name)
        if target is None:
            raise NotFound("No such store in your organisation.")
        safety = backup_restore(
            backup=backup,
            target=target,
            confirm_name=payload.validated_data["confirm_name"],
            actor=request.user,
        )
        return Response(StoreBackupSerializer(safety).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Create a store from a backup",
        description="A new store of the organisation, of the backup's engine, that starts with the "
        "backup's data (the way back for a deleted store's final backup): provisioned like any store, "
        "then `restoring` while the backup loads, then `ready` (202, with the new store).",
        request=BackupRestoreIntoNewStoreSerializer,
        responses={
            202: OpenApiResponse(StoreSerializer, "Accepted: the new store and its queued run."),
            400: _error("The name is not valid.", examples.INVALID_NAME),
            409: _error(
                "The name is in use, the plan's store limit is reached, or the backup cannot be loaded "
                "(not completed, expired, or backups are off).",
                examples.INVALID_STATE,
            ),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="restore-into-new-store",
        serializer_class=BackupRestoreIntoNewStoreSerializer,
    )
    def restore_into_new_store(self, request: Request, pk: str) -> Response:
        backup = self.get_object()
        self.require(Action.LAUNCH)
        self.require(Action.MANAGE_BACKUPS)
        payload = BackupRestoreIntoNewStoreSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        created = store_create_from_backup(
            backup=backup, name=payload.validated_data["name"], actor=request.user
        )
        store = store_get_for_tenant(tenant=self.get_tenant(), name=created.name)
        data = StoreSerializer(store, context=self.get_serializer_context()).data
        # str(): the serializer returns a Hyperlink (a str subclass), which WSGI servers refuse in headers.
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": str(data["url"])})


class PlanView(TenantScopedMixin, APIView):
    """The caller's plan: its limits and how much of them is used."""

    serializer_class = PlanSerializer
    http_method_names = ["get", "head"]

    @extend_schema(summary="Plan limits and usage", responses={200: PlanSerializer, **AUTH_ERRORS})
    def get(self, request: Request) -> Response:
        tenant = self.get_tenant()
        usage = PlanSerializer.for_plan(tenant.plan, live_stores=tenant_live_store_count(tenant=tenant))
        return Response(PlanSerializer(usage).data)
