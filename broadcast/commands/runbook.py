"""Runbooks: work through an incident's checklist; each tick is logged with its time and who."""

from __future__ import annotations

import click

from broadcast.commands import JSON_HELP, counted, emit, open_workspace, phase


@phase("prepare")
@click.group()
def runbook() -> None:
    """Start, tick and show an incident's runbook checklist."""


@runbook.command("start")
@click.argument("name")
@click.option("--incident", required=True, metavar="SLUG", help="The incident it is for.")
@click.pass_context
def runbook_start(ctx: click.Context, name: str, incident: str) -> None:
    """Start a runbook for an incident.

    Example: broadcast runbook start severe-weather --incident snow-2026-11-23
    """
    from broadcast.prepare.approvals import operator
    from broadcast.prepare.runbooks import start
    from broadcast.send.policy import identify
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        book = start(workspace, store, name, incident, actor=identify(workspace, operator()))
    finally:
        store.close()
    click.echo(f"Started {book.title} for {incident}: {counted(len(book.steps), 'step')}. First: {book.steps[0].id}. "
               f"{book.steps[0].text}")
    click.echo(f"Tick each step as it is done: broadcast runbook tick {book.steps[0].id}")


@runbook.command("tick")
@click.argument("step")
@click.option("--incident", metavar="SLUG", help="The incident (needed when more than one has a runbook).")
@click.option("--runbook", "name", metavar="NAME", help="The runbook (default: the latest started).")
@click.option("--note", help="A few words on how it went.")
@click.pass_context
def runbook_tick(ctx: click.Context, step: str, incident: str | None, name: str | None, note: str | None) -> None:
    """Tick a step as done, now, by you.

    Example: broadcast runbook tick W2 --note "dry run checked by the press office"
    """
    from broadcast.prepare.approvals import operator
    from broadcast.prepare.runbooks import tick
    from broadcast.send.policy import identify
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        done = tick(workspace, store, step, actor=identify(workspace, operator()), incident=incident,
                    runbook=name, note=note)
    finally:
        store.close()
    click.echo(f"Ticked {done.step.id} at {done.at}: {done.step.text}")


@runbook.command("show")
@click.option("--incident", metavar="SLUG", help="The incident (needed when more than one has a runbook).")
@click.option("--runbook", "name", metavar="NAME", help="The runbook (default: the latest started).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def runbook_show(ctx: click.Context, incident: str | None, name: str | None, as_json: bool) -> None:
    """Show the runbook's steps: which are done, when and by whom.

    Example: broadcast runbook show --incident snow-2026-11-23
    """
    from broadcast.prepare.runbooks import current, ticks
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        slug, book = current(workspace, store, incident, name)
        rows = ticks(store, slug, book)
    finally:
        store.close()
    from broadcast.alert import shown_time

    if as_json:
        emit("runbook", {"incident": slug, "title": book.title, "steps": [
            {"id": r.step.id, "phase": r.step.phase, "text": r.step.text, "done_at": r.at, "by": r.actor}
            for r in rows]})
        return
    click.secho(f"{book.title} ({slug})", bold=True)
    phase_now = ""
    for row in rows:
        if row.step.phase != phase_now:
            phase_now = row.step.phase
            click.echo(f"\n{phase_now.capitalize()}")
        mark = "[x]" if row.at else "[ ]"
        when = f"  ({shown_time(row.at, workspace.timezone)}, {row.actor})" if row.at else ""
        click.echo(f"  {mark} {row.step.id}. {row.step.text}{when}")
    left = [r.step.id for r in rows if not r.at]
    click.echo(f"\n{len(rows) - len(left)} of {len(rows)} done." + (f" Next: {left[0]}." if left else ""))


COMMANDS = [runbook]
