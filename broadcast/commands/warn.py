"""Warn and inform: render an approved template and send it everywhere; resend what did not arrive."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from broadcast.commands import SET_HELP, collect_sets, counted, echo_rendering, emit, open_workspace, phase, word_diff
from broadcast.commands.lists import BAR, lists_group, reach, show_audience
from broadcast.errors import OK, SOME_FAILED

if TYPE_CHECKING:
    from broadcast.send.fanout import Outcome
    from broadcast.send.lifecycle import Stale
    from broadcast.send.sending import Plan, Release, Report, Resend
    from broadcast.store import Store
    from broadcast.workspace import Workspace


@phase("warn")
@click.command()
@click.argument("template", required=False)
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--text", "texts", multiple=True, metavar="TEXT",
              help="Free text instead of a template (a draft for a second person); cy=TEXT for another language.")
@click.option("--only", multiple=True, metavar="CHANNEL", help="Send to this channel only (repeatable).")
@click.option("--to", multiple=True, metavar="TAG",
              help="Only the people on recipient lists with this group or area tag (repeatable).")
@click.option("--one-segment", is_flag=True, help="Keep each text message to one SMS segment (shortened by rule).")
@click.option("--incident", metavar="SLUG", help="Add to this open incident instead of opening a new one.")
@click.option("--exercise", is_flag=True, help="An exercise: marked in every text, sent only to exercise channels.")
@click.option("--draft", is_flag=True, help="Save for a second person to approve instead of sending.")
@click.option("--override", is_flag=True, help="Send an unapproved message without a second person (needs --reason).")
@click.option("--reason", help="Why --override was needed (logged and flagged in the review).")
@click.option("--dry-run", is_flag=True, help="Show exactly what would go where; send and log nothing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (add --yes to send from a script).")
@click.pass_context
def warn(ctx: click.Context, template: str | None, pairs: tuple[str, ...], texts: tuple[str, ...],
         only: tuple[str, ...], to: tuple[str, ...], one_segment: bool, incident: str | None, exercise: bool,
         draft: bool, override: bool, reason: str | None, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Render an approved template and send it to every channel at once.

    Example: broadcast warn school-closure --set school="Ysgol Bro Lliw" --set date=today
    --set reason=snow --set next_update=15:00 --to parents:ysgol-bro-lliw
    """
    from broadcast.errors import PolicyError
    from broadcast.prepare.approvals import UNAPPROVED, ApprovalState
    from broadcast.prepare.templates import find_template
    from broadcast.send.drafts import free_text
    from broadcast.send.sending import Issue, plan_rendering, plan_warning
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    if bool(template) == bool(texts):
        raise PolicyError("give a template or --text, not both and not neither",
                          hint="e.g. broadcast warn school-closure --set ..., or broadcast warn --text \"...\"")
    values = collect_sets(find_template(workspace, template), pairs) if template else {}
    issue = Issue(status="Exercise" if exercise else "Actual", incident=incident)
    words = split_texts(workspace, texts)
    store = None if dry_run else open_store(workspace)
    try:
        if template:
            plan = plan_warning(workspace, template, values, store=store, only=only, learn_limits=not dry_run,
                                issue=issue, to=to, one_segment=one_segment)
        else:
            plan = plan_rendering(workspace, free_text(workspace, words), ApprovalState(UNAPPROVED, None),
                                  store=store, only=only, learn_limits=not dry_run, issue=issue, to=to,
                                  one_segment=one_segment)
        if dry_run:
            show_plan(plan, dry_run=True, verdict=verdict(workspace, plan, draft=draft, override=override))
            return
        assert store is not None
        send_planned(ctx, workspace, store, plan, yes=yes, as_json=as_json, draft=draft, override=override,
                     reason=reason, values=values, texts=words, only=only, to=to, one_segment=one_segment)
    finally:
        if store is not None:
            store.close()


def split_texts(workspace: Workspace, texts: tuple[str, ...]) -> dict[str, str]:
    """--text "..." is the first language; --text cy="..." another configured one."""
    from broadcast.workspace import primary_tag

    tags = {primary_tag(language) for language in workspace.languages}
    words: dict[str, str] = {}
    for text in texts:
        tag, sep, rest = text.partition("=")
        if sep and tag in tags:
            words[tag] = rest
        else:
            words[primary_tag(workspace.languages[0])] = text
    return words


