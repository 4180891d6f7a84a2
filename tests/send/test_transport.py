"""The sending transport seen from the server's side of a real socket: the bytes that arrive, the connections
opened, and what the client is told when a server hangs up, stalls or is not there. The server is a plain threaded
TCP server on 127.0.0.1 that frames HTTP with h11; httpx's own transport (httpcore) is the oracle where the two
must agree."""

from __future__ import annotations

import asyncio
import gc
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable

import h11
import httptools
import httpx
import pytest
import trustme

from broadcast.send import transport, wire
from broadcast.send.client import Sender, http_client
from broadcast.send.retry import classify
from broadcast.send.transport import Transport
from broadcast.send.wire import Reply


class Server(socketserver.ThreadingTCPServer):
    """Answers each request with `answer(request, body) -> (status, headers, body)`, or acts on the special
    answers "hang up" (close without a word) and "stall" (say nothing for a while). Records every request's raw
    bytes, the connections opened, and the most open at once."""

    daemon_threads = allow_reuse_address = True

    def __init__(self, answer: Callable[[h11.Request, bytes], object], tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer, self.tls = answer, tls
        self.raw: list[bytes] = []
        self.requests: list[tuple[bytes, bytes]] = []  # (method, target)
        self.connections = self.open = self.most_open = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{'https' if self.tls else 'http'}://{host}:{self.server_address[1]}"


class Handler(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        server, sock = self.server, self.request
        if server.tls:
            try:
                sock = server.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate: nothing was sent
        with server.lock:
            server.connections += 1
            server.open += 1
            server.most_open = max(server.most_open, server.open)
        try:
            self.serve(sock)
        finally:
            with server.lock:
                server.open -= 1
            sock.close()

    def serve(self, sock: socket.socket) -> None:
        server, wire = self.server, h11.Connection(h11.SERVER)
        while True:
            raw, request, body = b"", None, b""
            while True:
                event = wire.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    if not data:
                        return
                    raw += data
                    wire.receive_data(data)
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
            with server.lock:
                server.raw.append(raw)
                server.requests.append((request.method, request.target))
            answer = server.answer(request, body)
            if answer == "hang up":
                return
            if answer == "stall":
                time.sleep(1.0)
                return
            status, headers, content, *then = answer  # type: ignore[misc]
            sock.sendall(wire.send(h11.Response(status_code=status, headers=headers)))
            for piece in content if isinstance(content, list) else [content]:
                sock.sendall(wire.send(h11.Data(data=piece)))
            sock.sendall(wire.send(h11.EndOfMessage()))
            if wire.our_state is h11.MUST_CLOSE or answer_closes(headers) or then == ["hang up"]:
                return
            wire.start_next_cycle()


def answer_closes(headers: list[tuple[bytes, bytes]]) -> bool:
    return (b"connection", b"close") in [(k.lower(), v.lower()) for k, v in headers]


def settled(condition: Callable[[], bool]) -> bool:
    """Whether `condition` holds within a second: the server's threads see a closed socket a moment later."""
    for _ in range(100):
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def ok(request: h11.Request, body: bytes) -> object:
    text = b"got " + request.method + b" " + request.target + b" " + body
    return 200, [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())], text


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(answer: Callable[[h11.Request, bytes], object] = ok, tls: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(answer, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run(coroutine_function: Callable[[httpx.AsyncClient], object], *, client: httpx.AsyncClient | None = None):
    async def main():
        async with client or http_client(4, timeout=httpx.Timeout(2.0)) as opened:
            return await coroutine_function(opened)

    return asyncio.run(main())


def plain_httpx() -> httpx.AsyncClient:
    """httpx's own client (through httpcore and h11), with the headers ours sends: the same user agent, and the same
    codings offered (httpx offers zstd and br too where their packages are installed)."""
    return httpx.AsyncClient(timeout=2.0, headers=http_client().headers)


# -- what arrives -----------------------------------------------------------------------------------------------
def test_the_bytes_on_the_wire_are_httpcores(serve):
    server = serve()

    async def requests(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await client.post(f"{server.url}/hooks/1?x=a%20b", content="{\"headline\":\"Ysgol ar gau – ɡ\"}".encode(),
                              headers={"content-type": "application/json", "webhook-id": "msg_1"}),
            await client.get(f"{server.url}/api/v2/instance", params={"q": "snow day"}),
            await client.post(f"{server.url}/form", data={"status": "Closed", "visibility": "public"}),
            await client.post(f"{server.url}/media", files={"file": ("map.png", b"\x89PNG" + bytes(range(256)))},
                              data={"description": "the area"}),
        ]

    ours = run(requests)
    ours_raw, server.raw[:] = list(server.raw), []
    theirs = run(requests, client=plain_httpx())
    multipart = [raw.split(b"boundary=")[1].split(b"\r\n")[0] for raw in (ours_raw[3], server.raw[3])]
    assert ours_raw[:3] == server.raw[:3]  # byte for byte
    assert ours_raw[3].replace(multipart[0], b"B") == server.raw[3].replace(multipart[1], b"B")  # a random boundary
    assert [(r.status_code, r.text, r.headers["content-type"], r.http_version) for r in ours[:3]] == [
        (r.status_code, r.text, r.headers["content-type"], r.http_version) for r in theirs[:3]]
    assert ours[3].status_code == theirs[3].status_code == 200
    assert ours[0].text == "got POST /hooks/1?x=a%20b {\"headline\":\"Ysgol ar gau – ɡ\"}"


def test_one_connection_carries_requests_one_after_another(serve):
    server = serve()

    async def five(client: httpx.AsyncClient) -> list[int]:
        return [(await client.get(f"{server.url}/{i}")).status_code for i in range(5)]

    assert run(five) == [200] * 5
    assert server.connections == 1 and len(server.requests) == 5


def test_no_more_connections_than_allowed_are_open_at_once_and_every_request_is_answered(serve):
    def slow(request: h11.Request, body: bytes) -> object:
        time.sleep(0.05)
        return ok(request, body)

    server = serve(slow)

    async def thirty(client: httpx.AsyncClient) -> list[str]:
        answers = await asyncio.gather(*(client.post(f"{server.url}/hooks/{i}", content=b"x") for i in range(30)))
        return [a.text for a in answers]

    assert run(thirty) == [f"got POST /hooks/{i} x" for i in range(30)]
    assert server.most_open == 4 and server.connections == 4  # then reused, never more than the transport's 4


def test_an_answer_is_freed_once_read_never_left_in_a_cycle_for_the_garbage_collector(serve):
    server = serve()

    async def forty(client: Sender) -> list[int]:
        lean = [(await client.post_bytes(f"{server.url}/hooks/{i}", b"x", {})).status for i in range(20)]
        return lean + [(await client.get(f"{server.url}/{i}")).status_code for i in range(20)]

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage, not freed
    try:
        assert run(forty) == [200] * 40
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, wire.Answer | httptools.HttpResponseParser)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []  # one per request (a bulk send's) would make the collector run often, and long


def test_a_body_read_as_a_stream_arrives_whole_and_frees_its_connection(serve):
    pieces = [bytes([i]) * 10_000 for i in range(20)]
    server = serve(lambda request, body: (200, [(b"transfer-encoding", b"chunked")], pieces))

    async def stream_then_get(client: httpx.AsyncClient) -> tuple[bytes, int]:
        async with client.stream("GET", f"{server.url}/big") as response:
            got = b"".join([chunk async for chunk in response.aiter_raw()])
        return got, (await client.get(f"{server.url}/after")).status_code

    assert run(stream_then_get) == (b"".join(pieces), 200)
    assert server.connections == 1


def test_an_answer_that_asks_to_close_is_not_reused(serve):
    server = serve(lambda request, body: (200, [(b"connection", b"close"), (b"content-length", b"2")], b"ok"))

    async def two(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(f"{server.url}/{i}")).text for i in range(2)]

    assert run(two) == ["ok", "ok"]
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_never_sent_a_request(serve):
    """A server that hangs up between requests (its answer said nothing of it) must not cost the next POST: sent on
    the dead socket, it would come back as 'may have landed'."""
    def answer_then_close(request: h11.Request, body: bytes) -> object:
        return (*ok(request, body), "hang up") if request.target == b"/1" else ok(request, body)  # type: ignore[misc]

    server = serve(answer_then_close)

    async def three(client: httpx.AsyncClient) -> list[int]:
        codes = []
        for i in range(3):
            codes.append((await client.post(f"{server.url}/{i}", content=b"x")).status_code)
            await asyncio.sleep(0.05)
        return codes

    assert run(three) == [200, 200, 200]
    assert len(server.requests) == 3 and server.connections == 2


def test_an_idle_connection_older_than_the_keepalive_is_dropped(serve, monkeypatch):
    server = serve()
    monkeypatch.setattr(wire, "KEEPALIVE", 0.05)

    async def two(client: httpx.AsyncClient) -> None:
        await client.get(f"{server.url}/a")
        await asyncio.sleep(0.1)
        await client.get(f"{server.url}/b")

    run(two)
    assert server.connections == 2


# -- what the client is told when it goes wrong -----------------------------------------------------------------
def test_a_server_that_hangs_up_after_the_request_may_have_acted_on_it(serve):
    server = serve(lambda request, body: "hang up")

    async def post(client: httpx.AsyncClient) -> None:
        await client.post(f"{server.url}/hooks/1", content=b"x")

    with pytest.raises(httpx.RemoteProtocolError) as caught:
        run(post)
    said = classify("hook", caught.value)
    assert said.transient and said.unknown_outcome  # it arrived: a retry could post twice
    assert len(server.requests) == 1  # and the transport did not send it again by itself


def test_a_server_that_does_not_answer_in_time_is_a_read_timeout(serve):
    server = serve(lambda request, body: "stall")

    async def post(client: httpx.AsyncClient) -> None:
        await client.post(f"{server.url}/hooks/1", content=b"x")

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        run(post, client=http_client(2, timeout=httpx.Timeout(0.2)))
    assert time.monotonic() - started < 0.9
    assert classify("hook", httpx.ReadTimeout("")).unknown_outcome


def test_nobody_listening_is_a_connect_error_and_nothing_went():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there

    async def post(client: httpx.AsyncClient) -> None:
        await client.post(f"http://127.0.0.1:{port}/hooks/1", content=b"x")

    with pytest.raises(httpx.ConnectError) as caught:
        run(post)
    said = classify("hook", caught.value)
    assert said.transient and not said.unknown_outcome and "cannot connect" in said.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "ftp://127.0.0.1/x"])
