"""The HTML review report: one self-contained file (inline CSS and SVG, no requests) that prints to PDF."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import TYPE_CHECKING, Any, TextIO

from broadcast.review.reading import backfilled, clock, decisions, describe, header_rows
from broadcast.review.timeline import Localiser, parse_instant

if TYPE_CHECKING:
    from broadcast.review.metrics import Metrics
    from broadcast.review.reading import Header, Rows
    from broadcast.store import Store

MAX_BINS = 48
CSS = """
:root{--ink:#0b0c0c;--muted:#505a5f;--line:#b1b4b6;--sent:#1d70b8;--failed:#d4351c;--bg:#f3f2f1}
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:var(--ink);margin:0 auto;
max-width:78rem;padding:1rem 1.25rem}
.skip{position:absolute;left:-9999px}.skip:focus{left:1rem;top:1rem;background:#fd0;padding:.5rem}
h1{font-size:1.8rem;margin:.2rem 0 .6rem}h2{font-size:1.35rem;margin:1.8rem 0 .6rem;border-top:4px solid var(--ink);
padding-top:.4rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.facts dt{font-weight:700}dl.facts dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.4rem 0 1rem}
th,td{border-bottom:1px solid var(--line);padding:.3rem .45rem;text-align:left;vertical-align:top}
.wide{overflow-x:auto}td.d{overflow-wrap:anywhere;min-width:14rem}
th{background:var(--bg)}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fbe9e6}td.t{white-space:nowrap}
code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem}
.muted{color:var(--muted)}del{color:var(--muted)}
svg{max-width:100%;height:auto;font:12px system-ui,Arial,sans-serif}
.chart{margin:.4rem 0 1rem}
@media print{body{max-width:none;padding:0;font-size:10pt}.skip{display:none}h2{break-after:avoid}
tr,figure,svg{break-inside:avoid}.wide{overflow:visible}thead{display:table-header-group}
tr.bad td{background:none;font-weight:700}
@page{margin:14mm}}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def html_prefix(store: Store, header: Header, out: TextIO) -> None:
    """Facts, metrics, the delivery and latency charts, the decision log, and the timeline's table head."""
    from broadcast.review.metrics import summary_lines

    data, m, display = header.data, header.metrics, header.display
    title = f"Incident review: {data['incident']['title']} ({header.slug})"
    out.write(f'<!doctype html>\n<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
              f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
              f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
              f'<meta name="generator" content="broadcast {e(data["generator"]["version"])}">\n'
              f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
              f'<a class="skip" href="#timeline">Skip to the timeline</a>\n<header><h1>{e(title)}</h1>'
              f'<p class="muted">Times are shown in {e(data["display_timezone"])}; every duration is computed on UTC '
              f"instants.</p></header>\n<main>\n")
    out.write('<section aria-labelledby="facts"><h2 id="facts">The incident</h2><dl class="facts">')
    out.writelines(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in header_rows(header))
    out.write('</dl></section>\n<section aria-labelledby="metrics"><h2 id="metrics">Metrics</h2>'
              '<table><thead><tr><th scope="col">Metric</th><th scope="col">Value</th></tr></thead><tbody>')
    out.writelines(f"<tr><td>{e(label)}</td><td>{e(value)}</td></tr>" for label, value in summary_lines(m))
    out.write("</tbody></table>\n" + channels_html(m) + "</section>\n")
    chart = delivery_bins(store, header)
    out.write('<section aria-labelledby="deliveries"><h2 id="deliveries">Deliveries over time</h2>'
              f'<div class="chart">{delivery_svg(chart, display)}</div></section>\n'
              '<section aria-labelledby="latency"><h2 id="latency">Latency by channel</h2>'
              f'<div class="chart">{latency_svg(m)}</div></section>\n')
    out.write(decisions_html(store, header))
    filtered = " (pinned entries only)" if data["filters"]["pinned_only"] else ""
    out.write(f'<section aria-labelledby="timeline"><h2 id="timeline">Timeline{filtered}</h2>'
              '<div class="wide" role="region" aria-labelledby="timeline" tabindex="0"><table><thead><tr>'
              + "".join(f'<th scope="col"{c}>{n}</th>' for n, c in (
                  ("#", ' class="n"'), ("Time", ""), ("Event", ""), ("Actor", ""), ("Channel", ""),
                  ("Alert", ""), ("Outcome", ""), ("Description", ""), ("Entry hash", "")))
              + "</tr></thead><tbody>\n")


