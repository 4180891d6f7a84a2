"""Review: the log and its evidence."""

from __future__ import annotations

import click

from broadcast.commands import open_workspace, phase


@phase("review")
@click.group()
def review() -> None:
    """Check the log and export the record of an incident."""


@review.command("verify")
@click.pass_context
def review_verify(ctx: click.Context) -> None:
    """Walk the log's hash chain and report the first row that was changed.

    Example: broadcast review verify
    """
    from broadcast.errors import StoreError
    from broadcast.store import Store

    workspace = open_workspace(ctx)
    store = Store.open(workspace.db_path, create=False)
    try:
        result = store.verify()
    finally:
        store.close()
    if result.ok:
        click.echo(f"OK  {result.count} events, head {result.head}")
        return
    raise StoreError(
        f"the log does not verify at event {result.broken_at}: {result.reason}. "
        f"The {result.count} events before it verify (head {result.head}).",
        hint="the log was changed outside broadcast; keep this file as evidence and compare it with your last "
        "exported head hash",
        exit_code=1,
    )


COMMANDS = [review]
