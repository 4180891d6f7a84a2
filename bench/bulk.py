"""Benchmark: one warning to a recipient list through the sandbox's GOV.UK Notify, every delivery logged.

Run: python bench/bulk.py            (10,000 then 100,000 recipients; --sizes 10000 for one size)
The sandbox runs in its own process and answers each notification after 50 ms, with Notify's rate limit
lifted on both sides. Each size runs in a fresh process, so its peak memory is its own. It prints the
deliveries a second (the send, and the whole warn with the queueing of the list), the rows and events
written, and the peak memory (RSS); it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
LATENCY = 0.05


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


def workspace(size: int, url: str) -> Path:
    from conftest import make_workspace

    from broadcast.prepare.approvals import approve
    from broadcast.prepare.templates import find_template
    from broadcast.sandbox.platforms.notify import SMS_TEMPLATE
    from broadcast.store import Store
    from broadcast.workspace import Workspace

    root = make_workspace(Path(tempfile.mkdtemp()) / "ws")
    (root / "channels" / "mastodon-council.toml").unlink()
    (root / "lists").mkdir()
    with (root / "lists" / "residents.csv").open("w", encoding="utf-8") as handle:
        handle.write("phone,name,groups,language\n")
        for n in range(size):  # valid UK mobile numbers that only ever reach the sandbox
            handle.write(f"07400 {100000 + n:06d},Resident {n},residents,{'cy' if n % 4 == 0 else 'en'}\n")
    (root / "channels" / "sms-residents.toml").write_text(
        f'kind = "govuk-notify"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nlist = "residents"\n'
        f'sms_template_id = "{SMS_TEMPLATE}"\napi = "{url}/notify"\nrate = 0\nconcurrency = 200\n'
        'price_per_segment = 0.0197\n'
        '[secrets]\napi_key = "env:BENCH_NOTIFY_KEY"\n', encoding="utf-8")
    ws = Workspace(root)
    store = Store.open(ws.db_path)
    approve(ws, find_template(ws, "school-closure"), "Bench Runner, Benchmark", store)
    store.close()
    return root


def run_one(size: int, url: str) -> dict[str, float]:
    """One warn to `size` recipients, in this process."""
    from conftest import VALUES

    from broadcast.sandbox.platforms.notify import API_KEY
    from broadcast.send.fanout import Limits
    from broadcast.send.sending import plan_warning, send_warning
    from broadcast.store import Store
    from broadcast.workspace import Workspace

    os.environ["BENCH_NOTIFY_KEY"] = API_KEY
    os.environ.pop("BROADCAST_RECIPIENT_KEY", None)
    ws = Workspace(workspace(size, url))
    store = Store.open(ws.db_path)
    started = time.perf_counter()
    plan = plan_warning(ws, "school-closure", VALUES, store=store)
    planned = time.perf_counter()
    sending: dict[str, float] = {}

    def progress(p: object) -> None:
        sending.setdefault("first", time.perf_counter())

    report = send_warning(ws, store, plan, actor="bench", limits=Limits(concurrency=200), on_progress=progress)
    finished = time.perf_counter()
    rows = store.conn.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
    events = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    logged = store.conn.execute("SELECT count(*) FROM events WHERE type = 'delivery_result'").fetchone()[0]
    send_started = sending.get("first", planned)
    return {
        "recipients": size, "plan_s": planned - started, "warn_s": finished - planned,
        "send_s": finished - send_started, "sent_rows": rows, "events": events, "results_logged": logged,
        "failed": sum(o.state != "sent" for o in report.outcomes),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "db_mb": os.path.getsize(ws.db_path) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.url)))
        return
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(send,), daemon=True)
    server.start()
    url = receive.recv()
    print(f"broadcast bulk benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, sandbox Notify "
          f"answering after {LATENCY * 1000:.0f} ms, rate limits lifted, concurrency 200")
    print(f"{'recipients':>10}  {'plan':>6}  {'warn':>6}  {'send/s':>7}  {'warn/s':>7}  {'sent rows':>9}  "
          f"{'events':>7}  {'peak RSS':>8}  {'log size':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        done = subprocess.run([sys.executable, __file__, "--one", str(size), "--url", url], capture_output=True,
                              text=True, check=False)
        if done.returncode:
            print(done.stderr[-2000:])
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{r['recipients']:>10,}  {r['plan_s']:>5.1f}s  {r['warn_s']:>5.1f}s  "
              f"{r['recipients'] / r['send_s']:>7,.0f}  {r['recipients'] / r['warn_s']:>7,.0f}  "
              f"{r['sent_rows']:>9,}  {r['events']:>7,}  {r['peak_rss_mb']:>6.0f}MB  {r['db_mb']:>6.1f}MB")
    print("send/s: from the first delivery to the end; warn/s: the whole send_warning, queueing the list "
          "included. Every delivery has its attempt and result events in the hash-chained log.")
    server.terminate()


if __name__ == "__main__":
    main()