HTML_IN_FULL = 1000  # timeline rows shown in full before routine delivery events are summarised
# What a fan-out logs for every message that goes well: summarised, past HTML_IN_FULL, per minute and channel.
ROUTINE = {"delivery_queued": "queued", "delivery_attempt": "attempts", "retry_scheduled": "retries scheduled",
           "delivery_result": "sent", "fallback_published": "page published", "fallback_verified": "page verified"}


class Summary:
    """A run of routine events in one minute of the log: counted per channel and kind, written as one row."""

    def __init__(self) -> None:
        self.minute: str | None = None
        self.first = self.last = 0
        self.first_at = self.last_at = ""
        self.channels: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.events = self.rows = 0  # over the whole export: summarised events and the rows that stand for them

    def add(self, row: dict[str, Any]) -> None:
        if not self.channels:
            self.minute, self.first, self.first_at = row["occurred_at"][:16], row["seq"], row["occurred_at"]
        self.last, self.last_at = row["seq"], row["occurred_at"]
        self.channels[row["channel"] or "-"] += 1
        self.kinds[ROUTINE[row["type"]]] += 1

    def flush(self, localise: Localiser) -> str:
        """The run so far as one row ('' when it is empty), and a fresh run."""
        if not self.channels:
            return ""
        count = sum(self.channels.values())
        self.events, self.rows = self.events + count, self.rows + 1
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in self.kinds.items())
        channels = ", ".join(f"{channel} {n:,}" for channel, n in sorted(self.channels.items()))
        when = localise.time(self.first_at)
        if self.last_at[:19] != self.first_at[:19]:
            when = f"{when[:8]}–{localise.time(self.last_at)}"
        row = (f'<tr class="sum" data-events="{count}"><td class="n">{self.first}–{self.last}</td>'
               f'<td class="t">{e(when)}</td><td>{count:,} routine events</td><td></td><td>{len(self.channels)} '
               f'channel{"s" if len(self.channels) > 1 else ""}</td><td></td><td></td>'
               f'<td class="d muted">{e(kinds)}. By channel: {e(channels)}</td><td></td></tr>\n')
        self.channels, self.kinds = Counter(), Counter()
        return row


def routine(row: dict[str, Any]) -> bool:
    """A delivery or page event that went as expected, and that no one pinned, corrected or backfilled."""
    kind = row["type"]
    return (kind in ROUTINE and not row["pinned"] and (kind != "delivery_result" or row["outcome"] == "sent")
            and not row["supersedes"])


def html_body(rows: Rows, out: TextIO, display: tzinfo, corrected: dict[str, str]) -> None:
    """The timeline's rows, in the log's order. Past the first HTML_IN_FULL, routine delivery and page events are
    summarised, a row per run of them within a minute; failures, pinned entries and every other event stay in full,
    so a long incident's report stays a few MB (the CSV and JSON Lines exports hold every row)."""
    localise, limit, summary = Localiser(display), HTML_IN_FULL, Summary()
    write, shown = out.write, 0
    for _, row in rows:
        if shown >= limit and routine(row) and not backfilled(row):
            if not summary.events and not summary.channels:
                write(f'<tr class="sum"><td class="muted" colspan="9">After the first {limit:,} entries, routine '
                      "delivery and page events are summarised, a row for each minute of them; failures, pinned "
                      "entries and every other event are shown in full. Every entry, with its hash, is in the CSV "
                      "and JSON Lines exports.</td></tr>\n")
            elif summary.channels and row["occurred_at"][:16] != summary.minute:
                write(summary.flush(localise))
            summary.add(row)
            continue
        write(summary.flush(localise) + timeline_tr(row, localise, corrected))
        shown += 1
    write(summary.flush(localise))
    if summary.events:
        write(f'<tr class="sum"><td class="muted" colspan="9" data-shown="{shown}" data-summarised="{summary.events}">'
              f"{shown:,} entries are shown in full; {summary.events:,} routine delivery and page events after the "
              f"first {limit:,} entries are summarised in {summary.rows:,} rows, counted per minute and channel. "
              "Every entry, with its hash, is in the CSV and JSON Lines exports.</td></tr>\n")


