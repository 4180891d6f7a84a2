"""`broadcast store`: which log is in use, and moving a SQLite log to the PostgreSQL several duty officers share."""

from __future__ import annotations

import click

from broadcast.commands import JSON_HELP, emit, open_workspace, phase


@phase("prepare")
@click.group()
def store() -> None:
    """The log: which store is in use; move it to a shared PostgreSQL.

    Example: broadcast store info
    """


@store.command("info")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def store_info(ctx: click.Context, as_json: bool) -> None:
    """Say which store the workspace uses, its size and the chain head.

    Example: broadcast store info
    """
    from broadcast.store import open_store
    from broadcast.transfer import info

    workspace = open_workspace(ctx)
    opened = open_store(workspace, create=False, readonly=True)
    try:
        found = info(opened)
    finally:
        opened.close()
    if as_json:
        emit("store", found.to_dict())
        return
    size = f", {found.size_bytes / 1e6:,.1f} MB" if found.size_bytes is not None else ""
    click.echo(f"{'PostgreSQL' if found.kind == 'postgresql' else 'SQLite'}: {found.where}{size}")
    click.echo("  " + ", ".join(f"{table} {count:,}" for table, count in found.rows.items()))
    click.echo(f"  chain head: event {found.events:,}, {found.head}")


@store.command("migrate")
@click.option("--to", "to", required=True, metavar="URL",
              help="The PostgreSQL database: env:NAME (a variable holding postgresql://...), or a URL without a "
                   "password (libpq finds it in ~/.pgpass or $PGPASSWORD).")
@click.pass_context
def store_migrate(ctx: click.Context, to: str) -> None:
    """Copy this workspace's SQLite log into an empty PostgreSQL database, and verify both.

    Nothing in the SQLite file changes. Afterwards, point broadcast.toml at it ([store] url = "env:NAME") on every
    machine that sends.

    Example: broadcast store migrate --to env:BROADCAST_STORE_URL
    """
    from broadcast.store import Store
    from broadcast.transfer import migrate
    from broadcast.workspace import postgres_url

    workspace = open_workspace(ctx)
    url = postgres_url(to, "--to", None, "it would stay in your shell's history")
    source = Store.open(workspace.db_path, create=False)
    target = Store.open_url(url)
    try:
        done = migrate(source, target)
    finally:
        source.close()
        target.close()
    click.echo(f"Copied {', '.join(f'{table} {count:,}' for table, count in done.rows.items())} from "
               f"{source.where} to {target.where}.")
    for name, result in (("SQLite", done.source), ("PostgreSQL", done.target)):
        click.echo(f"{'OK' if result.ok else 'FAIL':5} {name:10} verifies: {result.count:,} events, head {result.head}"
                   + ("" if result.ok else f" ({result.reason})"))
    if not done.ok:
        from broadcast.errors import StoreError

        raise StoreError("the copy does not match the original", hint="keep using the SQLite log; report this")
    click.echo('Next: in broadcast.toml on every machine that sends, add [store] url = "env:BROADCAST_STORE_URL" '
               "(and export it); keep broadcast.db as the record of what came before.")


COMMANDS = [store]
