"""The sandbox: local emulations of each platform's posting API, with faults to inject, on 127.0.0.1.

Each platform module registers its routes with `Sandbox.platform(...)`. Every request is recorded; faults are
set per target (a platform name, or a webhook endpoint name) through `/_sandbox/faults` or `Sandbox.fault()`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Credentials the sandbox accepts; a drill sets the workspace's environment variables to these.
CREDENTIALS = {
    "mastodon": "sandbox-mastodon-token",
    "bluesky": "sandbox-app-password",
    "telegram": "123456:sandbox-telegram-token",
    "facebook": "sandbox-page-token",
    "slack": "sandboxslack",  # the last part of the webhook URL
    "teams": "sandboxsig",  # the workflow URL's sig parameter
    "x": "sandbox-x-secret",
    # X signs with OAuth 1.0a: four values, the sandbox checks the signature they make.
    "x_consumer_key": "sandboxxconsumerkey0000001",
    "x_consumer_secret": "sandbox-x-consumer-secret-0000000000000000000001",
    "x_access_token": "1700000000000000001-sandboxxaccesstoken000000000001",
    "x_access_secret": "sandbox-x-access-token-secret-000000000000000001",
    "webhook": "whsec_c2FuZGJveC13ZWJob29rLXNpZ25pbmcta2V5LTMy",
    "notify": "sandbox-notify-key",
    "twilio": "sandbox-twilio-token",
}
PLATFORMS = ("mastodon", "bluesky", "telegram", "slack", "teams", "facebook", "x", "webhook")


@dataclass
class Fault:
    """What goes wrong for one target. Counts run down as requests arrive."""

    latency: float = 0.0  # seconds before answering
    fail_next: int = 0  # answer this many requests with `status`
    status: int = 500
    retry_after: float | None = None  # sent with 429 and 503
    error_rate: float = 0.0  # chance of `status` on any request
    hang: bool = False  # never answer
    garbage: str | None = None  # "html", "truncated" or "content-type": an answer that is not what the API says
    methods: tuple[str, ...] = ("POST", "PUT", "DELETE")  # which requests it applies to (writes, by default)


@dataclass
class Received:
    platform: str
    target: str
    method: str
    path: str
    at: float
    headers: dict[str, str]
    body: Any
    status: int = 0
    accepted: bool = False  # a new post (not a duplicate, not an error)


RECORD = web.RequestKey("record", Received)  # the request's Received, for the platform handler to mark accepted


@dataclass
class Sandbox:
    """All emulated platforms in one aiohttp app. Start with `start()` (a thread) or `serve()`."""

    seed: int = 0
    faults: dict[str, Fault] = field(default_factory=dict)
    log: list[Received] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # per-platform storage (posts, sessions, idempotency keys)
    url: str = ""

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.ids = itertools.count(100001)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- used by tests and the drill ------------------------------------------------------------
    def fault(self, target: str, **settings: Any) -> None:
        with self._lock:
            self.faults[target] = Fault(**settings)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()
            self.state.clear()

    def received(self, platform: str | None = None, *, accepted: bool | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.log if (platform is None or r.platform == platform)
                    and (accepted is None or r.accepted == accepted)]

    def next_id(self) -> str:
        return str(next(self.ids))

    def store(self, platform: str) -> dict[str, Any]:
        return self.state.setdefault(platform, {})

    # -- the app ------------------------------------------------------------------------------
    def app(self) -> web.Application:
        from broadcast.sandbox import platforms

        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/_sandbox/received", self._received)
        app.router.add_post("/_sandbox/faults", self._set_fault)
        app.router.add_post("/_sandbox/reset", self._reset)
        for register in platforms.REGISTER:
            register(self, app)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/" or request.path.startswith("/_sandbox/"):
            return await handler(request)
        platform, target = _target(request)
        body = await _body(request)
        record = Received(platform, target, request.method, request.path, time.monotonic(),
                          {k.lower(): v for k, v in request.headers.items()}, body)
        with self._lock:
            self.log.append(record)
            fault = self.faults.get(target) or self.faults.get(platform)
        request[RECORD] = record
        response = await self._apply(fault, record) if fault and request.method in fault.methods else None
        if response is None:
            response = await handler(request)
        record.status = response.status
        return response

    async def _apply(self, fault: Fault, record: Received) -> web.StreamResponse | None:
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.hang:
            await asyncio.sleep(3600)
        failing = False
        with self._lock:
            if fault.fail_next > 0:
                fault.fail_next -= 1
                failing = True
        if failing or (fault.error_rate and self.random.random() < fault.error_rate):
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return error_response(record.platform, fault.status, headers, fault.retry_after)
        if fault.garbage == "html":
            return web.Response(status=200, text="<html><body>Bad gateway</body></html>", content_type="text/html")
        if fault.garbage == "truncated":
            return web.Response(status=200, text='{"id": "12', content_type="application/json")
        if fault.garbage == "content-type":
            return web.Response(status=200, text="OK but not JSON", content_type="text/plain")
        return None

    async def _index(self, request: web.Request) -> web.Response:
        from broadcast.sandbox.view import render

        asked = request.query.get("refresh", "")
        refresh = min(max(int(asked), 2), 3600) if asked.isdigit() else None
        return web.Response(text=render(self.received(), len(self.log), refresh), content_type="text/html")

    async def _received(self, request: web.Request) -> web.Response:
        platform = request.query.get("platform")
        return web.json_response([
            {"platform": r.platform, "target": r.target, "method": r.method, "path": r.path, "status": r.status,
             "accepted": r.accepted, "body": r.body} for r in self.received(platform)
        ])

    async def _set_fault(self, request: web.Request) -> web.Response:
        data = await request.json()
        target = data.pop("target")
        self.fault(target, **data)
        return web.json_response({"ok": True})

    async def _reset(self, request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"ok": True})

    # -- running ------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Run in a background thread; return the base URL."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve(host, port))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="broadcast-sandbox", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the sandbox did not start")
        return self.url

    async def _serve(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.url = f"http://{host}:{bound}"

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)


def _target(request: web.Request) -> tuple[str, str]:
    info = request.match_info
    platform = info.route.name.split(":")[0] if info.route.name else "unknown"
    return platform, info.get("target", platform)


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return dict(request.query)
    raw = await request.read()
    kind = request.content_type
    try:
        if kind == "application/json":
            return json.loads(raw)
        if kind == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qs

            return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()}
    except (ValueError, UnicodeDecodeError):
        pass
    return raw.decode("utf-8", "replace")


def error_response(platform: str, status: int, headers: dict[str, str], retry_after: float | None
                   ) -> web.Response:
    """An error in the platform's own shape."""
    shapes: dict[str, Any] = {
        "mastodon": {"error": "Too many requests" if status == 429 else "Internal server error"},
        "bluesky": {"error": "RateLimitExceeded" if status == 429 else "InternalServerError",
                    "message": "sandbox fault"},
        "telegram": {"ok": False, "error_code": status, "description": "Too Many Requests: retry later"
                     if status == 429 else "Internal Server Error",
                     # Telegram sends whole seconds; a fractional fault (a test's 0.3 s) is passed on as it is.
                     **({"parameters": {"retry_after": retry_after if retry_after % 1 else int(retry_after)}}
                        if retry_after is not None else {})},
        "facebook": {"error": {"message": "sandbox fault", "type": "OAuthException", "code": 32 if status == 429
                               else 2, "is_transient": True}},
        "x": {"title": "Too Many Requests" if status == 429 else "Service Unavailable", "status": status,
              "detail": "sandbox fault"},
        "teams": {"error": {"code": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                            "message": "sandbox fault"}},  # Logic Apps' shape
    }
    if platform == "slack":
        return web.Response(status=status, text="rate_limited" if status == 429 else "server_error",
                            headers=headers)
    body = shapes.get(platform, {"error": "sandbox fault", "status": status})
    return web.json_response(body, status=status, headers=headers)


def serve(host: str = "127.0.0.1", port: int = 8025, seed: int = 0, sandbox: Sandbox | None = None) -> None:
    """Run the sandbox in the foreground until interrupted (the `broadcast sandbox` command); pass `sandbox` to serve
    one whose log another server (the mail server) also writes to."""
    sandbox = sandbox or Sandbox(seed=seed)
    sandbox.url = f"http://{host}:{port}"
    web.run_app(sandbox.app(), host=host, port=port, print=None, access_log=None)