def send_planned(ctx: click.Context, workspace: Workspace, store: Store, plan: Plan, *, yes: bool, as_json: bool,
                 draft: bool = False, override: bool = False, reason: str | None = None,
                 values: dict[str, str] | None = None, texts: dict[str, str] | None = None,
                 only: tuple[str, ...] = (), release: Release | None = None, confirmed: bool = False,
                 to: tuple[str, ...] = (), one_segment: bool = False,
                 before: dict[tuple[str, str], str] | None = None) -> None:
    """Show the plan, confirm, then send it, or keep it as a draft when policy needs a second person."""
    from broadcast.errors import PolicyError
    from broadcast.prepare.approvals import operator
    from broadcast.send.drafts import save_draft
    from broadcast.send.lifecycle import stale_channels
    from broadcast.send.policy import Policy, identify, override_details
    from broadcast.send.sending import Release, send_warning

    actor = identify(workspace, operator())
    if override:
        override_details(reason)
        release = Release(approved_by=f"{actor} (override)", override_reason=reason)
    if draft or (release is None and not plan.approval.approved):
        why = "asked for a draft" if draft else (
            "free text" if plan.alert.template == "free-text" else f"template {plan.approval.status}")
        if not draft and Policy.from_workspace(workspace).unapproved == "refuse":
            raise PolicyError(f"{plan.alert.template} is {plan.approval.status}: this workspace refuses it",
                              hint="approve the template first: broadcast templates approve NAME --by ...")
        number = save_draft(store, drafted_by=actor, template=None if plan.alert.template == "free-text"
                            else plan.alert.template, values=values or {}, texts=texts or {}, issue=plan.issue,
                            only=only, why=why, to=to, one_segment=one_segment)
        raise PolicyError(f"not sent: saved as draft {number} ({why}); a second person must approve it",
                          hint=f"the second person runs: broadcast approve {number}   (see: broadcast drafts)")
    if not confirmed:
        confirm(plan, yes=yes, as_json=as_json, before=before)
    report = send_warning(workspace, store, plan, actor=actor, release=release,
                          on_outcome=None if as_json else live_line, on_progress=None if as_json else BAR)
    finish(ctx, report, as_json, behind=stale_channels(store, report.alert.incidents or ""))


@phase("warn")
@click.command()
@click.argument("alert")
@click.option("--only", multiple=True, metavar="CHANNEL", help="Resend to this channel only (repeatable).")
@click.option("--include-uncertain", is_flag=True,
              help="Also send deliveries whose outcome is unknown (check the platform first: it may post twice).")
@click.option("--dry-run", is_flag=True, help="Show what is left to send; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (needs --yes to send).")
@click.pass_context
def resend(ctx: click.Context, alert: str, only: tuple[str, ...], include_uncertain: bool, dry_run: bool, yes: bool,
           as_json: bool) -> None:
    """Complete an alert's deliveries without posting twice.

    After a failure or an interrupted run. It shows what is left and asks first.

    Example: broadcast resend A-2026-0007 --only facebook-page
    """
    from broadcast.prepare.approvals import operator
    from broadcast.send.sending import plan_resend
    from broadcast.send.sending import resend as resend_alert
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        planned = plan_resend(workspace, store, alert, only=only, include_uncertain=include_uncertain)
        if not as_json or dry_run:
            show_resend(planned)
        if planned.empty:
            if as_json:
                emit("resend", {"alert": planned.alert.identifier, "left": 0,
                                "uncertain": sum(n for *_, n in planned.uncertain),
                                "owed": [{"channel": o.channel, "language": o.language, "error": o.error}
                                         for o in planned.owed]})
            ctx.exit(SOME_FAILED if planned.uncertain or planned.owed else OK)
        if dry_run:
            click.echo("Dry run: nothing was sent and nothing was logged.")
            return
        ask(f"Resend {counted(len(planned.waiting), 'delivery group')} now?", yes=yes)
        report = resend_alert(workspace, store, planned.alert.identifier, actor=operator(), only=only,
                              include_uncertain=include_uncertain, on_outcome=None if as_json else live_line,
                              on_progress=None if as_json else BAR)
    finally:
        store.close()
    finish(ctx, report, as_json)


def show_resend(planned: Resend) -> None:
    identifier = planned.alert.identifier
    if planned.waiting:
        click.secho(f"Left to send for {identifier}", bold=True)
        width = max(len(name) for name, *_ in planned.waiting)
        for name, language, state, number in planned.waiting:
            what = (counted(number, "person", "people") if planned.channels[name].per_person else "the post")
            click.echo(f"  {name:{width}} ({language})  {what} {state}")
    for name, language, number in planned.uncertain:
        click.echo(f"  {name} ({language})  {number:,} may have gone out already: left alone (check by hand, then "
                   f"--include-uncertain)")
    owed = {o.channel for o in planned.owed}
    for name, why in planned.skipped:
        if name not in owed:
            click.echo(f"  {name}  skipped: {why}")
    for outcome in planned.owed:
        click.echo(row(outcome))
        click.echo(f"      hint: {outcome.hint}")
    if not planned.waiting:
        click.echo(f"Nothing to resend now for {identifier}"
                   + (": the lines above are still to do." if planned.uncertain or planned.owed
                      else ": every delivery has gone out."))


