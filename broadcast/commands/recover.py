"""Recover: corrections, cancellations, the all-clear, and closing the incident."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from broadcast.commands import SET_HELP, collect_sets, open_workspace, phase

if TYPE_CHECKING:
    from broadcast.alert import Alert
    from broadcast.send.lifecycle import Retraction
    from broadcast.send.sending import Plan
    from broadcast.store import Store
    from broadcast.workspace import Workspace


@phase("recover")
@click.command()
@click.argument("alert")
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE", help="A corrected value (repeatable).")
@click.option("--only", multiple=True, metavar="CHANNEL", help="Correct on this channel only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show exactly what would go where, and what changes; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def correct(ctx: click.Context, alert: str, pairs: tuple[str, ...], only: tuple[str, ...], dry_run: bool, yes: bool,
            as_json: bool) -> None:
    """Correct a mistake and say what changed.

    Deletes the posts where the platform allows, then sends the correction.

    Example: broadcast correct A-2026-0007 --set date=2026-11-24
    """
    from broadcast.prepare.templates import find_template
    from broadcast.send.lifecycle import plan_correction
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        original = resolve_template(store, alert)
        changes = collect_sets(find_template(workspace, original), pairs)
        superseded, plan = plan_correction(workspace, store, alert, changes, only=only)
        withdraw_then_send(ctx, workspace, store, plan, superseded, dry_run=dry_run, yes=yes, as_json=as_json,
                           only=only, values=changes)
    finally:
        store.close()


@phase("recover")
@click.command()
@click.argument("alert")
@click.option("--reason", required=True, help="Why it is cancelled (said in every message).")
@click.option("--only", multiple=True, metavar="CHANNEL", help="Cancel on this channel only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show exactly what would go where, and what changes; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def cancel(ctx: click.Context, alert: str, reason: str, only: tuple[str, ...], dry_run: bool, yes: bool,
           as_json: bool) -> None:
    """Cancel an alert everywhere (CAP Cancel).

    Deletes its posts where possible and says it is cancelled on every channel.

    Example: broadcast cancel A-2026-0007 --reason "sent for the wrong school"
    """
    from broadcast.send.lifecycle import plan_cancel
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        cancelled, plan = plan_cancel(workspace, store, alert, reason, only=only)
        withdraw_then_send(ctx, workspace, store, plan, cancelled, dry_run=dry_run, yes=yes, as_json=as_json,
                           only=only)
    finally:
        store.close()


@phase("recover")
@click.command()
@click.argument("incident")
@click.argument("template")
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--only", multiple=True, metavar="CHANNEL", help="Send to this channel only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show exactly what would go where, and what changes; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def recover(ctx: click.Context, incident: str, template: str, pairs: tuple[str, ...], only: tuple[str, ...],
            dry_run: bool, yes: bool, as_json: bool) -> None:
    """Send the all-clear and recovery information.

    The incident moves to recovering.

    Example: broadcast recover flood-2026-11-23 all-clear --set area=afon-lliw-valley ...
    """
    from broadcast.commands.warn import send_planned, show_plan
    from broadcast.prepare.approvals import operator
    from broadcast.prepare.templates import find_template
    from broadcast.send.lifecycle import close_incident, plan_update, public_now
    from broadcast.send.policy import identify
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    values = collect_sets(find_template(workspace, template), pairs)
    store = open_store(workspace)
    try:
        plan = plan_update(workspace, store, incident, template, values, only=only, all_clear=True)
        now = public_now(store, plan)
        if dry_run:
            show_plan(plan, dry_run=True, before=now)
            return
        before = len(store.alerts(incident))
        try:
            send_planned(ctx, workspace, store, plan, yes=yes, as_json=as_json, values=values, only=only, before=now)
        finally:
            if len(store.alerts(incident)) > before:  # the all-clear went out (whatever each channel did)
                close_incident(store, incident, actor=identify(workspace, operator()), state="recovering")
    finally:
        store.close()


@phase("recover")
@click.command()
@click.argument("incident")
@click.pass_context
def close(ctx: click.Context, incident: str) -> None:
    """Close an incident; its record stays in the log.

    Example: broadcast close flood-2026-11-23
    """
    from broadcast.prepare.approvals import operator
    from broadcast.send.lifecycle import close_incident
    from broadcast.send.policy import identify
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        close_incident(store, incident, actor=identify(workspace, operator()))
    finally:
        store.close()
    click.echo(f"Incident {incident} closed. Review it with: broadcast review verify")


def withdraw_then_send(ctx: click.Context, workspace: Workspace, store: Store, plan: Plan, withdrawn: list[Alert], *,
                       dry_run: bool, yes: bool, as_json: bool, only: tuple[str, ...],
                       values: dict[str, str] | None = None) -> None:
    """A correction or a cancellation: show what changes on each channel, ask, delete the withdrawn alerts' posts
    where the platform allows, then send the plan."""
    from broadcast.commands.warn import confirm, send_planned, show_plan
    from broadcast.prepare.approvals import operator
    from broadcast.send.lifecycle import public_now, retract
    from broadcast.send.policy import identify

    before = public_now(store, plan)
    if dry_run:
        show_plan(plan, dry_run=True, before=before)
        return
    confirm(plan, yes=yes, as_json=as_json, extra=f"Delete {names(withdrawn)}'s posts where possible and ",
            before=before)
    show_retractions(retract(workspace, store, withdrawn, actor=identify(workspace, operator()), only=only))
    send_planned(ctx, workspace, store, plan, yes=yes, as_json=as_json, values=values, only=only, confirmed=True)


def resolve_template(store: Store, alert: str) -> str:
    from broadcast.errors import PolicyError
    from broadcast.send.lifecycle import current_messages, resolve_alert

    found = current_messages(store, resolve_alert(store, alert))[-1]  # what a correction starts from
    if not found.template or found.template == "free-text":
        raise PolicyError(f"{found.identifier} was not made from a template",
                          hint=f"cancel it (broadcast cancel {found.identifier} --reason ...) and send a new message")
    return found.template


def names(alerts: list[Alert]) -> str:
    """A-2026-0001, or A-2026-0001 and A-2026-0003."""
    from broadcast.prepare.variables import and_list

    return and_list([a.identifier for a in alerts], "en-GB")


def show_retractions(results: list[Retraction]) -> None:
    for result in results:
        label = "DEL" if result.done else "KEEP"
        language = f" ({result.language})" if result.language else ""
        click.echo(f"{label:5} {result.channel + language:28} {result.detail}")


COMMANDS = [correct, cancel, recover, close]
