"""A real authoritative DNS server on loopback for tests (dnslib's UDP server in a thread).

Tests set the records it serves and point DOMAIN_DNS_NAMESERVERS at it, so the product's resolver
(dnspython) sends real queries over a real socket; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class Zone(BaseResolver):
    """TXT records by name (no trailing dot, lower case); every other name is NXDOMAIN."""

    txt: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, request, handler):  # type: ignore[no-untyped-def]
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            self.queries.append(name)
            values = list(self.txt.get(name, []))
        if not values:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        return reply

    def set_txt(self, name: str, *values: str) -> None:
        with self.lock:
            self.txt[name.rstrip(".").lower()] = list(values)


@dataclass
class RunningDns:
    zone: Zone
    address: str

    @property
    def nameserver(self) -> str:
        """The `ip:port` entry for DOMAIN_DNS_NAMESERVERS."""
        return self.address


@contextmanager
def dns_server() -> Iterator[RunningDns]:
    """Serve a fresh zone on 127.0.0.1, on a port the kernel picks, until the block ends."""
    zone = Zone()
    server = DNSServer(
        zone, address="127.0.0.1", port=0, logger=DNSLogger("-request,-reply,-truncated,-error")
    )
    server.start_thread()
    try:
        host, port = server.server.server_address[:2]
        yield RunningDns(zone=zone, address=f"{host}:{port}")
    finally:
        server.stop()
        server.server.server_close()
