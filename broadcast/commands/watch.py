"""During an incident: `broadcast watch` collects receipts and reminds the staff of promised updates and failures."""

from __future__ import annotations

import click

from broadcast.commands import open_workspace, phase

MINUTES = click.FloatRange(min=0, min_open=True)


@phase("warn")
@click.command()
@click.argument("incident", required=False)
@click.option("--every", type=MINUTES, default=5.0, show_default=True, metavar="MINUTES",
              help="Collect receipts and check the promises this often (fractions allowed).")
@click.option("--remind", type=click.FloatRange(min=0), default=15.0, show_default=True, metavar="MINUTES",
              help="Ping the staff this long before a promised update is due.")
@click.pass_context
def watch(ctx: click.Context, incident: str | None, every: float, remind: float) -> None:
    """Remind the staff of updates due and of failed texts, until closed.

    Every --every minutes it collects receipts and reach (as review collect does), then pings the staff channels
    ([watch] in broadcast.toml; default: every enabled Slack and Teams channel, and optionally a text to the duty
    phone): --remind minutes before the next update promised, again when it is overdue, and when texts or emails
    fail. Nothing is said twice, even after a restart. Staff pings are not public alerts: they are only logged. It
    stops (exit 0) when every incident it watches is closed; Ctrl-C stops it (exit 130). Without INCIDENT: every
    open incident.

    Example: broadcast watch snow-2026-11-23 --every 5 --remind 15
    """
    from broadcast.errors import INTERRUPTED
    from broadcast.prepare.approvals import operator
    from broadcast.review.watch import watch as run
    from broadcast.send.policy import identify
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace, create=False)
    try:
        run(workspace, store, [incident] if incident else [], actor=identify(workspace, operator()), every=every,
            remind=remind, say=click.echo)
    except KeyboardInterrupt:
        click.echo("\nWatch stopped (Ctrl-C): nothing more will be collected or pinged. Start it again with: "
                   "broadcast watch" + (f" {incident}" if incident else ""), err=True)
        ctx.exit(INTERRUPTED)
    finally:
        store.close()


COMMANDS = [watch]
