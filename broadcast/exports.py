"""Timeline exports (CSV, JSON Lines, Markdown, HTML), each headed by the incident, its metrics and the chain head.

An export reads the log once: the whole chain is checked, and the incident's rows are written (to a spool file
when the header comes first) while the metrics and the digest are gathered; then the header is written and the
spool copied after it. Memory stays flat however long the incident.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from broadcast.evidence import ChainJob, Digest
from broadcast.review import (
    FIELDS,
    SCHEMA_VERSION,
    Localiser,
    ReviewError,
    find_incident,
    incident_rows,
    local,
    parse_instant,
    snapshot,
    zone,
)

if TYPE_CHECKING:
    from broadcast.metrics import Metrics
    from broadcast.store import Store, Verification

FORMATS = ("csv", "jsonl", "md", "html")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas
TEXT_COLUMNS = frozenset({"actor", "channel", "alert", "template", "provider_ref", "error", "description", "rationale"})
SUFFIXES = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "md": "md", "markdown": "md", "html": "html",
            "htm": "html"}
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
    from broadcast.metrics import MetricsBuilder, approval_times, final_outcomes

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
        metrics = builder.finish(final_outcomes(store.conn, [slug]), approval_times(store.conn, slug))
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


def build_header(store: Store, slug: str, *, display_zone: str, pinned_only: bool = False,
                 now: datetime | None = None) -> Header:
    """The header alone (metrics, digest, chain check), for a caller that writes no rows."""
    with snapshot(store):
        return read(store, slug, lambda rows, display: None, display_zone=display_zone, pinned_only=pinned_only,
                    now=now)


def write_export(store: Store, slug: str, fmt: str, out: TextIO, *, display_zone: str, pinned_only: bool = False,
                 bom: bool = False, now: datetime | None = None) -> Header:
    """Write one incident's timeline to `out` in csv, jsonl, md or html, streamed; return its header."""
    if fmt not in FORMATS:
        raise ReviewError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    options: dict[str, Any] = {"display_zone": display_zone, "pinned_only": pinned_only, "now": now}
    with snapshot(store):
        if fmt == "csv":  # its header goes in the sidecar, so the rows go straight out
            return read(store, slug, lambda rows, display: write_csv(rows, out, bom=bom), **options)
        if fmt == "html":
            from broadcast.report import html_body, html_prefix, html_suffix

            prefix, body, suffix = html_prefix, html_body, html_suffix
        else:
            prefix, body, suffix = ((jsonl_prefix, jsonl_body, jsonl_suffix) if fmt == "jsonl"
                                    else (md_prefix, md_body, md_suffix))
        corrected = corrections(store, slug)
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
            header = read(store, slug, lambda rows, display: body(rows, spool, display, corrected), **options)
            prefix(store, header, out)
            spool.seek(0)
            shutil.copyfileobj(spool, out, 1 << 16)
            suffix(header, out)
    return header


