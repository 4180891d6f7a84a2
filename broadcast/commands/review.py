"""Review: timelines and their exports, metrics, the decision log, the after-action report and the evidence."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from broadcast.commands import JSON_HELP, counted, emit, open_workspace, phase, to_path

if TYPE_CHECKING:
    from pathlib import Path

    from broadcast.store import Store
    from broadcast.workspace import Workspace

FORMATS = ("csv", "jsonl", "md", "html")
TZ_HELP = "Show local times in this zone (default: the workspace's timezone)."
# 2: messages counted in one vocabulary (attempted, accepted, delivered, failed, unknown) instead of sent/deliveries
METRICS_VERSION = 2


class ReviewGroup(click.Group):
    """`broadcast review INCIDENT ...` exports a timeline; `broadcast review COMMAND ...` runs a command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["export", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "INCIDENT [--format csv|jsonl|md|html] [-o FILE] [OPTIONS]")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")


@phase("review")
@click.group(cls=ReviewGroup)
def review() -> None:
    """Export an incident's timeline, and check, measure and annotate the log.

    \b
    Examples:
      broadcast review list
      broadcast review snow-2026-11-23 --format html -o review.html
      broadcast review metrics snow-2026-11-23
      broadcast review verify snow-2026-11-23
    """


@contextlib.contextmanager
def opened(ctx: click.Context, *, readonly: bool = False) -> Iterator[tuple[Workspace, Store]]:
    """The workspace and its log; `readonly` for the commands that only read it (an evidence copy can be read-only,
    and --database names one)."""
    from broadcast.store import Store, open_store

    workspace = open_workspace(ctx)
    database = ctx.find_root().obj.get("database") if ctx.find_root().obj else None
    if database:
        store = Store.open_readonly(database, copy=True)
    else:
        store = open_store(workspace, create=False, readonly=readonly)
    try:
        yield workspace, store
    finally:
        store.close()


@review.command("export")
@click.argument("incident")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="csv, jsonl, md or html (default: from -o, else md).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=to_path, help="Write to FILE, not stdout.")
@click.option("--pinned", is_flag=True, help="Only the pinned entries (the narrative); metrics still cover all.")
@click.option("--tz", metavar="ZONE", help=TZ_HELP)
@click.option("--bom", is_flag=True, help="Start a CSV with a byte-order mark, for Excel.")
@click.pass_context
def review_export(ctx: click.Context, incident: str, fmt: str | None, output: Path | None, pinned: bool,
                  tz: str | None, bom: bool) -> None:
    """Export an incident's timeline with its metrics and the chain head (also: broadcast review INCIDENT).

    Example: broadcast review snow-2026-11-23 --format csv -o snow.csv --tz Europe/London
    """
    from broadcast.review.exports import export_file, format_for, write_export

    fmt = format_for(output, fmt)
    with opened(ctx) as (workspace, store):
        options: dict[str, Any] = {"display_zone": tz or workspace.timezone, "pinned_only": pinned, "bom": bom}
        if output is None:
            header = write_export(store, incident, fmt, sys.stdout, **options)
            written: list[Path] = []
        else:
            header, written = export_file(store, incident, fmt, output, **options)
    data = header.data
    chain = data["chain"]
    for path in written:
        click.echo(f"Wrote {path}", err=True)
    click.echo(f"{data['event_count']} events; chain head {chain['head']} "
               f"({'verified' if chain['verified'] else 'DOES NOT VERIFY'}).", err=True)
    if not chain["verified"]:
        click.secho(f"Warning: the log does not verify at event {chain['broken_at']}: {chain['reason']}. "
                    "The export says so in its header; run: broadcast review verify", err=True, fg="red")


@review.command("verify")
@click.argument("incident", required=False)
@click.option("--database", type=click.Path(dir_okay=False), callback=to_path,
              help="Verify this copy of the log (opened read-only) instead of the workspace's.")
