"""Inform: updates to an incident, and the second person's approval of drafts."""

from __future__ import annotations

import click

from broadcast.commands import JSON_HELP, SET_HELP, collect_sets, counted, emit, open_workspace, phase


@phase("warn")
@click.command()
@click.argument("incident")
@click.argument("template")
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--only", multiple=True, metavar="CHANNEL", help="Send to this channel only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show exactly what would go where; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def update(ctx: click.Context, incident: str, template: str, pairs: tuple[str, ...], only: tuple[str, ...],
           dry_run: bool, yes: bool, as_json: bool) -> None:
    """Send an update to an incident (a CAP Update).

    It supersedes the incident's live alerts.

    Example: broadcast update snow-2026-11-23 school-closures --set "schools=Ysgol Bro Lliw; Hillside" ...
    """
    from broadcast.commands.warn import send_planned, show_plan
    from broadcast.prepare.templates import find_template
    from broadcast.send.lifecycle import plan_update, public_now
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    values = collect_sets(find_template(workspace, template), pairs)
    store = open_store(workspace)
    try:
        plan = plan_update(workspace, store, incident, template, values, only=only)
        before = public_now(store, plan)
        if dry_run:
            show_plan(plan, dry_run=True, before=before)
            return
        send_planned(ctx, workspace, store, plan, yes=yes, as_json=as_json, values=values, only=only,
                     before=before)
    finally:
        store.close()


