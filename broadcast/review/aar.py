"""The after-action report skeleton: the facts from the log, and headed sections for the reviewer to complete."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, TextIO

from broadcast.review.reading import channel_table, clock, describe, header_rows, md_text, read
from broadcast.review.timeline import snapshot

if TYPE_CHECKING:
    from broadcast.review.reading import Header, Rows
    from broadcast.store import Store

# The entries a timeline summary keeps; pinned entries are kept too.
KEY_TYPES = ("incident_declared", "alert_issued", "decision", "incident_closed", "status_changed", "policy_override",
             "draft_approved", "draft_rejected", "channel_disabled", "channel_enabled", "fallback_failed",
             "retraction_failed")
CORRECTIVE_ROWS = 3


def write_aar(store: Store, slug: str, out: TextIO, *, display_zone: str, now: datetime | None = None) -> Header:
    """Write the after-action report skeleton for one incident as Markdown; return the export header."""
    key: list[dict[str, Any]] = []

    def keep(rows: Rows, display: tzinfo) -> None:
        key.extend(row for _, row in rows if row["type"] in KEY_TYPES or row["pinned"])

    with snapshot(store):
        header = read(store, slug, keep, display_zone=display_zone, now=now)
        delivered = _per_alert(store, slug)
    _write(header, key, delivered, out)
    return header


def _per_alert(store: Store, slug: str) -> dict[str, Counter[str]]:
    """alert -> Counter of its deliveries' final outcomes (a delivery's last result)."""
    out: dict[str, Counter[str]] = {}
    for alert, outcome, count in store.conn.execute(
        "SELECT alert, outcome, COUNT(*) FROM (SELECT alert, json_extract(details, '$.outcome') AS outcome, "
        "ROW_NUMBER() OVER (PARTITION BY alert, channel, json_extract(details, '$.language'), "
        "json_extract(details, '$.recipient') ORDER BY id DESC) AS n FROM events "
        "WHERE incident = ? AND type = 'delivery_result') WHERE n = 1 GROUP BY 1, 2", [slug]):
        out.setdefault(alert, Counter())[outcome or "unknown"] += count
    return out


def _write(header: Header, key: list[dict[str, Any]], delivered: dict[str, Counter[str]], out: TextIO) -> None:
    from broadcast.review.metrics import summary_lines

    data, m, display = header.data, header.metrics, header.display
    incident = data["incident"]
    w = out.write
    w(f"# After-action report: {md_text(incident['title'])}\n\n")
    w(f"> Draft generated from the log by broadcast {data['generator']['version']} at {data['generated_at']}. "
      "The facts below come from the log; complete the sections marked *Reviewer*. To correct a fact, correct "
      "the log (`broadcast review note ... --corrects EVENT_ID`) and generate this draft again.\n\n")
    w("## The incident\n\n| | |\n|---|---|\n")
    for label, value in header_rows(header):
        w(f"| {label} | {md_text(value)} |\n")
    w("\n## Timeline summary\n\n")
    for row in key:
        w(f"- {clock(row['occurred_at'], display)}: {_summary(row, delivered)}\n")
    if not key:
        w("No key events were logged.\n")
    w("\n## Metrics\n\n| Metric | Value |\n|---|---|\n")
    for label, value in summary_lines(m):
        w(f"| {label} | {md_text(value)} |\n")
    w("\n" + "\n".join(channel_table(m)) + "\n\n## What failed\n\n")
    failed = list(_failures(header, key))
    w("".join(f"- {line}\n" for line in failed) or "Nothing failed in the log.\n")
    for title, prompt in (
        ("Strengths", "what worked and should be kept, with the evidence (an entry number, a metric)"),
        ("Areas for improvement", "what did not work or was slow, the effect on the public, and the root cause"),
    ):
        w(f"\n## {title}\n\n*Reviewer: {prompt}.*\n\n- \n")
    w("\n## Corrective actions\n\n*Reviewer: one row per action, each with an owner and a due date.*\n\n"
      "| # | Issue | Action | Owner | Due date | Status |\n|---|---|---|---|---|---|\n")
    w("".join(f"| {n} |  |  |  |  | open |\n" for n in range(1, CORRECTIVE_ROWS + 1)))
    w(f"\n## Evidence\n\nThis report covers {data['event_count']} events (digest `{data['events_digest']}`); the "
      f"log's chain head was `{data['chain']['head']}` "
      f"({'verified' if data['chain']['verified'] else 'NOT verified'}). Check it with "
      f"`broadcast review verify {header.slug}`, or export the timeline as JSON Lines and run "
      "`docs/verify_export.py` on it (docs/evidence.md).\n")


def _summary(row: dict[str, Any], delivered: dict[str, Counter[str]]) -> str:
    text = md_text(describe(row))
    if row["type"] == "alert_issued":
        details = row["details"]
        counts = delivered.get(row["alert"], Counter())
        total = sum(counts.values())
        outcome = (f"{counts['sent']} of {total} deliveries sent" + "".join(
            f", {n} {state}" for state, n in sorted(counts.items()) if state != "sent")) if total else "no deliveries"
        return (f"**{md_text(row['alert'])}** {md_text(details.get('msg_type') or '')} "
                f"({md_text(details.get('status') or '')}): {text}. {outcome}.")
    if row["type"] == "decision":
        return f"**Decision** ({md_text(row['actor'])}): {text}. Reason: {md_text(row['rationale'] or '-')}"
    return f"{text} ({md_text(row['actor'])})"


def _failures(header: Header, key: list[dict[str, Any]]) -> Any:
    m = header.metrics
    for c in m.channels:
        if c.failed or c.uncertain:
            classes = ", ".join(f"{k} x{v}" for k, v in c.failures.items())
            yield (f"{md_text(c.channel)}: {c.failed} failed, {c.uncertain} uncertain of {c.deliveries} "
                   f"({md_text(classes)})")
    for row in key:
        if row["type"] == "fallback_failed":
            yield f"Fallback page: {md_text(row['description'])} at {clock(row['occurred_at'], header.display)}"
        if row["type"] == "channel_disabled":
            yield (f"{md_text(row['channel'])} switched off at {clock(row['occurred_at'], header.display)}: "
                   f"{md_text(row['description'])}")
    if m.overrides:
        yield (f"{m.overrides} message(s) went out without a second approver (--override): check each reason in the "
               "timeline summary")
    if m.retries:
        yield f"{m.retries} retries were needed ({m.needed_retry} deliveries needed at least one)"
    if not header.data["chain"]["verified"]:
        yield f"The log does not verify: {md_text(header.data['chain']['reason'])}"