def interactive() -> bool:
    """Whether someone is at a terminal to answer the confirmation."""
    return sys.stdin.isatty()


def confirm(plan: Plan, *, yes: bool, as_json: bool, extra: str = "",
            before: dict[tuple[str, str], str] | None = None) -> None:
    """Show the plan (and for a follow-up, what changes on each channel) and ask on a terminal; scripts must say
    --yes. Nothing has happened before this."""
    from broadcast.send.sending import check_reach

    if not as_json:
        show_plan(plan, dry_run=False, before=before)
    check_reach(plan)
    ask(f"{extra}Send to {len({c.name for c, _ in plan.posts})} channels{reach(plan)} now?", yes=yes)


def ask(question: str, *, yes: bool) -> None:
    """Ask on a terminal; from a script, only --yes sends (--json alone never does)."""
    from broadcast.errors import PolicyError

    if yes:
        return
    if not interactive():
        raise PolicyError("not sending without confirmation: this is not a terminal",
                          hint="add --yes to send from a script")
    click.confirm(question, abort=True)


def verdict(workspace: Workspace, plan: Plan, *, draft: bool = False, override: bool = False) -> str | None:
    """What the same command without --dry-run will do, when it will not simply send."""
    from broadcast.send.policy import Policy

    if draft:
        return "Without --dry-run it is saved as a draft for a second person (broadcast approve N); nothing is sent."
    if plan.approval.approved:
        return None
    if override:
        return "Without --dry-run it is sent with --override: logged, and flagged for the review."
    what = "free text" if plan.alert.template == "free-text" else f"the template is {plan.approval.status}"
    if Policy.from_workspace(workspace).unapproved == "refuse":
        return f"Without --dry-run it is refused: {what}, and this workspace refuses that."
    exercise = " (an exercise too)" if plan.alert.status == "Exercise" else ""
    return (f"Without --dry-run it is NOT sent: {what}, so it is saved as a draft{exercise} for a second person, who "
            f"sends it with: broadcast approve N.")


def show_plan(plan: Plan, *, dry_run: bool, before: dict[tuple[str, str], str] | None = None,
              verdict: str | None = None) -> None:
    """The message, each channel's count in the platform's unit, and exactly what each will receive; for a
    follow-up, a word diff against what that channel shows now (`before`)."""
    state = plan.approval
    click.secho(f"{plan.alert.template}: {plan.rendering.template.title}", bold=True)
    approval = state.status + (f" ({state.approval.by}, {state.approval.at[:10]})" if state.approval else "")
    click.secho(f"template  {approval}", fg="green" if state.approved else "yellow")
    info = plan.alert.infos[0]
    click.echo(f"alert     {plan.alert.status} {plan.alert.msg_type}, expires {expiry(info.expires, plan)}")
    click.echo(f"area      {'; '.join(a.desc for a in info.areas)}")
    click.echo()
    if dry_run:
        echo_rendering(plan.rendering)
    click.secho("Channels", bold=True)
    width = max([len(c.name) for c, _ in plan.posts] + [len(n) for n, _ in plan.skipped]
                + [len(b.name) for b in plan.broken], default=0)
    for channel, post in plan.posts:
        note = ", shortened" if post.shortened else ""
        click.echo(f"  {channel.name:{width}}  {channel.kind:9} {post.language}  {post.count}/{post.limit} "
                   f"{post.unit}{note}")
    for name, why in plan.skipped:
        click.echo(f"  {name:{width}}  skipped: {why}")
    for broken in plan.broken:
        click.secho(f"  {broken.name:{width}}  FAIL: {broken.error.message}", fg="red")
        click.echo(f"  {'':{width}}  hint: {broken.error.hint or 'fix the file'} (the other channels still go)")
    click.echo()
    show_posts(plan, before)
    if plan.audience:
        show_audience(plan.audience)
    if not state.approved and not verdict:
        click.secho(f"The template is {state.status}: it needs a second person's approval.", fg="yellow")
    if dry_run:
        would = "" if verdict else (f" {len(plan.posts)} posts to {len({c.name for c, _ in plan.posts})} channels "
                                     "would go out.")
        click.echo(f"Dry run: nothing was sent and nothing was logged.{would}")
        if verdict:
            click.secho(verdict, fg="yellow", bold=True)


def expiry(expires: str, plan: Plan) -> str:
    """The CAP expiry as the duty officer reads it: 'Tue 24 Nov 01:12 GMT' in the workspace's zone."""
    from broadcast.alert import shown_time

    return shown_time(expires, plan.zone, date=True) if plan.zone else expires