def test_an_address_that_cannot_be_used_is_said_before_any_connection(url):
    async def get(client: httpx.AsyncClient) -> None:
        await client.get(url)

    with pytest.raises((httpx.InvalidURL, httpx.UnsupportedProtocol)) as caught:
        run(get)
    assert not classify("hook", caught.value).unknown_outcome


def looked_up(monkeypatch, addresses: dict[str, list[tuple[str, int]]]) -> list[str]:
    """Names resolve to the given (address, port)s, and nothing else resolves; returns the names asked, in order."""
    asked: list[str] = []

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        if host not in addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no such host here")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", found) for found in addresses[host]]

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return asked


def test_a_name_is_looked_up_once_for_all_its_connections_and_an_address_not_at_all(serve, monkeypatch):
    def slow(request: h11.Request, body: bytes) -> object:
        time.sleep(0.05)
        return ok(request, body)

    server = serve(slow)
    port = server.server_address[1]
    asked = looked_up(monkeypatch, {"alerts.test": [("127.0.0.1", port)]})

    async def twelve(client: httpx.AsyncClient) -> list[str]:
        answers = await asyncio.gather(*(client.post(f"http://alerts.test:{port}/hooks/{i}", content=b"x")
                                         for i in range(8)),
                                       *(client.post(f"{server.url}/hooks/{i}", content=b"y") for i in range(8, 12)))
        return [a.text for a in answers]

    assert run(twelve) == [f"got POST /hooks/{i} x" for i in range(8)] + [f"got POST /hooks/{i} y"
                                                                           for i in range(8, 12)]
    assert asked == ["alerts.test"] and server.connections >= 4  # once, for four connections at once and more
    hosts = {raw.lower().split(b"\r\nhost: ")[1].split(b"\r\n")[0] for raw in server.raw}
    assert hosts == {f"alerts.test:{port}".encode(), f"127.0.0.1:{port}".encode()}  # each named as asked