def html_suffix(header: Header, out: TextIO) -> None:
    data = header.data
    out.write('</tbody></table></div></section>\n</main>\n'
              f'<footer><p>Chain head <code>{e(data["chain"]["head"])}</code>; events digest '
              f'<code>{e(data["events_digest"])}</code>. Re-verify with '
              f"<code>broadcast review verify {e(header.slug)}</code> or docs/verify_export.py on the JSON Lines "
              "export.</p></footer>\n</body>\n</html>\n")


def channels_html(m: Metrics) -> str:
    from broadcast.review.reading import REACH_COLUMNS, SPEED_COLUMNS, reach_rows, speed_rows

    if not m.reach:
        return "<p>No deliveries were logged.</p>"

    def table(caption: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], first: int) -> str:
        head = "".join(f'<th scope="col"{"" if i < first else " class=n"}>{e(n)}</th>' for i, n in enumerate(columns))
        body = "".join(
            f'<tr{" class=bad" if len(row) > 5 and row[5] != "0" else ""}><th scope="row">{e(row[0])}</th>'
            + "".join(f'<td{"" if i < first else " class=n"}>{e(cell)}</td>' for i, cell in enumerate(row) if i)
            + "</tr>" for row in rows)
        return f"<table><caption class=muted>{e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}" \
               "</tbody></table>"

    failures = "".join(f"<li>{e(c.channel)}: " + ", ".join(f"{e(k)} ({v})" for k, v in c.failures.items())
                       + "</li>" for c in m.channels if c.failures)
    return (table("What became of the messages, per channel and language: each counted once, by its last result",
                  REACH_COLUMNS, reach_rows(m), 2)
            + table("How fast each channel went", SPEED_COLUMNS, speed_rows(m), 1)
            + (f"<p><strong>What failed</strong></p><ul>{failures}</ul>" if failures else ""))


def decisions_html(store: Store, header: Header) -> str:
    made = decisions(store, header.slug)
    parts = ['<section aria-labelledby="decisions"><h2 id="decisions">Decision log</h2>']
    if not made:
        return parts[0] + "<p>No decisions were logged.</p></section>\n"
    parts.append('<table><thead><tr><th scope="col">When</th><th scope="col">Decision</th><th scope="col">Reason</th>'
                 '<th scope="col">By</th></tr></thead><tbody>')
    for d in made:
        text = f"{e(d['description'])}"
        if d["corrected_at"]:
            text = f"<del>{text}</del> <span class=muted>(corrected at {e(clock(d['corrected_at'], header.display))})"\
                   "</span>"
        parts.append(f"<tr><td>{e(clock(d['occurred_at'], header.display))}</td><td>{text}</td>"
                     f"<td>{e(d['rationale'])}</td><td>{e(d['actor'])}</td></tr>")
    return "".join(parts) + "</tbody></table></section>\n"


def timeline_tr(row: dict[str, Any], localise: Localiser, corrected: dict[str, str]) -> str:
    text = e(describe(row))
    if row["rationale"]:
        text += f" <span class=muted>Reason: {e(row['rationale'])}</span>"
    if row["event_id"] in corrected:
        text = f"<del>{text}</del> <span class=muted>(corrected)</span>"
    if row["supersedes"]:
        text += f" <span class=muted>(corrects {e(row['supersedes'][:8])})</span>"
    if backfilled(row):
        text += f" <span class=muted>(backfilled: recorded {e(localise.clock(row['recorded_at']))})</span>"
    outcome = row["outcome"] or ""
    if row["http_status"]:
        outcome += f" HTTP {row['http_status']}"
    bad = ' class="bad"' if row["outcome"] in ("failed", "uncertain") or row["type"] == "fallback_failed" else ""
    pin = " (pinned)" if row["pinned"] else ""
    return (f'<tr{bad}><td class="n">{row["seq"]}</td><td class="t">{e(localise.clock(row["occurred_at"]))}</td>'
            f'<td>{e(row["type"])}{pin}</td><td>{e(row["actor"])}</td><td>{e(row["channel"])}</td>'
            f'<td class="t">{e(row["alert"])}</td><td>{e(outcome)}</td><td class="d">{text}</td>'
            f'<td class="hash" title="{e(row["hash"])}">{e(row["hash"][:12])}</td></tr>\n')


