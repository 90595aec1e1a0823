"""The platform API calls deploy/e2e-cluster.sh makes, one subcommand per step.

Standard library only, so it runs on an operator's machine with any Python 3.10+. The API token is
read from an environment variable (never from argv, where `ps` would show it); revealed passwords are
printed only by `credentials`, whose output the shell script captures and never echoes.
Every failure exits non-zero with one line saying what was expected and what came back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

API_PREFIX = "/api/v1"


class StepFailed(Exception):
    """The platform answered something other than what this step needs."""


class Api:
    def __init__(self, base_url: str, token: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}{API_PREFIX}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Token {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise StepFailed(f"{method} {self.base_url}{API_PREFIX}{path}: no answer ({exc})") from exc


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw[:300].decode(errors="replace")


def _expect(what: str, status: int, body: Any, allowed: set[int]) -> Any:
    if status not in allowed:
        raise StepFailed(f"{what}: expected HTTP {sorted(allowed)}, got {status}: {body}")
    return body


def _failure(body: dict[str, Any]) -> str:
    run = body.get("latest_run") or {}
    return body.get("status_reason") or run.get("error") or str(body)


def create_store(api: Api, args: argparse.Namespace) -> None:
    status, body = api.call("POST", "/stores/", {"name": args.name, "engine": args.engine})
    _expect(f"create store {args.name}", status, body, {202})
    print(f"store {args.name} ({args.engine}) accepted: status {body.get('status', '?')}")


def wait_status(api: Api, args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.timeout
    last = None
    while True:
        status, body = api.call("GET", f"/stores/{args.name}/")
        body = _expect(f"read store {args.name}", status, body, {200})
        current = body.get("status")
        if current != last:
            reason = body.get("status_reason") or ""
            print(f"store {args.name}: {current}{f' ({reason})' if reason else ''}", flush=True)
            last = current
        if current == args.status:
            return
        if current == "failed":
            raise StepFailed(f"store {args.name} failed: {_failure(body)}")
        if time.monotonic() >= deadline:
            raise StepFailed(
                f"store {args.name} still {current} after {args.timeout}s (wanted {args.status})"
            )
        time.sleep(args.poll)


def wait_gone(api: Api, args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.timeout
    while True:
        status, body = api.call("GET", f"/stores/{args.name}/")
        if status == 404 or (status == 200 and body.get("status") == "deleted"):
            print(f"store {args.name}: deleted")
            return
        _expect(f"read store {args.name}", status, body, {200})
        if body.get("status") == "failed":
            raise StepFailed(f"teardown of {args.name} failed: {_failure(body)}")
        if time.monotonic() >= deadline:
            raise StepFailed(f"store {args.name} still {body.get('status')} after {args.timeout}s")
        time.sleep(args.poll)


def store_url(api: Api, args: argparse.Namespace) -> None:
    status, body = api.call("GET", f"/stores/{args.name}/")
    body = _expect(f"read store {args.name}", status, body, {200})
    # "url" is the API resource; the storefront is "public_url".
    url = body.get("public_url")
    if not url and args.domain:
        # The store's public host is <name>.<STORE_BASE_DOMAIN> (stores/validators.py host_for_store).
        url = f"{args.scheme}://{args.name}.{args.domain}/"
    if not url:
        raise StepFailed(f"store {args.name} has no url in {body}; pass --domain")
    print(url)


def credentials(api: Api, args: argparse.Namespace) -> None:
    status, body = api.call("POST", f"/stores/{args.name}/credentials/")
    body = _expect(f"reveal credentials of {args.name}", status, body, {200})
    # WooCommerce admins log in with their user name, Medusa admins with their e-mail address.
    login = body.get("email") if args.engine == "medusa" else body.get("username")
    password = body.get("password")
    if not login or not password:
        raise StepFailed(f"credentials of {args.name} lack a login or password (keys: {sorted(body)})")
    # Two lines for `read`; the shell keeps the password in its environment only.
    print(login)
    print(password)


def delete_store(api: Api, args: argparse.Namespace) -> None:
    status, body = api.call("DELETE", f"/stores/{args.name}/")
    _expect(f"delete store {args.name}", status, body, {202})
    print(f"store {args.name}: teardown accepted")


def fetch(args: argparse.Namespace) -> None:
    """GET a page (the storefront), following redirects; fail unless it answers 200 with HTML."""
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            with urllib.request.urlopen(args.url, timeout=30) as response:
                body = response.read()
                if response.status == 200 and body:
                    print(f"{args.url}: HTTP 200, {len(body)} bytes")
                    return
                problem = f"HTTP {response.status}, {len(body)} bytes"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            problem = str(exc)
        # The ingress may need a few seconds to pick up a new store's host.
        if time.monotonic() >= deadline:
            raise StepFailed(f"{args.url}: {problem}")
        time.sleep(args.poll)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root.add_argument(
        "--api", required=False, help="the dashboard's base URL, e.g. http://dashboard.127.0.0.1.nip.io"
    )
    root.add_argument(
        "--token-env", default="PLATFORM_API_TOKEN", help="environment variable holding the API token"
    )
    root.add_argument("--poll", type=float, default=5.0, help="seconds between polls")
    sub = root.add_subparsers(dest="command", required=True)

    def named(name: str, handler: Callable[[Api, argparse.Namespace], None]) -> argparse.ArgumentParser:
        command = sub.add_parser(name)
        command.add_argument("--name", required=True)
        command.set_defaults(handler=handler)
        return command

    named("create-store", create_store).add_argument(
        "--engine", required=True, choices=["woocommerce", "medusa"]
    )
    waiting = named("wait-status", wait_status)
    waiting.add_argument("--status", default="ready")
    waiting.add_argument("--timeout", type=float, default=900)
    named("wait-gone", wait_gone).add_argument("--timeout", type=float, default=600)
    urls = named("store-url", store_url)
    urls.add_argument("--domain", default="", help="STORE_BASE_DOMAIN, used if the API gives no url")
    urls.add_argument("--scheme", default="http", choices=["http", "https"])
    named("credentials", credentials).add_argument(
        "--engine", required=True, choices=["woocommerce", "medusa"]
    )
    named("delete-store", delete_store)
    fetching = sub.add_parser("fetch")
    fetching.add_argument("--url", required=True)
    fetching.add_argument("--timeout", type=float, default=120)
    fetching.set_defaults(handler=None)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "fetch":
            fetch(args)
            return 0
        if not args.api:
            raise StepFailed("--api is required")
        token = os.environ.get(args.token_env, "")
        if not token:
            raise StepFailed(f"the API token is missing: set {args.token_env}")
        args.handler(Api(args.api, token), args)
    except StepFailed as exc:
        print(f"e2e: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
