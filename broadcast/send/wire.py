"""HTTP/1.1 straight over asyncio's sockets, each answer parsed by llhttp (through httptools, the parser under uvicorn
and Node's http) as its bytes arrive: the connections every send goes through, with no httpx in the way. It imports
no httpx either: a webhook or a list of texts sent without a fault never needs it, and importing it (with the
standard library's email, http.client and urllib.request it brings) is a tenth of a fresh warning's fixed cost.
`broadcast.send.transport` puts httpx's face on the same connections for the channels that use httpx's API.

httpx's own transport goes through httpcore and anyio: a cancel scope, a sniffio look-up and a lock for every read
and write, and a pool that re-scans every connection for every queued request (encode/httpcore#1035). For a
fan-out that is most of its CPU. h11, which frames HTTP for httpcore, builds and checks an event object for every
part of every message in Python (about 97 µs of CPU for a webhook's request and answer, against 14 µs for the head
written here and the answer parsed by llhttp, in C), and asyncio's streams cost a future and a timer for every read.
This keeps what the fan-out relies on from httpcore: the bytes of a request are h11's (tests/send/test_transport.py
compares them with httpcore's), every header is checked as h11 checks it before anything is written, a connection
is reused only while it is idle, open and fully read, and every failure is raised as the httpx exception httpcore
would raise, so `retry.classify` reads what may have gone the same way. Like httpx with a transport of its own, it
uses no proxy.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import re
import select
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache, lru_cache
from typing import TYPE_CHECKING, NamedTuple

import httptools

if TYPE_CHECKING:
    import httpx
else:

    class _Deferred:
        """httpx, imported the first time one of its names is read: the exceptions raised here are its own, and a
        send that goes without a fault never reads one."""

        def __getattr__(self, name: str) -> object:
            return getattr(importlib.import_module("httpx"), name)

    httpx = _Deferred()

USER_AGENT = "broadcast/{version} (public warning and informing)"
KEEPALIVE = 5.0  # seconds an idle connection is kept for reuse, as httpx's default
BUFFERED = 262144  # bytes of a long body parsed ahead of its reader before reading pauses
PORTS = {"http": 80, "https": 443}
MAX_HEAD = 65536  # bytes an answer may take before its head is complete (h11 allows 16 KiB)

# What h11 allows in a request's head (RFC 9110 5.1, 5.5 and 9.1; RFC 9112 3.2): a method and a header's name are
# tokens; a target has no white space; a value has no control character but tab, and no white space at either end.
TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
TARGET = re.compile(rb"[^\x00\s]+")
VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")


@cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of the process: loading the CA bundle costs more than most requests, so it is done once,
    and only by the first https request (a sandbox drill over http never pays it)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


Origin = tuple[str, str, int]


@cache
def refused_type() -> type[httpx.LocalProtocolError]:
    """The error for a request this transport will not send as it stands (a header with a line break, a body longer
    than it says): httpx's, as h11 would raise it, made the first time one is refused. Its message never holds a
    header's value, which may be a secret."""
    import httpx

    return type("Refused", (httpx.LocalProtocolError,), {"__module__": __name__, "__doc__": refused_type.__doc__})


