"""The store clients against small local fakes.

WooCommerce cannot be installed here (the plugin cannot be downloaded), so its request sequence is
proven against a fake that enforces what the real Store API and WordPress enforce: cart changes need
the latest `Nonce` and the `Cart-Token`, the checkout needs Cash on Delivery and an address, the
REST API takes an application password over Basic auth but not the account password, and a browser
login needs the test cookie first. The Medusa happy path runs against the real Medusa in
test_medusa_native.py; here only its error reporting is checked.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testkit.storefront import ENGINE_CLIENTS, MedusaStoreClient, StoreStepError, WooCommerceStoreClient
from testkit.storefront.__main__ import main
from testkit.storefront.http import HttpSession

ADMIN = "shopadmin"
ACCOUNT_PASSWORD = "account pass äö"
APP_PASSWORD = "abcd EFGH ijkl MNOP qrst UVWX"
PRODUCTS = [
    {"id": 11, "name": "Test Product Deluxe", "is_purchasable": True, "is_in_stock": True},
    {"id": 12, "name": "Test Product", "is_purchasable": True, "is_in_stock": True},
]


@dataclass
class WooState:
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    rest_nonces: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    payment_methods: tuple[str, ...] = ("cod",)


class FakeWooCommerce(BaseHTTPRequestHandler):
    state: WooState

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cookies(self) -> dict[str, str]:
        pairs = (part.strip().split("=", 1) for part in (self.headers.get("Cookie") or "").split(";"))
        return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}

    def _route(self) -> tuple[str, dict[str, str]]:
        url = urllib.parse.urlsplit(self.path)
        return url.path, dict(urllib.parse.parse_qsl(url.query))

    def _store_session(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The Store API's session headers: a rotating Nonce per cart and the Cart-Token naming it."""
        token = self.headers.get("Cart-Token")
        cart = self.state.carts.get(token or "")
        if cart is None:
            token = secrets.token_hex(8)
            cart = self.state.carts[token] = {"items": [], "nonce": ""}
        cart["nonce"] = secrets.token_hex(5)
        return cart, {"Nonce": cart["nonce"], "Cart-Token": token}

    def do_GET(self) -> None:
        path, query = self._route()
        self.state.log.append(f"GET {path}")
        if path == "/wp-json/wc/store/v1/products":
            found = [p for p in PRODUCTS if query.get("search", "").lower() in p["name"].lower()]
            return self._send(200, found)
        if path == "/wp-json/wc/store/v1/cart":
            cart, headers = self._store_session()
            return self._send(200, {"items_count": len(cart["items"])}, headers)
        if path.startswith("/wp-json/wc/v3/orders/"):
            return self._order(int(path.rsplit("/", 1)[1]))
        if path == "/wp-login.php":
            return self._send(
                200, "<form>login</form>", {"Set-Cookie": "wordpress_test_cookie=WP%20Cookie%20check; path=/"}
            )
        if path == "/wp-admin/admin-ajax.php" and query.get("action") == "rest-nonce":
            if not self._logged_in():
                return self._send(400, "0")
            nonce = secrets.token_hex(5)
            self.state.rest_nonces.add(nonce)
            return self._send(200, nonce)
        return self._send(404, {"code": "rest_no_route"})

    def do_POST(self) -> None:
        path, _ = self._route()
        self.state.log.append(f"POST {path}")
        if path == "/wp-login.php":
            return self._login(dict(urllib.parse.parse_qsl(self._body().decode())))
        if not path.startswith("/wp-json/wc/store/v1/"):
            return self._send(404, {"code": "rest_no_route"})
        token = self.headers.get("Cart-Token") or ""
        cart = self.state.carts.get(token)
        if cart is None or self.headers.get("Nonce") != cart["nonce"]:
            return self._send(
                401, {"code": "woocommerce_rest_missing_nonce", "message": "Missing the Nonce header."}
            )
        payload = json.loads(self._body() or b"{}")
        _, headers = self._store_session()
        if path == "/wp-json/wc/store/v1/cart/add-item":
            product = next((p for p in PRODUCTS if p["id"] == payload.get("id")), None)
            if product is None:
                return self._send(400, {"code": "woocommerce_rest_cart_invalid_product"}, headers)
            cart["items"].append({"id": product["id"], "quantity": payload.get("quantity", 1)})
            body = {"items_count": len(cart["items"]), "totals": {"total_price": "1999"}}
            return self._send(201, body, headers)
        if path == "/wp-json/wc/store/v1/checkout":
            return self._checkout(cart, payload, headers)
        return self._send(404, {"code": "rest_no_route"}, headers)

    def _checkout(self, cart: dict[str, Any], payload: dict[str, Any], headers: dict[str, str]) -> None:
        if not cart["items"]:
            return self._send(400, {"code": "woocommerce_rest_cart_empty"}, headers)
        if payload.get("payment_method") not in self.state.payment_methods:
            message = {
                "code": "woocommerce_rest_checkout_invalid_payment_method",
                "message": "Invalid method.",
            }
            return self._send(400, message, headers)
        billing, shipping = payload.get("billing_address", {}), payload.get("shipping_address", {})
        if not billing.get("email") or not billing.get("country") or not shipping.get("address_1"):
            return self._send(400, {"code": "woocommerce_rest_invalid_address"}, headers)
        order_id = 100 + len(self.state.orders)
        self.state.orders[order_id] = {
            "id": order_id,
            "number": str(order_id),
            "status": "processing",
            "payment_method": payload["payment_method"],
            "total": "24.99",
            "currency": "EUR",
        }
        result = {
            "order_id": order_id,
            "status": "processing",
            "payment_result": {"payment_status": "success"},
        }
        return self._send(200, result, headers)

    def _logged_in(self) -> bool:
        return any(
            v in self.state.sessions
            for k, v in self._cookies().items()
            if k.startswith("wordpress_logged_in")
        )

    def _login(self, form: dict[str, str]) -> None:
        if "wordpress_test_cookie" not in self._cookies():
            return self._send(200, "Cookies are blocked or not supported by your browser.")
        if form.get("log") != ADMIN or form.get("pwd") != ACCOUNT_PASSWORD:
            return self._send(200, "<div id='login_error'>The password you entered is incorrect.</div>")
        session = secrets.token_hex(8)
        self.state.sessions.add(session)
        return self._send(
            302, "", {"Location": "/wp-admin/", "Set-Cookie": f"wordpress_logged_in_abc={session}; path=/"}
        )

    def _order(self, order_id: int) -> None:
        authorization = self.headers.get("Authorization", "")
        by_app_password = (
            authorization == "Basic " + base64.b64encode(f"{ADMIN}:{APP_PASSWORD}".encode()).decode()
        )
        by_cookie = self._logged_in() and self.headers.get("X-WP-Nonce") in self.state.rest_nonces
        if not (by_app_password or by_cookie):
            # What WordPress answers when Basic auth carries the account password over plain HTTP.
            return self._send(
                401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot view."}
            )
        if order_id not in self.state.orders:
            return self._send(404, {"code": "woocommerce_rest_shop_order_invalid_id"})
        return self._send(200, self.state.orders[order_id])


