"""Reading an incident for review: one pass over the log for its rows and the header every format shares.

The header holds the metrics, the digest of the rows and the chain check; the wording here (times with their zone,
descriptions, the decision log, the channel table) is what the exports, the HTML report and the AAR all print.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from broadcast.review.evidence import ChainJob, Digest
from broadcast.review.timeline import SCHEMA_VERSION, find_incident, incident_rows, local, parse_instant, zone

if TYPE_CHECKING:
    from broadcast.review.metrics import Metrics
    from broadcast.store import Store, Verification

BACKFILL_SECONDS = 60  # recorded this long after it happened: shown as backfilled
Rows = Iterator[tuple[tuple[Any, ...], dict[str, Any]]]  # (stored values, timeline row)


@dataclass
class Header:
    """What heads every export: a dict for JSON, plus the metrics for the renderings."""

    data: dict[str, Any]
    metrics: Metrics
    display: tzinfo

    @property
    def slug(self) -> str:
        return str(self.data["incident"]["slug"])


def read(store: Store, slug: str, consume: Callable[[Rows, tzinfo], None], *, display_zone: str,
         pinned_only: bool = False, now: datetime | None = None) -> Header:
    """Walk the log once, giving `consume` the incident's rows; return the header (metrics, digest, chain).

    Call inside snapshot(store) so that what is written after (decision log, charts) matches the rows.
    """
    from broadcast.review.metrics import MetricsBuilder, approval_times
    from broadcast.review.tally import tally

    incident = find_incident(store, slug)
    display = zone(display_zone)
    chain = ChainJob(store)
    builder, digest = MetricsBuilder.of(store, incident), Digest()

    def rows() -> Rows:
        for values, row in incident_rows(store, slug, display):
            builder.add(row)
            if row["pinned"] or not pinned_only:
                digest.add(row)
                yield values, row

    stream = rows()
    try:
        consume(stream, display)
        for _ in stream:  # a consumer that stops early must not leave the metrics short
            pass
        metrics = builder.finish(tally(store, [slug]), approval_times(store, slug))
    except BaseException:
        chain.cancel()
        raise
    return Header(_header_data(store, incident, metrics, digest, chain.result(), display_zone, pinned_only, now),
                  metrics, display)


def _header_data(store: Store, incident: dict[str, Any], metrics: Metrics, digest: Digest, chain: Verification,
                 display_zone: str, pinned_only: bool, now: datetime | None) -> dict[str, Any]:
    from broadcast import __version__
    from broadcast.store import isoformat

    count, head = store.head()
    display = zone(display_zone)
    times = {name: getattr(metrics, name) for name in ("declared_at", "first_warning_at", "all_clear_at", "closed_at")}
    return {
        "record": "header",
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "broadcast", "version": __version__},
        "generated_at": isoformat(now or datetime.now(UTC)),
        "incident": {**incident, "exercise": bool(incident["exercise"])},
        "times": times,
        "times_local": {name: local(value, display) for name, value in times.items()},
        "display_timezone": display_zone,
        "filters": {"pinned_only": pinned_only},
        "event_count": digest.count,
        "events_digest": digest.sha256,
        "first_chain_id": digest.first_chain_id,
        "last_chain_id": digest.last_chain_id,
        "chain": {"verified": chain.ok, "events": count, "head": head, "broken_at": chain.broken_at,
                  "reason": chain.reason},
        "metrics": metrics.to_dict(),
    }


def clock(text: str | None, display: tzinfo, pattern: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """A stored UTC time as people read it in the display zone, zone named (BST and GMT differ by an hour)."""
    if not text:
        return "-"
    return parse_instant(text).astimezone(display).strftime(pattern)


MARKDOWN = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|"})


def md_text(text: Any) -> str:
    """Text safe inside a Markdown line or table cell: one line, Markdown's own characters escaped."""
    return " ".join(str(text).split()).translate(MARKDOWN)


