"""The one acceptance path both engines share: find "Test Product", cart, checkout, confirm as admin."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testkit.storefront.http import HttpSession, Response

PRODUCT_TITLE = "Test Product"

Reporter = Callable[[str, str], None]


def _ignore(step: str, message: str) -> None:
    """Default reporter: the CLI prints steps, tests usually do not need them."""


@dataclass(frozen=True)
class Customer:
    """The shopper used for the test order; the country defaults to the store's own."""

    email: str = "acceptance@example.com"
    first_name: str = "Ada"
    last_name: str = "Tester"
    address_1: str = "Teststraße 1"
    city: str = "Berlin"
    postal_code: str = "10115"
    phone: str = "+49 30 1234567"
    country_code: str = ""


@dataclass(frozen=True)
class PlacedOrder:
    """An order the store accepted and its admin API confirmed."""

    engine: str
    order_id: str
    number: str
    status: str
    payment_status: str
    total: str
    currency: str


class StoreClient(ABC):
    """Places one order in a store and confirms it through the store's admin API.

    Subclasses implement the same five steps for their engine; `place_order` runs them in order and
    every HTTP failure surfaces as a StoreStepError naming the step.
    """

    engine = ""

    def __init__(
        self,
        *,
        store_url: str,
        admin_user: str,
        admin_password: str,
        customer: Customer | None = None,
        reporter: Reporter | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.http = HttpSession(store_url, timeout=timeout)
        self.admin_user = admin_user
        self._admin_password = admin_password
        self.customer = customer or Customer()
        self._report = reporter or _ignore

    def __repr__(self) -> str:  # the password stays out of tracebacks
        return f"{type(self).__name__}(store_url={self.http.base_url!r}, admin_user={self.admin_user!r})"

    def report(self, step: str, message: str) -> None:
        self._report(step, message)

    def place_order(self, *, product_title: str = PRODUCT_TITLE) -> PlacedOrder:
        """Run the whole path: prepare, find the product, fill a cart, check out, confirm as admin."""
        self.prepare()
        product = self.find_product(product_title)
        cart = self.fill_cart(product)
        order_id = self.checkout(cart)
        return self.confirm_order(order_id)

    @abstractmethod
    def prepare(self) -> None:
        """Whatever the engine needs before shopping (logins, keys)."""

    @abstractmethod
    def find_product(self, title: str) -> Any:
        """The product (and variant) to buy, found by its exact title."""

    @abstractmethod
    def fill_cart(self, product: Any) -> Any:
        """A cart holding one unit of the product."""

    @abstractmethod
    def checkout(self, cart: Any) -> str:
        """Address, shipping and payment; returns the new order's id."""

    @abstractmethod
    def confirm_order(self, order_id: str) -> PlacedOrder:
        """Read the order back through the admin API and check it was paid or is payable."""


def field_of(response: Response, data: Any, *path: str) -> Any:
    """`data[path[0]][path[1]]...`, or a StoreStepError naming the missing key."""
    value = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise response.error(f"the response has no '{'.'.join(path)}'")
        value = value[key]
    return value