def refused(message: str) -> httpx.LocalProtocolError:
    return refused_type()(message)


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[bytes, int | None, bool]:
    """The head of a request as h11 writes it (Host first, each header as given), with how its body is framed: the
    length it declares, or chunked. Anything h11 would refuse is refused here, before a byte is written."""
    if not TOKEN.fullmatch(method):
        raise refused(f"the method {method[:20]!r} is not a token")
    if not TARGET.fullmatch(target):
        raise refused("the address's path has white space or a NUL in it")  # it may hold a token
    hosts, others = [], []
    length: int | None = None
    chunked = False
    for name, value in headers:
        if not TOKEN.fullmatch(name):
            raise refused(f"the header name {name[:40]!r} is not a token")
        if not VALUE.fullmatch(value):
            raise refused(  # its value is not said: it may be a secret
                f"the value of the header {name.decode('ascii')!r} has a line break, a control character, or space "
                "at either end")
        lowered = name.lower()
        if lowered == b"host":
            hosts.append(b"%s: %s\r\n" % (name, value))
            continue
        if lowered == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise refused(f"conflicting or bad Content-Length {value[:20]!r}")
            length = int(value)
        elif lowered == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                raise refused("Only Transfer-Encoding: chunked is supported")
            chunked = True
        others.append(b"%s: %s\r\n" % (name, value))
    if not hosts:
        raise refused("Missing mandatory Host: header")
    if chunked and length is not None:
        raise refused("Content-Length and Transfer-Encoding: chunked together")
    return b"".join([b"%s %s HTTP/1.1\r\n" % (method, target), *hosts, *others, b"\r\n"]), length, chunked


