"""Warn and inform: render an approved template and send it everywhere."""

from __future__ import annotations

import click

from broadcast.commands import SET_HELP, collect_sets, echo_rendering, open_workspace, phase


@phase("warn")
@click.command()
@click.argument("template")
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--only", multiple=True, metavar="CHANNEL", help="Send to this channel only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show exactly what would go where; send and log nothing.")
@click.pass_context
def warn(ctx: click.Context, template: str, pairs: tuple[str, ...], only: tuple[str, ...], dry_run: bool) -> None:
    """Render a template and send it to every channel.

    Example: broadcast warn school-closure --set school="Hillside Primary School" --set date=today
    --set reason=snow --set next_update=10:00 --dry-run
    """
    from broadcast.errors import BroadcastError
    from broadcast.preview import preview_warning

    workspace = open_workspace(ctx)
    values = collect_sets(workspace.template(template), pairs)
    if not dry_run:
        raise BroadcastError("sending is not available in this version: only --dry-run works yet",
                             hint="preview with --dry-run; the fan-out to channels is the next piece of work")
    preview = preview_warning(workspace, template, values, only=only)
    alert = preview.alert
    state = preview.approval
    click.secho(f"{template}: {preview.rendering.template.title}", bold=True)
    approval = state.status + (f" ({state.approval.by}, {state.approval.at[:10]})" if state.approval else "")
    click.secho(f"template  {approval}", fg="green" if state.approved else "yellow")
    click.echo(f"alert     {alert.status} {alert.msg_type}, sent {alert.sent}, expires {alert.infos[0].expires}")
    click.echo(f"area      {'; '.join(a.desc for a in alert.infos[0].areas)}")
    click.echo()
    echo_rendering(preview.rendering)
    click.secho("Channels", bold=True)
    shown = [*(p.channel for p in preview.plans), *(c for c, _ in preview.skipped)]
    width = max((len(c.name) for c in shown), default=0)
    for plan in preview.plans:
        click.echo(f"  {plan.channel.name:{width}}  {plan.channel.kind:13} {plan.language}  {plan.variant:8} "
                   f"{len(plan.text):5} characters")
    for channel, why in preview.skipped:
        click.echo(f"  {channel.name:{width}}  {channel.kind:13} skipped: {why}")
    click.echo()
    if not state.approved:
        click.secho(f"The template is {state.status}: it cannot go out as Actual without a second approver.",
                    fg="yellow")
    click.echo(f"Dry run: nothing was sent and nothing was logged. {len(preview.plans)} posts to "
               f"{len({p.channel.name for p in preview.plans})} channels would go out.")


COMMANDS = [warn]