def show_posts(plan: Plan, before: dict[tuple[str, str], str] | None) -> None:
    """Each distinct post once, with the channels that get it; under a follow-up, what changes on each."""
    groups: dict[tuple[str, str, str | None], list[str]] = {}
    for channel, post in plan.posts:
        was = (before or {}).get((channel.name, post.language))
        groups.setdefault((post.language, post.text, was), []).append(channel.name)
    click.secho("What each channel will receive", bold=True)
    for (language, text, was), names in groups.items():
        click.echo(f"  {', '.join(names)} ({language}):")
        for line in text.splitlines() or [""]:
            click.echo(f"    | {line}")
        if before is not None:
            if was is None:
                click.echo("    changes: new on this channel (nothing of this incident is up there now)")
            elif was == text:
                click.echo("    changes: none: the same text as now")
            else:
                click.echo(f"    changes: {word_diff(was, text)}")
    click.echo()


def live_line(outcome: Outcome) -> None:
    BAR.clear()
    click.echo(row(outcome))


def row(outcome: Outcome) -> str:
    label = {"sent": "OK", "failed": "FAIL", "uncertain": "CHECK", "stopped": "STOP", "unrecorded": "CHECK"}.get(
        outcome.state, outcome.state.upper())
    attempts = f"{outcome.attempts} attempt{'s' if outcome.attempts != 1 else ''}"
    detail = (outcome.receipt.url or outcome.receipt.note or "") if outcome.receipt else ""
    if outcome.state != "sent":  # a list channel's receipt holds its counts; its error says why, with them
        detail = outcome.error or detail
    return f"{label:5} {outcome.channel + ' (' + outcome.language + ')':28} {attempts:11} {detail}"


def finish(ctx: click.Context, report: Report, as_json: bool, behind: list[Stale] | None = None) -> None:
    """The table, a summary, the next command; exit 0, 1 or 3 as STYLE.md says. `behind`: channels the message
    did not reach that still show an earlier one of the incident."""
    behind = behind or []
    BAR.clear()  # a list's bar left half-drawn by a stop
    if as_json:
        data = report_json(report)
        data["behind"] = [{"channel": b.channel, "shows": b.shows, "url": b.url} for b in behind]
        emit("send", data)
        ctx.exit(report.exit_code)
    identifier = report.alert.identifier
    click.echo()
    for outcome in report.outcomes:
        if outcome.state != "sent":
            click.echo(row(outcome))
            hint = outcome.hint or ("not sent yet" if outcome.state == "stopped" else "a resend may help")
            if outcome.state in ("failed", "stopped") and "broadcast resend" not in hint:
                hint += f", then: broadcast resend {identifier} --only {outcome.channel}"
            click.echo(f"      hint: {hint}")
    for name, why in report.skipped:
        click.echo(f"SKIP  {name:28} {why}")
    for line in report.page:
        click.echo(line if line.startswith(("OK", "FAIL")) else f"      {line}")
    for copy in behind:
        click.secho(f"BEHIND {copy.channel:27} still shows {copy.shows}: this message was not sent to it", fg="yellow")
    if behind:
        click.echo(f"      to send it there too: broadcast resend {identifier} "
                   + " ".join(f"--only {copy.channel}" for copy in behind))
    channels = {o.channel for o in report.outcomes}
    delivered = {o.channel for o in report.outcomes} - {o.channel for o in report.outcomes if o.state != "sent"}
    stopped = f"Stopped by {report.stopped_by}: " if report.stopped_by and delivered != channels else ""
    if report.storage_error:
        stopped = f"Stopped: the log could not be written ({report.storage_error}), so nothing more was sent: "
    click.echo(f"{stopped}{len(delivered)} of {len(channels)} channels delivered. Alert {identifier}"
               f"{', incident ' + report.alert.incidents if report.alert.incidents else ''}.")
    if report.storage_error:
        click.echo("Next: free space on the disk (or let the other program using broadcast.db finish), then: "
                   f"broadcast resend {identifier}")
    elif stopped:
        click.echo(f"Next: to finish the job: broadcast resend {identifier}")
    elif delivered != channels:
        click.echo(f"Next: fix what the hints say, then: broadcast resend {identifier}")
    ctx.exit(report.exit_code)


def report_json(report: Report) -> dict[str, object]:
    return {
        "alert": report.alert.identifier,
        "incident": report.alert.incidents,
        "exit_code": report.exit_code,
        "deliveries": [{"channel": o.channel, "language": o.language, "state": o.state, "attempts": o.attempts,
                        "url": o.receipt.url if o.receipt else None, "error": o.error, "hint": o.hint,
                        "note": o.receipt.note if o.receipt else None}
                       for o in report.outcomes],
        "skipped": [{"channel": name, "reason": why} for name, why in report.skipped],
        "page": report.page,
        "stopped_by": report.stopped_by,
        "storage_error": report.storage_error,
    }


COMMANDS = [warn, resend, lists_group]