def test_a_name_with_several_addresses_is_raced_and_one_that_answers_is_used(serve, monkeypatch):
    server = serve()  # on 127.0.0.1 only: 127.0.0.2 is loopback too, and nothing listens there
    port = server.server_address[1]
    asked = looked_up(monkeypatch, {"alerts.test": [("127.0.0.2", port), ("127.0.0.1", port)]})

    async def post(client: httpx.AsyncClient) -> str:
        return (await client.post(f"http://alerts.test:{port}/hooks/1", content=b"x")).text

    assert run(post) == "got POST /hooks/1 x"
    assert asked == ["alerts.test", "alerts.test"]  # ours, then asyncio's own for the race


def test_a_name_that_does_not_resolve_is_a_connect_error_and_nothing_went(monkeypatch):
    looked_up(monkeypatch, {})

    async def post(client: httpx.AsyncClient) -> None:
        await client.post("http://nowhere.test/hooks/1", content=b"x")

    with pytest.raises(httpx.ConnectError) as caught:
        run(post)
    assert not classify("hook", caught.value).unknown_outcome


def test_requests_waiting_for_a_connection_give_up_at_the_pool_timeout(serve):
    server = serve(lambda request, body: "stall")

    async def two(client: httpx.AsyncClient) -> list[object]:
        return await asyncio.gather(*(client.post(f"{server.url}/{i}", content=b"x") for i in range(2)),
                                    return_exceptions=True)

    first, second = run(two, client=http_client(1, timeout=httpx.Timeout(0.5, pool=0.1)))
    assert isinstance(first, httpx.ReadTimeout) and isinstance(second, httpx.PoolTimeout)
    assert len(server.requests) == 1
    assert not classify("hook", second).unknown_outcome  # it never left


