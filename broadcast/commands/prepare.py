"""Prepare: workspace set-up, templates and their sign-off, channel accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from broadcast.commands import (
    JSON_HELP,
    SET_HELP,
    collect_sets,
    counted,
    echo_rendering,
    emit,
    open_workspace,
    phase,
    to_path,
)
from broadcast.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


@phase("prepare")
@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create a new workspace from the example content.

    Example: broadcast init ~/council-alerts
    """
    from pathlib import Path

    from broadcast.prepare.scaffold import create_workspace

    root = create_workspace(Path(directory))
    click.echo(f"Created a workspace in {root}")
    click.echo("Next: edit broadcast.toml, then run: broadcast templates lint")


@phase("prepare")
@click.group()
def templates() -> None:
    """List, preview, lint and approve message templates."""


@templates.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def templates_list(ctx: click.Context, as_json: bool) -> None:
    """List templates with their approval state.

    Example: broadcast templates list
    """
    from broadcast.errors import SOME_FAILED
    from broadcast.prepare.approvals import approval_states

    rows = approval_states(open_workspace(ctx))
    if as_json:
        emit("templates", {"templates": [
            {"name": r.name, "title": r.title, "state": r.state.status if r.state else "broken",
             "approved": bool(r.state and r.state.approved),
             "approved_by": r.state.approval.by if r.state and r.state.approval else None,
             "approved_at": r.state.approval.at if r.state and r.state.approval else None,
             "error": r.error.message if r.error else None} for r in rows]})
        ctx.exit(SOME_FAILED if any(r.error for r in rows) else 0)
    width = max((len(r.name) for r in rows), default=0)
    for row in rows:
        if row.error or not row.state:
            click.secho(f"{row.name:{width}}  BROKEN: {row.error.message if row.error else 'unreadable'}", fg="red")
            if row.error and row.error.hint:
                click.echo(f"{'':{width}}  hint: {row.error.hint}")
            continue
        state = row.state.status
        if row.state.approval:
            state += f" ({row.state.approval.by}, {row.state.approval.at[:10]})"
        colour = "green" if row.state.approved else "yellow"
        click.echo(f"{row.name:{width}}  {row.title}")
        click.secho(f"{'':{width}}  {state}", fg=colour)
    if any(row.error for row in rows):
        ctx.exit(SOME_FAILED)  # listed, but a script should know a file needs fixing


