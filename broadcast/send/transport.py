"""The process's HTTP plumbing for sending: one TLS context, built only when an https request needs it, and an
httpx transport that speaks HTTP/1.1 through h11 straight over asyncio's streams.

httpx's own transport goes through httpcore and anyio: a cancel scope, a sniffio look-up and a lock for every read
and write, and a pool that re-scans every connection for every queued request (encode/httpcore#1035). For a
fan-out that is most of its CPU, and importing them is a tenth of a fresh warning's start. This transport keeps what
the fan-out relies on from httpcore: h11 frames every request and response (the bytes on the wire are the same,
tests/send/test_transport.py compares them), a connection is reused only while it is idle and open, and every
failure is raised as the httpx exception httpcore would raise, so `retry.classify` reads what may have gone the
same way. Like httpx with a transport of its own, it uses no proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from typing import TYPE_CHECKING

import h11
import httpx

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

USER_AGENT = "broadcast/{version} (public warning and informing)"
KEEPALIVE = 5.0  # seconds an idle connection is kept for reuse, as httpx's default
READ_SIZE = 65536
PORTS = {"http": 80, "https": 443}


@cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of the process: loading the CA bundle costs more than most requests, so it is done once,
    and only by the first https request (a sandbox drill over http never pays it)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


Origin = tuple[str, str, int]


class Connection:
    """One HTTP/1.1 connection: h11's state machine over an asyncio stream."""

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.origin, self.reader, self.writer = origin, reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    @classmethod
    async def open(cls, origin: Origin, timeout: float | None,
                   address: Callable[[str, int], Awaitable[str | None]]) -> Connection:
        """Connect to the origin: straight to its one address when it has one, else racing its addresses (Happy
        Eyeballs, RFC 8305, as asyncio does it)."""
        scheme, host, port = origin
        secure = scheme == "https"
        try:
            async with asyncio.timeout(timeout):  # the look-up and the TLS handshake included, as in httpcore
                only = await address(host, port)
                reader, writer = await asyncio.open_connection(
                    only or host, port, limit=READ_SIZE, happy_eyeballs_delay=None if only else 0.25,
                    ssl=tls_context() if secure else None, server_hostname=host if secure else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {timeout} s") from None
        except OSError as exc:  # refused, unreachable, no such host, a certificate not trusted (ssl.SSLError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return cls(origin, reader, writer)

    def usable(self, now: float) -> bool:
        """Idle, open and fresh: a connection the server may have closed is never sent a request. The socket itself
        is asked too, as httpcore asks it: an idle connection with anything to read (the server's close, which the
        event loop may not have read yet, or bytes it should never have sent) is not reused."""
        if (self.h11.our_state is not h11.IDLE or now - self.idle_since >= KEEPALIVE or self.reader.at_eof()
                or self.writer.is_closing()):
            return False
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)

    async def send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> h11.Response:
        """Write the request and read the head of its answer."""
        try:
            await self._write(request, timeouts.get("write"))
        except httpx.WriteError:
            # The server may have answered and closed before reading all of it (a 413, say): read its answer first,
            # as httpcore does, and raise the write error only if there is none.
            try:
                return await self._head(timeouts.get("read"))
            except httpx.TransportError:
                pass
            raise
        return await self._head(timeouts.get("read"))

    async def _write(self, request: httpx.Request, timeout: float | None) -> None:
        url = request.url
        head = self.h11.send(h11.Request(method=request.method, target=url.raw_path, headers=request.headers.raw))
        parts = [head] if head else []
        try:
            async with asyncio.timeout(timeout):
                async for chunk in request.stream:  # type: ignore[union-attr]
                    if not chunk:
                        continue
                    parts.append(self.h11.send(h11.Data(data=chunk)) or b"")
                    if len(parts) > 16:
                        self.writer.write(b"".join(parts))
                        parts.clear()
                        await self.writer.drain()
                parts.append(self.h11.send(h11.EndOfMessage()) or b"")
                self.writer.write(b"".join(parts))
                await self.writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout(f"could not write to {url.host} within {timeout} s") from None
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc

    async def _head(self, timeout: float | None) -> h11.Response:
        while True:
            event = await self.next_event(timeout)
            if isinstance(event, h11.Response):
                return event
            # an InformationalResponse (100 Continue) is passed over; the final answer follows

    async def next_event(self, timeout: float | None) -> h11.Event:
        """The next event of the answer, reading as needed; a server that hangs up mid-answer is a protocol error."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is h11.NEED_DATA:
                try:
                    async with asyncio.timeout(timeout):
                        data = await self.reader.read(READ_SIZE)
                except TimeoutError:
                    raise httpx.ReadTimeout(f"no answer from {self.origin[1]} within {timeout} s") from None
                except OSError as exc:
                    raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
                try:
                    self.h11.receive_data(data)
                except h11.RemoteProtocolError as exc:
                    raise httpx.RemoteProtocolError(str(exc)) from exc
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                raise httpx.RemoteProtocolError("Server disconnected without sending a complete response.")
            return event  # type: ignore[return-value]

    def reusable(self) -> bool:
        """After an answer read to its end: ready for the next request, unless either side asked to close."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            self.idle_since = time.monotonic()
            return True
        return False

    def close(self) -> None:
        self.writer.close()