@phase("warn")
@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also drafts already approved, sent or rejected.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def drafts(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List drafts waiting for a second person.

    Example: broadcast drafts
    """
    from broadcast.alert import shown_time
    from broadcast.send.drafts import drafts as waiting
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    zone = workspace.timezone
    store = open_store(workspace)
    try:
        rows = waiting(store, None if show_all else "waiting")
    finally:
        store.close()
    if as_json:
        keys = ("id", "state", "created_at", "template", "drafted_by", "decided_by", "decided_at", "reason", "alert")
        emit("drafts", {"drafts": [{k: row[k] for k in keys} for row in rows]})
        return
    for row in rows:
        click.echo(f"{row['id']:>4}  {row['state']:8} {shown_time(row['created_at'], zone, date=True)}  "
                   f"{row['template']:18} by {row['drafted_by']}" + (f"  -> {row['alert']}" if row["alert"] else ""))
    click.echo(f"{counted(len(rows), 'draft')}." + ("" if rows or show_all else " Nothing is waiting."))


@phase("warn")
@click.command()
@click.argument("draft", type=int)
@click.option("--yes", "-y", is_flag=True, help="Send without asking (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def approve(ctx: click.Context, draft: int, yes: bool, as_json: bool) -> None:
    """Approve a draft as the second person, and send it.

    Example: broadcast approve 3
    """
    from broadcast.commands.warn import send_planned
    from broadcast.prepare.approvals import named_as, os_account
    from broadcast.send.drafts import decide, plan_draft
    from broadcast.send.drafts import draft as load_draft
    from broadcast.send.policy import check_second_approver
    from broadcast.send.sending import Release
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        row = load_draft(store, draft)
        approver = check_second_approver(workspace, row, os_account(), named_as())
        plan = plan_draft(workspace, store, row)
        decide(store, draft, state="approved", by=approver)
        send_planned(ctx, workspace, store, plan, yes=yes, as_json=as_json,
                     release=Release(approved_by=approver, draft=draft))
    finally:
        store.close()


@phase("warn")
@click.command()
@click.argument("draft", type=int)
@click.option("--reason", required=True, help="Why it is rejected (logged; the drafter sees it).")
@click.pass_context
def reject(ctx: click.Context, draft: int, reason: str) -> None:
    """Reject a draft, with the reason.

    Example: broadcast reject 3 --reason "wrong school named"
    """
    from broadcast.prepare.approvals import operator
    from broadcast.send.drafts import decide
    from broadcast.send.drafts import draft as load_draft
    from broadcast.send.policy import identify
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        load_draft(store, draft)
        decide(store, draft, state="rejected", by=identify(workspace, operator()), reason=reason)
    finally:
        store.close()
    click.echo(f"Draft {draft} rejected: {reason}")


@phase("warn")
@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (for scripts).")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Open incidents, last messages, failures to fix and the next update due.

    Example: broadcast status
    """

    from broadcast.alert import shown_time
    from broadcast.review.status import status as current
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    zone = workspace.timezone
    store = open_store(workspace)
    try:
        now = current(workspace, store)
    finally:
        store.close()
    from broadcast.errors import OK, SOME_FAILED

    code = SOME_FAILED if now.needs_attention else OK
    if as_json:
        emit("status", now.to_dict())
        ctx.exit(code)
    click.secho(f"{counted(len(now.incidents), 'open incident')}", bold=True)
    for item in now.incidents:
        flag = " EXERCISE" if item.exercise else ""
        click.echo(f"  {item.slug}  {item.status}{flag}  {counted(item.alerts, 'message')}, last {item.last_alert} at "
                   f"{shown_time(item.last_sent, zone) if item.last_sent else ''}: {item.last_headline}")
        if item.overdue_minutes:
            click.secho(f"    OVERDUE: the next update was promised for {shown_time(item.next_update_due or '', zone)} "
                        f"({item.overdue_minutes} minutes ago). Send it now: broadcast update {item.slug} ...",
                        fg="red", bold=True)
        elif item.next_update_due:
            click.echo(f"    next update due at {shown_time(item.next_update_due, zone)}")
        if item.messages:
            click.echo(f"    messages: {item.messages}")
    if now.channels:
        click.secho("Last message on each channel", bold=True)
        for channel, last in sorted(now.channels.items()):
            click.echo(f"  {channel:20} {last['alert']} at {shown_time(last['at'], zone)}  {last['url'] or ''}")
    if now.problems:
        click.secho(f"{counted(len(now.problems), 'delivery', 'deliveries')} "
                    f"{'needs' if len(now.problems) == 1 else 'need'} attention", bold=True, fg="red")
        for problem in now.problems:
            click.echo(f"  {problem.state.upper():9} {problem.alert} {problem.channel} {problem.language}  "
                       f"{problem.error or ''}")
            click.echo(f"            fix: {problem.fix}")
    for lost in now.undelivered:
        why = ", ".join(f"{reason} {count:,}" for reason, count in lost.reasons.items())
        click.secho(f"{counted(lost.count, 'text or email', 'texts or emails')} not delivered on {lost.channel} "
                    f"({lost.language}), {lost.incident}" + (f": {why}" if why else ""), fg="red", bold=True)
        click.echo(f"            {lost.fix}")
    if now.off:
        click.secho(f"{counted(len(now.off), 'channel')} off", bold=True)
        for off in now.off:
            click.echo(f"  {off.channel:20} {off.why}")
            for post in off.live_posts:
                click.secho(f"    still shows {post['alert']}{' at ' + post['url'] if post['url'] else ''}: nothing "
                            "sent now reaches it, so this post cannot be corrected or cancelled there", fg="red")
    if now.stale:
        click.secho(f"{counted(len(now.stale), 'channel')} behind the latest message", bold=True, fg="red")
        for copy in now.stale:
            click.echo(f"  {copy.channel:20} {copy.incident}: still shows {copy.shows}, not {copy.latest}"
                       f"{'  ' + copy.url if copy.url else ''}")
            click.echo(f"            fix: {copy.fix}")
    if now.drafts_waiting:
        verb = "waits" if now.drafts_waiting == 1 else "wait"
        click.echo(f"{counted(now.drafts_waiting, 'draft')} {verb} for a second person: broadcast drafts")
    click.echo(f"Log: {now.events:,} events, head {now.head[:16]}...")
    if now.needs_attention:
        click.secho("Something above needs you: status exits 1 until it is done.", bold=True)
    ctx.exit(code)


COMMANDS = [update, drafts, approve, reject, status]
