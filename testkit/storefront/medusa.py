"""Medusa v2: an order through the Store API, confirmed (and optionally captured) through the Admin API.

The publishable API key is public by design but per store; when none is given the client logs in to
the Admin API and takes the first unrevoked publishable key linked to a sales channel
(`GET /admin/api-keys?type=publishable`), which is where the seed's key "Webshop" lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from testkit.storefront.base import PlacedOrder, StoreClient, field_of
from testkit.storefront.http import Response

SYSTEM_PAYMENT_PROVIDER = "pp_system_default"
# Payment states of an order whose payment the system provider accepted.
PAID_STATES = ("authorized", "captured")


@dataclass(frozen=True)
class MedusaProduct:
    product_id: str
    variant_id: str
    region_id: str
    country_code: str


class MedusaStoreClient(StoreClient):
    """Places an order in a Medusa v2 store; `admin_user` is the admin's e-mail address."""

    engine = "medusa"

    def __init__(self, *, publishable_key: str = "", capture: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.publishable_key = publishable_key
        self.capture = capture
        self._admin_token = ""

    def _store(self, step: str, method: str, path: str, **kwargs: Any) -> Response:
        headers = {"x-publishable-api-key": self.publishable_key}
        return self.http.request(step, method, path, headers=headers, **kwargs)

    def _admin(self, step: str, method: str, path: str, **kwargs: Any) -> Response:
        headers = {"Authorization": f"Bearer {self._admin_token}"}
        return self.http.request(step, method, path, headers=headers, **kwargs)

    def prepare(self) -> None:
        step = "admin login"
        response = self.http.request(
            step,
            "POST",
            "/auth/user/emailpass",
            json_body={"email": self.admin_user, "password": self._admin_password},
        )
        self._admin_token = field_of(response, response.json(), "token")
        self.report(step, f"logged in as {self.admin_user}")
        if self.publishable_key:
            return
        step = "publishable key"
        response = self._admin(step, "GET", "/admin/api-keys", query={"type": "publishable", "limit": "100"})
        keys = field_of(response, response.json(), "api_keys")
        usable = [key for key in keys if not key.get("revoked_at") and key.get("sales_channels")]
        if not usable:
            raise response.error("no unrevoked publishable API key linked to a sales channel")
        self.publishable_key = usable[0]["token"]
        self.report(step, f"using key '{usable[0].get('title', '')}' ({usable[0].get('redacted', '')})")

    def find_product(self, title: str) -> MedusaProduct:
        step = "regions"
        response = self._store(step, "GET", "/store/regions")
        regions = field_of(response, response.json(), "regions")
        region = next((r for r in regions if r.get("countries")), None)
        if region is None:
            raise response.error("the store has no region with a country")
        country = self.customer.country_code or region["countries"][0]["iso_2"]
        self.report(step, f"region {region['name']} ({region['currency_code']}, country {country})")

        step = "list products"
        response = self._store(
            step, "GET", "/store/products", query={"q": title, "region_id": region["id"], "limit": "50"}
        )
        products = field_of(response, response.json(), "products")
        product = next((p for p in products if p.get("title") == title), None)
        if product is None or not product.get("variants"):
            raise response.error(f"no product titled {title!r} with a variant")
        self.report(step, f"found {title!r} ({product['id']})")
        return MedusaProduct(product["id"], product["variants"][0]["id"], region["id"], country)

    def fill_cart(self, product: MedusaProduct) -> dict[str, Any]:
        step = "create cart"
        response = self._store(step, "POST", "/store/carts", json_body={"region_id": product.region_id})
        cart = field_of(response, response.json(), "cart")
        self.report(step, cart["id"])

        step = "add line item"
        response = self._store(
            step,
            "POST",
            f"/store/carts/{cart['id']}/line-items",
            json_body={"variant_id": product.variant_id, "quantity": 1},
        )
        cart = field_of(response, response.json(), "cart")
        self.report(step, f"{len(cart.get('items', []))} item(s)")
        return {"cart": cart, "country": product.country_code}

    def checkout(self, cart: dict[str, Any]) -> str:
        cart_id = cart["cart"]["id"]
        customer = self.customer
        address = {
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "address_1": customer.address_1,
            "city": customer.city,
            "postal_code": customer.postal_code,
            "country_code": cart["country"],
            "phone": customer.phone,
        }
        step = "set email and addresses"
        self._store(
            step,
            "POST",
            f"/store/carts/{cart_id}",
            json_body={"email": customer.email, "shipping_address": address, "billing_address": address},
        )
        self.report(step, customer.email)

        step = "shipping options"
        response = self._store(step, "GET", "/store/shipping-options", query={"cart_id": cart_id})
        options = field_of(response, response.json(), "shipping_options")
        if not options:
            raise response.error("no shipping option for this cart")
        self.report(step, f"choosing {options[0].get('name', options[0]['id'])!r}")

        step = "add shipping method"
        self._store(
            step,
            "POST",
            f"/store/carts/{cart_id}/shipping-methods",
            json_body={"option_id": options[0]["id"]},
        )
        self.report(step, options[0]["id"])

        step = "payment collection"
        response = self._store(step, "POST", "/store/payment-collections", json_body={"cart_id": cart_id})
        collection = field_of(response, response.json(), "payment_collection")
        self.report(step, f"{collection['id']} amount {collection.get('amount')}")

        step = "payment session"
        self._store(
            step,
            "POST",
            f"/store/payment-collections/{collection['id']}/payment-sessions",
            json_body={"provider_id": SYSTEM_PAYMENT_PROVIDER},
        )
        self.report(step, SYSTEM_PAYMENT_PROVIDER)

        step = "complete cart"
        response = self._store(step, "POST", f"/store/carts/{cart_id}/complete")
        result = response.json()
        if result.get("type") != "order":
            message = (result.get("error") or {}).get("message", "")
            raise response.error(f"the cart was not turned into an order {message}".strip())
        order = field_of(response, result, "order")
        self.report(step, f"order {order['id']} (#{order.get('display_id')})")
        return order["id"]

    def _admin_order(self, step: str, order_id: str) -> tuple[Response, dict[str, Any]]:
        response = self._admin(
            step,
            "GET",
            f"/admin/orders/{order_id}",
            query={
                "fields": "id,display_id,status,payment_status,total,currency_code,*payment_collections.payments"
            },
        )
        return response, field_of(response, response.json(), "order")

    def confirm_order(self, order_id: str) -> PlacedOrder:
        step = "confirm order (admin)"
        response, order = self._admin_order(step, order_id)
        if order.get("payment_status") not in PAID_STATES:
            raise response.error(f"payment status is {order.get('payment_status')!r}, not authorized")
        self.report(
            step,
            f"#{order.get('display_id')} status {order.get('status')}, payment {order['payment_status']}",
        )

        if self.capture and order["payment_status"] != "captured":
            step = "capture payment (admin)"
            payments = [p for c in order.get("payment_collections") or [] for p in c.get("payments") or []]
            if not payments:
                raise response.error("the order has no payment to capture")
            self._admin(step, "POST", f"/admin/payments/{payments[0]['id']}/capture", json_body={})
            response, order = self._admin_order(step, order_id)
            if order.get("payment_status") != "captured":
                raise response.error(f"payment status is {order.get('payment_status')!r} after capture")
            self.report(step, f"payment {payments[0]['id']} captured")

        return PlacedOrder(
            engine=self.engine,
            order_id=order["id"],
            number=str(order.get("display_id", "")),
            status=str(order.get("status", "")),
            payment_status=order["payment_status"],
            total=str(order.get("total", "")),
            currency=str(order.get("currency_code", "")),
        )
