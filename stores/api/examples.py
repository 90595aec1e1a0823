"""Request and response examples shown in the OpenAPI schema and Swagger UI."""

from drf_spectacular.utils import OpenApiExample


def _error(name: str, code: str, message: str, fields: dict[str, list[str]] | None = None) -> OpenApiExample:
    return OpenApiExample(
        name, value={"error": {"code": code, "message": message, "fields": fields or {}}}, response_only=True
    )


_RUN = {
    "id": 41,
    "kind": "provision",
    "status": "queued",
    "attempt": 1,
    "created_at": "2025-05-01T09:30:00Z",
    "started_at": None,
    "finished_at": None,
    "error": "",
}

CREATE_REQUEST = OpenApiExample(
    "Create a WooCommerce store", value={"name": "acme-shop", "engine": "woocommerce"}, request_only=True
)
STORE = OpenApiExample(
    "A store just requested",
    value={
        "url": "https://platform.example.com/api/v1/stores/acme-shop/",
        "name": "acme-shop",
        "engine": "woocommerce",
        "status": "requested",
        "status_reason": "Store requested.",
        "public_url": "https://acme-shop.stores.example.com/",
        "created_at": "2025-05-01T09:30:00Z",
        "status_changed_at": "2025-05-01T09:30:00Z",
        "ready_at": None,
        "deleted_at": None,
        "latest_run": _RUN,
    },
    response_only=True,
)
CREDENTIALS = OpenApiExample(
    "WooCommerce admin login",
    value={
        "admin_url": "https://acme-shop.stores.example.com/wp-admin/",
        "username": "admin",
        "email": "owner@acme.example",
        "password": "a-long-generated-password",
    },
    response_only=True,
)

NOT_AUTHENTICATED = _error(
    "No token", "not_authenticated", "Authentication required: send `Authorization: Token <token>`."
)
NO_TENANT = _error("No organisation", "no_tenant", "Your account does not belong to an organisation.")
THROTTLED = _error("Throttled", "throttled", "Too many requests; retry in 12 seconds.")
NOT_FOUND = _error("Not found", "not_found", "Not found.")
INVALID_PAGE = _error("Past the last page", "not_found", "Invalid page.")
INVALID_NAME = _error(
    "Invalid name",
    "invalid",
    "The request is not valid; see `fields`.",
    {"name": ["Store name must be lowercase. Try “acme-shop”."]},
)
INVALID_FILTER = _error(
    "Unknown filter value",
    "invalid",
    "The request is not valid; see `fields`.",
    {"status": ['"shipped" is not a valid choice.']},
)
UNKNOWN_FIELD = _error(
    "Unknown field",
    "invalid",
    "The request is not valid; see `fields`.",
    {"status": ["Unknown or read-only field; this endpoint accepts only: engine, name."]},
)
NAME_TAKEN = _error(
    "Name taken",
    "name_taken",
    "The name “acme-shop” is already taken. Choose another name.",
    {"name": ["The name “acme-shop” is already taken."]},
)
PLAN_LIMIT = _error(
    "Plan limit",
    "plan_limit",
    "Your plan “Starter” allows 3 stores; delete one or upgrade your plan.",
)
UNSUPPORTED_MEDIA_TYPE = _error(
    "Not JSON", "unsupported_media_type", 'Unsupported media type "text/plain" in request.'
)
KEY_REUSED = _error(
    "Key reused",
    "idempotency_key_reused",
    "This Idempotency-Key was already used with a different request; use a new key for a new request.",
)
INVALID_KEY = _error(
    "Unusable key",
    "invalid_idempotency_key",
    "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
    {"Idempotency-Key": ["Use a random value such as a UUID."]},
)
INVALID_STATE = _error(
    "Not failed", "invalid_state", "Only a failed store can be retried; this one is ready."
)
CREDENTIALS_UNAVAILABLE = _error(
    "Not ready",
    "credentials_unavailable",
    "Credentials are available once the store is ready; it is provisioning.",
)
CLUSTER_UNAVAILABLE = _error(
    "Cluster down", "cluster_unavailable", "The cluster did not answer; try again in a minute."
)
DOMAIN_INVALID = _error(
    "Refused domain",
    "invalid_domain",
    "coffee.shops.example belongs to the platform (shops.example); every store already has its own "
    "address there. Add a domain you own instead.",
)
DOMAIN_TAKEN = _error(
    "Domain taken", "domain_taken", "shop.example.com is already claimed by another account."
)
DOMAIN_NOT_ACTIVE = _error(
    "Not active",
    "invalid_state",
    "shop.example.com is issuing certificate; only an active domain (one with a certificate) can be the "
    "primary domain, so shoppers are never sent to an address without HTTPS.",
)
STORE_BUSY_FOR_PRIMARY = _error(
    "Store busy", "invalid_state", "The store is requested; change its primary domain once it is ready."
)