@click.option("--head", "published", metavar="COUNT:HASH",
              help="A chain head published earlier (status.json's log, the page's footer, an export): the log must "
              "still pass through it.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def review_verify(ctx: click.Context, incident: str | None, database: Path | None, published: str | None,
                  as_json: bool) -> None:
    """Walk the log's hash chain and report the first row that was changed; with INCIDENT, its events too.

    It opens the log read-only, so an evidence copy on a read-only disk can be checked.

    Example: broadcast review verify snow-2026-11-23
    """
    from broadcast.errors import StoreError
    from broadcast.review.evidence import verify_incident

    ctx.find_root().obj["database"] = database
    head = parse_head(published) if published else None
    with opened(ctx, readonly=True) as (_, store):
        if incident:
            check = verify_incident(store, incident)
            result = check.chain if not check.chain.ok else store.verify(head)
        else:
            check, result = None, store.verify(head)
    if as_json:
        emit("verify", {"ok": result.ok, "events": result.count, "head": result.head, "broken_at": result.broken_at,
                        "reason": result.reason, "published_head": list(head) if head else None,
                        "incident": {"slug": incident, "events": check.digest.count, "digest": check.digest.sha256}
                        if check is not None else None})
        ctx.exit(0 if result.ok else 1)
    if not result.ok:
        raise StoreError(
            f"the log does not verify at event {result.broken_at}: {result.reason}. "
            f"The {counted(result.count, 'event')} before it {'verifies' if result.count == 1 else 'verify'} "
            f"(head {result.head}).",
            hint="the log was changed outside broadcast; keep this file as evidence and compare it with your last "
            "exported head hash",
            exit_code=1,
        )
    click.echo(f"OK  {counted(result.count, 'event')}, head {result.head}" + (
        f"; it passes through the published head (event {head[0]})" if head else "")
        + "; the stored alerts and deliveries match it")
    if check is not None:
        d = check.digest
        click.echo(f"OK  {incident}: {counted(d.count, 'event')} (chain ids {d.first_chain_id}..{d.last_chain_id}), "
                   f"digest {d.sha256}")
        click.echo("    Compare the digest with an export's events_digest, or anchor it: email it to the review owner.")


def parse_head(text: str) -> tuple[int, str]:
    """'1234:3f2a...' (as status.json's log.verify gives it) into (1234, '3f2a...')."""
    from broadcast.errors import PolicyError

    count, _, digest = text.replace(",", "").partition(":")
    if not count.strip().isdigit() or len(digest.strip()) != 64:
        raise PolicyError(f"--head {text!r} is not COUNT:HASH", hint="copy it from status.json (log.verify), e.g. "
                          "--head 1234:3f2a... (the whole 64-character hash)")
    return int(count), digest.strip().lower()


@review.command("metrics")
@click.argument("incident")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--tz", metavar="ZONE", help=TZ_HELP)
@click.pass_context
def review_metrics(ctx: click.Context, incident: str, as_json: bool, tz: str | None) -> None:
    """Time to first warning, success rates, latency, page lag, cadence and more, from the log.

    Example: broadcast review metrics snow-2026-11-23
    """
    from broadcast.review.exports import metrics_text
    from broadcast.review.metrics import measure, to_json
    from broadcast.review.timeline import zone

    with opened(ctx) as (workspace, store):
        display = zone(tz or workspace.timezone)
        m = measure(store, incident)
    if as_json:
        import json

        emit("metrics", json.loads(to_json(m)), version=METRICS_VERSION)
        return
    click.echo(metrics_text(m, display))
    for row in m.receipts:  # what the platforms said became of the texts and emails (broadcast review collect)
        click.echo(receipt_line(row))


@review.command("collect")
@click.argument("incident", required=False)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--watch", "every", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="Collect again every MINUTES (fractions allowed) until the incident is closed, each snapshot "
              "printed with its time; pings nobody (for that: broadcast watch).")
