"""Store clients that place a real order in a provisioned store and confirm it as the store's admin.

One structure for both engines (`StoreClient.place_order`), used by the Medusa proof test and by
`deploy/e2e-cluster.sh` through `python -m testkit.storefront place-order`. Standard library
only, no Django: the CLI runs wherever Python does.
"""

from testkit.storefront.base import Customer, PlacedOrder, StoreClient
from testkit.storefront.http import StoreStepError
from testkit.storefront.medusa import MedusaStoreClient
from testkit.storefront.woocommerce import WooCommerceStoreClient

# Keyed by the platform's engine values (stores.choices.Engine); plain strings because this package
# runs without Django. testkit/tests/test_storefront.py checks the keys match the engine catalogue.
ENGINE_CLIENTS: dict[str, type[StoreClient]] = {
    "medusa": MedusaStoreClient,
    "woocommerce": WooCommerceStoreClient,
}

__all__ = [
    "ENGINE_CLIENTS",
    "Customer",
    "MedusaStoreClient",
    "PlacedOrder",
    "StoreClient",
    "StoreStepError",
    "WooCommerceStoreClient",
]