def header_rows(header: Header) -> Iterator[tuple[str, str]]:
    """The header block as (label, value), shared by Markdown, HTML and the AAR."""
    data, display = header.data, header.display
    incident = data["incident"]
    chain = data["chain"]
    yield "Incident", f"{incident['title']} ({incident['slug']}; {incident['status']}" + (
        ", exercise)" if incident["exercise"] else ")")
    for label, key in (("Declared", "declared_at"), ("First warning", "first_warning_at"),
                       ("All clear", "all_clear_at"), ("Closed", "closed_at")):
        value = data["times"][key]
        yield label, f"{clock(value, display)} ({value})" if value else "-"
    yield "Display time zone", data["display_timezone"]
    filters = "pinned entries only" if data["filters"]["pinned_only"] else "none"
    yield "Events in this export", f"{data['event_count']} (filters: {filters})"
    yield "Events digest (SHA-256)", data["events_digest"]
    verdict = "verified" if chain["verified"] else f"DOES NOT VERIFY at event {chain['broken_at']}: {chain['reason']}"
    yield "Chain head", f"{chain['head']} ({chain['events']} events in the log, {verdict})"
    generator = data["generator"]
    yield "Generated", (f"{generator['name']} {generator['version']}, schema {data['schema_version']}, "
                        f"at {data['generated_at']}")


def decisions(store: Store, slug: str) -> list[dict[str, Any]]:
    """The incident's decisions in the order they were made, each with what corrects it (a short list)."""
    cursor = store.conn.execute(
        "SELECT d.event_id, d.occurred_at, d.recorded_at, d.actor, d.description, d.details, d.supersedes, "
        "(SELECT c.occurred_at FROM events c WHERE c.supersedes = d.event_id ORDER BY c.id LIMIT 1) "
        "FROM events d WHERE d.incident = ? AND d.type = 'decision' ORDER BY d.occurred_at, d.id", [slug])
    names = ("event_id", "occurred_at", "recorded_at", "actor", "description", "details", "supersedes",
             "corrected_at")
    out = [dict(zip(names, values, strict=True)) for values in cursor]
    for row in out:
        row["rationale"] = json.loads(row.pop("details") or "{}").get("rationale")
    return out


def describe(row: dict[str, Any]) -> str:
    """The entry's description, or for system events logged without one, its type and language."""
    if row["description"]:
        return str(row["description"])
    language = row["details"].get("language")
    return row["type"].replace("_", " ") + (f" ({language})" if language else "")


def backfilled(row: dict[str, Any]) -> bool:
    lag = (parse_instant(row["recorded_at"]) - parse_instant(row["occurred_at"])).total_seconds()
    return lag > BACKFILL_SECONDS


REACH_COLUMNS = ("Channel", "Language", "Attempted", "Accepted", "Delivered", "Failed", "Unknown")
SPEED_COLUMNS = ("Channel", "First accepted", "p50", "p95", "Retries")


def reach_rows(m: Metrics) -> list[tuple[str, ...]]:
    """What became of the messages, per channel and language, then the incident's total: the same words and
    figures in every rendering (broadcast.review.tally.WORDS)."""
    def cells(name: str, language: str, t: dict[str, Any]) -> tuple[str, ...]:
        delivered = "-" if t["delivered"] is None else f"{t['delivered']:,}"
        return (name, language, f"{t['attempted']:,}", f"{t['accepted']:,}", delivered, f"{t['failed']:,}",
                f"{t['unknown']:,}")

    rows = [cells(t["channel"], t["language"] or "-", t) for t in m.reach]
    if rows:
        rows.append(cells("All channels", "", {"attempted": m.attempted, "accepted": m.accepted,
                                               "delivered": m.delivered, "failed": m.failed, "unknown": m.unknown}))
    return rows


def speed_rows(m: Metrics) -> list[tuple[str, ...]]:
    """How fast each channel went: its first accepted message after the first alert, latency, retries."""
    from broadcast.review.metrics import duration

    return [(c.channel, duration(c.first_delivery_s), milliseconds(c.latency_p50_ms), milliseconds(c.latency_p95_ms),
             str(c.retries)) for c in m.channels]


def channel_table(m: Metrics) -> list[str]:
    """The per-channel metrics as Markdown tables."""
    if not m.reach:
        return ["No deliveries were logged."]

    def table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
        return (["| " + " | ".join(columns) + " |", "|" + "|".join("---" if i < 2 else "---:"
                                                                    for i in range(len(columns))) + "|"]
                + ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in rows])

    return table(REACH_COLUMNS, reach_rows(m)) + [""] + table(SPEED_COLUMNS, speed_rows(m))


def milliseconds(value: int | None) -> str:
    """A latency as the tables print it."""
    return "-" if value is None else f"{value} ms"