@click.pass_context
def review_collect(ctx: click.Context, incident: str | None, as_json: bool, every: float | None) -> None:
    """Ask the SMS and email platforms what became of each message (delivered, failed and why, on its way).

    Each answer is kept in the log as a snapshot, so the review shows how delivery grew. Without INCIDENT: every
    open incident.

    \b
    Examples:
      broadcast review collect snow-2026-11-23
      broadcast review collect snow-2026-11-23 --watch 10
    """
    from broadcast.prepare.approvals import operator
    from broadcast.review.receipts import collect, collect_reach

    if every is not None:
        if as_json:
            from broadcast.errors import PolicyError

            raise PolicyError("--watch prints a snapshot at a time: it cannot be combined with --json",
                              hint="for JSON, run broadcast review collect INCIDENT --json when you need it")
        _collect_watching(ctx, incident, every)
        return
    with opened(ctx) as (workspace, store):
        slugs = [incident] if incident else [row["slug"] for row in store.incidents() if row["status"] != "closed"]
        found = [r for slug in slugs for r in collect(workspace, store, slug, actor=operator())]
        reach = [r for slug in slugs for r in collect_reach(workspace, store, slug, actor=operator())]
    if as_json:
        emit("receipts", {"incidents": slugs, "receipts": [r.to_dict() for r in found],
                          "engagement": [r.to_dict() for r in reach]})
        return
    if not found and not reach:
        click.echo("Nothing to ask about" + (f" in {incident}." if incident else " in the open incidents."))
    for line in collected_lines(found, reach):
        click.echo(line)


def _collect_watching(ctx: click.Context, incident: str | None, every: float) -> None:
    from broadcast.alert import shown_time
    from broadcast.errors import INTERRUPTED
    from broadcast.prepare.approvals import operator
    from broadcast.review.watch import follow

    with opened(ctx) as (workspace, store):
        def show(at: Any, found: list[Any], reach: list[Any]) -> None:
            stamp = shown_time(at, workspace.timezone)
            for line in collected_lines(found, reach) or ["nothing to ask about yet"]:
                click.echo(f"{stamp}  {line}")

        try:
            follow(workspace, store, [incident] if incident else [], actor=operator(), every=every, show=show,
                   say=click.echo)
        except KeyboardInterrupt:
            click.echo("\nStopped (Ctrl-C). Every snapshot taken is in the log.", err=True)
            ctx.exit(INTERRUPTED)


def collected_lines(found: list[Any], reach: list[Any]) -> list[str]:
    """One line per list channel's receipts and per post's counts, with up to five replies under each post."""
    lines = [receipt_line({**r.to_dict(), "channel": f"{r.alert} {r.channel}"}) for r in found]
    for p in reach:
        lines.append(f"{p.alert} {p.channel} ({p.language})  {p.summary()}")
        lines.extend(f"    reply {reply['at'][:16].replace('T', ' ')}: {reply['text'][:100]}  {reply['link']}"
                     for reply in p.said[:5])
    return lines


def receipt_line(row: dict[str, Any]) -> str:
    """'sms-residents (en-GB)  1,204 delivered, 3 failed (permanent-failure 2, ...), 10 on their way'."""
    parts = [f"{row['delivered']:,} delivered"]
    if row["failed"]:
        why = ", ".join(f"{reason} {count:,}" for reason, count in row["reasons"].items())
        parts.append(f"{row['failed']:,} failed ({why})")
    if row["pending"]:
        parts.append(f"{row['pending']:,} on their way")
    if row["unknown"]:
        parts.append(f"{row['unknown']:,} unknown")
    note = f"; {row['note']}" if row.get("note") else ""
    return f"{row['channel']} ({row['language']})  {', '.join(parts)}{note}"


