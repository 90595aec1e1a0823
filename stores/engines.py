"""The engine catalogue: everything the platform knows about WooCommerce and Medusa, in one place.

Forms, the API, the admin, credential reveals, helm values and the tests all read it; no other module
names an engine. Adding an engine is one entry here, one `Engine` choice and one chart under charts/.
"""

from __future__ import annotations

from dataclasses import dataclass

from stores.choices import Engine

# The Kubernetes Secret (in the store namespace) holding the generated credentials; charts get only
# its name (`existingSecret`).
CREDENTIALS_OBJECT_NAME = "store-credentials"

COMMON_SECRET_KEYS = (
    "admin-username",
    "admin-email",
    "admin-password",
    "database-password",
    "database-root-password",
)


@dataclass(frozen=True)
class EngineSpec:
    """One store engine: its chart, its credentials and how a merchant logs in to it."""

    key: Engine
    label: str
    chart: str  # directory name under STORE_CHARTS_DIR
    secret_keys: tuple[str, ...]  # generated once per store into its credentials Secret
    admin_path: str  # where the merchant logs in, relative to the store URL
    login_key: str  # which credentials key is the admin's login name
    login_label: str  # what the login name is called on the credentials panel
    summary: str
    includes: tuple[str, ...]


ENGINE_CATALOGUE: dict[Engine, EngineSpec] = {
    Engine.WOOCOMMERCE: EngineSpec(
        key=Engine.WOOCOMMERCE,
        label="WooCommerce",
        chart="woocommerce",
        secret_keys=COMMON_SECRET_KEYS,
        admin_path="wp-admin/",
        login_key="admin-username",
        login_label="Username",
        summary="WordPress with WooCommerce: themes, plugins and a familiar admin.",
        includes=(
            "WordPress + WooCommerce",
            "MariaDB database on its own volume",
            "Cash on Delivery enabled and a “Test Product” ready to sell",
        ),
    ),
    Engine.MEDUSA: EngineSpec(
        key=Engine.MEDUSA,
        label="Medusa",
        chart="medusa",
        secret_keys=(*COMMON_SECRET_KEYS, "jwt-secret", "cookie-secret"),
        admin_path="app/",
        # Medusa's admin signs in with an e-mail address, not a user name.
        login_key="admin-email",
        login_label="Email",
        summary="Medusa v2: a headless commerce API with an admin dashboard.",
        includes=(
            "Medusa v2 server and admin",
            "PostgreSQL and Redis",
            "A region, sales channel, publishable API key and a “Test Product”",
        ),
    ),
}


def engine_spec(engine: str) -> EngineSpec:
    """The catalogue entry of `engine` (a stored Store.engine value); KeyError for an unknown one."""
    return ENGINE_CATALOGUE[Engine(engine)]


def engine_choices() -> list[tuple[str, str]]:
    """(value, label) pairs for forms, in catalogue order."""
    return [(str(spec.key), spec.label) for spec in ENGINE_CATALOGUE.values()]
