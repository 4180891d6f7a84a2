"""Benchmark: one alert to N webhook endpoints, broadcast's fan-out beside Apprise, on one local server.

Run: python bench/fanout.py            (Apprise comes with: pip install -e '.[bench]')
The server answers every request after 100 ms; the "faults" rows make 10% of endpoints answer 500 once and 10%
answer 429 with Retry-After: 1 once. It prints wall time, requests, duplicates, peak requests in flight and the
wait after each 429, and the ratio of Apprise's wall time to ours. It measures; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

DELAY = 0.1
SIZES = (1, 10, 50, 200)


class Server:
    """Answers after DELAY; counts requests, duplicates (by webhook-id), peak in flight and 429 waits."""

    def __init__(self) -> None:
        self.reset(faults=False)
        self.url = ""

    def reset(self, *, faults: bool) -> None:
        self.faults = faults
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        self.accepted: Counter[str] = Counter()
        self.ids: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.refused_at: dict[str, float] = {}
        self.waits: list[float] = []
        self.lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["n"]
        await request.read()
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.seen[endpoint] += 1
            first = self.seen[endpoint] == 1
            if endpoint in self.refused_at:
                self.waits.append(time.monotonic() - self.refused_at.pop(endpoint))
        try:
            await asyncio.sleep(DELAY)
            number = int(endpoint)
            if self.faults and first and number % 10 == 3:
                return web.Response(status=500, text="server error")
            if self.faults and first and number % 10 == 7:
                with self.lock:
                    self.refused_at[endpoint] = time.monotonic()
                return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
            with self.lock:
                self.accepted[endpoint] += 1
                webhook_id = request.headers.get("webhook-id")
                if webhook_id:
                    self.ids[webhook_id] += 1
            return web.json_response({"ok": True})
        finally:
            with self.lock:
                self.in_flight -= 1

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/hooks/{n}", self.handle)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
            loop.run_until_complete(site.start())
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    def duplicates(self) -> int:
        """Posts an endpoint accepted beyond its first."""
        return sum(count - 1 for count in self.accepted.values() if count > 1)


def workspace_with(n: int, url: str) -> Path:
    from conftest import make_workspace

    from broadcast.prepare.approvals import approve
    from broadcast.prepare.templates import find_template
    from broadcast.store import Store
    from broadcast.workspace import Workspace

    root = make_workspace(Path(tempfile.mkdtemp()) / "ws")
    (root / "channels" / "mastodon-council.toml").unlink()
    for i in range(n):
        (root / "channels" / f"hook-{i:03d}.toml").write_text(
            f'kind = "webhook"\n[settings]\nurl = "{url}/hooks/{i}"\n[secrets]\nsigning_secret = "env:BENCH_SECRET"\n')
    workspace = Workspace(root)
    store = Store.open(workspace.db_path)
    approve(workspace, find_template(workspace, "school-closure"), "Bench Runner, Benchmark", store)
    store.close()
    return root


def run_broadcast(n: int, server: Server) -> float:
    from conftest import VALUES

    from broadcast.send.sending import plan_warning, send_warning
    from broadcast.store import Store
    from broadcast.workspace import Workspace

    workspace = Workspace(workspace_with(n, server.url))
    store = Store.open(workspace.db_path)
    plan = plan_warning(workspace, "school-closure", VALUES, store=store)
    started = time.perf_counter()
    report = send_warning(workspace, store, plan, actor="bench")
    elapsed = time.perf_counter() - started
    store.close()
    if any(o.state != "sent" for o in report.outcomes):
        print(f"  broadcast: {sum(o.state != 'sent' for o in report.outcomes)} not delivered", file=sys.stderr)
    return elapsed


def run_apprise(n: int, server: Server) -> float:
    import apprise

    notifier = apprise.Apprise()
    for i in range(n):
        notifier.add(f"json://{server.url.removeprefix('http://')}/hooks/{i}")
    started = time.perf_counter()
    notifier.notify(title="Hillside Primary School is closed", body="Hillside Primary School is closed today.")
    return time.perf_counter() - started


def measure(tool: str, n: int, faults: bool, server: Server) -> dict[str, object]:
    server.reset(faults=faults)
    elapsed = (run_broadcast if tool == "broadcast" else run_apprise)(n, server)
    time.sleep(0.05)
    return {
        "tool": tool, "n": n, "faults": faults, "wall_s": elapsed, "requests": server.requests,
        "delivered": len(server.accepted), "duplicates": server.duplicates(), "peak": server.peak,
        "waits": sorted(server.waits),
    }


def main() -> None:
    os.environ["BENCH_SECRET"] = "whsec_YmVuY2gtc2lnbmluZy1rZXktYmVuY2gtc2lnbmluZy1rZXk="
    try:
        import apprise  # noqa: F401

        tools = ["broadcast", "apprise"]
    except ImportError:
        tools = ["broadcast"]
        print("Apprise is not installed (pip install -e '.[bench]'): measuring broadcast alone.")
    server = Server()
    server.start()
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"server delay {DELAY * 1000:.0f} ms")
    header = (f"{'faults':6} {'N':>4} {'tool':9} {'wall s':>7} {'requests':>8} {'delivered':>9} {'dups':>4} "
              f"{'peak':>4}  waits after 429 (s)")
    print(header)
    results: dict[tuple[bool, int], dict[str, float]] = defaultdict(dict)
    for faults in (False, True):
        for n in SIZES:
            for tool in tools:
                row = measure(tool, n, faults, server)
                results[(faults, n)][tool] = float(row["wall_s"])  # type: ignore[arg-type]
                waits = row["waits"]
                shown = f"{min(waits):.2f}-{max(waits):.2f} ({len(waits)})" if waits else "-"  # type: ignore[type-var]
                print(f"{'yes' if faults else 'no':6} {n:>4} {tool:9} {row['wall_s']:7.3f} {row['requests']:>8} "
                      f"{row['delivered']:>9} {row['duplicates']:>4} {row['peak']:>4}  {shown}")
    if "apprise" in tools:
        print("\nApprise wall time / broadcast wall time (higher: broadcast faster)")
        for (faults, n), times in results.items():
            print(f"  {'faults' if faults else 'clean':6} N={n:<4} {times['apprise'] / times['broadcast']:5.2f}x")
        print("Note: with faults Apprise does not retry, so it delivers fewer posts in its time.")


if __name__ == "__main__":
    main()