# -- TLS --------------------------------------------------------------------------------------------------------
@pytest.fixture
def authority():
    return trustme.CA()


def server_tls(authority) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    return context


def test_https_is_verified_against_the_trusted_authorities(serve, authority, monkeypatch):
    server = serve(tls=server_tls(authority))
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    monkeypatch.setattr(wire, "tls_context", lambda: trusting)

    async def get(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(f"{server.url}/{i}")).text for i in range(2)]

    assert run(get) == ["got GET /0 ", "got GET /1 "]
    assert server.connections == 1


def test_a_certificate_nobody_trusts_is_refused_before_a_byte_is_sent(serve, authority):
    server = serve(tls=server_tls(authority))  # our CA is not in certifi's bundle
    wire.tls_context.cache_clear()

    async def post(client: httpx.AsyncClient) -> None:
        await client.post(f"{server.url}/hooks/1", content=b"x")

    with pytest.raises(httpx.ConnectError) as caught:
        run(post)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert not classify("hook", caught.value).unknown_outcome and server.requests == []


def test_the_transport_works_with_any_number_of_hosts_and_keeps_few_idle(serve):
    servers = [serve() for _ in range(6)]
    through = Transport(connections=3)

    async def each(client: httpx.AsyncClient) -> tuple[list[int], int]:
        return [(await client.get(f"{server.url}/")).status_code for server in servers], through.pool.idle_count

    assert run(each, client=httpx.AsyncClient(transport=through)) == ([200] * 6, 3)  # the three oldest were closed
    assert through.pool.idle_count == 0
    assert settled(lambda: [server.open for server in servers] == [0] * 6)  # all closed with the client


def test_a_cookie_a_platform_sets_is_never_sent_back(serve):
    server = serve(lambda request, body: (200, [(b"set-cookie", b"session=abc; Path=/"), (b"content-length", b"0")],
                                          b""))

    async def two(client: httpx.AsyncClient) -> int:
        await client.get(f"{server.url}/login")
        await client.get(f"{server.url}/next")
        return len(client.cookies)

    assert run(two) == 0
    assert b"cookie" not in server.raw[1].lower().replace(b"set-cookie", b"")


def test_a_client_made_for_no_channel_still_answers_a_request(serve):
    """http_client(len(channels)) is made before anyone knows whether a request will follow."""
    server = serve()

    async def get(client: httpx.AsyncClient) -> int:
        return (await client.get(f"{server.url}/")).status_code

    assert run(get, client=http_client(0, timeout=httpx.Timeout(2.0, pool=0.5))) == 200


def test_a_hang_up_the_event_loop_has_not_yet_seen_still_keeps_the_connection_from_reuse(serve):
    """The server closes after answering, and the next request is made before the loop has read the close (here the
    loop is blocked meanwhile; under load it can simply be busy): the socket itself is asked, as httpcore asks it."""
    server = serve(lambda request, body: (*ok(request, body), "hang up"))  # type: ignore[misc]

    async def two(client: httpx.AsyncClient) -> list[int]:
        first = (await client.post(f"{server.url}/1", content=b"x")).status_code
        assert settled(lambda: server.open == 0)  # closed on the server's side; the loop has not run since
        return [first, (await client.post(f"{server.url}/2", content=b"x")).status_code]

    assert run(two) == [200, 200]
    assert len(server.requests) == 2 and server.connections == 2


