"""WooCommerce: an order through the Store API (cart, Cash on Delivery checkout), confirmed through
the REST API.

Store API sessions: every response carries a `Nonce` and a `Cart-Token` header; cart-changing
requests must send them back (the nonce guards against CSRF, the token names the cart without a
cookie). The client sends the latest of both on every request.

Admin confirmation (`GET /wp-json/wc/v3/orders/<id>`): HTTP Basic auth works with an application
password. On a stock WordPress the account password does not work with Basic auth (core accepts
only application passwords there, and offers them only over HTTPS or in a "local" environment), so
on a 401/403 the client logs in like a browser (`wp-login.php`), asks for a REST nonce
(`admin-ajax.php?action=rest-nonce`) and retries with the login cookie and `X-WP-Nonce`. Either the
account password or an application password therefore works.
"""

from __future__ import annotations

import base64
from typing import Any

from testkit.storefront.base import PlacedOrder, StoreClient, field_of
from testkit.storefront.http import Response

STORE_API = "/wp-json/wc/store/v1"
PAYMENT_METHOD = "cod"
DEFAULT_COUNTRY = "DE"
# Order states in which a Cash on Delivery order is accepted and waiting for, or past, delivery.
ACCEPTED_STATES = ("pending", "processing", "on-hold", "completed")


class WooCommerceStoreClient(StoreClient):
    """Places an order in a WooCommerce store; `admin_user` is the WordPress admin's login name."""

    engine = "woocommerce"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._session_headers: dict[str, str] = {}

    def _store(self, step: str, method: str, path: str, **kwargs: Any) -> Response:
        response = self.http.request(
            step, method, f"{STORE_API}{path}", headers=dict(self._session_headers), **kwargs
        )
        for header in ("Nonce", "Cart-Token"):
            value = response.headers.get(header)
            if value:
                self._session_headers[header] = value
        return response

    def prepare(self) -> None:
        """Nothing to do: the Store API is public and the admin logs in only to confirm."""

    def find_product(self, title: str) -> dict[str, Any]:
        step = "list products"
        response = self._store(step, "GET", "/products", query={"search": title})
        products = response.json()
        if not isinstance(products, list):
            raise response.error("expected a list of products")
        product = next((p for p in products if p.get("name") == title), None)
        if product is None:
            raise response.error(f"no product named {title!r}")
        if not product.get("is_purchasable", True) or not product.get("is_in_stock", True):
            raise response.error(f"{title!r} is not purchasable or out of stock")
        self.report(step, f"found {title!r} (id {product['id']})")
        return product

    def fill_cart(self, product: dict[str, Any]) -> dict[str, Any]:
        step = "open cart"
        response = self._store(step, "GET", "/cart")
        if "Nonce" not in self._session_headers:
            raise response.error("the store sent no Nonce header")
        self.report(
            step,
            "got a Store API nonce" + (" and cart token" if "Cart-Token" in self._session_headers else ""),
        )

        step = "add item"
        response = self._store(
            step, "POST", "/cart/add-item", json_body={"id": product["id"], "quantity": 1}, expect=(200, 201)
        )
        cart = response.json()
        count = field_of(response, cart, "items_count")
        if not count:
            raise response.error("the cart is still empty")
        self.report(step, f"{count} item(s), total {cart.get('totals', {}).get('total_price', '?')}")
        return cart

    def checkout(self, cart: dict[str, Any]) -> str:
        customer = self.customer
        address = {
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "company": "",
            "address_1": customer.address_1,
            "address_2": "",
            "city": customer.city,
            "state": "",
            "postcode": customer.postal_code,
            "country": (customer.country_code or DEFAULT_COUNTRY).upper(),
            "phone": customer.phone,
        }
        step = "checkout"
        response = self._store(
            step,
            "POST",
            "/checkout",
            json_body={
                "billing_address": {**address, "email": customer.email},
                "shipping_address": address,
                "payment_method": PAYMENT_METHOD,
            },
        )
        result = response.json()
        order_id = field_of(response, result, "order_id")
        payment = (result.get("payment_result") or {}).get("payment_status")
        if payment not in (None, "success"):
            raise response.error(f"payment result is {payment!r}")
        self.report(step, f"order {order_id} status {result.get('status')}")
        return str(order_id)

    def _basic_auth(self) -> str:
        raw = f"{self.admin_user}:{self._admin_password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _cookie_login(self) -> str:
        step = "admin login (wp-login.php)"
        # WordPress refuses a login whose browser did not keep its test cookie; this GET sets it.
        self.http.request(step, "GET", "/wp-login.php", expect=(200,))
        response = self.http.request(
            step,
            "POST",
            "/wp-login.php",
            form={
                "log": self.admin_user,
                "pwd": self._admin_password,
                "wp-submit": "Log In",
                "redirect_to": self.http.url_for("/wp-admin/"),
                "testcookie": "1",
            },
            # 302 to the dashboard on success; a failed login shows the form again with 200.
            expect=(200, 302),
        )
        if not any(cookie.name.startswith("wordpress_logged_in") for cookie in self.http.cookies):
            raise response.error("WordPress did not accept the admin login")
        step = "admin REST nonce"
        response = self.http.request(
            step, "GET", "/wp-admin/admin-ajax.php", query={"action": "rest-nonce"}, expect=(200,)
        )
        nonce = response.text().strip()
        if not nonce or nonce == "0":
            raise response.error("no REST nonce for the logged-in admin")
        self.report(step, "logged in with the account password")
        return nonce

    def confirm_order(self, order_id: str) -> PlacedOrder:
        step = "confirm order (admin)"
        path = f"/wp-json/wc/v3/orders/{order_id}"
        response = self.http.request(
            step, "GET", path, headers={"Authorization": self._basic_auth()}, expect=(200, 401, 403)
        )
        if response.status != 200:
            self.report(step, f"Basic auth refused (HTTP {response.status}); logging in with the password")
            nonce = self._cookie_login()
            response = self.http.request(step, "GET", path, headers={"X-WP-Nonce": nonce})
        order = response.json()
        status = field_of(response, order, "status")
        if status not in ACCEPTED_STATES:
            raise response.error(f"order status is {status!r}")
        if order.get("payment_method") != PAYMENT_METHOD:
            raise response.error(f"payment method is {order.get('payment_method')!r}, not {PAYMENT_METHOD!r}")
        self.report(
            step,
            f"#{order.get('number')} status {status}, total {order.get('total')} {order.get('currency')}",
        )
        return PlacedOrder(
            engine=self.engine,
            order_id=str(order.get("id", order_id)),
            number=str(order.get("number", "")),
            status=status,
            payment_status="cash on delivery",
            total=str(order.get("total", "")),
            currency=str(order.get("currency", "")),
        )
