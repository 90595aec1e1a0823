"""The engine registry: WooCommerce and Medusa differ only in chart, secret keys and values.

Adding an engine is one entry here, one chart under charts/ and one Engine choice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSpec:
    """Everything the platform needs to know to install and describe one store engine."""

    key: str
    label: str
    chart: str  # directory name under STORE_CHARTS_DIR
    secret_keys: tuple[str, ...]  # generated once per store into its credentials Secret
    admin_path: str  # where the merchant logs in, relative to the store URL
    summary: str
    includes: tuple[str, ...]


COMMON_SECRET_KEYS = (
    "admin-username",
    "admin-email",
    "admin-password",
    "database-password",
    "database-root-password",
)

ENGINES: dict[str, EngineSpec] = {
    "woocommerce": EngineSpec(
        key="woocommerce",
        label="WooCommerce",
        chart="woocommerce",
        secret_keys=COMMON_SECRET_KEYS,
        admin_path="wp-admin/",
        summary="WordPress with WooCommerce: themes, plugins and a familiar admin.",
        includes=(
            "WordPress + WooCommerce",
            "MariaDB database on its own volume",
            "Cash on Delivery enabled and a “Test Product” ready to sell",
        ),
    ),
    "medusa": EngineSpec(
        key="medusa",
        label="Medusa",
        chart="medusa",
        secret_keys=(*COMMON_SECRET_KEYS, "jwt-secret", "cookie-secret"),
        admin_path="app/",
        summary="Medusa v2: a headless commerce API with an admin dashboard.",
        includes=(
            "Medusa v2 server and admin",
            "PostgreSQL and Redis",
            "A region, sales channel, publishable API key and a “Test Product”",
        ),
    ),
}

# The Kubernetes Secret (in the store namespace) that holds the generated credentials.
CREDENTIALS_OBJECT_NAME = "store-credentials"
