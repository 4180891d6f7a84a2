"""What the warn commands show about recipient lists: who a send reaches and at what cost, and its progress."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from broadcast.send.audience import Audience
    from broadcast.send.bulk import Progress
    from broadcast.send.sending import Plan

PLAIN_EVERY = 5.0  # seconds between progress lines when the output is not a terminal


def show_audience(audience: Audience) -> None:
    """One line per list channel and language: recipients, segments, estimated cost; then the list reports."""
    click.secho("Recipients" + (f" (--to {', '.join(audience.to)})" if audience.to else ""), bold=True)
    width = max((len(line.channel) for line in audience.lines), default=0)
    for line in audience.lines:
        click.echo(f"  {line.channel:{width}}  {line.kind:12} {line.language}  {line.describe()}")
    for name, report in audience.reports.items():
        click.echo(f"  {name:{width}}  lists/{report.path.name}: {report.summary()}")
        for problem in report.problems[:5]:
            click.echo(f"  {'':{width}}    line {problem.line}: {problem.reason}")
        if report.problem_count > 5:
            click.echo(f"  {'':{width}}    ... and {report.problem_count - 5:,} more: broadcast lists check")
    if audience.segments:
        cost = audience.cost()
        total = f"In all: {audience.recipients:,} recipients, {audience.segments:,} SMS segments"
        currency = next((line.currency for line in audience.lines if line.price is not None), "£")
        click.echo(total + (f", about {currency}{cost:,.2f}" if cost is not None else "") + ".")
    click.echo()


def reach(plan: Plan) -> str:
    """' and 12,410 recipients (24,820 SMS segments, about £488.95)' for the confirmation prompt."""
    audience = plan.audience
    if audience is None or not audience.lines:
        return ""
    words = f" and {audience.recipients:,} recipients"
    if audience.segments:
        cost = audience.cost()
        words += f" ({audience.segments:,} SMS segments" + (f", about £{cost:,.2f}" if cost is not None else "") + ")"
    return words


class ProgressBar:
    """Count, rate and time left per list channel. On a terminal one line, redrawn in place, holds every channel
    still sending (a finished one gets its own line); elsewhere a line per channel now and then."""

    def __init__(self, stream: object = None):
        self.stream = stream
        self.drawn = False
        self.live: dict[str, Progress] = {}
        self.last_plain: dict[str, float] = {}

    def __call__(self, progress: Progress) -> None:
        done = progress.done >= progress.total
        if not self._terminal():
            if done or time.monotonic() - self.last_plain.get(progress.channel, 0.0) >= PLAIN_EVERY:
                self.last_plain[progress.channel] = time.monotonic()
                click.echo(_line(progress), err=True)
            return
        self.clear()
        if done:
            self.live.pop(progress.channel, None)
            click.echo(_line(progress), err=True)
        else:
            self.live[progress.channel] = progress
        if self.live:
            import shutil  # its import costs --help 15 ms; only a progress bar needs it

            width = shutil.get_terminal_size().columns - 1
            click.echo(" | ".join(_line(p, compact=len(self.live) > 1) for p in self.live.values())[:width],
                       nl=False, err=True)
            self.drawn = True

    def clear(self) -> None:
        """Wipe a half-drawn bar before another line is printed."""
        if self.drawn:
            click.echo("\r\033[K", nl=False, err=True)
            self.drawn = False

    def _terminal(self) -> bool:
        return sys.stderr.isatty()


def _line(progress: Progress, compact: bool = False) -> str:
    done = progress.done >= progress.total
    left = progress.left
    eta = "done" if done else f"{_clock(left)} left" if left is not None else "starting"
    failed = f", {progress.failed:,} not sent" if progress.failed else ""
    if compact:
        return f"{progress.channel} {progress.done:,}/{progress.total:,} {eta}{failed}"
    return (f"{progress.channel}: {progress.done:,}/{progress.total:,} {_bar(progress)} {progress.rate:,.0f}/s "
            f"{eta}{failed}")


def _bar(progress: Progress, width: int = 20) -> str:
    filled = int(width * progress.done / progress.total) if progress.total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _clock(seconds: float | None) -> str:
    seconds = int(seconds or 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


BAR = ProgressBar()


@click.group("lists")
def lists_group() -> None:
    """Recipient lists for SMS and email (lists/*.csv).

    Example: broadcast lists check residents
    """


@lists_group.command("check")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (its schema key names the shape).")
@click.pass_context
def check(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Check lists row by row: bad rows with their line numbers, duplicates, opt-outs.

    Example: broadcast lists check residents
    """
    from broadcast.commands import emit, open_workspace
    from broadcast.prepare.recipients import OPT_OUT, check_list, describe

    workspace = open_workspace(ctx)
    folder = workspace.root / "lists"
    chosen = names or tuple(sorted(p.stem for p in folder.glob("*.csv") if p.stem != OPT_OUT))
    if as_json:  # counts and line numbers only: never a number or an address
        emit("lists-check", {"lists": [{"name": name, **describe(check_list(workspace, name))} for name in chosen]})
        return
    for name in chosen:
        report = check_list(workspace, name)
        click.secho(f"lists/{name}.csv: {report.summary()}", bold=True)
        for problem in report.problems:
            click.echo(f"  line {problem.line}: {problem.reason}" + ("" if problem.skipped else " (row kept)"))
        if report.problem_count > len(report.problems):
            click.echo(f"  ... and {report.problem_count - len(report.problems):,} more")


lists_group.phase = "prepare"  # type: ignore[attr-defined]
