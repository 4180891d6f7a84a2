"""Benchmark: review exports and verification on an incident of 100,000 events.

Run: python bench/review.py [EVENTS ...]        (default: 10000 100000)
It writes a log shaped like a long incident (alerts every three minutes to 12 channels in two languages, with
retries, failures and the page published around each fan-out), then times each export (CSV, JSON Lines, Markdown,
HTML), the metrics, `review verify` (whole chain, and with the incident), the chain check an export's helper process
does, and the stand-alone docs/verify_export.py: each warmed up once, then the median of RUNS runs, then its peak
Python memory with tracemalloc in one more run (tracing slows it, so times come from the untraced runs). Memory
that is about the same at 10,000 and 100,000 events is flat.

Beside them, in the same run and over the same rows of the same file, the floors issue 17 measures against: the
standard library alone reading a plain sqlite3 cursor (csv.writer; json.dumps per row; SHA-256 over the canonical
bytes the chain hashes), each timed taking turns with broadcast's figure, round by round (so a machine whose speed
drifts moves both alike), and printed as a `ratio` line with its target. It measures; it asserts nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from timing import together

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

from broadcast.review.evidence import PARALLEL_FROM  # noqa: E402
from broadcast.store import EVENT_COLUMNS, GENESIS, Store, canonical_json, event_hash, isoformat  # noqa: E402

SLUG = "snow-2026-11-23"
CHANNELS = [f"channel-{n:02d}" for n in range(12)]
RUNS = 3  # timed runs of each figure, after one warm-up: the median is printed
# Issue 17's targets: an export or verify over its floor, measured in the same run.
TARGETS = {"export csv": 2.0, "export jsonl": 1.5, "verify (whole chain)": 1.5}
LANGUAGES = ("en-GB", "cy-GB")


def shaped_events(total: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The events of one long incident, in the order a real one writes them, until `total`."""
    rng = random.Random(seed)
    clock = datetime(2026, 11, 23, 5, 30, tzinfo=UTC)
    count, alert = 0, 0

    def event(kind: str, *, at: datetime, incident: str | None = SLUG, **fields: Any) -> dict[str, Any]:
        nonlocal count
        count += 1
        return {"type": kind, "at": at, "incident": incident, **fields}

    yield event("incident_declared", at=clock, description="Incident opened: snow", details={"exercise": False})
    while count < total:
        alert += 1
        identifier = f"A-2026-{alert:04d}"
        clock += timedelta(minutes=3)
        yield event("alert_issued", at=clock, alert=identifier, description="Schools closed",
                    details={"msg_type": "Update", "status": "Actual", "template": "school-closure",
                             "template_sha256": "a" * 64, "content_sha256": "b" * 64})
        yield event("fallback_published", at=clock, incident=None, channel="page", details={"target": "site"})
        yield event("fallback_verified", at=clock + timedelta(seconds=2), incident=None, channel="page",
                    details={"target": "site", "verified": 10})
        for channel in CHANNELS:
            for language in LANGUAGES:
                at = clock + timedelta(milliseconds=rng.randint(50, 4000))
                yield event("delivery_queued", at=at, alert=identifier, channel=channel,
                            details={"language": language, "key": str(uuid.uuid4())})
                attempts = 2 if rng.random() < 0.05 else 1
                for attempt in range(1, attempts + 1):
                    yield event("delivery_attempt", at=at, alert=identifier, channel=channel,
                                description=f"{channel}: attempt {attempt}",
                                details={"attempt": attempt, "language": language, "state": "sending"})
                    if attempt < attempts:
                        yield event("retry_scheduled", at=at, alert=identifier, channel=channel,
                                    details={"wait_s": 0.5, "error": "HTTP 503", "http_status": 503,
                                             "language": language, "state": "pending"})
                failed = rng.random() < 0.02
                outcome = {"outcome": "failed", "http_status": 500, "error": "HTTP 500"} if failed else {
                    "outcome": "sent", "latency_ms": rng.randint(80, 2500), "provider_ref": str(rng.randint(1, 10**9)),
                    "url": "https://social.example/@council/1"}
                yield event("delivery_result", at=at + timedelta(milliseconds=300), alert=identifier, channel=channel,
                            description=f"{channel}: {outcome['outcome']}",
                            details={"attempt": attempts, "language": language, "state": outcome["outcome"],
                                     **outcome})
        if count >= total:
            return