# -- answers as servers really send them, byte for byte ---------------------------------------------------------
class Scripted:
    """A server on a real socket that answers each request it reads with the next bytes of `answers`, closing the
    connection after an answer marked "close"; it records each request's head and the connections opened."""

    def __init__(self, *answers: bytes | tuple[bytes, str]):
        self.answers = list(answers)
        self.heads: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            buffered = b""
            while self.answers:
                while b"\r\n\r\n" not in buffered:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buffered) < length:
                    buffered += sock.recv(65536)
                buffered = buffered[length:]
                self.heads.append(head)
                answer = self.answers.pop(0)
                data, then = answer if isinstance(answer, tuple) else (answer, "")
                sock.sendall(data)
                if then == "close":
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def scripted():
    servers: list[Scripted] = []

    def start(*answers: bytes | tuple[bytes, str]) -> Scripted:
        servers.append(Scripted(*answers))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def get_each(url: str, paths: list[str], method: str = "GET") -> list[httpx.Response]:
    async def each(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.request(method if i == 0 else "GET", url + path) for i, path in enumerate(paths)]

    return run(each)


def test_an_answer_that_runs_until_the_server_closes_is_read_whole_and_its_connection_not_reused(scripted):
    server = scripted((b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, and the rest", "close"),
                      b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
    first, second = get_each(server.url, ["/a", "/b"])
    assert (first.status_code, first.text, second.text) == (200, "all of it, and the rest", "next")
    assert server.connections == 2


def test_an_informational_answer_is_passed_over_for_the_final_one(scripted):
    server = scripted(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\ncreated",
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    first, second = get_each(server.url, ["/a", "/b"])
    assert (first.status_code, first.text, first.reason_phrase, second.text) == (201, "created", "Created", "ok")
    assert server.connections == 1


def test_an_answer_with_no_content_has_no_body_and_its_connection_is_reused(scripted):
    server = scripted(b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\n\r\n",
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    answers = get_each(server.url, ["/a", "/b", "/c"])
    assert [(a.status_code, a.content) for a in answers] == [(204, b""), (304, b""), (200, b"ok")]
    assert server.connections == 1


def test_the_answer_to_head_has_no_body_whatever_its_length_says(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    first, second = get_each(server.url, ["/a", "/b"], method="HEAD")
    assert (first.headers["content-length"], first.content, second.text) == ("5", b"", "ok")
    assert server.connections == 2  # not reused: a server that sent the five bytes after all would be misread


def test_bytes_after_an_answer_keep_its_connection_from_reuse(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale",
                      b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
    first, second = get_each(server.url, ["/a", "/b"])
    assert (first.text, second.text) == ("ok", "fresh")
    assert server.connections == 2


@pytest.mark.parametrize(("answer", "said"), [
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not HTTP/1.1"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "complete response"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000, "longer than"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "not HTTP/1.1"),
])
def test_an_answer_that_is_not_good_http_is_a_protocol_error_after_the_request_went(scripted, answer, said):
    server = scripted((answer, "close"))
    with pytest.raises(httpx.RemoteProtocolError, match=said) as caught:
        get_each(server.url, ["/hooks/1"])
    assert classify("hook", caught.value).unknown_outcome  # it arrived: a retry could post twice
    assert len(server.heads) == 1


@pytest.mark.parametrize("headers", [{"x-note": "one\r\nInjected: yes"}, {"x-note": "one\ntwo"}, {"x note": "a"},
                                     {"x-note": " padded"}, {"x-note": "nul\x00"}])
def test_a_header_that_would_change_the_request_is_refused_before_a_byte_is_written(scripted, headers):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def post(client: httpx.AsyncClient) -> None:
        await client.post(f"{server.url}/hooks/1", content=b"x", headers=headers)

    with pytest.raises(httpx.LocalProtocolError) as caught:
        run(post)
    time.sleep(0.05)
    assert server.heads == []
    said = classify("hook", caught.value)
    assert not said.transient and not said.unknown_outcome and "cannot be sent as it stands" in said.message
    assert not any(part in said.message for part in ("Injected", "two", "padded", "nul"))  # a value may be a secret


def test_a_body_of_unknown_length_goes_chunked_as_httpcore_sends_it(serve):
    server = serve()

    async def post(client: httpx.AsyncClient) -> str:
        async def pieces():
            for piece in (b"first, ", b"", b"second"):
                yield piece

        return (await client.post(f"{server.url}/stream", content=pieces())).text

    ours = run(post)
    ours_raw, server.raw[:] = list(server.raw), []
    theirs = run(post, client=plain_httpx())
    assert ours == theirs == "got POST /stream first, second"
    assert b"transfer-encoding: chunked" in ours_raw[0].lower() and ours_raw == server.raw


def test_a_long_body_is_read_no_faster_than_it_is_taken(serve, monkeypatch):
    monkeypatch.setattr(wire, "BUFFERED", 4096)
    most = []
    received = wire.Connection.data_received

    def watched(self, data):
        received(self, data)
        most.append(self.buffered)

    monkeypatch.setattr(wire.Connection, "data_received", watched)
    pieces = [bytes([i]) * 65536 for i in range(32)]
    server = serve(lambda request, body: (200, [(b"transfer-encoding", b"chunked")], pieces))

    async def slowly(client: httpx.AsyncClient) -> tuple[bytes, int]:
        got = []
        async with client.stream("GET", f"{server.url}/big") as response:
            async for chunk in response.aiter_raw():
                got.append(chunk)
                await asyncio.sleep(0.001)
        return b"".join(got), (await client.get(f"{server.url}/after")).status_code

    assert run(slowly) == (b"".join(pieces), 200)
    assert server.connections == 1
    assert max(most) < 4096 + 262144  # paused once past the limit: at most one more read of the socket came in


def test_a_long_request_body_is_written_whole_to_a_server_that_reads_slowly(serve):
    def slow_reader(request: h11.Request, body: bytes) -> object:
        text = str(len(body)).encode()
        return 200, [(b"content-length", str(len(text)).encode())], text

    server = serve(slow_reader)
    body = bytes(range(256)) * 40_000  # 10 MB: more than the socket takes at once

    async def post(client: httpx.AsyncClient) -> str:
        return (await client.post(f"{server.url}/media", content=body)).text

    assert run(post) == str(len(body))


def test_a_server_that_stops_reading_is_a_write_timeout():
    listener = socket.create_server(("127.0.0.1", 0))  # the kernel accepts for it; nothing ever reads

    async def post(client: httpx.AsyncClient) -> None:
        await client.post(f"http://127.0.0.1:{listener.getsockname()[1]}/media", content=b"x" * 64_000_000)

    started = time.monotonic()
    with pytest.raises(httpx.WriteTimeout) as caught:
        run(post, client=http_client(2, timeout=httpx.Timeout(0.3)))
    assert time.monotonic() - started < 5
    assert classify("hook", caught.value).unknown_outcome
    listener.close()


def test_a_request_refused_by_another_http_layer_is_said_without_its_words():
    """httpx's own transport (channel checks, receipts) refuses through h11, whose message quotes the header."""
    said = classify("hook", httpx.LocalProtocolError("Illegal header value b'Bearer s3cr3t-t0ken\\n'"))
    assert not said.transient and not said.unknown_outcome
    assert "s3cr3t" not in said.message and "LocalProtocolError" in said.message


def test_a_compressed_chunked_answer_with_trailers_reads_as_its_text(scripted):
    import gzip

    packed = gzip.compress(b'{"id": "ok"}')
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (packed[:7], packed[7:]))
    body = chunks + b"0\r\nX-Done: 1\r\n\r\n"  # a trailer after the last chunk
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    first, second = get_each(server.url, ["/a", "/b"])
    assert (first.json(), second.text) == ({"id": "ok"}, "ok")
    assert server.connections == 1


# -- the lean POST of a fan-out to webhooks (Client.post_bytes) --------------------------------------------------
def test_a_lean_post_writes_the_bytes_httpx_writes_and_reads_the_same_answer(serve):
    server = serve()
    url, body = f"{server.url}/hooks/1?x=a%20b", "{\"headline\":\"Ysgol ar gau – ɡ\"}".encode()
    sets = [({"content-type": "application/json", "webhook-id": "msg_1"}, body),
            ({"User-Agent": "partner-check/1", "idempotency-key": "msg_2"}, b""),  # the client's own header, and none
            ({"Content-Length": str(len(body))}, body),
            ({"idempotency-key": "msg_3", "User-Agent": "partner-check/2"}, body)]  # a client's header given again

    async def lean(client: Sender) -> list[Reply]:
        return [await client.post_bytes(url, content, headers) for headers, content in sets]

    async def post(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.post(url, content=content, headers=headers) for headers, content in sets]

    replies = run(lean)
    ours = list(server.raw)
    server.raw[:] = []
    answers = run(post, client=plain_httpx())
    assert ours == server.raw  # byte for byte what httpx (through httpcore) writes
    assert b"\r\nHost: 127.0.0.1:" in ours[0] and b"Content-Length: 0\r\n" in ours[1]
    assert [(r.status, r.headers, r.body) for r in replies] == [
        (a.status_code, a.headers.raw, a.content) for a in answers]
    assert replies[0].response().text == "got POST /hooks/1?x=a%20b {\"headline\":\"Ysgol ar gau – ɡ\"}"
    assert server.connections == 2  # ours on one kept-alive connection, httpcore's on another


def test_a_lean_get_writes_the_bytes_httpx_writes_and_reads_the_same_answer(serve):
    server = serve()
    url = f"{server.url}/api/v2/instance?x=a%20b"
    sets = [{}, {"authorization": "Bearer t", "User-Agent": "partner-check/1"}]

    async def lean(client: Sender) -> list[Reply]:
        return [await client.get_bytes(url, headers) for headers in sets]

    async def get(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get(url, headers=headers) for headers in sets]

    replies = run(lean)
    ours = list(server.raw)
    server.raw[:] = []
    answers = run(get, client=plain_httpx())
    assert ours == server.raw  # byte for byte what httpx (through httpcore) writes: no length for a GET
    assert ours[0].startswith(b"GET /api/v2/instance?x=a%20b HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length" not in ours[0] + ours[1]
    assert [(r.status, r.headers, r.body) for r in replies] == [
        (a.status_code, a.headers.raw, a.content) for a in answers]
    assert replies[0].body == b"got GET /api/v2/instance?x=a%20b "


def test_a_lean_post_reads_a_compressed_answer_as_httpx_would_and_keeps_the_connection(scripted):
    import gzip

    from broadcast.channels.base import http_error

    packed = gzip.compress(b"slow down, please")
    server = scripted(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Encoding: gzip\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(packed), packed), b"HTTP/1.1 204 No Content\r\n\r\n")

    async def post(client: Sender) -> list[Reply]:
        return [await client.post_bytes(f"{server.url}/hooks/{n}", b"x", {}) for n in (1, 2)]

    refused, accepted = run(post)
    # Decoded as httpx decodes it: Notify and Twilio read a message's id from the body of a lean POST's answer.
    assert (refused.status, refused.body, accepted.status, accepted.body) == (429, b"slow down, please", 204, b"")
    assert refused.response().text == "slow down, please"
    said = http_error("hook", refused.response(), "the receiver")
    assert said.transient and said.retry_after == 2 and "slow down, please" in said.message
    assert server.connections == 1


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hooks/1", "http://127.0.0.1:80/x", "https://hooks.example.org:443/", "https://a.example:8443",
    "http://a", "http://a?q=1", "http://a/x?", "http://A.Example/x", "http://a/x y", "http://a/%7e", "http://a/%7E",
    "http://a/~!$&'()*+,;=:@/_-.", "http://a/x?a=b&c=d/e?f", "http://a/x?a b", "http://a:0080/", "http://a:65535/",
    "http://a:70000/", 'http://a/"<>', "http://a/x#f", "http://user:pw@a/x", "http://a/é", "http://a/x?%2f",
    "http://a/[1]", "http://a/{x}|^`", "http://1.2.3.4/v1/messages", "http://a/x%", "http://a/%zz", "HTTP://a/",
    "https://api.notifications.service.gov.uk/v2/notifications/sms", "http://bücher.example/", "http://a./x",
    "http://[::1]:8080/x", "http://a//x", "http://a/x/../y", "http://a/x/./y", "http://a/..", "http://a/.?q",
    "http://a/x/.y/..z", "http://a/x?/../y", "http://-a/"])
def test_a_lean_post_splits_its_address_as_httpx_does(url):
    parsed = httpx.URL(url)
    assert wire.address(url) == (parsed.scheme, parsed.host, parsed.port, parsed.netloc, parsed.raw_path)


def test_a_lean_post_splits_a_plain_address_without_httpx(monkeypatch):
    wire.address.cache_clear()
    monkeypatch.setattr(httpx, "URL", None)  # httpx's URL would fail
    assert wire.address("https://hooks.example.org:8443/a/b?c=d") == (
        "https", "hooks.example.org", 8443, b"hooks.example.org:8443", b"/a/b?c=d")
    with pytest.raises(TypeError):
        wire.address("http://a/x y")  # a character to escape: httpx's to parse
    wire.address.cache_clear()


def test_a_closed_sender_is_closed_both_ways_and_sends_nothing(serve):
    server = serve()

    async def lean_then_httpx() -> tuple[bool, bool]:
        lean, through = http_client(2, timeout=2.0), http_client(2, timeout=2.0)
        await lean.post_bytes(f"{server.url}/hooks/1", b"x", {})
        await through.get(f"{server.url}/")  # its httpx client made
        await lean.aclose()
        await through.aclose()
        for closed in (lean, through):
            with pytest.raises(RuntimeError, match="closed"):
                await closed.post_bytes(f"{server.url}/hooks/2", b"x", {})
        with pytest.raises(RuntimeError, match="closed"):
            await through.get(f"{server.url}/")
        return lean.is_closed, through.is_closed

    assert asyncio.run(lean_then_httpx()) == (True, True)
    assert [r.split(b" ")[1] for r in server.raw] == [b"/hooks/1", b"/"]
    assert settled(lambda: server.open == 0)  # every connection closed with its client


def test_a_lean_post_fails_as_a_post_fails(serve):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there
    hangs_up, stalls = serve(lambda request, body: "hang up"), serve(lambda request, body: "stall")

    def failure(url: str) -> BaseException:
        async def post(client: Sender) -> None:
            await client.post_bytes(f"{url}/hooks/1", b"x", {"webhook-id": "msg_1"})

        with pytest.raises(httpx.TransportError) as caught:
            run(post, client=http_client(2, timeout=httpx.Timeout(0.3)))
        return caught.value

    nobody, hung_up = failure(closed), failure(hangs_up.url)
    assert isinstance(nobody, httpx.ConnectError)
    assert not classify("hook", nobody).unknown_outcome  # no connection: nothing went
    assert isinstance(hung_up, httpx.RemoteProtocolError)
    assert classify("hook", hung_up).unknown_outcome  # it went: a retry could post it twice
    assert isinstance(failure(stalls.url), httpx.ReadTimeout)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "ftp://127.0.0.1/x"])
def test_a_lean_post_to_an_address_that_cannot_be_used_fails_each_time_before_any_connection(url):
    async def post(client: Sender) -> list[BaseException]:
        failures = []
        for _ in range(2):  # an address is parsed once and kept; one that cannot be parsed is not kept
            with pytest.raises((httpx.InvalidURL, httpx.UnsupportedProtocol)) as caught:
                await client.post_bytes(url, b"x", {})
            failures.append(caught.value)
        return failures

    first, second = run(post)
    said = classify("hook", second)  # what the duty officer reads, each time
    assert type(first) is type(second) and not said.transient and not said.unknown_outcome
    assert said.message.startswith("hook: its address is not a valid URL"), said.message


@pytest.mark.parametrize("headers", [{"x-note": "one\r\nInjected: yes"}, {"x-note": "Ysgol ar gau – ɡ"},
                                     {"x-nōte": "x"}])
def test_a_lean_post_refuses_a_header_httpx_would_refuse_before_a_byte_is_written(scripted, headers):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def post(client: Sender) -> None:
        await client.post_bytes(f"{server.url}/hooks/1", b"x", headers)

    with pytest.raises(transport.Refused) as caught:
        run(post)
    time.sleep(0.05)
    assert server.heads == [] and server.connections == 0
    said = classify("hook", caught.value)
    assert not said.transient and not said.unknown_outcome and "x-n" in said.message
    assert "Injected" not in said.message and "Ysgol" not in said.message  # a value may be a secret


def test_a_client_with_hooks_posts_through_httpx_so_they_see_the_request(serve):
    server = serve()
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    client = http_client(2, timeout=2.0)
    client.event_hooks = {"request": [hook], "response": []}

    async def post(client: Sender) -> Reply:
        return await client.post_bytes(f"{server.url}/hooks/9", b"x", {})

    reply = run(post, client=client)
    assert seen == ["/hooks/9"] and reply.status == 200 and reply.response().text == "got POST /hooks/9 x"


def test_a_lean_post_over_https_is_verified_as_a_post_is(serve, authority, monkeypatch):
    trusted = serve(tls=server_tls(authority))
    stranger = serve(tls=server_tls(trustme.CA()))  # a certificate from an authority nobody trusts
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    monkeypatch.setattr(wire, "tls_context", lambda: trusting)

    async def post(client: Sender) -> list[str]:
        return [(await client.post_bytes(f"{trusted.url}/hooks/{n}", b"x", {})).response().text for n in (1, 2)]

    assert run(post) == ["got POST /hooks/1 x", "got POST /hooks/2 x"]
    assert trusted.connections == 1

    async def refused(client: Sender) -> None:
        await client.post_bytes(f"{stranger.url}/hooks/1", b"x", {})

    with pytest.raises(httpx.ConnectError) as caught:
        run(refused)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value) and stranger.requests == []
