"""Benchmark: review exports and verification on an incident of 100,000 events.

Run: python bench/review.py [EVENTS ...]        (default: 10000 100000)
It writes a log shaped like a long incident (alerts every three minutes to 12 channels in two languages, with
retries, failures and the page published around each fan-out), then times each export (CSV, JSON Lines, Markdown,
HTML), the metrics, `review verify` (whole chain, and with the incident), the chain check an export's helper process
does, and the stand-alone docs/verify_export.py, and measures each one's peak Python memory with tracemalloc in a
second run (tracing slows it, so times come from the first). Memory that is about the same at 10,000 and 100,000
events is flat. It measures; it asserts nothing.
"""

from __future__ import annotations

import io
import os
import platform
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

from broadcast.review.evidence import PARALLEL_FROM  # noqa: E402
from broadcast.store import EVENT_COLUMNS, GENESIS, Store, canonical_json, event_hash, isoformat  # noqa: E402

SLUG = "snow-2026-11-23"
CHANNELS = [f"channel-{n:02d}" for n in range(12)]
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


def measure(label: str, work: Callable[[], object]) -> tuple[str, float, float]:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return label, seconds, peak / 2**20


def run(total: int, folder: Path) -> list[tuple[str, float, float]]:
    import verify_export

    from broadcast.review.evidence import verify_incident, verify_upto
    from broadcast.review.exports import export_file
    from broadcast.review.metrics import measure as metrics

    store = build_log(folder / f"log-{total}.db", total)
    events = store.head()[0]
    results = []
    for fmt in ("csv", "jsonl", "md", "html"):
        out = folder / f"timeline-{total}.{fmt}"
        results.append(measure(f"export {fmt}", lambda fmt=fmt, out=out: export_file(
            store, SLUG, fmt, out, display_zone="Europe/London")))
        size = out.stat().st_size / 2**20
        results[-1] = (f"{results[-1][0]} ({size:.0f} MB)", *results[-1][1:])
    results.append(measure("metrics", lambda: metrics(store, SLUG)))
    results.append(measure("verify (whole chain)", store.verify))
    count, head = store.head()
    results.append(measure("chain check (helper's work)", lambda: verify_upto(store.conn, count, head)))
    results.append(measure("verify INCIDENT", lambda: verify_incident(store, SLUG)))
    jsonl = folder / f"timeline-{total}.jsonl"
    results.append(measure("docs/verify_export.py", lambda: _quiet(verify_export.main, [str(jsonl)])))
    store.close()
    print(f"\n{events:,} events in the log", flush=True)
    return results


def _quiet(main: Callable[[list[str]], int], argv: list[str]) -> int:
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        return main(argv)
    finally:
        sys.stdout = saved


def main() -> None:
    sizes = [int(n) for n in sys.argv[1:]] or [10_000, 100_000]
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    table: dict[str, dict[int, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for total in sizes:
            for label, seconds, peak in run(total, Path(tmp)):
                table.setdefault(label.split(" (")[0], {})[total] = (seconds, peak)
                print(f"  {label:34} {seconds:6.2f} s   peak {peak:6.1f} MiB", flush=True)
    print(f"\nFrom {PARALLEL_FROM:,} events an export checks the chain in a helper process, beside the export: its "
          "work is the \"chain check\" row.")
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        print(f"\nPeak memory at {low:,} -> {high:,} events (flat if about equal):")
        for label, by_size in table.items():
            print(f"  {label:34} {by_size[low][1]:6.1f} -> {by_size[high][1]:6.1f} MiB")


if __name__ == "__main__":
    main()