def _entry_options(command: Any) -> Any:
    for option in reversed((
        click.option("--at", metavar="TIME", help="When it happened, if not now: 06:10, '2026-11-23 06:10' (local) "
                     "or 2026-11-23T06:10Z. The record keeps both times."),
        click.option("--pin", is_flag=True, help="Include it in the narrative (--pinned exports)."),
        click.option("--corrects", metavar="EVENT_ID", help="This entry corrects an earlier note or decision."),
        click.option("--by", metavar="NAME", help="Who (default: $BROADCAST_OPERATOR or your user name)."),
        click.option("--tz", metavar="ZONE", help="Read a local --at in this zone (default: the workspace's)."),
    )):
        command = option(command)
    return command


@review.command("note")
@click.argument("incident")
@click.argument("text")
@_entry_options
@click.pass_context
def review_note(ctx: click.Context, incident: str, text: str, at: str | None, pin: bool, corrects: str | None,
                by: str | None, tz: str | None) -> None:
    """Add a note to an incident's log; nothing is ever edited, a correction is a new entry.

    Example: broadcast review note snow-2026-11-23 "School transport cancelled by the operator" --at 06:40
    """
    from broadcast.review.timeline import add_note

    with opened(ctx) as (workspace, store):
        when = _when(at, tz or workspace.timezone)
        row = add_note(store, incident, text, actor=_actor(by), at=when, pinned=pin, corrects=corrects)
        _logged("note", row, tz or workspace.timezone)


@review.command("decision")
@click.argument("incident")
@click.argument("text")
@click.option("--reason", help="Why it was decided, on what information (required).")
@_entry_options
@click.pass_context
def review_decision(ctx: click.Context, incident: str, text: str, reason: str | None, at: str | None, pin: bool,
                    corrects: str | None, by: str | None, tz: str | None) -> None:
    """Log a decision with its reasons in the incident's decision log.

    Example: broadcast review decision snow-2026-11-23 "Close all northern schools" --reason "Met Office amber"
    """
    from broadcast.review.timeline import add_decision

    with opened(ctx) as (workspace, store):
        when = _when(at, tz or workspace.timezone)
        row = add_decision(store, incident, text, reason=reason, actor=_actor(by), at=when, pinned=pin,
                           corrects=corrects)
        _logged("decision", row, tz or workspace.timezone)


def _when(at: str | None, zone_name: str) -> Any:
    from broadcast.review.timeline import parse_when, zone

    return parse_when(at, zone(zone_name)) if at else None


def _actor(by: str | None) -> str:
    from broadcast.prepare.approvals import operator

    return (by or "").strip() or operator()


def _logged(kind: str, row: dict[str, Any], zone_name: str) -> None:
    from broadcast.review.reading import clock
    from broadcast.review.timeline import zone

    display = zone(zone_name)
    click.echo(f"Logged {kind} {row['event_id']} on {row['incident']} at {clock(row['occurred_at'], display)}"
               + (f" (recorded {clock(row['recorded_at'], display)})" if row["occurred_at"] != row["recorded_at"]
                  else ""))
    if row["supersedes"]:
        click.echo(f"It corrects {row['supersedes']}, which stays in the log, struck through in exports.")


