"""provisioning/http2.py against a real HTTP/2 server on loopback (TLS, ALPN h2), built on the same
python-hyper state machine in server mode. The server's behaviour is chosen by the request path."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from localcluster.pki import ClusterPKI
from provisioning import http2
from provisioning.http2 import Http2Connection, Http2Error, HttpStatusError


class LoopbackServer:
    """HTTP/2 over TLS on 127.0.0.1. Paths: /lines/<n> answers n JSON lines and ends; /quiet answers
    headers and then nothing; /status/<code> answers that status with a body; /reset resets the
    stream; /push/<key> answers headers and one line each time `push(key)` is called."""

    def __init__(self, directory: Path, *, max_streams: int = 100) -> None:
        self.pki = ClusterPKI(directory)
        self.pair = self.pki.serving("server", names=("localhost",), ips=("127.0.0.1",))
        self.max_streams = max_streams
        self.frozen = False  # when True the server reads but never writes (a hung peer)
        self.requests: list[str] = []
        self.open_streams = 0
        self.peak_streams = 0
        self._pushable: dict[str, tuple[h2.connection.H2Connection, int, asyncio.StreamWriter]] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pair.cert, self.pair.key)
        context.set_alpn_protocols(["h2"])
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
        port = self._server.sockets[0].getsockname()[1]
        return f"https://127.0.0.1:{port}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki.ca.cert))

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for _, _, writer in self._pushable.values():
            writer.close()

    def push(self, key: str, line: bytes) -> None:
        connection, stream_id, writer = self._pushable[key]
        connection.send_data(stream_id, line + b"\n")
        writer.write(connection.data_to_send())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        connection.initiate_connection()
        connection.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        writer.write(connection.data_to_send())
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self._answer(connection, event, writer)
                    elif isinstance(event, (h2.events.StreamReset, h2.events.StreamEnded)):
                        if isinstance(event, h2.events.StreamReset):
                            self.open_streams -= 1
                pending = connection.data_to_send()
                if pending and not self.frozen:
                    writer.write(pending)

    def _answer(self, connection: h2.connection.H2Connection, event, writer) -> None:  # noqa: ANN001
        path = dict(event.headers)[b":path"].decode()
        self.requests.append(path)
        stream_id = event.stream_id
        self.open_streams += 1
        self.peak_streams = max(self.peak_streams, self.open_streams)
        kind, _, argument = path.strip("/").partition("/")
        if kind == "status":
            connection.send_headers(stream_id, [(":status", argument)])
            connection.send_data(stream_id, b'{"message": "not here"}', end_stream=True)
            self.open_streams -= 1
        elif kind == "reset":
            connection.send_headers(stream_id, [(":status", "200")])
            connection.reset_stream(stream_id)
            self.open_streams -= 1
        elif kind == "lines":
            connection.send_headers(stream_id, [(":status", "200")])
            body = b"".join(b'{"n": %d}\n' % index for index in range(int(argument)))
            connection.send_data(stream_id, body, end_stream=True)
            self.open_streams -= 1
        elif kind in {"quiet", "push"}:
            connection.send_headers(stream_id, [(":status", "200")])
            if kind == "push":
                self._pushable[argument] = (connection, stream_id, writer)


@pytest.fixture
def server(tmp_path) -> LoopbackServer:
    return LoopbackServer(tmp_path)


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Each test is one event loop's life: the server and the client live and die in it."""
    asyncio.run(asyncio.wait_for(scenario(), 60))


async def _connect(server: LoopbackServer) -> Http2Connection:
    url = await server.start()
    return await Http2Connection(url, server.client_context(), {"Authorization": "Bearer t"}).open()


def test_a_quiet_stream_never_holds_up_another_on_the_same_connection(server):
    async def scenario() -> None:
        connection = await _connect(server)
        try:
            async with connection.stream_lines("/quiet") as (status, quiet):
                assert status == 200
                async with connection.stream_lines("/push/busy") as (_, busy):
                    for index in range(3):
                        server.push("busy", b'{"event": %d}' % index)
                        # The line arrives although the older, quiet stream has nothing to say. A reader
                        # that only returns for its own stream (httpx) would wait here until /quiet spoke.
                        assert await asyncio.wait_for(anext(busy), 5) == b'{"event": %d}' % index
            assert connection.open_streams == 0
        finally:
            await connection.close()

    _run(scenario)


