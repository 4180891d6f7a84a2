"""The command line: a thin skin over the library, its commands grouped by phase."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

from broadcast import __version__
from broadcast.errors import INTERRUPTED, BroadcastError

# Each command: the module of broadcast.commands that defines it, its phase and its summary, so that `broadcast
# --help` lists them without importing them (a sixth of its start-up) and a command imports its own module alone.
# tests/test_cli.py checks the table against the commands themselves.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("prepare", "prepare", "Create a new workspace from the example content."),
    "templates": ("prepare", "prepare", "List, preview, lint and approve message templates."),
    "channels": ("prepare", "prepare", "List, check, and switch off or on the channel accounts."),
    "sandbox": ("prepare", "prepare", "Emulate every platform, and an SMTP server, on 127.0.0.1 for drills..."),
    "drill": ("prepare", "prepare", "Rehearse a whole incident against the local sandbox, safely."),
    "runbook": ("runbook", "prepare", "Start, tick and show an incident's runbook checklist."),
    "warn": ("warn", "warn", "Render an approved template and send it to every channel at once."),
    "resend": ("warn", "warn", "Complete an alert's deliveries without posting twice."),
    "lists": ("warn", "prepare", "Recipient lists for SMS and email (lists/*.csv)."),
    "update": ("inform", "warn", "Send an update to an incident (a CAP Update)."),
    "drafts": ("inform", "warn", "List drafts waiting for a second person."),
    "approve": ("inform", "warn", "Approve a draft as the second person, and send it."),
    "reject": ("inform", "warn", "Reject a draft, with the reason."),
    "status": ("inform", "warn", "Open incidents, last messages, failures to fix and the next update..."),
    "watch": ("watch", "warn", "Remind the staff of updates due and of failed texts, until closed."),
    "page": ("page", "warn", "Build, publish and preview the fallback page, feeds and CAP files."),
    "correct": ("recover", "recover", "Correct a mistake and say what changed."),
    "cancel": ("recover", "recover", "Cancel an alert everywhere (CAP Cancel)."),
    "recover": ("recover", "recover", "Send the all-clear and recovery information."),
    "close": ("recover", "recover", "Close an incident; its record stays in the log."),
    "review": ("review", "review", "Export an incident's timeline, and check, measure and annotate the..."),
    "store": ("store", "prepare", "The log: which store is in use; move it to a shared PostgreSQL."),
}

HELP_WIDTH = 100
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
            rows = [(name, summary) for name, (_, of, summary) in COMMANDS.items() if of == phase]
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)  # the order of the work

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command, its module imported only now: `broadcast warn` loads the warn commands alone."""
        if name in COMMANDS and name not in self.commands:
            import importlib

            for command in importlib.import_module(f"broadcast.commands.{COMMANDS[name][0]}").COMMANDS:
                self.commands.setdefault(str(command.name), command)
        return self.commands.get(name)

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


@click.group(cls=PhaseGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_WIDTH})
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


def terminal_width() -> int:
    """The width help is wrapped to, as click wraps it: the columns found as shutil.get_terminal_size finds them
    ($COLUMNS, else the terminal, else 80), at most HELP_WIDTH, less a margin of 2, at least 50. Click would import
    shutil for it, and with it three compression modules: a twentieth of `broadcast --help`."""
    columns = 0
    with contextlib.suppress(ValueError):
        columns = int(os.environ.get("COLUMNS", "0"))
    if columns <= 0:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    return max(min(columns or 80, HELP_WIDTH) - 2, 50)


def main() -> None:
    """Entry point of the `broadcast` console script.

    A command's objects are nearly all long-lived (modules, templates, the configuration): the cyclic collector
    walking them every 700 allocations during start-up, and once more as the interpreter exits, frees nothing and
    cost a fresh `broadcast warn` about 20 ms (bench/warn.py --parts fresh). So it collects less often, and what is
    left at the end is frozen so finalisation does not walk it again; files and the log are closed by then."""
    import gc

    gc.set_threshold(10_000)
    try:
        cli.main(prog_name="broadcast", terminal_width=terminal_width())
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(INTERRUPTED)
    finally:
        gc.freeze()
