"""Benchmark: one warning to a recipient list through the sandbox's GOV.UK Notify, beside a plain aiohttp client.

Run: python bench/bulk.py                        (10,000 recipients: the floor, then broadcast with its log on SQLite)
     python bench/bulk.py --store postgresql     (and again with the log on PostgreSQL: a throw-away local cluster,
                                                  as tests/pgkit.py starts one, or $BENCH_POSTGRES_URL, a superuser's)
     python bench/bulk.py --sizes 10000,100000   (peak memory at both sizes; 100,000 takes a minute or two each)

The sandbox runs in its own process and answers each notification after 50 ms, with Notify's rate limit lifted.
Every run is a fresh process (so its peak memory is its own) that warms up before it is timed: the floor with 200
requests, broadcast with a whole warning to 200 people. The floor is a plain aiohttp client posting the same
requests (the same JSON bodies, token and concurrency, each answer read and parsed) to the same server; it does
none of broadcast's work (the list, the log, retries). For each run it prints the time from the first request to
the last answer ("send"), the whole send_warning for broadcast ("warn": queueing the list and the page included),
the CPU time of the sending process per delivery over the send, each beside the floor's with the ratio, then the
events logged and the peak memory (RSS). The last line is every figure as JSON, for bench/run_all.py.
It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
LATENCY = 0.05
CONCURRENCY = 200
WARM_UP = 200


def serve(port: multiprocessing.connection.Connection) -> None:
    """The sandbox in a child process: Notify with its rate limit lifted and 50 ms per notification."""
    from broadcast.sandbox.server import Sandbox

    sandbox = Sandbox()
    url = sandbox.start()
    sandbox.store("notify")["rate_limit"] = None
    sandbox.fault("notify", latency=LATENCY, methods=("POST",))
    port.send(url)
    while True:
        time.sleep(3600)


def people(size: int, start: int = 0) -> Iterator[tuple[str, str]]:
    """(number as written in the list, language) for each resident: valid UK mobiles that only reach the sandbox."""
    for n in range(start, start + size):
        yield f"07400 {100000 + n:06d}", "cy" if n % 4 == 0 else "en"


def workspace(size: int, url: str, store_url: str | None, start: int = 0) -> Path:
    from conftest import make_workspace

    from broadcast.prepare.approvals import approve
    from broadcast.prepare.templates import find_template
    from broadcast.sandbox.platforms.notify import SMS_TEMPLATE
    from broadcast.store import open_store
    from broadcast.workspace import Workspace

    root = make_workspace(Path(tempfile.mkdtemp()) / "ws")
    (root / "channels" / "mastodon-council.toml").unlink()
    if store_url:
        os.environ["BENCH_STORE_URL"] = store_url
        with (root / "broadcast.toml").open("a", encoding="utf-8") as config:
            config.write('\n[store]\nurl = "env:BENCH_STORE_URL"\n')
    (root / "lists").mkdir()
    with (root / "lists" / "residents.csv").open("w", encoding="utf-8") as handle:
        handle.write("phone,name,groups,language\n")
        for n, (phone, language) in enumerate(people(size, start)):
            handle.write(f"{phone},Resident {n},residents,{language}\n")
    (root / "channels" / "sms-residents.toml").write_text(
        f'kind = "govuk-notify"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nlist = "residents"\n'
        f'sms_template_id = "{SMS_TEMPLATE}"\napi = "{url}/notify"\nrate = 0\nconcurrency = {CONCURRENCY}\n'
        'price_per_segment = 0.0197\n'
        '[secrets]\napi_key = "env:BENCH_NOTIFY_KEY"\n', encoding="utf-8")
    ws = Workspace(root)
    store = open_store(ws)
    approve(ws, find_template(ws, "school-closure"), "Bench Runner, Benchmark", store)
    store.close()
    return root


def warn(root: Path) -> dict[str, Any]:
    """One warning to everyone on the workspace's list, in this process, timed."""
    from conftest import VALUES

    from broadcast.channels.notify import Notify
    from broadcast.send.fanout import Limits
    from broadcast.send.sending import plan_warning, send_warning
    from broadcast.store import open_store
    from broadcast.workspace import Workspace

    ws = Workspace(root)
    store = open_store(ws)
    marks: dict[str, tuple[float, float]] = {}
    original = Notify.deliver

    async def first(self: Notify, *args: Any, **kwargs: Any) -> Any:  # the first request: the send starts
        Notify.deliver = original  # type: ignore[method-assign]
        marks["first"] = (time.perf_counter(), time.process_time())
        return await original(self, *args, **kwargs)

    def progress(p: Any) -> None:
        if p.done == p.total:
            marks["last"] = (time.perf_counter(), time.process_time())

    Notify.deliver = first  # type: ignore[method-assign]
    cpu, started = time.process_time(), time.perf_counter()
    plan = plan_warning(ws, "school-closure", VALUES, store=store)
    report = send_warning(ws, store, plan, actor="bench", limits=Limits(concurrency=CONCURRENCY),
                          on_progress=progress)
    finished, cpu = time.perf_counter(), time.process_time() - cpu
    count = store.conn.execute
    result = {
        "warn_s": finished - started, "warn_cpu_s": cpu,
        "send_s": marks["last"][0] - marks["first"][0], "send_cpu_s": marks["last"][1] - marks["first"][1],
        "sent": count("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0],
        "failed": sum(o.state != "sent" for o in report.outcomes),
        "events": count("SELECT count(*) FROM events").fetchone()[0],
    }
    store.close()
    return result


def run_broadcast(size: int, url: str, store_url: str | None) -> dict[str, Any]:
    """Warm up with a warning to a few people, then one to `size`, each in a workspace of its own."""
    from broadcast.sandbox.platforms.notify import API_KEY

    os.environ["BENCH_NOTIFY_KEY"] = API_KEY
    os.environ.pop("BROADCAST_RECIPIENT_KEY", None)
    warm = workspace(WARM_UP, url, store_url and _database(store_url, "warm"), start=500_000)
    warn(warm)
    root = workspace(size, url, store_url and _database(store_url, "timed"))
    return {"recipients": size, **warn(root), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_floor(size: int, url: str) -> dict[str, Any]:
    """The same requests from a plain aiohttp client: `size` bodies as broadcast posts them, 200 at once."""
    import asyncio

    import aiohttp
    from conftest import VALUES

    from broadcast.channels.notify import Notify
    from broadcast.prepare.recipients import normalise_phone
    from broadcast.sandbox.platforms.notify import API_KEY, SMS_TEMPLATE
    from broadcast.send.sending import plan_warning
    from broadcast.workspace import Workspace

    os.environ["BENCH_NOTIFY_KEY"] = API_KEY
    ws = Workspace(workspace(1, url, None))
    plan = plan_warning(ws, "school-closure", VALUES)  # the texts broadcast sends, in each language
    channel = next(c for c, _ in plan.posts if isinstance(c, Notify))
    texts = {post.language[:2]: post.text for c, post in plan.posts if c is channel}
    endpoint = f"{channel.api}/v2/notifications/sms"

    def requests(count: int, start: int) -> list[tuple[str, str, str]]:  # ready before the clock starts
        return [(normalise_phone(phone), texts[language], f"{n:032x}")
                for n, (phone, language) in enumerate(people(count, start), start)]

    async def post_all(work: list[tuple[str, str, str]]) -> int:
        sent = 0
        items = iter(work)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": "bench"}) as session:
            async def worker() -> None:
                nonlocal sent
                for phone, text, reference in items:
                    body = {"phone_number": phone, "template_id": SMS_TEMPLATE,
                            "personalisation": {"message": text}, "reference": reference}
                    # The same JWT, made the same way: renewed every few seconds (Notify refuses one 30 s old).
                    async with session.post(endpoint, data=json.dumps(body), headers={
                            **channel._headers(), "Content-Type": "application/json"}) as response:
                        answer = await response.text()
                        if response.status == 201:
                            json.loads(answer)["id"]
                            sent += 1

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return sent

    asyncio.run(post_all(requests(WARM_UP, 500_000)))
    work = requests(size, 0)
    cpu, started = time.process_time(), time.perf_counter()
    sent = asyncio.run(post_all(work))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"recipients": size, "send_s": elapsed, "send_cpu_s": cpu, "sent": sent,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# -- PostgreSQL ----------------------------------------------------------------------------------------------------
_DATABASES = iter(range(1, 1_000_000))


def _database(server: str, label: str) -> str:
    """A new, empty database on the server; its URL."""
    import psycopg

    name = f"bench_{label}_{os.getpid()}_{next(_DATABASES)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """$BENCH_POSTGRES_URL, else a throw-away local cluster started as the tests start theirs (fsync off there too:
    the figure is the store's cost, not the disk's)."""
    if os.environ.get("BENCH_POSTGRES_URL"):
        yield os.environ["BENCH_POSTGRES_URL"]
        return
    from pgkit import _cluster

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(_cluster())
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pytest's skip, when no server starts
            raise SystemExit(f"no PostgreSQL server: {exc} (set $BENCH_POSTGRES_URL, or apt-get install "
                             "postgresql)") from None
        yield url


# -- the runs, each in its own process -----------------------------------------------------------------------------
def child(kind: str, size: int, url: str, store_url: str | None = None) -> dict[str, Any] | None:
    argv = [sys.executable, __file__, "--one", kind, "--size", str(size), "--url", url]
    done = subprocess.run(argv + (["--store-url", store_url] if store_url else []), capture_output=True, text=True,
                          check=False)
    if done.returncode:
        print(f"{kind} {size:,}: failed\n{done.stderr[-3000:]}")
        return None
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def ratio(value: float, floor: float | None) -> str:
    return f"{value / floor:.2f}x" if floor else "-"


def show(label: str, r: dict[str, Any], floor: dict[str, Any] | None) -> None:
    n = r["recipients"]
    send, cpu = r["send_s"], r["send_cpu_s"] / n * 1000
    floor_send = floor["send_s"] if floor else None
    floor_cpu = floor["send_cpu_s"] / floor["recipients"] * 1000 if floor else None
    warn = f"{r['warn_s']:>6.2f}s {ratio(r['warn_s'], floor_send):>6}" if "warn_s" in r else f"{'-':>7} {'-':>6}"
    print(f"{label:<22} {n:>10,}  {send:>6.2f}s {ratio(send, floor_send):>6}  {warn}  {cpu:>7.3f}ms "
          f"{ratio(cpu, floor_cpu):>6}  {r.get('events', 0):>8,}  {r['peak_rss_mb']:>6.0f}MB  "
          f"{r['sent']:>8,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="recipients per run, comma-separated (e.g. 10000,100000)")
    parser.add_argument("--store", default="sqlite", help="sqlite (default), or postgresql: SQLite and PostgreSQL "
                        "in the same run, with their ratio")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = run_floor(args.size, args.url) if args.one == "floor" else run_broadcast(args.size, args.url,
                                                                                          args.store_url)
        print(json.dumps(result))
        return
    if args.store not in ("sqlite", "postgresql"):
        parser.error("--store: sqlite or postgresql")
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(send,), daemon=True)
    server.start()
    url = receive.recv()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"broadcast bulk benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs; the sandbox's Notify "
          f"in its own process, answering after {LATENCY * 1000:.0f} ms, rate limits lifted; concurrency "
          f"{CONCURRENCY}; each run a fresh process, warmed up first")
    print(f"{'run':<22} {'recipients':>10}  {'send':>7} {'/floor':>6}  {'warn':>7} {'/floor':>6}  {'CPU/msg':>9} "
          f"{'/floor':>6}  {'events':>8}  {'peak RSS':>8}  {'sent':>8}")
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        server_url = stack.enter_context(postgres()) if args.store == "postgresql" else None
        for size in sizes:
            floor = child("floor", size, url)
            if floor:
                show("plain aiohttp (floor)", floor, None)
                results.append({"run": "floor", **floor})
            runs = [("sqlite", None)] + ([("postgresql", server_url)] if server_url else [])
            mine: dict[str, dict[str, Any]] = {}
            for store, store_url in runs:
                r = child("broadcast", size, url, store_url)
                if r:
                    mine[store] = r
                    show(f"broadcast, {'SQLite' if store == 'sqlite' else 'PostgreSQL'}", r, floor)
                    results.append({"run": f"broadcast-{store}", **r, **({
                        "send_over_floor": r["send_s"] / floor["send_s"],
                        "warn_over_floor": r["warn_s"] / floor["send_s"],
                        "cpu_over_floor": (r["send_cpu_s"] / size) / (floor["send_cpu_s"] / floor["recipients"]),
                    } if floor else {})})
            if len(mine) == 2:
                pg, lite = mine["postgresql"], mine["sqlite"]
                print(f"{'PostgreSQL / SQLite':<22} {size:>10,}  {'':>7} {ratio(pg['send_s'], lite['send_s']):>6}  "
                      f"{'':>7} {ratio(pg['warn_s'], lite['warn_s']):>6}  {'':>9} "
                      f"{ratio(pg['send_cpu_s'], lite['send_cpu_s']):>6}  {'':>8}  "
                      f"{ratio(pg['peak_rss_mb'], lite['peak_rss_mb']):>8}")
    print("send: the first request to the last answer; warn: the whole send_warning (queueing the list, the page "
          "before and after); /floor: over the plain client's send. CPU/msg: the sending process's CPU time over the "
          "send, per delivery. Every delivery is one row moved to sending then sent, logged as one result event "
          "each and one first-attempt event per batch.")
    by_run: dict[str, list[float]] = {}
    for r in results:
        by_run.setdefault(r["run"], []).append(r["peak_rss_mb"])
    for run, peaks in by_run.items():
        if len(peaks) > 1:
            print(f"peak RSS, {run}: " + " -> ".join(f"{p:.0f}MB" for p in peaks)
                  + f" ({ratio(peaks[-1], peaks[0])} from {sizes[0]:,} to {sizes[-1]:,})")
    print("json: " + json.dumps(results))
    server.terminate()


if __name__ == "__main__":
    main()
