"""The after-action report skeleton: the facts from the log, and headed sections for the reviewer to complete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, TextIO

from broadcast.review.reading import channel_table, clock, describe, header_rows, md_text, read
from broadcast.review.tally import by_alert
from broadcast.review.timeline import snapshot

if TYPE_CHECKING:
    from broadcast.review.metrics import Metrics
    from broadcast.review.reading import Header, Rows
    from broadcast.review.tally import Tally
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
        delivered = by_alert(store, slug)
    _write(header, key, delivered, out)
    return header


def _write(header: Header, key: list[dict[str, Any]], delivered: dict[str, Tally], out: TextIO) -> None:
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
    w("\n## What reached people\n\n" + "".join(f"{line}\n" for line in _reached(m)))
    w("\n" + "\n".join(channel_table(m)) + "\n\n## What people asked\n\n")
    w("".join(f"{line}\n" for line in _asked(m)))
    w("\n## What failed\n\n")
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


def _reached(m: Metrics) -> Iterator[str]:
    """The incident's figures in the shared words, what each word means, and what the receipts said."""
    from broadcast.review.metrics import messages_line
    from broadcast.review.tally import WORDS

    if not m.attempted:
        yield "Nothing was sent."
        return
    yield f"{messages_line(m)}.\n"
    yield from (f"- *{word}*: {meaning}" for word, meaning in WORDS.items())
    yield ""
    for row in m.receipts:
        reasons = ", ".join(f"{k} {v:,}" for k, v in row["reasons"].items())
        yield (f"- {md_text(row['channel'])} ({row['language']}): {row['delivered']:,} of {row['accepted']:,} "
               f"delivered per receipt, {row['failed']:,} not delivered" + (f" ({md_text(reasons)})" if reasons else "")
               + (f", {row['pending']:,} still on their way" if row["pending"] else ""))
    if not m.receipts:
        yield "- No receipts were collected (`broadcast review collect INCIDENT` asks Notify and Twilio)."
    for post in m.engagement:
        counts = ", ".join(f"{post[k]:,} {k}" for k in ("replies", "reposts", "likes", "views")
                           if post.get(k) is not None)
        yield (f"- {md_text(post['channel'])} ({post['language']}), {post['alert']}: "
               f"{md_text(post.get('note') or counts)}")


def _asked(m: Metrics) -> Iterator[str]:
    """The public's replies to the posts, as collected: text, time and link, never who."""
    said = [(reply.get("at") or "", post["channel"], reply)
            for post in m.engagement for reply in post.get("said") or []]
    if not said:
        yield ("No replies were collected (`broadcast review collect INCIDENT` asks Mastodon, Bluesky, X and "
               "Facebook; the other platforms report none)." if not m.engagement else "No replies to the posts.")
        return
    for at, channel, reply in sorted(said, key=lambda item: item[0]):
        yield f"- {md_text(at)} on {md_text(channel)}: \"{md_text(reply.get('text') or '')}\" <{reply.get('link')}>"
    yield "\n*Reviewer: group the questions by theme and note which ones the next message should have answered.*"


def _summary(row: dict[str, Any], delivered: dict[str, Tally]) -> str:
    from broadcast.review.tally import brief

    text = md_text(describe(row))
    if row["type"] == "alert_issued":
        details = row["details"]
        counts = delivered.get(row["alert"])
        outcome = brief(counts) if counts and counts.attempted else "nothing sent"
        return (f"**{md_text(row['alert'])}** {md_text(details.get('msg_type') or '')} "
                f"({md_text(details.get('status') or '')}): {text}. {outcome}.")
    if row["type"] == "decision":
        return f"**Decision** ({md_text(row['actor'])}): {text}. Reason: {md_text(row['rationale'] or '-')}"
    return f"{text} ({md_text(row['actor'])})"


def _failures(header: Header, key: list[dict[str, Any]]) -> Any:
    m = header.metrics
    for c in m.channels:
        if c.failed or c.unknown:
            classes = ", ".join(f"{k} x{v}" for k, v in c.failures.items())
            yield (f"{md_text(c.channel)}: {c.failed:,} failed, {c.unknown:,} unknown of {c.attempted:,} attempted"
                   + (f" ({md_text(classes)})" if classes else ""))
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