class Answer:
    """One answer as its connection's parser reads it. An informational answer (100 Continue) is passed over; bytes
    after the answer spoil the connection for reuse."""

    __slots__ = ("head_only", "status", "reason", "headers", "head", "until_close", "chunks", "complete",
                 "keep_alive", "spoiled", "size")

    def __init__(self, *, head_only: bool = False):
        self.head_only = head_only  # the answer to HEAD: a head and no body, whatever its Content-Length says
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = False  # the final head is read
        self.until_close = False  # its body runs until the server closes the connection (no length, not chunked)
        self.chunks: list[bytes] = []
        self.complete = False
        self.keep_alive = False  # neither side asked to close (llhttp knows only until the answer is complete)
        self.spoiled = False  # the server sent more than this answer
        self.size = 0  # bytes read while the head was incomplete


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time. Its answer is parsed as the bytes arrive, in the event loop's
    own callback, and the request's coroutine is woken once: when the head is in (and, for a long body, as each
    piece comes)."""

    def __init__(self, origin: Origin):
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.answer: Answer | None = None  # the answer of the exchange in progress; None while idle
        # Its parser: a new one for each answer (one that misread a HEAD's length never reads the next), calling this
        # connection, which fills in the answer. Neither the answer nor the parser refers back to the other, so each
        # is freed as soon as it is done with, not left in a cycle for the garbage collector: with one per request,
        # collecting them was a tenth of the CPU of a bulk send.
        self.parser: httptools.HttpResponseParser | None = None
        self.idle_since = 0.0
        self.lost = False  # the connection is closed, by either side
        self.spoiled = False  # the server sent something while no request was waiting for it
        self.error: httpx.TransportError | None = None  # what the reading found wrong, for the waiting request
        self.waiter: asyncio.Future[None] | None = None  # the request waiting for more of its answer
        self.writable: asyncio.Future[None] | None = None  # the request waiting for the socket to take more
        self.buffered = 0  # bytes of body parsed but not yet taken by the reader
        self.paused = False

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
                _, connection = await asyncio.get_running_loop().create_connection(
                    lambda: cls(origin), only or host, port, happy_eyeballs_delay=None if only else 0.25,
                    ssl=tls_context() if secure else None, server_hostname=host if secure else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {timeout} s") from None
        except OSError as exc:  # refused, unreachable, no such host, a certificate not trusted (ssl.SSLError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return connection

    # -- asyncio's side ------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None or self.error is not None:
            self.spoiled = True
            return
        try:
            self.parser.feed_data(data)  # type: ignore[union-attr]  # set with the answer
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols, which was not asked of it"))
            return
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"the answer is not HTTP/1.1: {exc}"))
            return
        if not answer.head:
            answer.size += len(data)
            if answer.size > MAX_HEAD:
                self._fail(httpx.RemoteProtocolError(f"the answer's head is longer than {MAX_HEAD} bytes"))
            return
        if answer.chunks:
            self.buffered += len(data)
            if self.buffered > BUFFERED and not self.paused and self.transport is not None:
                self.paused = True  # a long body is read no faster than it is taken
                self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself, and connection_lost says what that means

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        answer = self.answer
        if answer is not None and not answer.complete and self.error is None:
            if answer.head and answer.until_close:
                answer.complete = True
            elif exc is not None:
                self.error = httpx.ReadError(str(exc) or type(exc).__name__)
            else:
                self.error = httpx.RemoteProtocolError("Server disconnected without sending a complete response.")
        self._wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def _fail(self, error: httpx.TransportError) -> None:
        self.error = error
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- llhttp's side: httptools calls these as the bytes of the answer in progress arrive ----------------------
    def on_message_begin(self) -> None:
        answer = self.answer
        if answer is None:
            return
        if answer.head:
            answer.spoiled = True
        else:
            answer.headers, answer.reason = [], b""

    def on_status(self, reason: bytes) -> None:
        answer = self.answer
        if answer is not None and not answer.head:
            answer.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        answer = self.answer
        if answer is not None and not answer.head:
            answer.headers.append((name, value))

    def on_headers_complete(self) -> None:
        answer, parser = self.answer, self.parser
        if answer is None or parser is None:
            return
        status = parser.get_status_code()
        if answer.head or status < 200:
            return
        answer.status, answer.head = status, True
        if answer.head_only or status in (204, 304):
            answer.complete = True
            return
        framing = {name.lower(): value for name, value in answer.headers
                   if name.lower() in (b"content-length", b"transfer-encoding")}
        coding = framing.get(b"transfer-encoding")
        answer.until_close = (b"content-length" not in framing if coding is None
                              else not coding.lower().rstrip().endswith(b"chunked"))

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        if answer is not None and answer.head and not answer.spoiled:
            answer.chunks.append(body)

    def on_message_complete(self) -> None:
        answer, parser = self.answer, self.parser
        if answer is not None and parser is not None and answer.head and not answer.spoiled:
            answer.complete = True
            answer.keep_alive = parser.should_keep_alive()

    # -- the request's side --------------------------------------------------------------------------------------
    def usable(self, now: float) -> bool:
        """Idle, open and fresh: a connection the server may have closed is never sent a request. The socket itself
        is asked too, as httpcore asks it: an idle connection with anything to read (the server's close, which the
        event loop may not have read yet, or bytes it should never have sent) is not reused."""
        transport = self.transport
        if (self.answer is not None or self.lost or self.spoiled or transport is None or transport.is_closing()
                or now - self.idle_since >= KEEPALIVE):
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)

    async def send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> Answer:
        """Write the request and read the head of its answer."""
        return await self._exchange(request.method == "HEAD", self._write(request, timeouts.get("write")), timeouts)

    async def send_whole(self, request: bytes, timeouts: dict[str, float | None], *, head_only: bool = False
                         ) -> tuple[Answer, bytes]:
        """Write a whole request (its head and body), and read its whole answer: the answer, and its body as sent."""
        answer = await self._exchange(head_only, self._put(request, self.origin[1], timeouts.get("write")), timeouts)
        return answer, b"".join([piece async for piece in self.pieces(timeouts.get("read"))])

    async def _exchange(self, head_only: bool, writing: Awaitable[None], timeouts: dict[str, float | None]) -> Answer:
        self.answer = Answer(head_only=head_only)
        self.parser = httptools.HttpResponseParser(self)
        try:
            await writing
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
        head, length, chunked = request_head(request.method.encode("ascii"), url.raw_path, request.headers.raw)
        parts = [head]
        written = 0
        async for chunk in request.stream:  # type: ignore[union-attr]
            if not chunk:
                continue
            written += len(chunk)
            if written > (length or 0) and not chunked:
                raise refused("Too much data for declared Content-Length")
            parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if len(parts) > 16:
                await self._put(b"".join(parts), url.host, timeout)
                parts.clear()
        if length is not None and written != length:
            raise refused("Too little data for declared Content-Length")
        if chunked:
            parts.append(b"0\r\n\r\n")
        await self._put(b"".join(parts), url.host, timeout)

    async def _put(self, data: bytes, host: str, timeout: float | None) -> None:
        """Hand `data` to the socket, waiting (at most `timeout`) only when it already holds more than it should."""
        if self.lost or self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("Connection lost")
        self.transport.write(data)
        if self.writable is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self.writable
            except TimeoutError:
                raise httpx.WriteTimeout(f"could not write to {host} within {timeout} s") from None
            if self.lost:
                raise httpx.WriteError("Connection lost")

    async def _head(self, timeout: float | None) -> Answer:
        answer = self.answer
        assert answer is not None
        while not answer.head:
            await self.more(timeout)
        return answer

    async def more(self, timeout: float | None) -> None:
        """Wait for more of the answer: the server closing the connection ends an answer that runs until it does;
        before the end of any other, it is a protocol error."""
        answer = self.answer
        if self.error is None and not self.lost and answer is not None and not (answer.chunks or answer.complete):
            # A timer on the future itself: asyncio.timeout's scope cost each answer waited for 13 µs more of CPU
            # (251 against 238 µs for a Notify request, median of six rounds taking turns).
            loop = asyncio.get_running_loop()
            waiter = self.waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                raise httpx.ReadTimeout(f"no answer from {self.origin[1]} within {timeout} s") from None
            finally:
                self.waiter = None
                if timer is not None:
                    timer.cancel()
        if self.error is not None:
            raise self.error

    async def pieces(self, timeout: float | None) -> AsyncIterator[bytes]:
        """The body of the answer in progress, piece by piece as it is read, to its end: a server that closes the
        connection before the end of an answer that does not run until it does is a protocol error."""
        answer = self.answer
        assert answer is not None
        while True:
            chunks = self.take()
            for chunk in chunks:
                yield chunk
            if chunks:
                continue  # more may have come while they were taken
            if answer.complete:
                return
            if self.lost and self.error is None:
                raise httpx.RemoteProtocolError("Server disconnected without sending a complete response.")
            await self.more(timeout)

    def take(self) -> list[bytes]:
        """The pieces of body parsed so far, reading on if a long body had paused it."""
        answer = self.answer
        assert answer is not None
        chunks, answer.chunks, self.buffered = answer.chunks, [], 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunks

    def reusable(self) -> bool:
        """After an answer read to its end: ready for the next request, unless either side asked to close."""
        answer = self.answer
        if answer is None or not answer.complete or answer.spoiled or not answer.keep_alive or self.spoiled:
            return False
        self.answer = self.parser = None
        self.idle_since = time.monotonic()
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())



class Address(NamedTuple):
    """What a request needs of its URL, as httpx's URL gives it: the host in lower case, no port when it is the
    scheme's own, and the path (never empty) with its query."""

    scheme: str
    host: str
    port: int | None
    netloc: bytes
    raw_path: bytes