def export_file(store: Store, slug: str, fmt: str, path: Path, **options: Any) -> tuple[Header, list[Path]]:
    """Write an export to `path` (CSV gets its header in a `.meta.json` sidecar); return the files written."""
    with open_output(path) as out:
        header = write_export(store, slug, fmt, out, **options)
    written = [path]
    if fmt == "csv":
        meta = sidecar(path)
        meta.write_text(json.dumps(header.data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(meta)
    return header, written


def open_output(path: Path) -> TextIO:
    """Open a file the reviewer named for writing; a missing or read-only folder is a clear error, not a traceback."""
    try:
        return path.open("w", encoding="utf-8", newline="")
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReviewError(f"cannot write {str(path)!r}: {why}",
                          hint="check the folder exists and you can write to it, or give another file with -o",
                          ) from None


def sidecar(path: Path) -> Path:
    """timeline.csv -> timeline.meta.json"""
    return path.with_suffix(".meta.json")


def format_for(path: Path | None, fmt: str | None) -> str:
    """The format asked for, else the one the output file's suffix names, else Markdown."""
    suffix = path.suffix.lower().lstrip(".") if path else ""
    return fmt or SUFFIXES.get(suffix, "md")


def csv_field(value: Any) -> str:
    """One RFC 4180 field: quoted when it holds a quote, comma or line break, with quotes doubled."""
    if value is None:
        return ""
    if type(value) is not str:
        return str(value)
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    if "," in value or "\n" in value or "\r" in value:
        return '"' + value + '"'
    return value


def write_csv(rows: Rows, out: TextIO, *, bom: bool = False) -> None:
    """RFC 4180: a header row, CRLF line ends, quotes only where needed; UTF-8 (with a BOM for Excel if asked).

    Written by hand rather than with the csv module, which costs twice as much per row here (bench/review.py); a
    property test checks that the csv module reads every field back as written.
    """
    if bom:
        out.write("\ufeff")
    out.write(",".join(FIELDS) + "\r\n")
    texts = [FIELDS.index(name) for name in sorted(TEXT_COLUMNS)]
    details, pinned = FIELDS.index("details"), FIELDS.index("pinned")
    field, write = csv_field, out.write
    for values, row in rows:
        cells = list(row.values())  # timeline rows hold FIELDS in order
        for i in texts:
            if type(cells[i]) is str and cells[i].startswith(FORMULA_START):
                cells[i] = "'" + cells[i]  # text a spreadsheet would run as a formula, kept as text
        cells[details] = values[11]  # the stored canonical JSON, as hashed
        cells[pinned] = "true" if cells[pinned] else "false"
        write(",".join([field(cell) for cell in cells]) + "\r\n")


def jsonl_prefix(store: Store, header: Header, out: TextIO) -> None:
    """The header object on the first line."""
    out.write(json.dumps(header.data, ensure_ascii=False, separators=(",", ":")) + "\n")


def jsonl_body(rows: Rows, out: TextIO, display: tzinfo, corrected: dict[str, str]) -> None:
    """One event per line with every field; docs/verify_export.py re-verifies them (docs/evidence.md)."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for _, row in rows:
        out.write(encode(row) + "\n")


def jsonl_suffix(header: Header, out: TextIO) -> None:
    """Nothing after the events: the header line says how many there are."""


def md_prefix(store: Store, header: Header, out: TextIO) -> None:
    """A header table, the metrics and the decision log."""
    from broadcast.metrics import summary_lines

    display = header.display
    out.write(f"# Incident timeline: {md_text(header.data['incident']['title'])}\n\n| | |\n|---|---|\n")
    for label, value in header_rows(header):
        out.write(f"| {label} | {md_text(value)} |\n")
    out.write("\n## Metrics\n\n| Metric | Value |\n|---|---|\n")
    for label, value in summary_lines(header.metrics):
        out.write(f"| {label} | {md_text(value)} |\n")
    out.write("\n" + "\n".join(channel_table(header.metrics)) + "\n")
    out.write("\n## Decision log\n\n")
    made = decisions(store, header.slug)
    for d in made:
        struck = "~~" if d["corrected_at"] else ""
        out.write(f"- {struck}{clock(d['occurred_at'], display)}: {md_text(d['description'])} "
                  f"({md_text(d['actor'])}). Reason: {md_text(d['rationale'] or '-')}{struck}"
                  + (f" (corrected at {clock(d['corrected_at'], display, '%H:%M:%S %Z')})" if d["corrected_at"]
                     else "") + "\n")
    if not made:
        out.write("No decisions were logged.\n")
    out.write("\n## Timeline\n")


def md_body(rows: Rows, out: TextIO, display: tzinfo, corrected: dict[str, str]) -> None:
    """Dated headings, then `HH:MM:SS ZZZ — description (actor, channel)` bullets, in the log's order."""
    from datetime import date

    localise, day = Localiser(display), None
    for _, row in rows:
        today = localise.day(row["occurred_at"])
        if today != day:
            day, moment = today, date.fromisoformat(today)
            out.write(f"\n### {moment.strftime('%A')} {moment.day} {moment.strftime('%B %Y')}\n\n")
        out.write(f"- {markdown_entry(row, localise, corrected)}\n")


def md_suffix(header: Header, out: TextIO) -> None:
    out.write(f"\nChain head {header.data['chain']['head']}. Verify the log with: broadcast review verify "
              f"{header.slug}\n")


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


def corrections(store: Store, slug: str) -> dict[str, str]:
    """event_id of each superseded entry -> when the entry that corrects it happened."""
    return dict(store.conn.execute(
        "SELECT supersedes, MIN(occurred_at) FROM events WHERE incident = ? AND supersedes IS NOT NULL "
        "GROUP BY supersedes", [slug]))


def markdown_entry(row: dict[str, Any], localise: Localiser, corrected: dict[str, str]) -> str:
    """`HH:MM:SS ZZZ — description (actor, channel)`, with the marks a reviewer needs."""
    who = ", ".join(md_text(v) for v in (row["actor"], row["channel"], row["alert"]) if v)
    text = md_text(describe(row))
    if row["type"] == "decision":
        text = f"**Decision:** {text}. Reason: {md_text(row['rationale'] or '-')}"
    if row["event_id"] in corrected:
        text = f"~~{text}~~ (corrected at {localise.time(corrected[row['event_id']])})"
    marks = [f"#{row['seq']}", row["type"]]
    if row["pinned"]:
        marks.append("pinned")
    if row["supersedes"]:
        marks.append(f"corrects {row['supersedes'][:8]}")
    if backfilled(row):
        marks.append(f"backfilled: recorded {localise.clock(row['recorded_at'])}")
    return f"{localise.time(row['occurred_at'])} — {text} ({who}) · {' · '.join(marks)}"


def describe(row: dict[str, Any]) -> str:
    """The entry's description, or for system events logged without one, its type and language."""
    if row["description"]:
        return str(row["description"])
    language = row["details"].get("language")
    return row["type"].replace("_", " ") + (f" ({language})" if language else "")


def backfilled(row: dict[str, Any]) -> bool:
    lag = (parse_instant(row["recorded_at"]) - parse_instant(row["occurred_at"])).total_seconds()
    return lag > BACKFILL_SECONDS


def metrics_text(m: Metrics, display: tzinfo) -> str:
    """The metrics for a terminal: key times, the summary, then a column per channel figure."""
    from broadcast.metrics import duration, percent, summary_lines

    lines = [f"{label + ':':32}{clock(getattr(m, key), display)}" for label, key in (
        ("Declared", "declared_at"), ("First warning", "first_warning_at"), ("All clear", "all_clear_at"),
        ("Closed", "closed_at"))]
    lines += [f"{label + ':':32}{value}" for label, value in summary_lines(m)]
    rows = [("CHANNEL", "SENT", "FAILED", "UNCERTAIN", "SUCCESS", "FIRST", "P50", "P95", "RETRIES")] + [
        (c.channel, str(c.sent), str(c.failed), str(c.uncertain), percent(c.success_rate),
         duration(c.first_delivery_s), _ms(c.latency_p50_ms), _ms(c.latency_p95_ms), str(c.retries))
        for c in m.channels]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    lines += ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(
        zip(row, widths, strict=True))).rstrip() for row in rows] if m.channels else ["No deliveries were logged."]
    return "\n".join(lines)


def channel_table(m: Metrics) -> list[str]:
    """The per-channel metrics as a Markdown table."""
    from broadcast.metrics import duration, percent

    lines = ["| Channel | Sent | Failed | Uncertain | Success | First delivery | p50 | p95 | Retries |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in m.channels:
        lines.append(f"| {md_text(c.channel)} | {c.sent} | {c.failed} | {c.uncertain} | {percent(c.success_rate)} | "
                     f"{duration(c.first_delivery_s)} | {_ms(c.latency_p50_ms)} | {_ms(c.latency_p95_ms)} | "
                     f"{c.retries} |")
    return lines if m.channels else ["No deliveries were logged."]


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"
