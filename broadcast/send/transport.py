"""httpx's face on the sending connections (`broadcast.send.wire`): an httpx transport over the wire's pool, and
the client the channels that use httpx's API (a form, JSON, a file, a GET) are handed. `broadcast.send.client`
makes it only when a channel first asks for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from broadcast.send.wire import Connection, Pool, refused_type

if TYPE_CHECKING:
    from types import TracebackType

Refused = refused_type()


class Body(httpx.AsyncByteStream):
    """A response's body, read from its connection as it is iterated; closing it hands the connection back."""

    def __init__(self, pool: Pool, connection: Connection, timeout: float | None):
        self.pool, self.connection, self.timeout = pool, connection, timeout
        self.complete = self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self.connection.pieces(self.timeout):
            yield piece
        self.complete = True

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.release(self.connection, reuse=self.complete and self.connection.reusable())


class Transport(httpx.AsyncBaseTransport):
    """httpx's requests over a pool of the wire's connections (its own, or one a lean client shares with it)."""

    def __init__(self, connections: int = 8, *, pool: Pool | None = None):
        self.pool = pool or Pool(connections)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connection = await self.pool.connection(request.url, timeouts)
        try:
            head = await connection.send(request, timeouts)
        except BaseException:
            connection.close()
            self.pool.slots.release()
            raise
        return httpx.Response(head.status, headers=head.headers,
                              stream=Body(self.pool, connection, timeouts.get("read")),
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason})

    async def aclose(self) -> None:
        await self.pool.aclose()

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


NO_COOKIES = NoCookies()


class Client(httpx.AsyncClient):
    """httpx's client, with no cookie jar."""

    def __init__(self, *, transport: Transport, **options: Any):
        super().__init__(transport=transport, **options)

    @property
    def cookies(self) -> httpx.Cookies:
        return NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("the sending client keeps no cookies")
