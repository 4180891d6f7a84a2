"""Timeline exports (CSV, JSON Lines, Markdown, HTML), each headed by the incident, its metrics and the chain head.

An export reads the log once: the whole chain is checked, and the incident's rows are written (to a spool file
when the header comes first) while the metrics and the digest are gathered; then the header is written and the
spool copied after it. Memory stays flat however long the incident.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from broadcast.review.reading import (
    REACH_COLUMNS,
    SPEED_COLUMNS,
    Header,
    Rows,
    backfilled,
    channel_table,
    clock,
    decisions,
    describe,
    header_rows,
    md_text,
    reach_rows,
    read,
    speed_rows,
)
from broadcast.review.timeline import (
    FIELDS,
    Localiser,
    ReviewError,
    snapshot,
)

if TYPE_CHECKING:
    from broadcast.review.metrics import Metrics
    from broadcast.store import Store

FORMATS = ("csv", "jsonl", "md", "html")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas
TEXT_COLUMNS = frozenset({"actor", "channel", "alert", "template", "provider_ref", "error", "description", "rationale"})
SUFFIXES = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "md": "md", "markdown": "md", "html": "html",
            "htm": "html"}


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
            from broadcast.review.report import html_body, html_prefix, html_suffix

            prefix, body, suffix = html_prefix, html_body, html_suffix
        else:
            prefix, body, suffix = ((jsonl_prefix, jsonl_body, jsonl_suffix) if fmt == "jsonl"
                                    else (md_prefix, md_body, md_suffix))
        corrected = corrections(store, slug)
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
            header = read(store, slug, lambda rows, display: body(rows, spool, display, corrected), **options)
            prefix(store, header, out)
            _copy(spool, out)
            suffix(header, out)
    return header


def _copy(spool: TextIO, out: TextIO) -> None:
    """The spooled rows onto `out`: as bytes when both are UTF-8 files (decoding and encoding again a large
    export's text took longer than the copy: 0.18 s against 0.06 s for 90 MB), else as text."""
    spool.flush()
    target = getattr(out, "buffer", None)
    if target is not None and (getattr(out, "encoding", None) or "").lower().replace("-", "") == "utf8":
        out.flush()
        spool.buffer.seek(0)
        shutil.copyfileobj(spool.buffer, target, 1 << 20)
        target.flush()
    else:
        spool.seek(0)
        shutil.copyfileobj(spool, out, 1 << 16)


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


def write_csv(rows: Rows, out: TextIO, *, bom: bool = False) -> None:
    """RFC 4180: a header row, CRLF line ends, quotes only where needed; UTF-8 (with a BOM for Excel if asked).

    The csv module's writer, with its minimal quoting, fed each row's cells as a list.
    """
    import csv

    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    texts = [FIELDS.index(name) for name in sorted(TEXT_COLUMNS)]
    details, pinned = FIELDS.index("details"), FIELDS.index("pinned")
    writerow, formula = writer.writerow, FORMULA_START
    for values, row in rows:
        cells = list(row.values())  # timeline rows hold FIELDS in order
        for i in texts:
            cell = cells[i]
            if cell.__class__ is str and cell.startswith(formula):
                cells[i] = "'" + cell  # text a spreadsheet would run as a formula, kept as text
        cells[details] = values[11]  # the stored canonical JSON, as hashed
        cells[pinned] = "true" if cells[pinned] else "false"
        writerow(cells)


def jsonl_prefix(store: Store, header: Header, out: TextIO) -> None:
    """The header object on the first line."""
    out.write(json.dumps(header.data, ensure_ascii=False, separators=(",", ":")) + "\n")


BATCH = 256  # lines a write: a write to the spool also resets its UTF-8 decoder, a Python call each time


def jsonl_body(rows: Rows, out: TextIO, display: tzinfo, corrected: dict[str, str]) -> None:
    """One event per line with every field; docs/verify_export.py re-verifies them (docs/evidence.md)."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines: list[str] = []
    for _, row in rows:
        lines.append(encode(row))
        if len(lines) == BATCH:
            out.write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")


def jsonl_suffix(header: Header, out: TextIO) -> None:
    """Nothing after the events: the header line says how many there are."""


def md_prefix(store: Store, header: Header, out: TextIO) -> None:
    """A header table, the metrics and the decision log."""
    from broadcast.review.metrics import summary_lines

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


def columns(head: tuple[str, ...], body: Sequence[tuple[str, ...]], *, left: int = 2) -> list[str]:
    """A table for a terminal: the first `left` columns to the left, figures to the right."""
    rows = [tuple(cell.upper() for cell in head), *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(
        zip(row, widths, strict=True))).rstrip() for row in rows]


def metrics_text(m: Metrics, display: tzinfo) -> str:
    """The metrics for a terminal: key times, the summary, then a column per channel figure."""
    from broadcast.review.metrics import summary_lines

    lines = [f"{label + ':':32}{clock(getattr(m, key), display)}" for label, key in (
        ("Declared", "declared_at"), ("First warning", "first_warning_at"), ("All clear", "all_clear_at"),
        ("Closed", "closed_at"))]
    lines += [f"{label + ':':32}{value}" for label, value in summary_lines(m)]
    lines.append("")
    lines += columns(REACH_COLUMNS, reach_rows(m)) if m.reach else ["No deliveries were logged."]
    if m.channels:
        lines += [""] + columns(SPEED_COLUMNS, speed_rows(m), left=1)
    return "\n".join(lines)