class Body(httpx.AsyncByteStream):
    """A response's body, read from its connection as it is iterated; closing it hands the connection back."""

    def __init__(self, transport: Transport, connection: Connection, timeout: float | None):
        self.transport, self.connection, self.timeout = transport, connection, timeout
        self.complete = self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.complete:
            event = await self.connection.next_event(self.timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.release(self.connection, reuse=self.complete and self.connection.reusable())


class Transport(httpx.AsyncBaseTransport):
    """At most `connections` requests in flight at once, over any number of hosts; idle connections kept per origin
    for KEEPALIVE seconds."""

    def __init__(self, connections: int = 8):
        self.connections = max(1, connections)  # a client made for no channel at all still answers a request
        self.slots = asyncio.Semaphore(self.connections)
        self.idle: dict[Origin, list[Connection]] = {}
        self.idle_count = 0
        self.addresses: dict[str, str | None] = {}  # host -> its one address, or None when it has several

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in PORTS:
            raise httpx.UnsupportedProtocol(f"{url.scheme}:// is not http or https")
        if not url.host:
            raise httpx.UnsupportedProtocol("the address has no host")
        if url.port is not None and not 0 < url.port < 65536:
            raise httpx.InvalidURL(f"port {url.port} is not between 1 and 65535")
        timeouts = request.extensions.get("timeout", {})
        try:
            if self.slots.locked():
                async with asyncio.timeout(timeouts.get("pool")):
                    await self.slots.acquire()
            else:
                await self.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"all {self.connections} connections stayed busy") from None
        connection: Connection | None = None
        try:
            origin = (url.scheme, url.host, url.port or PORTS[url.scheme])
            connection = self._reuse(origin) or await Connection.open(origin, timeouts.get("connect"), self._address)
            head = await connection.send(request, timeouts)
        except BaseException:
            if connection:
                connection.close()
            self.slots.release()
            raise
        return httpx.Response(head.status_code, headers=head.headers.raw_items(),
                              stream=Body(self, connection, timeouts.get("read")),
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason})

    async def _address(self, host: str, port: int) -> str | None:
        """The one address `host` stands for, or None when it has several, to be raced. An IP address is its own; a
        name is looked up once for the transport's life (one send), not once per connection. With a single address
        there is nothing to race, and asyncio's race would still cost a task and its futures for every connection."""
        if host not in self.addresses:
            try:
                self.addresses[host] = str(ipaddress.ip_address(host))
            except ValueError:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
                found = {str(info[4][0]) for info in infos}
                self.addresses[host] = found.pop() if len(found) == 1 else None
        return self.addresses[host]

    def _reuse(self, origin: Origin) -> Connection | None:
        idle, now = self.idle.get(origin), time.monotonic()
        while idle:
            connection = idle.pop()
            self.idle_count -= 1
            if connection.usable(now):
                return connection
            connection.close()
        return None

    def release(self, connection: Connection, *, reuse: bool) -> None:
        self.slots.release()
        if not reuse:
            connection.close()
            return
        idle = self.idle.setdefault(connection.origin, [])
        idle.append(connection)
        self.idle_count += 1
        if self.idle_count > self.connections:  # keep no more idle than could be in flight
            oldest = min((c for group in self.idle.values() for c in group), key=lambda c: c.idle_since)
            self.idle[oldest.origin].remove(oldest)
            self.idle_count -= 1
            oldest.close()

    async def aclose(self) -> None:
        for idle in self.idle.values():
            for connection in idle:
                connection.close()
        self.idle.clear()
        self.idle_count = 0

    async def __aexit__(self, exc_type: type[BaseException] | None = None, exc: BaseException | None = None,
                        tb: TracebackType | None = None) -> None:
        await self.aclose()


class NoCookies(httpx.Cookies):
    """Platforms are called with tokens, never sessions: a cookie one sets is neither kept nor sent back, and no
    answer is read for one (httpx's jar wraps every response and request in urllib's types to look)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise ValueError("the sending client keeps no cookies")


class Client(httpx.AsyncClient):
    """httpx's client, with no cookie jar."""

    @property
    def cookies(self) -> httpx.Cookies:
        return NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("the sending client keeps no cookies")


NO_COOKIES = NoCookies()


def http_client(connections: int = 8, *, timeout: httpx.Timeout | float = 20.0) -> httpx.AsyncClient:
    """A client for sending (and for the calls around it: limits, retractions) that builds nothing until a request
    needs it. One per event loop: its connections cannot outlive the loop that opened them."""
    from broadcast import __version__

    return Client(timeout=timeout, transport=Transport(connections),
                  headers={"user-agent": USER_AGENT.format(version=__version__)}, follow_redirects=False)


def list_session(connections: int, *, connect: float, read: float) -> aiohttp.ClientSession:
    """The aiohttp session the list channels (Notify, Twilio) send and read through: the same TLS context and
    user agent as the httpx client, `connections` at once to any host."""
    import aiohttp

    from broadcast import __version__

    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read),
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=0, ssl=tls_context()),
        headers={"User-Agent": USER_AGENT.format(version=__version__)})