@review.command("aar")
@click.argument("incident")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=to_path, help="Write to FILE.md.")
@click.option("--force", is_flag=True, help="Overwrite FILE (a reviewer's edits in it are lost).")
@click.option("--tz", metavar="ZONE", help=TZ_HELP)
@click.pass_context
def review_aar(ctx: click.Context, incident: str, output: Path | None, force: bool, tz: str | None) -> None:
    """Draft the after-action report: facts from the log, sections and an action table to complete.

    Example: broadcast review aar snow-2026-11-23 -o aar-snow.md
    """
    from broadcast.errors import PolicyError
    from broadcast.review.aar import write_aar

    # os.path, not Path.exists: a name too long for the file system is "not there", and open says why below.
    if output is not None and os.path.exists(output) and not force:
        raise PolicyError(f"{output} exists and may hold a reviewer's work: it was not overwritten",
                          hint="choose another file with -o, or add --force to replace it")
    with opened(ctx) as (workspace, store):
        display_zone = tz or workspace.timezone
        if output is None:
            write_aar(store, incident, sys.stdout, display_zone=display_zone)
            return
        from broadcast.review.exports import open_output

        with open_output(output) as out:
            write_aar(store, incident, out, display_zone=display_zone)
    click.echo(f"Wrote {output}: complete the Strengths, Areas for improvement and Corrective actions sections.")


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def review_list(ctx: click.Context, as_json: bool) -> None:
    """List every incident in the log, newest first, with its alert and event counts.

    Example: broadcast review list
    """

    from broadcast.review.timeline import incidents_table

    with opened(ctx) as (_, store):
        rows = list(incidents_table(store))
    if as_json:
        emit("incidents", {"incidents": rows})
        return
    if not rows:
        click.echo("No incidents in the log.")
        return
    width = max(len(r["slug"]) for r in rows)
    click.echo(f"{'INCIDENT':{width}}  {'STATUS':10}  {'OPENED (UTC)':16}  ALERTS  EVENTS  TITLE")
    for r in rows:
        title = r["title"] + (" [exercise]" if r["exercise"] else "")
        click.echo(f"{r['slug']:{width}}  {r['status']:10}  {r['opened_at'][:16].replace('T', ' '):16}  "
                   f"{r['alerts']:6}  {r['events']:6}  {title}")


@review.command("summary")
@click.option("--since", required=True, metavar="DATE", help="First day, as 2026-04-01 (local).")
@click.option("--until", metavar="DATE", help="Day after the last, as 2027-04-01 (local; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--tz", metavar="ZONE", help="Read the dates in this zone (default: the workspace's).")
@click.pass_context
def review_summary(ctx: click.Context, since: str, until: str | None, as_json: bool, tz: str | None) -> None:
    """Incidents, alerts and channels' success rates over a period, for the annual report.

    Example: broadcast review summary --since 2026-04-01 --until 2027-04-01
    """

    from broadcast.review.metrics import duration, summarise

    with opened(ctx) as (workspace, store):
        zone_name = tz or workspace.timezone
        result = summarise(store, _day(since, zone_name, "--since"), _day(until, zone_name, "--until")
                           if until else None)
    if as_json:
        emit("summary", result.to_dict(), version=METRICS_VERSION)
        return
    exercises = sum(i["exercise"] for i in result.incidents)
    click.echo(f"{counted(len(result.incidents), 'incident')} from {since}" + (f" to {until}" if until else "")
               + f" ({counted(exercises, 'exercise')})")
    for i in result.incidents:
        click.echo(f"  {i['opened_at'][:10]}  {i['slug']}  {i['alerts']} alerts, first warning after "
                   f"{duration(i['time_to_first_warning_s'])}" + ("  [exercise]" if i["exercise"] else ""))
    click.echo("Alerts: " + (", ".join(f"{n} {kind}" for kind, n in sorted(result.alerts.items())) or "none"))
    from broadcast.review.exports import columns

    rows = [(c.channel, f"{c.attempted:,}", f"{c.accepted:,}", "-" if c.delivered is None else f"{c.delivered:,}",
             f"{c.failed:,}", f"{c.unknown:,}") for c in result.channels]
    head = ("Channel", "Attempted", "Accepted", "Delivered", "Failed", "Unknown")
    click.echo("\n".join("  " + line for line in columns(head, rows, left=1)) if rows else "  No messages.")


def _day(text: str, zone_name: str, option: str) -> Any:
    from datetime import date, datetime

    from broadcast.errors import PolicyError
    from broadcast.review.timeline import zone

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"{option} {text!r} is not a date", hint=f"e.g. {option} 2026-04-01") from None
    return datetime.combine(day, datetime.min.time(), zone(zone_name))


COMMANDS = [review]