def build_log(path: Path, total: int) -> Store:
    """Write the incident straight into a fresh log, hash-chained exactly as Store.append_event would."""
    store = Store.open(path)
    prev, rows = GENESIS, []
    for number, raw in enumerate(shaped_events(total), start=1):
        at = isoformat(raw["at"])
        row = {"id": number, "event_id": str(uuid.uuid4()), "occurred_at": at, "recorded_at": at, "type": raw["type"],
               "phase": "warn", "actor": "duty-officer", "incident": raw["incident"], "alert": raw.get("alert"),
               "channel": raw.get("channel"), "description": raw.get("description"),
               "details": canonical_json(raw.get("details", {})), "pinned": 0, "supersedes": None, "prev_hash": prev}
        row["hash"] = prev = event_hash(row)
        rows.append(tuple(row[name] for name in (*EVENT_COLUMNS, "hash")))
    with store.transaction():
        store.conn.execute("INSERT INTO incidents VALUES (?, ?, 'closed', 0, ?, ?)",
                           [SLUG, "Snow closes schools", "2026-11-23T05:30:00.000Z", None])
        marks = ", ".join("?" for _ in range(len(EVENT_COLUMNS) + 1))
        store.conn.executemany(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, hash) VALUES ({marks})", rows)
    return store


def timed(work: Callable[[], object]) -> float:
    """Seconds `work` takes: warmed up once, then the median of RUNS runs."""
    work()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(label: str, work: Callable[[], object]) -> tuple[str, float, float]:
    seconds = timed(work)
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return label, seconds, peak / 2**20


Floors = dict[str, tuple[str, float, float]]  # figure -> (what the floor is, its seconds, broadcast's seconds)


def run(total: int, folder: Path) -> tuple[list[tuple[str, float, float]], Floors]:
    import verify_export

    from broadcast.review.evidence import verify_incident, verify_upto
    from broadcast.review.exports import export_file
    from broadcast.review.metrics import measure as metrics

    store = build_log(folder / f"log-{total}.db", total)
    events = store.head()[0]
    results, sizes = [], []
    for fmt in ("csv", "jsonl", "md", "html"):
        out = folder / f"timeline-{total}.{fmt}"
        results.append(measure(f"export {fmt}", lambda fmt=fmt, out=out: export_file(
            store, SLUG, fmt, out, display_zone="Europe/London")))
        size = out.stat().st_size / 2**20
        results[-1] = (f"{results[-1][0]} ({size:.0f} MB)", *results[-1][1:])
        sizes.append(f"{fmt} {out.stat().st_size / 1e6:.2f} MB")
    results.append(measure("metrics", lambda: metrics(store, SLUG)))
    results.append(measure("verify (whole chain)", store.verify))
    count, head = store.head()
    results.append(measure("chain check (helper's work)", lambda: verify_upto(store.conn, count, head)))
    results.append(measure("verify INCIDENT", lambda: verify_incident(store, SLUG)))
    jsonl = folder / f"timeline-{total}.jsonl"
    results.append(measure("docs/verify_export.py", lambda: _quiet(verify_export.main, [str(jsonl)])))
    # Each floored figure again, taking turns with its floor round by round, so a machine whose speed drifts
    # moves both alike (the ratio lines use these; the figures above are each timed on their own).
    ours: dict[str, Callable[[], object]] = {
        "export csv": lambda: export_file(store, SLUG, "csv", folder / f"timeline-{total}.csv",
                                          display_zone="Europe/London"),
        "export jsonl": lambda: export_file(store, SLUG, "jsonl", folder / f"timeline-{total}.jsonl",
                                            display_zone="Europe/London"),
        "verify (whole chain)": store.verify}
    floors = measure_floors(folder / f"log-{total}.db", folder, ours)
    store.close()
    print(f"\nexport sizes at {events:,} events: {', '.join(sizes)}")
    print(f"\n{events:,} events in the log", flush=True)
    return results, floors


# The export's columns from a plain cursor: what the details hold, SQLite's json_extract takes out; `seq` and the
# local time are the stored id and time (the rows are the incident's own, in chain order).
FLOOR_COLUMNS = {"seq": "id", "chain_id": "id", "occurred_at_local": "occurred_at"}


def floor_select() -> str:
    from broadcast.review.timeline import CONTEXT_TYPES, DERIVED, FIELDS

    names = [FLOOR_COLUMNS.get(name) or (f"json_extract(details, '$.{name}')" if name in DERIVED else name)
             for name in FIELDS]
    kinds = ", ".join(f"'{kind}'" for kind in CONTEXT_TYPES)
    return (f"SELECT {', '.join(names)} FROM events WHERE incident = ? OR (incident IS NULL AND type IN ({kinds})) "
            "ORDER BY id")


