"""Benchmark: a whole warning through the library to N webhooks, beside two floors and Apprise, on one server.

Run: python bench/warn.py                 (Apprise comes with: pip install -e '.[bench]')
     python bench/warn.py --parts fresh,start   (some of it: clean, faults, fresh, start)
     python bench/warn.py --quick         (N = 1 and 10, 3 runs: to check the script, not for figures)
     python bench/warn.py --python /tmp/v/bin/python   (the fresh-process figures with another install)

The server runs in its own process (aiohttp), answers every request after 100 ms, and counts requests, deliveries
and duplicates (a webhook-id accepted twice). Every figure is the median of 5 runs after a warm-up round (9 for the
table without faults, whose ratios are the targets), printed beside its floor; the contenders for the same N take
turns, round by round, so a machine that drifts moves them alike. That table also gives broadcast's ratio to the
floor round by round, its median and range: on a noisy machine the range shows how much of a ratio is noise:
- floor: a thread per request, each opening its own connection (http.client), the same N POSTs;
- floor 2: one plain aiohttp.ClientSession posting the same N requests at once;
- Apprise: the same N notifications through its json:// plugin (one URL per endpoint, webhook-id as a header).
"broadcast" is the whole warning through the library: open the log, render and plan (learning limits as `warn`
does), record the alert, write the outbox, build and publish the page before and after, fan out. The workspace is
built beforehand, outside the timer. Then the same warning to one webhook in a workspace with a past (50 incidents
of 10 alerts in its log, its site of some 600 files published beforehand and left to settle): what a council sees
on the fortieth school closure of a snowy morning. With faults (10 % answer 429 with Retry-After: 1 once, 20 %
answer 500 once) the honest floor is one Retry-After plus two round trips. Last, a fresh-process `broadcast warn`
to one webhook, phase by phase (in a new workspace and in the one with a past), beside, in turns: a bare interpreter
posting the same request with http.client (the floor), one that first imports what this design cannot do without
(click, Jinja2, asyncio, sqlite3, lxml: the floor of any warning built on them) and Apprise's own command line posting
it; and `broadcast --help` beside `python -c pass`. It measures; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

DELAY = 0.1
SIZES: tuple[int, ...] = (1, 10, 50, 200)
HISTORY = (50, 10)  # a workspace with a past: 50 incidents of 10 alerts each, its site published beforehand
RUNS = 5
CLEAN_RUNS = 9  # rounds of the no-fault table: its ratios are the targets, and this machine's noise is a tenth of one
FAULT_N = 200
SECRET = "whsec_YmVuY2gtc2lnbmluZy1rZXktYmVuY2gtc2lnbmluZy1rZXk="
PAYLOAD = json.dumps({"type": "alert.alert", "headline": "Hillside Primary School is closed on Monday 23 November",
                      "description": "Testshire Council: Hillside Primary School in Testshire town is closed " * 8,
                      "areas": [{"name": "Testshire town", "polygons": ["52,-3.4 52,-3.3 52.1,-3.3 52,-3.4"]}]})


# -- the server, in its own process -----------------------------------------------------------------------------
def fault(number: int) -> str | None:
    """Which endpoints misbehave once when faults are on: 10 % answer 429, 20 % answer 500."""
    return {7: "429", 3: "500", 5: "500"}.get(number % 10)


def serve(port_file: str) -> None:
    """Answer POST /hooks/<n> after DELAY; /_reset and /_stats drive the counts."""
    from aiohttp import web

    state: dict[str, object] = {}

    def reset(faults: bool) -> None:
        state.update(faults=faults, requests=0, seen={}, accepted={}, ids={}, refused_at={}, waits=[])

    async def hook(request: web.Request) -> web.Response:
        endpoint = request.match_info["n"]
        await request.read()
        seen, refused_at = state["seen"], state["refused_at"]
        state["requests"] = int(state["requests"]) + 1  # type: ignore[call-overload]
        seen[endpoint] = seen.get(endpoint, 0) + 1  # type: ignore[index, attr-defined]
        if endpoint in refused_at:  # type: ignore[operator]
            state["waits"].append(time.monotonic() - refused_at.pop(endpoint))  # type: ignore[attr-defined]
        first = seen[endpoint] == 1  # type: ignore[index]
        await asyncio.sleep(DELAY)
        kind = fault(int(endpoint)) if state["faults"] and first else None
        if kind == "500":
            return web.Response(status=500, text="server error")
        if kind == "429":
            refused_at[endpoint] = time.monotonic()  # type: ignore[index]
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        accepted, ids = state["accepted"], state["ids"]
        accepted[endpoint] = accepted.get(endpoint, 0) + 1  # type: ignore[index, attr-defined]
        webhook_id = request.headers.get("webhook-id") or f"no-id-{endpoint}"
        ids[webhook_id] = ids.get(webhook_id, 0) + 1  # type: ignore[index, attr-defined]
        return web.json_response({"ok": True})

    async def do_reset(request: web.Request) -> web.Response:
        reset(request.query.get("faults") == "1")
        return web.json_response({})

    async def stats(request: web.Request) -> web.Response:
        ids: dict[str, int] = state["ids"]  # type: ignore[assignment]
        return web.json_response({"requests": state["requests"], "delivered": len(state["accepted"]),  # type: ignore
                                  "duplicates": sum(c - 1 for c in ids.values() if c > 1), "waits": state["waits"]})

    async def main() -> None:
        reset(False)
        app = web.Application()
        app.router.add_post("/hooks/{n}", hook)
        app.router.add_post("/_reset", do_reset)
        app.router.add_get("/_stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        Path(port_file).write_text(str(port))
        await asyncio.Event().wait()

    asyncio.run(main())


class Server:
    """The server process, seen from the benchmark."""

    def __init__(self) -> None:
        folder = tempfile.mkdtemp(prefix="bench-server-")
        port_file = Path(folder) / "port"
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def _call(self, method: str, path: str) -> dict[str, object]:
        import http.client

        conn = http.client.HTTPConnection(self.url.removeprefix("http://"), timeout=10)
        conn.request(method, path)
        data = json.loads(conn.getresponse().read() or b"{}")
        conn.close()
        return data

    def reset(self, faults: bool = False) -> None:
        self._call("POST", f"/_reset?faults={int(faults)}")

    def stats(self) -> dict[str, object]:
        return self._call("GET", "/_stats")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# -- the contenders ---------------------------------------------------------------------------------------------
def floor_threads(url: str, n: int) -> float:
    """A thread per request, each with its own connection: what N POSTs cost at the least."""
    import http.client

    host = url.removeprefix("http://")

    def post(i: int) -> None:
        conn = http.client.HTTPConnection(host, timeout=30)
        conn.request("POST", f"/hooks/{i}", PAYLOAD, {"content-type": "application/json",
                                                      "webhook-id": str(uuid.uuid4())})
        conn.getresponse().read()
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def floor_aiohttp(url: str, n: int, *, retry: bool = False) -> float:
    """One plain aiohttp session posting all N at once; with `retry`, a 500 is retried at once and a 429 after its
    Retry-After: the honest floor of the faults case, measured."""
    import aiohttp

    async def run() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def post(i: int) -> None:
                key = str(uuid.uuid4())
                for _ in range(3):
                    async with session.post(f"{url}/hooks/{i}", data=PAYLOAD, headers={
                            "content-type": "application/json", "webhook-id": key}) as response:
                        await response.read()
                        if not retry or response.status < 300:
                            return
                        await asyncio.sleep(float(response.headers.get("retry-after", 0)))
            await asyncio.gather(*(post(i) for i in range(n)))

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def apprise_urls(url: str, numbers: list[int]) -> list[str]:
    host = url.removeprefix("http://")
    return [f"json://{host}/hooks/{i}?+webhook-id={uuid.uuid4()}" for i in numbers]


def run_apprise(server: Server, n: int, *, faults: bool = False) -> float:
    """Apprise's notify to N json:// URLs; with faults, the caller retries what the server did not accept, once,
    after the Retry-After (Apprise itself does not retry)."""
    import apprise

    def notify(urls: list[str]) -> None:
        notifier = apprise.Apprise()
        notifier.add(urls)
        notifier.notify(title="Hillside Primary School is closed", body=PAYLOAD)

    started = time.perf_counter()
    notify(apprise_urls(server.url, list(range(n))))
    if faults:
        missing = [i for i in range(n) if fault(i)]  # what the server refused once, as its counts confirm
        time.sleep(1.0)
        notify(apprise_urls(server.url, missing))
    return time.perf_counter() - started


class Broadcast:
    """Workspaces with N webhook channels, built beforehand; `run` times one whole warning."""

    def __init__(self, url: str):
        from conftest import approved, make_workspace

        os.environ["BENCH_SECRET"] = SECRET
        self.folder = Path(tempfile.mkdtemp(prefix="bench-warn-"))
        self.bases: dict[int, Path] = {}
        for n in SIZES:
            root = make_workspace(self.folder / f"base-{n}")
            (root / "channels" / "mastodon-council.toml").unlink()
            for i in range(n):
                (root / "channels" / f"hook-{i:03d}.toml").write_text(
                    f'kind = "webhook"\n[settings]\nurl = "{url}/hooks/{i}"\n'
                    '[secrets]\nsigning_secret = "env:BENCH_SECRET"\n', encoding="utf-8")
            approved(root)
            self.bases[n] = root
        self.copies = 0
        self.history = self._with_history(self.bases[min(SIZES)])

    def _with_history(self, base: Path) -> Path:
        """A copy of `base` with HISTORY's incidents in its log (the repository's templates) and its site published."""
        from sitekit import populate

        from broadcast.public.publish import publish_site
        from broadcast.store import Store
        from broadcast.workspace import Workspace

        root = Path(shutil.copytree(base, self.folder / "base-history"))
        for part in ("templates", "areas"):
            for source in (HERE.parent / part).iterdir():
                if not (root / part / source.name).exists():
                    (shutil.copytree if source.is_dir() else shutil.copyfile)(source, root / part / source.name)
        workspace = Workspace(root)
        store = Store.open(workspace.db_path)
        populate(workspace, store, *HISTORY)
        publish_site(workspace, store)
        store.close()
        return root

    def with_history(self, runs: int, python: str = sys.executable) -> list[Path]:
        """Copies of the workspace with a past, each with its site published by `python`'s broadcast (as a council's
        page was, long before the warning, by the same install: its build cache is that install's), and old enough
        that nothing in it was just written."""
        from broadcast.public.site import Manifest

        roots = []
        for _ in range(runs):
            self.copies += 1
            roots.append(Path(shutil.copytree(self.history, self.folder / f"run-{self.copies}")))
        time.sleep(Manifest.RACY)  # so the publish finds the copied files settled, as they would be after hours
        for root in roots:
            subprocess.run([python, "-m", "broadcast", "--workspace", str(root), "page", "publish"], check=True,
                           capture_output=True, cwd=root, env={**os.environ, "BROADCAST_OPERATOR": "Bench Runner"})
        return roots

    def site_files(self) -> int:
        return sum(1 for path in (self.history / "site").rglob("*") if path.is_file())

    def fresh(self, n: int) -> Path:
        """A copy of the workspace for N, as it was before any warning."""
        self.copies += 1
        return Path(shutil.copytree(self.bases[n], self.folder / f"run-{self.copies}"))

    def run(self, n: int, *, trace: Callable[[str], None] | None = None, root: Path | None = None) -> float:
        from conftest import VALUES

        from broadcast.send.sending import plan_warning, send_warning
        from broadcast.store import Store
        from broadcast.workspace import Workspace

        root = root or self.fresh(n)
        started = time.perf_counter()
        workspace = Workspace(root)
        store = Store.open(workspace.db_path)
        if trace:
            store.conn.set_trace_callback(trace)
        plan = plan_warning(workspace, "school-closure", VALUES, store=store, learn_limits=True)
        report = send_warning(workspace, store, plan, actor="bench")
        store.close()
        elapsed = time.perf_counter() - started
        failed = sum(o.state != "sent" for o in report.outcomes)
        if failed or any(line.startswith("FAIL") for line in report.page):
            print(f"  broadcast: {failed} not delivered; page: {report.page}", file=sys.stderr)
        return elapsed


# -- measuring --------------------------------------------------------------------------------------------------
def measure(server: Server, timed: Callable[[], float], *, faults: bool = False) -> tuple[float, dict[str, object]]:
    """Median of RUNS, after one warm-up run; the server's counts from the last run."""
    times = []
    stats: dict[str, object] = {}
    for i in range(RUNS + 1):
        server.reset(faults)
        elapsed = timed()
        time.sleep(0.05)
        stats = server.stats()
        if i:
            times.append(elapsed)
    return statistics.median(times), stats