def test_a_whole_response_and_lines_split_across_frames(server):
    async def scenario() -> None:
        connection = await _connect(server)
        try:
            status, body = await connection.get("/lines/3")
            assert status == 200
            assert body == b'{"n": 0}\n{"n": 1}\n{"n": 2}\n'
            async with connection.stream_lines("/lines/1000") as (_, lines):
                received = [line async for line in lines]
            assert received == [b'{"n": %d}' % index for index in range(1000)]
        finally:
            await connection.close()

    _run(scenario)


def test_a_refusal_carries_its_status_and_body(server):
    async def scenario() -> None:
        connection = await _connect(server)
        try:
            with pytest.raises(HttpStatusError) as refused:
                await connection.get_json("/status/403")
            assert refused.value.status == 403
            assert "not here" in str(refused.value)
            assert await connection.get_json("/lines/1") == {"n": 0}
        finally:
            await connection.close()

    _run(scenario)


def test_a_reset_stream_fails_that_stream_only(server):
    async def scenario() -> None:
        connection = await _connect(server)
        try:
            with pytest.raises(Http2Error, match="reset"):
                await connection.get("/reset")
            assert not connection.closed
            assert (await connection.get("/lines/1"))[1] == b'{"n": 0}\n'
        finally:
            await connection.close()

    _run(scenario)


def test_requests_past_the_servers_stream_limit_wait_for_room_instead_of_being_refused(tmp_path):
    async def scenario() -> None:
        server = LoopbackServer(tmp_path, max_streams=2)
        connection = await _connect(server)
        try:
            await connection.get("/lines/1")  # the server's settings have arrived
            assert connection.stream_limit == 2
            async with contextlib.AsyncExitStack() as streams:
                await streams.enter_async_context(connection.stream_lines("/quiet"))
                await streams.enter_async_context(connection.stream_lines("/quiet"))
                third = asyncio.ensure_future(connection.get("/lines/1"))
                await asyncio.sleep(0.3)
                assert not third.done()
            assert (await asyncio.wait_for(third, 5))[0] == 200
            assert server.peak_streams <= 2
        finally:
            await connection.close()
            await server.stop()

    _run(scenario)


def test_a_peer_that_stops_answering_pings_fails_every_stream(server, monkeypatch):
    async def scenario() -> None:
        monkeypatch.setattr(http2, "PING_EVERY_SECONDS", 0.2)
        monkeypatch.setattr(http2, "PING_TIMEOUT_SECONDS", 0.5)
        connection = await _connect(server)
        try:
            async with connection.stream_lines("/quiet") as (_, lines):
                server.frozen = True  # the socket stays open; nothing comes back, not even a PING ack
                with pytest.raises(Http2Error, match="stopped answering pings"):
                    await asyncio.wait_for(anext(lines), 10)
            assert connection.closed
            with pytest.raises(Http2Error):
                await connection.get("/lines/1")
        finally:
            await connection.close()

    _run(scenario)


def test_an_address_that_is_not_https_is_refused_before_connecting():
    async def scenario() -> None:
        with pytest.raises(ValueError, match="https://"):
            Http2Connection("http://127.0.0.1:1", ssl.create_default_context(), {})

    _run(scenario)


def test_a_server_without_h2_is_named(tmp_path):
    async def scenario() -> None:
        pki = ClusterPKI(tmp_path)
        pair = pki.serving("plain", names=("localhost",), ips=("127.0.0.1",))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        context.set_alpn_protocols(["http/1.1"])
        plain = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0, ssl=context)
        port = plain.sockets[0].getsockname()[1]
        try:
            with pytest.raises(Http2Error, match="does not speak HTTP/2"):
                await Http2Connection(
                    f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(pki.ca.cert)), {}
                ).open()
        finally:
            plain.close()

    _run(scenario)