@templates.command("show")
@click.argument("name")
@click.pass_context
def templates_show(ctx: click.Context, name: str) -> None:
    """Show a template's metadata, variables and checklist.

    Example: broadcast templates show school-closure
    """
    from broadcast.prepare.approvals import approval_state, read_approvals
    from broadcast.prepare.templates import find_template
    from broadcast.prepare.variables import quote

    workspace = open_workspace(ctx)
    template = find_template(workspace, name)
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
    from broadcast.prepare.templates import example_values, find_template, render

    workspace = open_workspace(ctx)
    template = find_template(workspace, name)
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
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def templates_lint(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Check templates: syntax, variables, variants and the message checklist.

    Exits 2 if any template has an error; warnings alone exit 0.

    Example: broadcast templates lint
    """
    from broadcast.errors import REFUSED
    from broadcast.prepare.lint import lint_template, lint_workspace
    from broadcast.prepare.templates import find_template

    workspace = open_workspace(ctx)
    if names:
        findings = [f for n in names for f in lint_template(find_template(workspace, n), workspace)]
    else:
        findings = lint_workspace(workspace)
    if as_json:
        emit("lint", {"findings": [{"template": f.template, "level": f.level, "message": f.message,
                                    "blocks_approval": f.blocking} for f in findings]})
        ctx.exit(REFUSED if any(f.level == "error" for f in findings) else 0)
    for finding in findings:
        click.secho(str(finding), fg="red" if finding.level == "error" else "yellow")
    errors = sum(f.level == "error" for f in findings)
    count = len(names) or len(workspace.template_names())
    click.echo(f"{counted(count, 'template')} checked: {counted(errors, 'error')}, "
               f"{counted(len(findings) - errors, 'warning')}.")
    if errors:
        ctx.exit(REFUSED)


@templates.command("approve")
@click.argument("name")
@click.option("--by", required=True, metavar='"NAME, ROLE"', help="Who signs it off, with their role.")
@click.option("--force", is_flag=True, help="Approve in spite of lint errors (needs --reason; flagged in the review).")
@click.option("--reason", help="Why --force was needed.")
@click.pass_context
def templates_approve(ctx: click.Context, name: str, by: str, force: bool, reason: str | None) -> None:
    """Record sign-off of a template's current content (its SHA-256).

    Editing the file afterwards makes it unapproved until it is approved again.

    Example: broadcast templates approve school-closure --by "Alex Morgan, Head of Communications"
    """
    from broadcast.errors import PolicyError
    from broadcast.prepare.approvals import approve
    from broadcast.prepare.lint import lint_template
    from broadcast.prepare.templates import find_template
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    template = find_template(workspace, name)
    errors = [f for f in lint_template(template, workspace) if f.blocking]
    if errors and not force:
        raise PolicyError(f"{name} has {counted(len(errors), 'lint finding')} to settle before approval; the first: "
                          f"{errors[0].message}",
                          hint=f"fix them first (broadcast templates lint {name}); if it must be approved as it is: "
                          "--force --reason \"...\" (flagged in the review)")
    if force and not (reason or "").strip():
        raise PolicyError("--force needs --reason", hint='e.g. --reason "Welsh checked by phone with the translator"')
    store = open_store(workspace)
    try:
        approval = approve(workspace, template, by, store, forced=reason if errors else None)
    finally:
        store.close()
    click.echo(f"Approved {name} ({approval.sha256[:12]}) by {approval.by} at {approval.at}.")


@phase("prepare")
@click.group()
def channels() -> None:
    """List, check, and switch off or on the channel accounts."""


@channels.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def channels_list(ctx: click.Context, as_json: bool) -> None:
    """List channel accounts: kind, languages and whether each is on.

    Example: broadcast channels list
    """
    from broadcast.send.sending import switched_off
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    rows = workspace.channels.values()
    killed: dict[str, str] = {}
    if workspace.store_url() or workspace.db_path.exists():  # no log yet: nothing was ever switched off
        store = open_store(workspace)
        killed = switched_off(store)
        store.close()
    broken = workspace.broken_channels
    if as_json:
        emit("channels", {"channels": [
            {"name": c.name, "kind": c.kind, "on": c.enabled and c.name not in killed, "enabled": c.enabled,
             "switched_off": killed.get(c.name), "languages": list(c.languages), "exercise": c.exercise,
             "description": c.description, "error": None} for c in rows] + [
            {"name": name, "kind": None, "on": False, "enabled": None, "switched_off": None, "languages": [],
             "exercise": None, "description": "", "error": fault.error.message} for name, fault in broken.items()]})
        return
    width = max([len(c.name) for c in rows] + [len(name) for name in broken], default=0)
    for name, fault in broken.items():
        click.secho(f"{name:{width}}  {'?':13} BROKEN  {fault.error.message}", fg="red")
        if fault.error.hint:
            click.echo(f"{'':{width}}  hint: {fault.error.hint}")
    for channel in rows:
        state = "off" if not channel.enabled or channel.name in killed else "on"
        flags = " exercise" if channel.exercise else ""
        click.echo(f"{channel.name:{width}}  {channel.kind:13} {state:3} {','.join(channel.languages):12}{flags}"
                   f"  {channel.description}")
        if channel.name in killed:
            click.secho(f"{'':{width}}  {killed[channel.name]}", fg="red")


@channels.command("check")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def channels_check(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Verify each channel's credentials without posting anything.

    Exits 1 if any channel fails its check.

    Example: broadcast channels check mastodon-council
    """
    from broadcast.channels.checks import check_channels
    from broadcast.errors import SOME_FAILED

    results = check_channels(open_workspace(ctx), names)
    if as_json:
        from dataclasses import asdict

        emit("channel-checks", {"checks": [asdict(r) for r in results]})
        ctx.exit(0 if all(r.ok for r in results) else SOME_FAILED)
    width = max((len(r.channel) for r in results), default=0)
    for result in results:
        click.secho(f"{'OK' if result.ok else 'FAIL':5} {result.channel:{width}}  {result.detail}",
                    fg=None if result.ok else "red")
        if result.hint:
            click.echo(f"      hint: {result.hint}")
    if not all(r.ok for r in results):
        ctx.exit(SOME_FAILED)


@channels.command("disable")
@click.argument("name")
@click.option("--reason", required=True, help="Why (it is logged and shown wherever the channel is skipped).")
@click.pass_context
def channels_disable(ctx: click.Context, name: str, reason: str) -> None:
    """Switch a channel off (the kill switch): every command skips it until it is enabled.

    Example: broadcast channels disable x-council --reason "account compromised"
    """
    _switch(ctx, name, on=False, reason=reason)
    click.echo(f"{name} is off. Every warn, resend and cancel will skip it until: broadcast channels enable {name}")


@channels.command("enable")
@click.argument("name")
@click.pass_context
def channels_enable(ctx: click.Context, name: str) -> None:
    """Switch a channel back on after `channels disable`.

    Example: broadcast channels enable x-council
    """
    _switch(ctx, name, on=True, reason=None)
    click.echo(f"{name} is on again.")


def _switch(ctx: click.Context, name: str, *, on: bool, reason: str | None) -> None:
    from broadcast.channels import select_channels
    from broadcast.prepare.approvals import operator
    from broadcast.send.sending import switch
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    select_channels(workspace, (name,))
    store = open_store(workspace)
    try:
        switch(store, name, on=on, actor=operator(), reason=reason)
    finally:
        store.close()


@phase("prepare")
@click.command()
@click.option("--port", default=8025, show_default=True, type=click.IntRange(1, 65535), help="Port on 127.0.0.1.")
@click.option("--mail-port", type=click.IntRange(1, 65535), help="The SMTP server's port (default: --port + 1).")
@click.option("--rehearse", "into", type=click.Path(file_okay=False), callback=to_path,
              help="Copy this workspace into DIR (new) with every channel pointed at this sandbox, then serve.")
@click.option("--env", "show_env", is_flag=True, help="Print the exports a rehearsal copy needs, and exit.")
@click.pass_context
def sandbox(ctx: click.Context, port: int, mail_port: int | None, into: Path | None, show_env: bool) -> None:
    """Emulate every platform, and an SMTP server, on 127.0.0.1 for drills and training.

    With --rehearse DIR, a copy of this workspace (templates, channels, approvals; the fictional example lists,
    never yours) has every channel pointed here; run from a rehearsal copy, it points it here again. Open
    http://127.0.0.1:8025/ to see what each platform received.

    Example: broadcast sandbox --rehearse ../rehearsal, then in another terminal:
    cd ../rehearsal && . ./sandbox.env && broadcast warn ...
    """
    from pathlib import Path

    from broadcast.drill import ENV_FILE, copy_workspace, is_rehearsal, point_at_sandbox
    from broadcast.sandbox.mail import start_mail
    from broadcast.sandbox.server import Sandbox, serve
    from broadcast.workspace import Workspace, find_root

    mail = mail_port or port + 1
    try:
        here: Path | None = find_root(explicit=ctx.find_root().obj.get("workspace"))
    except ConfigError:
        here = None
    target = None
    if into is not None:
        if here is None:
            from broadcast.prepare.scaffold import EXAMPLE

            here = EXAMPLE
        target = copy_workspace(here, into)
    elif here is not None and is_rehearsal(here):
        target = here
    if show_env:
        if target is None or not (target / ENV_FILE).is_file():
            raise ConfigError(here or Path.cwd(), None, "this is not a rehearsal copy",
                              "make one: broadcast sandbox --rehearse DIR (it writes DIR/sandbox.env)")
        click.echo((target / ENV_FILE).read_text(encoding="utf-8"), nl=False)
        return
    check_free(port, "--port")
    check_free(mail, "--mail-port")
    url = f"http://127.0.0.1:{port}"
    if target is not None:
        from broadcast.drill import sign_off_copy
        from broadcast.store import Store

        point_at_sandbox(Workspace(target), url, mail)
        store = Store.open(target / "broadcast.db")
        try:
            sign_off_copy(Workspace(target), store, "Rehearsal, automatic sign-off (rehearsal copy only)")
        finally:
            store.close()
        click.echo(f"Rehearsal copy: {target} (every channel points here; nothing reaches a real account)")
        click.echo(f"In another terminal: cd {target} && . ./{ENV_FILE} && broadcast warn TEMPLATE --set ...")
    click.echo(f"Sandbox on {url}/ (what each platform received), SMTP on 127.0.0.1:{mail}. Ctrl-C to stop.")
    emulated = Sandbox()
    mail_server, _ = start_mail(emulated, port=mail)  # email lands in the same log the web page shows
    try:
        serve(port=port, sandbox=emulated)
    finally:
        mail_server.stop()


def check_free(port: int, option: str) -> None:
    """Refuse a port already taken, in one line, before anything starts."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigError(f"{option} {port}", None, "the port is already in use (another sandbox?)",
                              f"stop it, or choose another: {option} {port + 10}") from None


@phase("prepare")
@click.command()
@click.option("--keep", type=click.Path(file_okay=False), help="Run in this (new) folder and keep it.")
@click.option("--no-faults", is_flag=True, help="Run without the injected platform faults.")
@click.pass_context
def drill(ctx: click.Context, keep: str | None, no_faults: bool) -> None:
    """Rehearse a whole incident against the local sandbox, safely.

    In a copy of the workspace: checks, an exercise warning, an update, a correction, the all-clear,
    closing, and the review, with platform faults injected. Nothing leaves 127.0.0.1.

    Example: broadcast drill
    """
    from pathlib import Path

    from broadcast.drill import run_drill
    from broadcast.errors import SOME_FAILED
    from broadcast.workspace import Workspace, find_root

    try:
        source = Workspace(find_root(explicit=ctx.find_root().obj.get("workspace")))
    except ConfigError:
        from broadcast.prepare.scaffold import EXAMPLE

        source = Workspace(EXAMPLE)
    report = run_drill(source, into=Path(keep) if keep else None, faults=not no_faults, echo=click.echo)
    click.echo()
    click.echo(f"Sandbox received {counted(report.posts, 'post')}; the drill took {report.seconds:.1f} s.")
    if keep:
        click.echo(f"Page:  {report.root / 'site' / 'index.html'}")
        click.echo(f"Log:   {report.root / 'broadcast.db'} ({report.events} events, head {report.head[:16]}...)")
        click.echo(f"Next: open the page, read the timeline (broadcast -w {report.root} review verify), or send more "
                   f"to it: broadcast -w {report.root} sandbox")
    else:
        import shutil

        shutil.rmtree(report.root, ignore_errors=True)  # a drill leaves nothing behind unless asked to
        click.echo(f"Log:   {report.events} events, head {report.head[:16]}... (the copy is removed; --keep DIR "
                   "keeps it, with its page and log)")
    if not report.ok:
        ctx.exit(SOME_FAILED)


COMMANDS = [init, templates, channels, sandbox, drill]