@dataclass
class Bins:
    """Messages counted per channel, last result (accepted, or refused or cut off) and time interval, by SQLite."""

    start: datetime | None = None
    width: timedelta = timedelta(minutes=1)
    count: int = 0
    sent: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, list[int]] = field(default_factory=dict)


def delivery_bins(store: Store, header: Header) -> Bins:
    slug = header.slug
    first, last = store.conn.execute("SELECT MIN(occurred_at), MAX(occurred_at) FROM events WHERE incident = ? AND "
                                     "type = 'delivery_result'", [slug]).fetchone()
    if first is None:
        return Bins()
    declared = header.metrics.declared_at
    start_text = min(first, declared) if declared else first
    start, end = parse_instant(start_text), parse_instant(last)
    span = max((end - start).total_seconds(), 1.0)
    width = max(60.0, math.ceil(span / MAX_BINS / 60) * 60)  # whole minutes, at most MAX_BINS intervals
    bins = Bins(start, timedelta(seconds=width), int(span // width) + 1)
    # Each message once, at its last result (a post deleted later still counts as accepted), so each row's totals
    # are the figures in the tables above.
    from broadcast.review.tally import delivery_of

    for channel, outcome, index, count in store.conn.execute(
        f"SELECT channel, outcome, {store.sql.whole(store.sql.seconds('occurred_at', '?') + ' / ?')}, COUNT(*) "
        f"FROM (SELECT channel, occurred_at, {store.sql.json('details', 'outcome')} AS outcome, ROW_NUMBER() OVER ("
        f"  PARTITION BY {delivery_of(store)} ORDER BY id DESC) AS n FROM events WHERE incident = ? AND "
        "type = 'delivery_result') AS last WHERE n = 1 GROUP BY 1, 2, 3", [start_text, width, slug]):
        target = bins.sent if outcome == "sent" else bins.failed
        for table in (bins.sent, bins.failed):
            table.setdefault(channel or "-", [0] * bins.count)
        target[channel or "-"][min(max(index, 0), bins.count - 1)] += count
    return bins


LABEL_W, PLOT_W, ROW_H, PAD = 170, 520, 34, 8


def delivery_svg(bins: Bins, display: tzinfo) -> str:
    """Small multiples: a row per channel, a bar per interval; failed results hatched on top of sent ones."""
    if bins.start is None:
        return "<p>No delivery results to chart.</p>"
    channels = sorted(bins.sent)
    peak = max(max(bins.sent[c][i] + bins.failed[c][i] for i in range(bins.count)) for c in channels) or 1
    height = PAD * 2 + ROW_H * len(channels) + 28
    width = LABEL_W + PLOT_W + 120
    bar = PLOT_W / bins.count
    minutes = int(bins.width.total_seconds() // 60)
    end = bins.start + bins.width * bins.count
    summary = "; ".join(f"{c}: {sum(bins.sent[c])} accepted, {sum(bins.failed[c])} refused or cut off"
                        for c in channels)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-labelledby="dchart-t dchart-d">',
        '<title id="dchart-t">Delivery results per channel over time</title>',
        f'<desc id="dchart-d">Each row is a channel; each bar counts delivery results in a {minutes}-minute '
        f"interval from {e(clock(_iso(bins.start), display))} to {e(clock(_iso(end), display))}, each message once, "
        f"by its last result. Solid bars are accepted by the platform, hatched bars refused or cut off. "
        f"{e(summary)}.</desc>",
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        '<rect width="3" height="6" fill="#d4351c"/></pattern></defs>',
    ]
    for row, channel in enumerate(channels):
        top = PAD + row * ROW_H
        base = top + ROW_H - 6
        parts.append(f'<text x="{LABEL_W - 8}" y="{base - 8}" text-anchor="end">{e(channel)}</text>'
                     f'<line x1="{LABEL_W}" y1="{base}" x2="{LABEL_W + PLOT_W}" y2="{base}" stroke="#b1b4b6"/>')
        for i in range(bins.count):
            sent, failed = bins.sent[channel][i], bins.failed[channel][i]
            x = LABEL_W + i * bar
            h_sent, h_failed = (ROW_H - 10) * sent / peak, (ROW_H - 10) * failed / peak
            if sent:
                parts.append(f'<rect x="{x:.1f}" y="{base - h_sent:.1f}" width="{max(bar - 1, 1):.1f}" '
                             f'height="{h_sent:.1f}" fill="#1d70b8"/>')
            if failed:
                parts.append(f'<rect x="{x:.1f}" y="{base - h_sent - h_failed:.1f}" width="{max(bar - 1, 1):.1f}" '
                             f'height="{h_failed:.1f}" fill="url(#hatch)" stroke="#d4351c"/>')
        parts.append(f'<text x="{LABEL_W + PLOT_W + 8}" y="{base - 8}">{sum(bins.sent[channel])} sent'
                     + (f", {sum(bins.failed[channel])} failed" if sum(bins.failed[channel]) else "") + "</text>")
    axis = PAD + ROW_H * len(channels) + 18
    parts.append(f'<text x="{LABEL_W}" y="{axis}">{e(clock(_iso(bins.start), display, "%H:%M %Z"))}</text>'
                 f'<text x="{LABEL_W + PLOT_W}" y="{axis}" text-anchor="end">'
                 f'{e(clock(_iso(end), display, "%H:%M %Z"))}</text></svg>')
    return "".join(parts)


def latency_svg(m: Metrics) -> str:
    """Per channel: a bar to the median latency and a whisker to the 95th percentile."""
    rows = [c for c in m.channels if c.latency_p50_ms is not None]
    if not rows:
        return "<p>No latencies were logged.</p>"
    top = max(c.latency_p95_ms or 0 for c in rows) or 1
    height = PAD * 2 + ROW_H * len(rows) + 24
    width = LABEL_W + PLOT_W + 170
    summary = "; ".join(f"{c.channel}: median {c.latency_p50_ms} ms, 95th percentile {c.latency_p95_ms} ms"
                        for c in rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-labelledby="lchart-t lchart-d">',
             '<title id="lchart-t">Delivery latency by channel</title>',
             f'<desc id="lchart-d">Bars show the median (p50) latency from request to the platform\'s answer, '
             f"whiskers the 95th percentile (p95). {e(summary)}.</desc>"]
    for row, c in enumerate(rows):
        y = PAD + row * ROW_H
        p50 = PLOT_W * (c.latency_p50_ms or 0) / top
        p95 = PLOT_W * (c.latency_p95_ms or 0) / top
        mid = y + ROW_H / 2
        parts.append(f'<text x="{LABEL_W - 8}" y="{mid + 4:.1f}" text-anchor="end">{e(c.channel)}</text>'
                     f'<rect x="{LABEL_W}" y="{y + 6}" width="{max(p50, 1):.1f}" height="{ROW_H - 12}" '
                     'fill="#1d70b8"/>'
                     f'<line x1="{LABEL_W + p50:.1f}" y1="{mid:.1f}" x2="{LABEL_W + p95:.1f}" y2="{mid:.1f}" '
                     'stroke="#0b0c0c" stroke-width="2"/>'
                     f'<line x1="{LABEL_W + p95:.1f}" y1="{y + 8}" x2="{LABEL_W + p95:.1f}" y2="{y + ROW_H - 8}" '
                     'stroke="#0b0c0c" stroke-width="2"/>'
                     f'<text x="{LABEL_W + p95 + 8:.1f}" y="{mid + 4:.1f}">p50 {c.latency_p50_ms} ms, '
                     f"p95 {c.latency_p95_ms} ms</text>")
    axis = PAD + ROW_H * len(rows) + 16
    parts.append(f'<text x="{LABEL_W}" y="{axis}">0 ms</text><text x="{LABEL_W + PLOT_W}" y="{axis}" '
                 f'text-anchor="end">{top} ms</text></svg>')
    return "".join(parts)


def _iso(moment: datetime) -> str:
    from broadcast.store import isoformat

    return isoformat(moment)