@pytest.fixture
def woocommerce() -> Iterator[tuple[str, WooState]]:
    state = WooState()
    handler = type("Handler", (FakeWooCommerce,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _woo_client(url: str, password: str, steps: list[str] | None = None) -> WooCommerceStoreClient:
    def report(step: str, message: str) -> None:
        if steps is not None:
            steps.append(step)

    return WooCommerceStoreClient(store_url=url, admin_user=ADMIN, admin_password=password, reporter=report)


def test_woocommerce_order_with_an_application_password(woocommerce) -> None:
    url, state = woocommerce
    steps: list[str] = []
    order = _woo_client(url, APP_PASSWORD, steps).place_order()

    assert (order.engine, order.order_id, order.status, order.total) == (
        "woocommerce",
        "100",
        "processing",
        "24.99",
    )
    assert state.orders[100]["payment_method"] == "cod"
    assert steps == ["list products", "open cart", "add item", "checkout", "confirm order (admin)"]
    assert state.log == [
        "GET /wp-json/wc/store/v1/products",
        "GET /wp-json/wc/store/v1/cart",
        "POST /wp-json/wc/store/v1/cart/add-item",
        "POST /wp-json/wc/store/v1/checkout",
        "GET /wp-json/wc/v3/orders/100",
    ]


def test_woocommerce_falls_back_to_a_browser_login_with_the_account_password(woocommerce) -> None:
    url, state = woocommerce
    order = _woo_client(url, ACCOUNT_PASSWORD).place_order()

    assert order.status == "processing"
    assert state.log[-5:] == [
        "GET /wp-json/wc/v3/orders/100",
        "GET /wp-login.php",
        "POST /wp-login.php",
        "GET /wp-admin/admin-ajax.php",
        "GET /wp-json/wc/v3/orders/100",
    ]


def test_woocommerce_wrong_password_names_the_login_step(woocommerce) -> None:
    url, _ = woocommerce
    with pytest.raises(StoreStepError) as caught:
        _woo_client(url, "not it").place_order()
    assert caught.value.step == "admin login (wp-login.php)"
    assert caught.value.url == f"{url}/wp-login.php"
    assert "The password you entered is incorrect" in caught.value.excerpt
    assert "not it" not in str(caught.value)


def test_woocommerce_checkout_failure_names_step_url_status_and_body(woocommerce) -> None:
    url, state = woocommerce
    state.payment_methods = ("bacs",)
    with pytest.raises(StoreStepError) as caught:
        _woo_client(url, APP_PASSWORD).place_order()
    message = str(caught.value)
    assert caught.value.step == "checkout" and caught.value.status == 400
    assert f"POST {url}/wp-json/wc/store/v1/checkout → HTTP 400" in message
    assert "woocommerce_rest_checkout_invalid_payment_method" in message


def test_woocommerce_missing_product_is_reported(woocommerce) -> None:
    url, _ = woocommerce
    with pytest.raises(StoreStepError, match="no product named 'Gift Card'") as caught:
        _woo_client(url, APP_PASSWORD).place_order(product_title="Gift Card")
    assert caught.value.step == "list products"


def test_the_fake_rejects_cart_changes_without_the_latest_nonce(woocommerce) -> None:
    """Guards the fake itself: a client that ignored the headers would fail against it."""
    url, _ = woocommerce
    session = HttpSession(url)
    cart = session.request("open", "GET", "/wp-json/wc/store/v1/cart")
    token, nonce = cart.headers["Cart-Token"], cart.headers["Nonce"]
    stale = session.request(
        "add", "POST", "/wp-json/wc/store/v1/cart/add-item", json_body={"id": 12}, expect=(401,)
    )
    assert "missing_nonce" in stale.text()
    headers = {"Cart-Token": token, "Nonce": nonce}
    added = session.request(
        "add",
        "POST",
        "/wp-json/wc/store/v1/cart/add-item",
        json_body={"id": 12},
        headers=headers,
        expect=(201,),
    )
    assert added.headers["Nonce"] != nonce
    session.request(
        "add",
        "POST",
        "/wp-json/wc/store/v1/cart/add-item",
        json_body={"id": 12},
        headers=headers,
        expect=(401,),
    )


def test_cli_places_a_woocommerce_order(woocommerce, monkeypatch, capsys) -> None:
    url, _ = woocommerce
    monkeypatch.setenv("WOO_PASSWORD", APP_PASSWORD)
    argv = ["place-order", "--engine", "woocommerce", "--store-url", url, "--admin-user", ADMIN]
    assert main([*argv, "--password-env", "WOO_PASSWORD"]) == 0
    out = capsys.readouterr().out
    assert "[woocommerce] checkout: order 100 status processing" in out
    assert "order placed: id 100 number 100 status processing payment cash on delivery" in out
    assert APP_PASSWORD not in out


def test_cli_refuses_an_unset_password_variable(monkeypatch, capsys) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD", raising=False)
    argv = ["place-order", "--engine", "medusa", "--store-url", "http://127.0.0.1:9", "--admin-user", "a@b.c"]
    assert main([*argv, "--password-env", "NO_SUCH_PASSWORD"]) == 2
    assert "NO_SUCH_PASSWORD is empty or unset" in capsys.readouterr().err


def test_cli_reports_an_unreachable_store(monkeypatch, capsys) -> None:
    with socket_closed_port() as port:
        monkeypatch.setenv("PW", "x")
        argv = ["place-order", "--engine", "medusa", "--store-url", f"http://127.0.0.1:{port}"]
        assert main([*argv, "--admin-user", "a@b.c", "--password-env", "PW", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert "step 'admin login' failed: cannot reach the store" in err
    assert "no response" in err


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


class FakeMedusa(BaseHTTPRequestHandler):
    keys: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/auth/user/emailpass" and payload["password"] == "right":
            return self._send(200, {"token": "jwt"})
        return self._send(401, {"type": "unauthorized", "message": "Invalid email or password"})

    def do_GET(self) -> None:
        if self.path.startswith("/admin/api-keys") and self.headers.get("Authorization") == "Bearer jwt":
            return self._send(200, {"api_keys": self.keys})
        return self._send(401, {"message": "Unauthorized"})


@pytest.fixture
def medusa_fake() -> Iterator[tuple[str, type[FakeMedusa]]]:
    handler = type("Handler", (FakeMedusa,), {"keys": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_medusa_login_failure_names_step_url_and_status(medusa_fake) -> None:
    url, _ = medusa_fake
    client = MedusaStoreClient(store_url=url, admin_user="owner@example.com", admin_password="wrong")
    with pytest.raises(StoreStepError) as caught:
        client.place_order()
    assert (caught.value.step, caught.value.status) == ("admin login", 401)
    assert str(caught.value).startswith(
        f"step 'admin login' failed: unexpected HTTP status (POST {url}/auth/user/emailpass → HTTP 401)"
    )
    assert "Invalid email or password" in caught.value.excerpt
    assert "wrong" not in repr(client)


def test_medusa_needs_an_unrevoked_publishable_key_linked_to_a_channel(medusa_fake) -> None:
    url, handler = medusa_fake
    handler.keys = [
        {"token": "pk_revoked", "revoked_at": "2025-01-01", "sales_channels": [{"id": "sc_1"}]},
        {"token": "pk_unlinked", "revoked_at": None, "sales_channels": []},
    ]
    client = MedusaStoreClient(store_url=url, admin_user="owner@example.com", admin_password="right")
    with pytest.raises(StoreStepError, match="no unrevoked publishable API key") as caught:
        client.prepare()
    assert caught.value.step == "publishable key"

    handler.keys.append(
        {"token": "pk_good", "title": "Webshop", "revoked_at": None, "sales_channels": [{"id": "sc_1"}]}
    )
    client.prepare()
    assert client.publishable_key == "pk_good"


def test_store_urls_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        HttpSession("file:///etc/passwd")


def test_there_is_one_storefront_client_for_every_engine_in_the_catalogue():
    from stores.engines import ENGINE_CATALOGUE

    assert set(ENGINE_CLIENTS) == {str(engine) for engine in ENGINE_CATALOGUE}
