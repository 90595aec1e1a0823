"""A small JSON-over-HTTP session for the store clients, built on the standard library only.

It exists so that every failure names the step that failed, the request and the HTTP status with a
short excerpt of the response: an acceptance run against a store must say *where* checkout broke.
Request bodies (which may hold passwords) never appear in errors.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

EXCERPT_CHARS = 300


class StoreStepError(Exception):
    """One step of placing an order failed: which step, which request, what the store answered."""

    def __init__(
        self, step: str, *, method: str, url: str, status: int | None, excerpt: str, reason: str = ""
    ) -> None:
        self.step = step
        self.method = method
        self.url = url
        self.status = status
        self.excerpt = excerpt
        self.reason = reason
        answered = f"HTTP {status}" if status is not None else "no response"
        detail = f": {reason}" if reason else ""
        body = f" — {excerpt}" if excerpt else ""
        super().__init__(f"step '{step}' failed{detail} ({method} {url} → {answered}){body}")


@dataclass
class Response:
    """What the store answered; `json()` decodes the body or raises a StoreStepError."""

    step: str
    method: str
    url: str
    status: int
    headers: Message
    body: bytes = field(repr=False)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def excerpt(self) -> str:
        return " ".join(self.text().split())[:EXCERPT_CHARS]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise self.error("the response is not JSON") from None

    def error(self, reason: str) -> StoreStepError:
        return StoreStepError(
            self.step,
            method=self.method,
            url=self.url,
            status=self.status,
            excerpt=self.excerpt(),
            reason=reason,
        )


class _NoErrorProcessor(urllib.request.HTTPErrorProcessor):
    """Return every response as it is, so the caller decides what a status means.

    This also means redirects are not followed: an API that redirects (say, an ingress sending
    http to https) shows up as a clear error naming the URL rather than a silent method change.
    """

    def http_response(self, request: urllib.request.Request, response: Any) -> Any:
        return response

    https_response = http_response


class HttpSession:
    """Requests against one store's base URL with a cookie jar and per-request headers."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"store URL must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoErrorProcessor()
        )

    def url_for(self, path: str, query: Mapping[str, str] | None = None) -> str:
        url = f"{self.base_url}{path}"
        if query:
            url = f"{url}?{urllib.parse.urlencode(query)}"
        return url

    def request(
        self,
        step: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Iterable[int] = (200,),
    ) -> Response:
        """Send one request; raise StoreStepError unless the status is one of `expect`."""
        url = self.url_for(path, query)
        data: bytes | None = None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as raw:
                response = Response(step, method, url, raw.status, raw.headers, raw.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StoreStepError(
                step,
                method=method,
                url=url,
                status=None,
                excerpt="",
                reason=f"cannot reach the store: {reason}",
            ) from exc
        if response.status not in tuple(expect):
            raise response.error("unexpected HTTP status")
        return response