# A URL that httpx's would leave as it is: http or https, a host name or IPv4 address in lower case, a port, and a
# path and query of characters that need no escaping (RFC 3986's unreserved characters and sub-delimiters, ':', '@',
# '/', and escapes in capitals), with no '.' or '..' for a segment. Anything else (a user, a fragment, a character
# to escape, a segment to remove) is parsed by httpx.
PLAIN = re.compile(r"(https?)://([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)(?::([1-9][0-9]{0,4}))?"
                   r"((?:/(?!\.\.?(?:/|\?|$))(?:[-\w.~!$&'()*+,;=:@]|%[0-9A-F]{2})*)*)"
                   r"(\?(?:[-\w.~!$&'()*+,;=:@/?]|%[0-9A-F]{2})+)?", re.ASCII)


@lru_cache(maxsize=1024)
def address(url: str) -> Address:
    """The parts of an address a request needs, parsed once per process: a channel posts to the same one every
    time. A plain URL is split here; any other is parsed by httpx (imported for it), so both ways agree."""
    plain = PLAIN.fullmatch(url)
    if plain is None or (plain[3] and int(plain[3]) > 65535):
        import httpx

        parsed = httpx.URL(url)
        return Address(parsed.scheme, parsed.host, parsed.port, parsed.netloc, parsed.raw_path)
    scheme, host, port, path, query = plain.groups()
    number = int(port) if port and int(port) != PORTS[scheme] else None
    netloc = f"{host}:{number}" if number else host
    return Address(scheme, host, number, netloc.encode("ascii"), f"{path or '/'}{query or ''}".encode("ascii"))


