"""A small HTTP/2 client for many long-lived GET streams over one connection (Kubernetes watches).

Why not httpx: its HTTP/2 connection lets a single reader at a time pull frames off the socket, and
that reader only returns once a frame for *its own* stream arrives. With several quiet watch streams
on one connection, events for the others wait until the reader's stream happens to speak (measured on
the real apiserver: a release Secret's update arrived seconds late, or not before the next bookmark).
Here one task per connection reads every frame and hands each stream its own, so a quiet watch never
holds up a busy one.

The protocol itself is python-hyper's `h2` state machine; this module only owns the socket, the
per-stream queues, flow-control credit and a PING keep-alive that notices a peer that stopped
answering without closing the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

CONNECT_TIMEOUT_SECONDS = 10.0
RESPONSE_TIMEOUT_SECONDS = 30.0  # headers of any response, and the whole body of a non-streaming one
PING_EVERY_SECONDS = 20.0
PING_TIMEOUT_SECONDS = 10.0
READ_CHUNK = 256 * 1024


class Http2Error(OSError):
    """The connection or one stream failed (reset, closed, timed out); the caller retries."""


class HttpStatusError(Exception):
    """The server answered with a status that is not 2xx."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        self.status = status
        self.body = body


@dataclass
class _Stream:
    status: asyncio.Future[int]
    chunks: asyncio.Queue[bytes | BaseException | None] = field(default_factory=asyncio.Queue)
    ended: bool = False


