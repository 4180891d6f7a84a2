"""Prepare: workspace set-up, templates and their sign-off, channel accounts."""

from __future__ import annotations

import click

from broadcast.commands import SET_HELP, collect_sets, echo_rendering, open_workspace, phase


@phase("prepare")
@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create a new workspace from the example content.

    Example: broadcast init ~/council-alerts
    """
    from pathlib import Path

    from broadcast.scaffold import create_workspace

    root = create_workspace(Path(directory))
    click.echo(f"Created a workspace in {root}")
    click.echo("Next: edit broadcast.toml, then run: broadcast templates lint")


@phase("prepare")
@click.group()
def templates() -> None:
    """List, preview, lint and approve message templates."""


@templates.command("list")
@click.pass_context
def templates_list(ctx: click.Context) -> None:
    """List templates with their approval state.

    Example: broadcast templates list
    """
    from broadcast.approvals import approval_states

    rows = approval_states(open_workspace(ctx))
    width = max((len(r.name) for r in rows), default=0)
    for row in rows:
        state = row.state.status
        if row.state.approval:
            state += f" ({row.state.approval.by}, {row.state.approval.at[:10]})"
        colour = "green" if row.state.approved else "yellow"
        click.echo(f"{row.name:{width}}  {row.title}")
        click.secho(f"{'':{width}}  {state}", fg=colour)


@templates.command("show")
@click.argument("name")
@click.pass_context
def templates_show(ctx: click.Context, name: str) -> None:
    """Show a template's metadata, variables and checklist.

    Example: broadcast templates show school-closure
    """
    from broadcast.approvals import approval_state, read_approvals
    from broadcast.variables import quote

    workspace = open_workspace(ctx)
    template = workspace.template(name)
    state = approval_state(template, read_approvals(workspace))
    cap = template.cap
    click.secho(f"{template.name}: {template.title}", bold=True)
    click.echo(template.summary)
    click.echo(f"file      {template.path}")
    click.echo(f"sha256    {template.sha256}")
    click.echo(f"approval  {state.status}" + (f": {state.approval.by}, {state.approval.at}" if state.approval else ""))
    click.echo(f"CAP       {cap.event}; {', '.join(cap.category)}; {cap.urgency}/{cap.severity}/{cap.certainty}; "
               f"response {', '.join(cap.response_type)}; expires after {cap.expires_minutes} minutes")
    click.echo("variables")
    for var in template.variables.values():
        click.echo(f"  {var.name:14} {var.type:8} {var.label}: {var.describe()} (e.g. {quote(var.example)})")
    click.echo("checklist")
    for item, where in template.checklist.items():
        click.echo(f"  {item:14} {', '.join(where)}")
    if template.translation_review:
        click.secho(f"translation: {', '.join(template.translation_review)} awaits review. "
                    f"{template.translation_note}", fg="yellow")
    example = " ".join(f"--set {n}={quote(v.example)}" for n, v in template.variables.items())
    click.echo(f"\nPreview: broadcast templates preview {template.name} {example}")


@templates.command("preview")
@click.argument("name")
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.pass_context
def templates_preview(ctx: click.Context, name: str, pairs: tuple[str, ...]) -> None:
    """Render every variant in every language, with character counts.

    Variables not given take the template's example values, and the preview says which.

    Example: broadcast templates preview school-closure --set school="Hillside Primary School" --set date=today
    """
    from broadcast.templates import example_values, render

    workspace = open_workspace(ctx)
    template = workspace.template(name)
    given = collect_sets(template, pairs)
    filled = [n for n in template.variables if n not in given]
    values = {**{n: v for n, v in example_values(template).items() if n in filled}, **given}
    rendering = render(template, workspace, values)
    click.secho(f"{template.name}: {template.title}", bold=True)
    if filled:
        click.secho(f"Example values used for: {', '.join(filled)}", fg="yellow")
    click.echo()
    echo_rendering(rendering)


@templates.command("lint")
@click.argument("names", nargs=-1)
@click.pass_context
def templates_lint(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Check templates: syntax, variables, variants and the message checklist.

    Exits 2 if any template has an error; warnings alone exit 0.

    Example: broadcast templates lint
    """
    from broadcast.errors import REFUSED
    from broadcast.lint import lint_template, lint_workspace

    workspace = open_workspace(ctx)
    if names:
        findings = [f for n in names for f in lint_template(workspace.template(n), workspace)]
    else:
        findings = lint_workspace(workspace)
    for finding in findings:
        click.secho(str(finding), fg="red" if finding.level == "error" else "yellow")
    errors = sum(f.level == "error" for f in findings)
    count = len(names) or len(workspace.template_names())
    click.echo(f"{count} templates checked: {errors} errors, {len(findings) - errors} warnings.")
    if errors:
        ctx.exit(REFUSED)


@templates.command("approve")
@click.argument("name")
@click.option("--by", required=True, metavar='"NAME, ROLE"', help="Who signs it off, with their role.")
@click.pass_context
def templates_approve(ctx: click.Context, name: str, by: str) -> None:
    """Record sign-off of a template's current content (its SHA-256).

    Editing the file afterwards makes it unapproved until it is approved again.

    Example: broadcast templates approve school-closure --by "Alex Morgan, Head of Communications"
    """
    from broadcast.approvals import approve
    from broadcast.errors import PolicyError
    from broadcast.lint import lint_template

    workspace = open_workspace(ctx)
    template = workspace.template(name)
    errors = [f for f in lint_template(template, workspace) if f.level == "error"]
    if errors:
        raise PolicyError(f"{name} has {len(errors)} lint errors; the first: {errors[0].message}",
                          hint=f"fix them first: broadcast templates lint {name}")
    store = workspace.store()
    try:
        approval = approve(workspace, template, by, store)
    finally:
        store.close()
    click.echo(f"Approved {name} ({approval.sha256[:12]}) by {approval.by} at {approval.at}.")


@phase("prepare")
@click.group()
def channels() -> None:
    """List the channel accounts of the workspace."""


@channels.command("list")
@click.pass_context
def channels_list(ctx: click.Context) -> None:
    """List channel accounts: kind, languages and whether each is on.

    Example: broadcast channels list
    """
    workspace = open_workspace(ctx)
    rows = workspace.channels.values()
    width = max((len(c.name) for c in rows), default=0)
    for channel in rows:
        state = "on" if channel.enabled else "off"
        flags = " exercise" if channel.exercise else ""
        click.echo(f"{channel.name:{width}}  {channel.kind:13} {state:3} {','.join(channel.languages):12}{flags}"
                   f"  {channel.description}")


COMMANDS = [init, templates, channels]