class Reply:
    """A whole answer read by a lean POST: its status, its headers, and its body as it came (not decoded)."""

    __slots__ = ("status", "headers", "body", "_response")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
                 response: httpx.Response | None = None):
        self.status, self.headers, self.body, self._response = status, headers, body, response

    def header(self, name: str) -> str | None:
        """A header's value (several of one name joined with ', ', as httpx joins them), or None."""
        key = name.lower().encode("latin-1")
        found = [value.decode("latin-1") for field, value in self.headers if field.lower() == key]
        return ", ".join(found) if found else None

    def response(self) -> httpx.Response:
        """The answer as httpx gives it, its body decoded: made only when asked (to read an error's words)."""
        if self._response is None:
            import httpx

            self._response = httpx.Response(self.status, headers=self.headers, stream=httpx.ByteStream(self.body))
            self._response.read()
        return self._response


class Pool:
    """At most `connections` requests in flight at once, over any number of hosts; idle connections kept per origin
    for KEEPALIVE seconds."""

    def __init__(self, connections: int = 8):
        self.connections = max(1, connections)  # a client made for no channel at all still answers a request
        self.slots = asyncio.Semaphore(self.connections)
        self.idle: dict[Origin, list[Connection]] = {}
        self.idle_count = 0
        self.addresses: dict[str, str | None] = {}  # host -> its one address, or None when it has several

    async def exchange(self, url: Address, method: bytes, headers: list[tuple[bytes, bytes]], body: bytes,
                       timeouts: dict[str, float | None]) -> Reply:
        """One request whose body is in hand, and its whole answer, with no httpx request or response around them.
        `headers` are written as given (Host and Content-Length among them), after the checks request_head makes:
        a request it refuses opens no connection."""
        head, length, chunked = request_head(method, url.raw_path, headers)
        if chunked or (length or 0) != len(body):  # a request with no body (a GET) need not say its length
            raise refused(f"the body is {len(body)} bytes, and the request says {length}")
        connection = await self.connection(url, timeouts)
        try:
            answer, content = await connection.send_whole(head + body, timeouts, head_only=method == b"HEAD")
        except BaseException:
            connection.close()
            self.slots.release()
            raise
        self.release(connection, reuse=connection.reusable())
        return Reply(answer.status, answer.headers, content)

    async def connection(self, url: Address | httpx.URL, timeouts: dict[str, float | None]) -> Connection:
        """A slot (waiting at most the pool timeout), and an idle connection to the URL's origin or a new one. The
        caller releases the slot; if no connection is had, it is released here."""
        if url.scheme not in PORTS:
            raise httpx.UnsupportedProtocol(f"{url.scheme}:// is not http or https")
        if not url.host:
            raise httpx.UnsupportedProtocol("the address has no host")
        if url.port is not None and not 0 < url.port < 65536:
            raise httpx.InvalidURL(f"port {url.port} is not between 1 and 65535")
        try:
            if self.slots.locked():
                async with asyncio.timeout(timeouts.get("pool")):
                    await self.slots.acquire()
            else:
                await self.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"all {self.connections} connections stayed busy") from None
        try:
            origin = (url.scheme, url.host, url.port or PORTS[url.scheme])
            return self._reuse(origin) or await Connection.open(origin, timeouts.get("connect"), self._address)
        except BaseException:
            self.slots.release()
            raise

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
