"""An httpx transport that spreads requests over several small connection pools.

httpcore 1.0's pool re-scans every connection for every queued request on each event, so one pool holding
dozens of connections spends more time scanning than sending (encode/httpcore#1035). Several small pools keep
each scan short; the fan-out still uses one shared httpx.AsyncClient.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from types import TracebackType

POOL_SIZE = 8  # connections per pool: small enough that a scan is cheap


def _tls_context() -> ssl.SSLContext:
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class ShardedTransport(httpx.AsyncBaseTransport):
    """Send each request through the pool with the fewest requests in flight."""

    def __init__(self, connections: int, **options: object):
        count = max(1, -(-connections // POOL_SIZE))
        size = -(-connections // count)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        tls = _tls_context()  # built once: loading the CA bundle per pool would cost more than the pools save
        self.pools = [httpx.AsyncHTTPTransport(verify=tls, limits=limits, **options)  # type: ignore[arg-type]
                      for _ in range(count)]
        self.busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.pools)), key=self.busy.__getitem__)
        self.busy[index] += 1
        try:
            return await self.pools[index].handle_async_request(request)
        finally:
            self.busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()

    async def __aexit__(self, exc_type: type[BaseException] | None = None, exc: BaseException | None = None,
                        tb: TracebackType | None = None) -> None:
        await self.aclose()
