"""Warn and inform: the fallback page, its feeds and CAP files."""

from __future__ import annotations

import click

from broadcast.commands import JSON_HELP, counted, emit, open_workspace, phase


@phase("warn")
@click.group()
def page() -> None:
    """Build, publish and preview the fallback page, feeds and CAP files."""


@page.command("build")
@click.option("--output", "-o", type=click.Path(file_okay=False), metavar="DIR",
              help="Folder to write (default: the first directory target in [page], else site/).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def page_build(ctx: click.Context, output: str | None, as_json: bool) -> None:
    """Build the site from the log into a local folder, without publishing it anywhere.

    Example: broadcast page build
    """
    from pathlib import Path

    from broadcast.public.pagetext import count_text
    from broadcast.public.site import build_into
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        built = build_into(workspace, store, Path(output) if output else None)
    finally:
        store.close()
    summary, files = built.site.summary, built.site.files
    if as_json:
        emit("page-build", {"directory": str(built.directory), "files": len(files), "bytes": built.site.size,
                            "changed": len(built.written.written), "current_alerts": len(summary.current),
                            "incidents": len(summary.incidents), "log": {"events": summary.log[0],
                                                                          "head": summary.log[1]}})
        return
    click.echo(f"Built {counted(len(files), 'file')} ({built.site.size:,} bytes) in {built.directory}: "
               f"{count_text('en', len(summary.current)).lower()}, {len(summary.incidents)} incident "
               f"page{'' if len(summary.incidents) == 1 else 's'} in each language, {len(built.written.written)} "
               f"files changed.")
    click.echo(f"index.html {len(files['index.html']):,} bytes; feed.atom {len(files['feed.atom']):,} bytes.")
    click.echo("Preview: broadcast page serve    Publish: broadcast page publish")


@page.command("publish")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def page_publish(ctx: click.Context, as_json: bool) -> None:
    """Build the site and publish it to every target in [page], reading each one back.

    Exits 0 when every target was published and verified, 1 when some failed, 3 when all failed.

    Example: broadcast page publish
    """
    from broadcast.errors import NOTHING_DELIVERED, SOME_FAILED
    from broadcast.public.pagetext import count_text
    from broadcast.public.publish import publish_site
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        report = publish_site(workspace, store)
    finally:
        store.close()
    good = len(report.results) - len(report.failed)
    code = 0 if not report.failed else NOTHING_DELIVERED if not good else SOME_FAILED
    if as_json:
        from dataclasses import asdict

        emit("page-publish", {"targets": [asdict(r) for r in report.results], "published": good,
                              "current_alerts": len(report.site.summary.current)})
        ctx.exit(code)
    for line in report.lines():
        click.secho(line, fg="red" if line.startswith("FAIL") else None)
    click.echo(f"{good} of {counted(len(report.results), 'target')} published "
               f"({count_text('en', len(report.site.summary.current)).lower()}).")
    if report.failed:
        click.echo("Fix the failed target, then run: broadcast page publish")
        ctx.exit(code)


@page.command("serve")
@click.option("--port", "-p", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1.")
@click.pass_context
def page_serve(ctx: click.Context, port: int) -> None:
    """Build the site, then preview it at http://127.0.0.1:PORT/ (Ctrl+C to stop).

    Example: broadcast page serve --port 8000
    """
    from broadcast.public.site import build_into, preview_server
    from broadcast.store import open_store

    workspace = open_workspace(ctx)
    store = open_store(workspace)
    try:
        built = build_into(workspace, store)
    finally:
        store.close()
    server = preview_server(built.directory, port)
    click.echo(f"Serving {built.directory} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.server_close()


COMMANDS = [page]