class Http2Connection:
    """One TLS connection speaking HTTP/2. `open()` it, then `get()` / `stream_lines()` from any task
    of the same event loop; `close()` ends every stream on it."""

    def __init__(self, base_url: str, ssl_context: ssl.SSLContext, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"HTTP/2 needs an https:// address, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.authority = parts.netloc
        self.headers = {key.lower(): value for key, value in headers.items()}
        self.ssl_context = ssl_context
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self._streams: dict[int, _Stream] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed: BaseException | None = None
        self._pong: asyncio.Event = asyncio.Event()
        self._room = asyncio.Condition()

    # ---- life cycle --------------------------------------------------------------------------------

    async def open(self) -> Http2Connection:
        context = self.ssl_context
        context.set_alpn_protocols(["h2"])
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=context, server_hostname=self.host),
                CONNECT_TIMEOUT_SECONDS,
            )
        except TimeoutError as exc:
            raise Http2Error(f"connecting to {self.authority} timed out") from exc
        chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        if chosen != "h2":
            writer.close()
            raise Http2Error(f"{self.authority} does not speak HTTP/2 (ALPN chose {chosen!r})")
        self._writer = writer
        self._h2.initiate_connection()
        # A watch stream is read as fast as it arrives; a large window saves WINDOW_UPDATE round trips.
        self._h2.increment_flow_control_window(16 * 1024 * 1024)
        self._flush()
        self._tasks = [
            asyncio.create_task(self._read_loop(reader)),
            asyncio.create_task(self._keepalive()),
        ]
        return self

    async def close(self) -> None:
        self._fail(Http2Error("the connection was closed"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def stream_limit(self) -> int:
        return int(self._h2.remote_settings.max_concurrent_streams or 100)

    # ---- requests ----------------------------------------------------------------------------------

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """A whole response: (status, body)."""
        stream_id, stream = await self._request(path, headers)
        try:
            status = await asyncio.wait_for(asyncio.shield(stream.status), RESPONSE_TIMEOUT_SECONDS)
            body = bytearray()
            while True:
                chunk = await asyncio.wait_for(stream.chunks.get(), RESPONSE_TIMEOUT_SECONDS)
                if chunk is None:
                    return status, bytes(body)
                if isinstance(chunk, BaseException):
                    raise chunk
                body.extend(chunk)
        except TimeoutError as exc:
            raise Http2Error(f"GET {path.split('?')[0]} got no answer in time") from exc
        finally:
            self._end(stream_id)

    async def get_json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        status, body = await self.get(path, headers)
        if not 200 <= status < 300:
            raise HttpStatusError(status, body)
        return json.loads(body)

    @contextlib.asynccontextmanager
    async def stream_lines(
        self, path: str, headers: dict[str, str] | None = None
    ) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """A streaming response: `async with conn.stream_lines(path) as (status, lines):`. Leaving the
        block resets the stream if the server has not ended it."""
        stream_id, stream = await self._request(path, headers)
        try:
            try:
                status = await asyncio.wait_for(asyncio.shield(stream.status), RESPONSE_TIMEOUT_SECONDS)
            except TimeoutError as exc:
                raise Http2Error(f"GET {path.split('?')[0]} got no answer in time") from exc
            yield status, self._lines(stream)
        finally:
            self._end(stream_id)

    @staticmethod
    async def _lines(stream: _Stream) -> AsyncIterator[bytes]:
        pending = b""
        while True:
            chunk = await stream.chunks.get()
            if chunk is None:
                if pending.strip():
                    yield pending
                return
            if isinstance(chunk, BaseException):
                raise chunk
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line

    async def _request(self, path: str, headers: dict[str, str] | None) -> tuple[int, _Stream]:
        async with self._room:
            # The server says how many streams it takes at once; wait for one to end rather than be
            # refused.
            await self._room.wait_for(lambda: self.closed or len(self._streams) < self.stream_limit)
        if self._closed is not None:
            raise Http2Error(str(self._closed)) from self._closed
        stream_id = self._h2.get_next_available_stream_id()
        request_headers = [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", self.authority),
            (":path", path),
            *self.headers.items(),
            *((key.lower(), value) for key, value in (headers or {}).items()),
        ]
        stream = _Stream(status=asyncio.get_running_loop().create_future())
        self._streams[stream_id] = stream
        self._h2.send_headers(stream_id, request_headers, end_stream=True)
        self._flush()
        return stream_id, stream

    def _end(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and not stream.ended and self._closed is None:
            with contextlib.suppress(h2.exceptions.H2Error):
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                self._flush()
        if stream is not None and not stream.status.done():
            stream.status.cancel()
        asyncio.ensure_future(self._notify_room())

    async def _notify_room(self) -> None:
        async with self._room:
            self._room.notify_all()

    # ---- the connection's one reader ----------------------------------------------------------------

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    raise Http2Error(f"{self.authority} closed the connection")
                for event in self._h2.receive_data(data):
                    self._dispatch(event)
                self._flush()
        except asyncio.CancelledError:
            raise
        except (OSError, h2.exceptions.H2Error, ssl.SSLError) as exc:
            self._fail(exc if isinstance(exc, Http2Error) else Http2Error(f"{type(exc).__name__}: {exc}"))

    def _dispatch(self, event: h2.events.Event) -> None:
        stream = self._streams.get(getattr(event, "stream_id", 0) or 0)
        if isinstance(event, h2.events.ResponseReceived) and stream is not None:
            # Decoded to str by header_encoding; h2's annotations say bytes, so accept either.
            status = next(
                (value for name, value in event.headers or [] if name in (":status", b":status")), 0
            )
            if not stream.status.done():
                stream.status.set_result(int(status))
        elif isinstance(event, h2.events.DataReceived):
            # Credit is given back at once: a watch stream's reader keeps up, and holding it back would
            # stall every other stream sharing the connection window.
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if stream is not None:
                stream.chunks.put_nowait(event.data)
        elif isinstance(event, h2.events.StreamEnded) and stream is not None:
            stream.ended = True
            stream.chunks.put_nowait(None)
        elif isinstance(event, h2.events.StreamReset) and stream is not None:
            stream.ended = True
            error = Http2Error(f"the server reset the stream ({event.error_code!s})")
            if not stream.status.done():
                stream.status.set_exception(error)
            stream.chunks.put_nowait(error)
        elif isinstance(event, h2.events.PingAckReceived):
            self._pong.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._fail(Http2Error(f"the server ended the connection ({event.error_code!s})"))
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            asyncio.ensure_future(self._notify_room())

    async def _keepalive(self) -> None:
        # A peer that stops answering (a paused or partitioned apiserver) never closes the socket; a PING
        # that goes unanswered is how the streams learn it.
        with contextlib.suppress(asyncio.CancelledError):
            while self._closed is None:
                await asyncio.sleep(PING_EVERY_SECONDS)
                self._pong.clear()
                try:
                    self._h2.ping(b"keepaliv")
                    self._flush()
                    await asyncio.wait_for(self._pong.wait(), PING_TIMEOUT_SECONDS)
                except (TimeoutError, h2.exceptions.H2Error, OSError):
                    self._fail(Http2Error(f"{self.authority} stopped answering pings"))

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _fail(self, error: BaseException) -> None:
        if self._closed is not None:
            return
        self._closed = error
        for stream in self._streams.values():
            if not stream.status.done():
                stream.status.set_exception(error)
            stream.chunks.put_nowait(error)
        if self._writer is not None:
            self._writer.close()
        asyncio.ensure_future(self._notify_room())
