"""The client a send hands its channels. A POST whose body is in hand (a post to any platform, a webhook, a text
through Notify or Twilio) and a plain GET (a platform's limits) go straight over the wire's connections; anything
else a channel asks of it (httpx's API: parameters, a file, a DELETE) is httpx's client, made the first time it is
asked, over the same connections. A warning that goes well thus never imports httpx (an error's words are read
through httpx's Response, made then)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from broadcast.send.wire import USER_AGENT, Pool, Reply, address, refused

if TYPE_CHECKING:
    from types import TracebackType

    import httpx

# The headers httpx's client sends unless told otherwise, said here so that a lean POST writes them without httpx;
# the client made for httpx's API is given them too, so both ways write the same bytes (tests/send/test_transport.py).
# The codings offered are the two httpx always decodes (it offers zstd and br too where their packages are found).
HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"}


class Sender:
    """A client for sending (and for the calls around it: limits, retractions) that builds nothing until a request
    needs it. One per event loop: its connections cannot outlive the loop that opened them. What it does not do
    itself, the httpx client it makes on first use does: its attributes are that client's."""

    __slots__ = ("pool", "timeouts", "_headers", "_client", "_closed")

    def __init__(self, connections: int, timeouts: dict[str, float | None]):
        from broadcast import __version__

        self.pool = Pool(connections)
        self.timeouts = timeouts
        self._headers = {**HEADERS, "User-Agent": USER_AGENT.format(version=__version__)}
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    @property
    def httpx(self) -> httpx.AsyncClient:
        """httpx's client over the same connections, made the first time a channel asks for it."""
        if self._client is None:
            import httpx

            from broadcast.send.transport import Client, Transport

            self._client = Client(transport=Transport(pool=self.pool), timeout=httpx.Timeout(**self.timeouts),
                                  headers=self._headers, follow_redirects=False)
        return self._client

    @property
    def is_closed(self) -> bool:
        return self._closed or (self._client is not None and self._client.is_closed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.httpx, name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in Sender.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self.httpx, name, value)

    async def post_bytes(self, url: str, content: bytes, headers: dict[str, str]) -> Reply:
        """POST `content` to `url` and read the whole answer, writing the very bytes httpx's `post` would write (Host,
        the client's headers, these, the length), with no httpx request or response in between: building and reading
        those cost each webhook of a warning to 200 about 150 µs of CPU (see the commit that made this). A client
        with hooks or auth, which those serve, posts through httpx as usual. A compressed answer's body is given
        decoded, as httpx's would be."""
        return await self._whole(b"POST", url, content, headers)

    async def get_bytes(self, url: str, headers: dict[str, str]) -> Reply:
        """GET `url` and read the whole answer, as post_bytes posts: the bytes httpx's `get` would write (a GET has
        no body, and says no length)."""
        return await self._whole(b"GET", url, b"", headers)

    async def _whole(self, method: bytes, url: str, content: bytes, headers: dict[str, str]) -> Reply:
        client = self._client
        if client is not None and (client.auth is not None or any(client.event_hooks.values())):
            response = await client.request(method.decode("ascii"), url, content=content or None, headers=headers)
            return Reply(response.status_code, response.headers.raw, response.content, response)
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        target = address(url)
        wire = (list(client.headers.raw) if client is not None
                else [(name.encode("ascii"), value.encode("ascii")) for name, value in self._headers.items()])
        given = []
        for name, value in headers.items():
            try:
                key = name.encode("ascii")
            except UnicodeEncodeError:  # httpx raises this too: here it says nothing went
                raise refused(f"the header name {name[:40]!r} is not ASCII") from None
            try:
                given.append((key, value.encode("ascii")))
            except UnicodeEncodeError:  # its value is not said: it may be a secret
                raise refused(f"the value of the header {name!r} is not ASCII") from None
        # As httpx merges: a client's header the request gives again is dropped, and the request's follow in order.
        mine = {key.lower() for key, _ in given}
        wire = [pair for pair in wire if pair[0].lower() not in mine] + given
        names = [name.lower() for name, _ in wire]
        framed = b"content-length" in names or b"transfer-encoding" in names
        # As httpx places them: Host first; the length of a body last, or at once after Host when there is none (a
        # POST says its length even then; a GET does not).
        first = [(b"Host", target.netloc)] if b"host" not in names else []
        if not framed and not content and method == b"POST":
            first.append((b"Content-Length", b"0"))
        elif not framed and content:
            wire.append((b"Content-Length", b"%d" % len(content)))
        wire[:0] = first
        timeouts = client.timeout.as_dict() if client is not None else self.timeouts
        reply = await self.pool.exchange(target, method, wire, content, timeouts)
        if any(name.lower() == b"content-encoding" for name, _ in reply.headers):
            reply.body = reply.response().content
        return reply

    async def aclose(self) -> None:
        self._closed = True
        if self._client is not None:
            await self._client.aclose()  # and its transport, the pool
        else:
            await self.pool.aclose()

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None = None, exc: BaseException | None = None,
                        tb: TracebackType | None = None) -> None:
        await self.aclose()


def http_client(connections: int = 8, *, timeout: float | None | httpx.Timeout = 20.0,
                connect: float | None = None) -> httpx.AsyncClient:
    """The sending client (a Sender): at most `connections` requests at once, each given `timeout` seconds for each
    step (or httpx's Timeout), and `connect` for its connection when that is said. It is one in every way a channel
    uses httpx's client: what it does not do itself, the httpx client it makes does."""
    timeouts: dict[str, float | None]
    if isinstance(timeout, float | int | None):
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout)
    else:
        timeouts = timeout.as_dict()
    if connect is not None:
        timeouts["connect"] = connect
    return cast("httpx.AsyncClient", Sender(connections, timeouts))


def list_client(connections: int, *, connect: float, read: float) -> httpx.AsyncClient:
    """The client the list channels (Notify, Twilio) send and read through: the fan-out's, `connections` requests at
    once to any host, with a connect and a read timeout only. A wait for one of its own connections is not the
    platform's fault: each person's deadline bounds it."""
    return cast("httpx.AsyncClient", Sender(connections, {"connect": connect, "read": read, "write": None,
                                                         "pool": None}))
