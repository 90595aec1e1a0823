"""`python -m testkit.storefront place-order --engine ... --store-url ... --admin-user ... --password-env VAR`

Prints each step and the confirmed order; exits 1 with the failing step's message. The admin
password is read from the environment variable named by --password-env, never from the command
line, so it stays out of process listings and shell history.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from testkit.storefront import ENGINE_CLIENTS, MedusaStoreClient, StoreStepError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m testkit.storefront")
    commands = parser.add_subparsers(dest="command", required=True)
    place = commands.add_parser("place-order", help="buy one 'Test Product' and confirm the order as admin")
    place.add_argument("--engine", choices=sorted(ENGINE_CLIENTS), required=True)
    place.add_argument("--store-url", required=True, help="the store's public base URL")
    place.add_argument("--admin-user", required=True, help="Medusa: the admin e-mail; WooCommerce: the login")
    place.add_argument(
        "--password-env", required=True, metavar="VARNAME", help="variable holding the password"
    )
    place.add_argument(
        "--publishable-key", default="", help="Medusa only; found through the Admin API if unset"
    )
    place.add_argument("--capture", action="store_true", help="Medusa only: also capture the payment")
    place.add_argument("--product", default="Test Product", help="exact product title")
    place.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    password = os.environ.get(args.password_env, "")
    if not password:
        print(f"place-order: environment variable {args.password_env} is empty or unset", file=sys.stderr)
        return 2

    def report(step: str, message: str) -> None:
        print(f"[{args.engine}] {step}: {message}", flush=True)

    client_class = ENGINE_CLIENTS[args.engine]
    options = (
        {"publishable_key": args.publishable_key, "capture": args.capture}
        if client_class is MedusaStoreClient
        else {}
    )
    try:
        client = client_class(
            store_url=args.store_url,
            admin_user=args.admin_user,
            admin_password=password,
            reporter=report,
            timeout=args.timeout,
            **options,
        )
        order = client.place_order(product_title=args.product)
    except (StoreStepError, ValueError) as exc:
        print(f"place-order failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"[{args.engine}] order placed: id {order.order_id} number {order.number} status {order.status} "
        f"payment {order.payment_status} total {order.total} {order.currency}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