def measure_floors(path: Path, folder: Path, ours: dict[str, Callable[[], object]]) -> Floors:
    """The standard library alone over the same rows, read from a plain sqlite3 cursor, each timed taking turns with
    broadcast's figure: {figure: (what the floor is, its seconds, broadcast's seconds)}."""
    from broadcast.review.timeline import FIELDS

    conn = sqlite3.connect(path)
    select, out = floor_select(), folder / "floor.out"

    def csv_floor() -> None:
        with out.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(FIELDS)
            writer.writerows(conn.execute(select, [SLUG]))

    def jsonl_floor() -> None:
        with out.open("w", encoding="utf-8", newline="") as handle:
            write, dumps = handle.write, json.dumps
            for values in conn.execute(select, [SLUG]):
                write(dumps(dict(zip(FIELDS, values, strict=True)), ensure_ascii=False, separators=(",", ":")) + "\n")

    hashed = f"SELECT {', '.join(EVENT_COLUMNS)}, hash FROM events ORDER BY id"

    def sha_floor() -> None:  # what the chain hashes, spelt the plain way: canonical_json of each row, then SHA-256
        prev = GENESIS
        for values in conn.execute(hashed):
            digest = hashlib.sha256((prev + canonical_json(dict(zip(EVENT_COLUMNS, values[:15], strict=True)))).encode()
                                    ).hexdigest()
            if digest != values[15]:
                raise AssertionError(f"event {values[0]} does not verify")
            prev = digest

    # The least any verify can cost: the rows read, and SHA-256 over canonical bytes already built (outside the timer).
    bodies = [(values[14] + canonical_json(dict(zip(EVENT_COLUMNS, values[:15], strict=True)))).encode()
              for values in conn.execute(hashed)]

    def sha_only() -> None:
        for _values, body in zip(conn.execute(hashed), bodies, strict=True):
            hashlib.sha256(body).hexdigest()

    plain = {"export csv": ("csv.writer over the same rows from a plain sqlite3 cursor", csv_floor),
             "export jsonl": ("json.dumps per row over the same rows from a plain sqlite3 cursor", jsonl_floor),
             "verify (whole chain)": ("a plain pass: each row from a plain sqlite3 cursor, canonical_json, SHA-256",
                                      sha_floor),
             "verify (whole chain), strict": ("the rows read and SHA-256 over canonical bytes built beforehand",
                                              sha_only)}
    floors = {}
    for key, (what, floor) in plain.items():
        seconds, floor_seconds = together(ours[key.split(", ")[0]], floor, runs=RUNS)
        floors[key] = (what, floor_seconds, seconds)
    conn.close()
    return floors


def print_ratios(floors: Floors) -> None:
    """`ratio FIGURE: S s / floor F s (WHAT) = Rx (target <= Tx): met|missed`, one line per floor."""
    for key, (what, floor, seconds) in floors.items():
        target = TARGETS[key.split(", ")[0]]
        ratio = seconds / floor
        print(f"ratio {key}: {seconds:.3f} s / floor {floor:.3f} s ({what}) = {ratio:.2f}x "
              f"(target <= {target:g}x): {'met' if ratio <= target else 'missed'}", flush=True)


def _quiet(main: Callable[[list[str]], int], argv: list[str]) -> int:
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        return main(argv)
    finally:
        sys.stdout = saved


def main() -> None:
    sizes = [int(n) for n in sys.argv[1:]] or [10_000, 100_000]
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"Each figure: one warm-up, then the median of {RUNS} runs.")
    table: dict[str, dict[int, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for total in sizes:
            results, floors = run(total, Path(tmp))
            for label, seconds, peak in results:
                table.setdefault(label.split(" (")[0], {})[total] = (seconds, peak)
                print(f"  {label:34} {seconds:6.2f} s   peak {peak:6.1f} MiB", flush=True)
            print_ratios(floors)
    print(f"\nFrom {PARALLEL_FROM:,} events an export checks the chain in a helper process, beside the export: its "
          "work is the \"chain check\" row.")
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        print(f"\nPeak memory at {low:,} -> {high:,} events (flat if about equal):")
        for label, by_size in table.items():
            print(f"  {label:34} {by_size[low][1]:6.1f} -> {by_size[high][1]:6.1f} MiB")


if __name__ == "__main__":
    main()