def measure_together(server: Server, contenders: dict[str, Callable[[], float]], runs: int | None = None
                     ) -> dict[str, tuple[float, dict[str, object], list[float]]]:
    """Like measure, for several contenders whose runs take turns (one round of each, `runs` (RUNS) + 1 rounds, the
    first a warm-up), so that a machine growing slower or faster during the measurement moves them all alike. Each
    contender's median, the server's counts from its last run, and its time in each round, in order."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    stats: dict[str, dict[str, object]] = {}
    for i in range((runs or RUNS) + 1):
        for name, timed in contenders.items():
            server.reset()
            elapsed = timed()
            time.sleep(0.05)
            stats[name] = server.stats()
            if i:
                times[name].append(elapsed)
    return {name: (statistics.median(times[name]), stats[name], times[name]) for name in contenders}


def rounds(ours: list[float], floor: list[float]) -> str:
    """The ratio to the floor round by round (each round's two runs a moment apart), as its median and range: how
    much of a ratio is the machine's noise rather than the code's cost."""
    paired = sorted(a / b for a, b in zip(ours, floor, strict=True))
    return f"{statistics.median(paired):.2f}x ({paired[0]:.2f}-{paired[-1]:.2f}x)"


def clean(server: Server, broadcast: Broadcast, tools: list[str]) -> None:
    print(f"\n## Whole warning to N webhooks, no faults (median of {CLEAN_RUNS} after a warm-up; server delay "
          f"{DELAY * 1000:.0f} ms)")
    print(f"{'N':>4} {'floor':>8} {'floor 2':>8} {'Apprise':>8} {'broadcast':>9} {'bc/floor':>8} {'bc/floor2':>9} "
          f"{'Apprise/bc':>10}  delivered, duplicates (broadcast); bc/floor round by round: median (range)")
    for n in SIZES:
        contenders = {"floor": partial(floor_threads, server.url, n), "floor 2": partial(floor_aiohttp, server.url, n),
                      "broadcast": partial(broadcast.run, n)}
        if "apprise" in tools:
            contenders["Apprise"] = partial(run_apprise, server, n)
        measured = measure_together(server, contenders, CLEAN_RUNS)
        # rounded as printed, so a reader's own division agrees with the ratios
        floor, floor2, ours = (round(measured[name][0], 3) for name in ("floor", "floor 2", "broadcast"))
        stats = measured["broadcast"][1]
        other = round(measured["Apprise"][0], 3) if "Apprise" in measured else None
        print(f"{n:>4} {floor:8.3f} {floor2:8.3f} {other if other else float('nan'):8.3f} {ours:9.3f} "
              f"{ours / floor:7.2f}x {ours / floor2:8.2f}x {(other or 0) / ours:9.2f}x  "
              f"{stats['delivered']}/{n}, {stats['duplicates']}; "
              f"{rounds(measured['broadcast'][2], measured['floor'][2])}")
    n, (incidents, updates) = min(SIZES), HISTORY
    roots = iter(broadcast.with_history(RUNS + 1))
    measured = measure_together(server, {"floor": partial(floor_threads, server.url, n),
                                         "broadcast": lambda: broadcast.run(n, root=next(roots))})
    floor, ours = (round(measured[name][0], 3) for name in ("floor", "broadcast"))
    stats = measured["broadcast"][1]
    print(f"N={n} with a past ({incidents} incidents x {updates} alerts in the log, {broadcast.site_files()} files on "
          f"its published site): floor {floor:.3f} s, broadcast {ours:.3f} s = {ours / floor:.2f}x; "
          f"delivered {stats['delivered']}/{n}, duplicates {stats['duplicates']}")


def faulty(server: Server, broadcast: Broadcast, tools: list[str]) -> None:
    n = FAULT_N
    honest = 1.0 + 2 * DELAY
    print(f"\n## With faults at N={n}: 10 % answer 429 with Retry-After: 1 once, 20 % answer 500 once "
          f"(median of {RUNS})")
    print(f"honest floor (one Retry-After plus two round trips): {honest:.3f} s")
    measured = round(measure(server, lambda: floor_aiohttp(server.url, n, retry=True), faults=True)[0], 3)
    print(f"floor 2 retrying (aiohttp: a 500 again at once, a 429 after Retry-After): {measured:.3f} s")
    timed, stats = measure(server, lambda: broadcast.run(n), faults=True)
    ours = round(timed, 3)
    waits: list[float] = stats["waits"]  # type: ignore[assignment]
    shown = f"{min(waits):.2f}-{max(waits):.2f} s" if waits else "-"
    print(f"broadcast: {ours:.3f} s = {ours / honest:.2f}x the honest floor, {ours / measured:.2f}x floor 2 "
          f"retrying; delivered {stats['delivered']}/{n}, duplicates {stats['duplicates']}, requests "
          f"{stats['requests']}, waits after a 429: {shown}")
    if "apprise" in tools:
        other, stats = measure(server, lambda: run_apprise(server, n, faults=True), faults=True)
        other = round(other, 3)
        print(f"Apprise, the caller retrying once after 1 s: {other:.3f} s; delivered {stats['delivered']}/{n}, "
              f"duplicates {stats['duplicates']}; Apprise/broadcast {other / ours:.2f}x")


def statements(broadcast: Broadcast, server: Server) -> None:
    counted: list[str] = []
    server.reset()
    broadcast.run(FAULT_N, trace=counted.append)
    print(f"\nSQLite statements for one whole warning to {FAULT_N} webhooks: {len(counted):,}")


# -- a fresh process --------------------------------------------------------------------------------------------
DRIVER = r"""
import inspect, json, sys, time
started = time.perf_counter()
phases = {}
def wrap(module, name, label, owner=None):
    import importlib
    try:
        target = owner or importlib.import_module(module)
        inner = getattr(target, name)
    except (ImportError, AttributeError):
        return
    def add(t):
        phases[label] = phases.get(label, 0.0) + time.perf_counter() - t
    if inspect.iscoroutinefunction(inner):
        async def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return await inner(*args, **kwargs)
            finally:
                add(t)
    else:
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                add(t)
    setattr(target, name, timed)
from broadcast.cli import main
phases["import the CLI"] = time.perf_counter() - started
import broadcast.send.sending as sending, broadcast.store as store
wrap(None, "open", "open the store", owner=store.Store)
wrap(None, "render", "render the template", owner=sending)
wrap(None, "usable_channels", "load the channels", owner=sending)
wrap(None, "_configure", "ask for limits", owner=sending)
wrap(None, "publish_page", "page before and after", owner=sending)
wrap(None, "_fan_out", "fan-out (with the network)", owner=sending)
wrap(None, "send_warning", "send_warning", owner=sending)
imported = time.perf_counter() - started
try:
    main()
except SystemExit as exc:
    code = exc.code
phases["whole, in the process"] = time.perf_counter() - started
print("PHASES " + json.dumps(phases))
"""


# The floors of a fresh process: one POST of the same payload from a bare interpreter (http.client), and the same
# after importing what a warning cannot do without in this design (click for the command line, Jinja2 for the
# template, asyncio for the fan-out, sqlite3 for the log, lxml for the CAP schema check): the least any warning
# built on them costs.
PLAIN_POST = r"""
import http.client, sys, uuid
conn = http.client.HTTPConnection(sys.argv[1], timeout=30)
conn.request("POST", "/hooks/0", sys.argv[2], {"content-type": "application/json", "webhook-id": str(uuid.uuid4())})
conn.getresponse().read()
"""
STACK_POST = "import click, jinja2, asyncio, sqlite3, lxml.etree\n" + PLAIN_POST


def fresh_process(broadcast: Broadcast, server: Server, python: str, runs: int, *, history: bool = False) -> None:
    """A fresh `broadcast warn` to one webhook, phase by phase; without a past, beside its floors and the `apprise`
    command line posting the same notification, in turns, round by round."""
    past = f", in the workspace with a past ({HISTORY[0]} incidents x {HISTORY[1]} alerts)" if history else ""
    print(f"\n## `broadcast warn` to one webhook from a fresh process{past} ({python}; median of {runs} after a "
          f"warm-up; the network is one {DELAY * 1000:.0f} ms request)")
    prepared = broadcast.with_history(runs + 1, python) if history else []
    args = ["warn", "school-closure", "--set", "school=Hillside Primary School", "--set", "date=2026-11-23",
            "--set", "reason=snow", "--set", "next_update=10:00", "--set", "area=town", "--yes"]
    env = {**os.environ, "BENCH_SECRET": SECRET, "BROADCAST_OPERATOR": "Bench Runner"}
    host = server.url.removeprefix("http://")
    others = {"python -c pass": [python, "-c", "pass"]}
    if not history:
        others["floor (one POST, http.client)"] = [python, "-c", PLAIN_POST, host, PAYLOAD]
        others["floor (the imports, then one POST)"] = [python, "-c", STACK_POST, host, PAYLOAD]
        if (apprise := Path(python).with_name("apprise")).exists():
            others["Apprise (its command line)"] = [str(apprise), "-t", "Hillside Primary School is closed", "-b",
                                                    PAYLOAD, *apprise_urls(server.url, [0])]
    walls: list[float] = []
    times: dict[str, list[float]] = {label: [] for label in others}
    phases = []
    for i in range(runs + 1):
        root = prepared[i] if history else broadcast.fresh(1)
        server.reset()
        started = time.perf_counter()
        # Run from the workspace, as an officer would: from the repository, `-c` would put this checkout first on
        # sys.path, and import it without the bytecode an installed copy has (PYTHONDONTWRITEBYTECODE, or none yet).
        done = subprocess.run([python, "-c", DRIVER, "--workspace", str(root), *args], capture_output=True,
                              text=True, env=env, check=False, cwd=root)
        wall = time.perf_counter() - started
        found = [line for line in done.stdout.splitlines() if line.startswith("PHASES ")]
        if not found or server.stats()["delivered"] != 1:
            print(f"  the run failed (exit {done.returncode}):\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
            return
        took = {}
        for label, argv in others.items():
            server.reset()
            started = time.perf_counter()
            other = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=root)
            took[label] = time.perf_counter() - started
            if "pass" not in label and (other.returncode or server.stats()["delivered"] != 1):
                print(f"  {label} failed (exit {other.returncode}):\n{other.stdout[-1500:]}{other.stderr[-1500:]}")
                return
        if i:
            walls.append(wall)
            phases.append(json.loads(found[0].removeprefix("PHASES ")))
            for label, seconds in took.items():
                times[label].append(seconds)
    wall, nothing = statistics.median(walls), statistics.median(times["python -c pass"])
    print(f"{'whole process (wall)':34} {wall * 1000:7.0f} ms")
    print(f"{'python -c pass':34} {nothing * 1000:7.0f} ms")
    for label in phases[0]:
        value = statistics.median(p.get(label, 0.0) for p in phases)
        print(f"  {label:32} {value * 1000:7.0f} ms")
    # Beside python -c pass too: this machine's speed moves both alike (174 and 252 ms were 17x it in two runs).
    print(f"fixed overhead (whole process minus the network's {DELAY * 1000:.0f} ms): "
          f"{(wall - DELAY) * 1000:.0f} ms ({(wall - DELAY) / nothing:.1f}x python -c pass)")
    for label in others:
        if "pass" not in label:
            seconds = statistics.median(times[label]) - DELAY
            ratio = (wall - DELAY) / seconds
            print(f"{label} fixed overhead: {seconds * 1000:.0f} ms (broadcast's is {ratio:.2f}x it)")


def startup(python: str, runs: int) -> None:
    script = Path(python).with_name("broadcast")
    command = [str(script)] if script.exists() else [python, "-m", "broadcast"]
    times: dict[str, list[float]] = {"help": [], "pass": []}
    for _ in range(runs + 2):
        for name, argv in (("help", [*command, "--help"]), ("pass", [python, "-c", "pass"])):
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            times[name].append(time.perf_counter() - started)
    help_, nothing = (statistics.median(times[k][2:]) for k in ("help", "pass"))
    print(f"\n## Start-up ({' '.join(command)}; median of {runs}, alternating)")
    print(f"broadcast --help {help_ * 1000:.0f} ms; python -c pass {nothing * 1000:.0f} ms; "
          f"ratio {help_ / nothing:.2f}x")


def main() -> None:
    global RUNS, CLEAN_RUNS, SIZES
    argv = sys.argv[1:]
    if argv[:1] == ["--serve"]:
        serve(argv[1])
        return
    python = argv[argv.index("--python") + 1] if "--python" in argv else sys.executable
    if "--quick" in argv:
        RUNS, CLEAN_RUNS, SIZES = 3, 3, (1, 10)
    parts = argv[argv.index("--parts") + 1].split(",") if "--parts" in argv else ["clean", "faults", "fresh", "start"]
    try:
        import apprise

        tools = ["broadcast", "apprise"]
        version = f", Apprise {apprise.__version__}"
    except ImportError:
        tools, version = ["broadcast"], ""
        print("Apprise is not installed (pip install -e '.[bench]'): measuring broadcast and the floors alone.")
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs{version}")
    server = Server()
    try:
        broadcast = Broadcast(server.url)
        if "clean" in parts:
            clean(server, broadcast, tools)
        if "faults" in parts and FAULT_N in SIZES:
            faulty(server, broadcast, tools)
            statements(broadcast, server)
        if "fresh" in parts:
            fresh_process(broadcast, server, python, runs=7 if RUNS >= 5 else 3)
            fresh_process(broadcast, server, python, runs=7 if RUNS >= 5 else 3, history=True)
        if "start" in parts:
            startup(python, runs=20 if RUNS >= 5 else 5)
        shutil.rmtree(broadcast.folder, ignore_errors=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
