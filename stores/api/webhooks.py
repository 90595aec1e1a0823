"""The partner API's webhook endpoints: add, list, rotate the secret, enable, delete; the delivery log
and resends. Scoped to the caller's tenant like the stores (another tenant's endpoint is a 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from stores.api.serializers import ErrorSerializer, StrictInputSerializer
from stores.api.views import AUTH_ERRORS, TenantScopedMixin
from stores.choices import WebhookEventType
from stores.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from stores.permissions import Action
from stores.selectors import webhook_deliveries_for_endpoint, webhook_endpoints_for_tenant
from stores.webhooks import (
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
)

NOT_FOUND = {404: OpenApiResponse(ErrorSerializer, description="No such endpoint in your organisation.")}
PAST_LAST_PAGE = {404: OpenApiResponse(ErrorSerializer, description="A page past the last one.")}
PAGE_OR_NOT_FOUND = {
    404: OpenApiResponse(ErrorSerializer, description="No such endpoint, or a page past the last one.")
}


class WebhookEndpointSerializer(serializers.ModelSerializer):
    enabled = serializers.BooleanField(source="is_enabled", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "last_success_at",
            "created_at",
        ]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret; shown only in this response."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointCreateSerializer(StrictInputSerializer):
    url = serializers.CharField(max_length=2000, trim_whitespace=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices),
        required=False,
        default=list,
        help_text="Empty or absent: every event.",
    )


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True)
    previous_secret_valid_until = serializers.DateTimeField(read_only=True)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "status_code", "duration_ms", "error", "response_excerpt"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="message.msg_id", read_only=True)
    event_type = serializers.CharField(source="message.event_type", read_only=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_duration_ms",
            "last_error",
            "next_attempt_at",
            "created_at",
            "finished_at",
            "attempt_log",
        ]
        read_only_fields = fields


class WebhookEndpointViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's webhook endpoints. Reading needs view access; changes need an owner."""

    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "delete", "head"]

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return webhook_endpoints_for_tenant(tenant=self.get_tenant())

    def get_object(self) -> WebhookEndpoint:
        endpoint = (
            self.get_queryset().filter(pk=self.kwargs["pk"]).first() if self.kwargs["pk"].isdigit() else None
        )
        if endpoint is None:
            raise NotFound()
        return endpoint

    @extend_schema(
        summary="List webhook endpoints",
        responses={200: WebhookEndpointSerializer(many=True), **PAST_LAST_PAGE, **AUTH_ERRORS},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Get a webhook endpoint",
        responses={200: WebhookEndpointSerializer, **NOT_FOUND, **AUTH_ERRORS},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Add a webhook endpoint",
        description="Events are POSTed as JSON signed per the Standard Webhooks spec (`webhook-id`, "
        "`webhook-timestamp`, `webhook-signature`). The secret is in this response only. The URL must "
        "resolve to a public address.",
        request=WebhookEndpointCreateSerializer,
        responses={
            201: WebhookEndpointCreatedSerializer,
            400: OpenApiResponse(ErrorSerializer, description="The URL is refused or an event is unknown."),
            409: OpenApiResponse(
                ErrorSerializer, description="The organisation has the most endpoints allowed."
            ),
            **AUTH_ERRORS,
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.require(Action.MANAGE_WEBHOOKS)
        payload = WebhookEndpointCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint, secret = webhook_endpoint_create(
            tenant=self.get_tenant(), actor=request.user, **payload.validated_data
        )
        endpoint.secret = secret  # type: ignore[attr-defined]
        return Response(
            WebhookEndpointCreatedSerializer(endpoint).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )

    @extend_schema(summary="Delete a webhook endpoint", responses={204: None, **NOT_FOUND, **AUTH_ERRORS})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        self.require(Action.MANAGE_WEBHOOKS)
        webhook_endpoint_delete(endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate the signing secret",
        description="Returns the new secret once. Until `previous_secret_valid_until` every event also "
        "carries a signature with the old secret, so receivers can switch without losing events.",
        request=None,
        responses={200: WebhookSecretSerializer, **NOT_FOUND, **AUTH_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint = self.get_object()
        self.require(Action.MANAGE_WEBHOOKS)
        secret = webhook_endpoint_rotate_secret(endpoint=endpoint)
        endpoint.refresh_from_db()
        data = {"secret": secret, "previous_secret_valid_until": endpoint.previous_secret_expires_at}
        return Response(WebhookSecretSerializer(data).data, headers={"Cache-Control": "no-store"})

    @extend_schema(
        summary="Enable a disabled endpoint",
        request=None,
        responses={200: WebhookEndpointSerializer, **NOT_FOUND, **AUTH_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str) -> Response:
        endpoint = self.get_object()
        self.require(Action.MANAGE_WEBHOOKS)
        return Response(WebhookEndpointSerializer(webhook_endpoint_enable(endpoint=endpoint)).data)

    @extend_schema(
        summary="The endpoint's delivery log",
        description="Newest first: each event's status, attempts (status code, duration) and next attempt.",
        responses={200: WebhookDeliverySerializer(many=True), **PAGE_OR_NOT_FOUND, **AUTH_ERRORS},
    )
    @action(detail=True, methods=["get"], serializer_class=WebhookDeliverySerializer)
    def deliveries(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(webhook_deliveries_for_endpoint(endpoint=self.get_object()))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Resend a delivery",
        description="Sends the event again with the same `webhook-id` (receivers dedupe on it).",
        request=None,
        responses={
            202: WebhookDeliverySerializer,
            409: OpenApiResponse(ErrorSerializer, description="Still retrying, or the endpoint is disabled."),
            **NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>\d+)/resend")
    def resend(self, request: Request, pk: str, delivery_id: str) -> Response:
        endpoint = self.get_object()
        self.require(Action.MANAGE_WEBHOOKS)
        delivery = webhook_deliveries_for_endpoint(endpoint=endpoint).filter(pk=int(delivery_id)).first()
        if delivery is None:
            raise NotFound()
        delivery = webhook_delivery_resend(delivery=delivery)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
