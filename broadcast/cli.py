"""The command line: a thin skin over the library, its commands grouped by phase."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from broadcast import __version__
from broadcast.errors import INTERRUPTED, BroadcastError

PHASES = {
    "prepare": "Prepare: templates, channels, runbooks, drills",
    "warn": "Warn and inform",
    "recover": "Recover: corrections, cancellations, all-clear",
    "review": "Review: the log, timelines and evidence",
}


def debugging(ctx: click.Context | None = None) -> bool:
    if os.environ.get("BROADCAST_DEBUG") == "1":
        return True
    root = ctx.find_root() if ctx else None
    return bool(root and root.obj and root.obj.get("debug"))


def report(error: BroadcastError) -> None:
    """The one place an expected error becomes `Error: …` and `hint: …`."""
    click.secho(f"Error: {error.message}", err=True, fg="red")
    if error.hint:
        for line in error.hint.splitlines():
            click.echo(f"hint: {line}", err=True)


class PhaseGroup(click.Group):
    """A group whose --help lists commands under their phase, and which turns BroadcastError into an exit code."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for phase, heading in PHASES.items():
            rows = []
            for name in self.list_commands(ctx):
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden and getattr(command, "phase", "prepare") == phase:
                    rows.append((name, command.get_short_help_str(limit=70)))
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added: the order of the work

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # outside a send (which stops itself and says how to finish): exit 130, not 1
            click.echo("\nInterrupted. See what went out, if anything: broadcast status", err=True)
            ctx.exit(INTERRUPTED)
        except BroadcastError as error:
            if debugging(ctx):
                raise
            report(error)
            ctx.exit(error.exit_code)
        except Exception as error:
            import sqlite3  # here, not at the top: --help stays light

            if debugging(ctx) or not isinstance(error, sqlite3.DatabaseError):
                raise
            from broadcast.store import unusable

            # The log found damaged (or locked, or the disk full) mid-command: each send needs its row written
            # first, so this stops the sending; say what to do rather than show a traceback.
            failure = unusable(error)
            report(failure)
            ctx.exit(failure.exit_code)


@click.group(cls=PhaseGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="broadcast")
@click.option("--workspace", "-w", metavar="DIR", envvar="BROADCAST_WORKSPACE",
              help="The workspace folder (default: $BROADCAST_WORKSPACE, or the current folder and up).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short errors.")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, debug: bool) -> None:
    """Warn and inform the public in an emergency.

    Render a pre-approved template, send it to every channel at once, publish a fallback page and CAP
    alerts, and keep a tamper-evident log for the review.

    \b
    Start here:
      broadcast templates list
      broadcast templates preview school-closure --set school="Hillside Primary School" ...
      broadcast warn school-closure --set ... --dry-run
    """
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace
    ctx.obj["debug"] = debug


def _register() -> None:
    from broadcast.commands import inform, page, prepare, recover, review, runbook, store, warn, watch

    for module in (prepare, runbook, warn, inform, watch, page, recover, review, store):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Entry point of the `broadcast` console script.

    A command's objects are nearly all long-lived (modules, templates, the configuration): the cyclic collector
    walking them every 700 allocations during start-up, and once more as the interpreter exits, frees nothing and
    cost a fresh `broadcast warn` about 20 ms (bench/warn.py --parts fresh). So it collects less often, and what is
    left at the end is frozen so finalisation does not walk it again; files and the log are closed by then."""
    import gc

    gc.set_threshold(10_000)
    try:
        cli.main(prog_name="broadcast")
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(INTERRUPTED)
    finally:
        gc.freeze()
