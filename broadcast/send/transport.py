"""The process's HTTP plumbing for sending: one TLS context, built only when an https request needs it, and an
httpx transport that spreads requests over several small connection pools, opened as they are needed.

httpcore 1.0's pool re-scans every connection for every queued request on each event, so one pool holding
dozens of connections spends more time scanning than sending (encode/httpcore#1035). Several small pools keep
each scan short; the fan-out still uses one shared httpx.AsyncClient.
"""

from __future__ import annotations

import ssl
from functools import cache
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

POOL_SIZE = 8  # connections per pool: small enough that a scan is cheap
USER_AGENT = "broadcast/{version} (public warning and informing)"


@cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of the process: loading the CA bundle costs more than most requests, so it is done once,
    and only by the first https request (a sandbox drill over http never pays it)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


@cache
def _plain() -> ssl.SSLContext:
    # httpx builds a verifying context for every transport not given one; pools that only ever see http get this
    # empty one instead, which trusts no certificate: an https request can never be sent through it unverified.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class ShardedTransport(httpx.AsyncBaseTransport):
    """Send each request through the pool of its scheme with the fewest requests in flight; a pool is opened when
    every open one is full, up to `connections` in all."""

    def __init__(self, connections: int, **options: object):
        self.count = max(1, -(-connections // POOL_SIZE))
        size = -(-connections // self.count)
        self.size = size
        self.options = {"limits": httpx.Limits(max_connections=size, max_keepalive_connections=size), **options}
        self.pools: dict[str, list[httpx.AsyncHTTPTransport]] = {"http": [], "https": []}
        self.busy: dict[str, list[int]] = {"http": [], "https": []}

    def _choose(self, scheme: str) -> tuple[list[int], int]:
        pools, busy = self.pools[scheme], self.busy[scheme]
        index = min(range(len(pools)), key=busy.__getitem__) if pools else -1
        if index < 0 or (busy[index] >= self.size and len(pools) < self.count):
            verify = tls_context() if scheme == "https" else _plain()
            pools.append(httpx.AsyncHTTPTransport(verify=verify, **self.options))  # type: ignore[arg-type]
            busy.append(0)
            index = len(pools) - 1
        return busy, index

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = "https" if request.url.scheme == "https" else "http"
        busy, index = self._choose(scheme)
        busy[index] += 1
        try:
            return await self.pools[scheme][index].handle_async_request(request)
        finally:
            busy[index] -= 1

    async def aclose(self) -> None:
        for pools in self.pools.values():
            for pool in pools:
                await pool.aclose()

    async def __aexit__(self, exc_type: type[BaseException] | None = None, exc: BaseException | None = None,
                        tb: TracebackType | None = None) -> None:
        await self.aclose()


def http_client(connections: int = 8, *, timeout: httpx.Timeout | float = 20.0) -> httpx.AsyncClient:
    """A client for sending (and for the calls around it: limits, retractions) that builds nothing until a request
    needs it. One per event loop: an httpx client's connections cannot outlive the loop that opened them."""
    from broadcast import __version__

    return httpx.AsyncClient(timeout=timeout, transport=ShardedTransport(connections),
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
