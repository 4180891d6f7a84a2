"""The log deleted, emptied or damaged between two commands: a clear error that says how to recover, nothing sent."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import SETS, invoke

from broadcast.store import Store

PAGE = 4096


def checkpointed(path: Path) -> tuple[int, dict[str, int]]:
    """Fold the WAL into the file; return its page size and each table's root page."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = dict(conn.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table'").fetchall())
    conn.close()
    return size, roots


def damage(path: Path, how: str) -> None:
    size, roots = checkpointed(path)
    noise = random.Random(how).randbytes
    if how == "deleted":
        path.unlink()
    elif how == "emptied":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "random bytes":
        path.write_bytes(noise(path.stat().st_size))
    else:  # a page of one table overwritten: the header is fine, SQLite opens it, and finds out when it reads it
        data = bytearray(path.read_bytes())
        start = (roots[how.split()[0]] - 1) * size
        data[start:start + size] = noise(size)
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["deleted", "emptied", "truncated", "random bytes", "events page", "alerts page",
                                 "deliveries page"])
def test_a_lost_or_damaged_log_stops_every_command_with_how_to_recover(live, sandbox, how):
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    database = live / "broadcast.db"
    checkpointed(database)
    good = live.parent / "copy-of-broadcast.db"
    shutil.copyfile(database, good)
    damage(database, how)
    sandbox.clear()

    for args in (["warn", "school-closure", *SETS, "--yes"], ["resend", "A-2026-0001", "--yes"], ["status"]):
        result = invoke(live, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        if how in ("deleted", "emptied"):
            said = {"deleted": "missing", "emptied": "empty"}[how]
            assert f"Error: the log database {database} is {said}, but this workspace has kept one" in result.stderr
            assert "hint: restore broadcast.db from the latest copy" in result.stderr
            assert f"delete {database}-id" in result.stderr  # the way to start afresh, on purpose only
        else:
            assert "Error: cannot use the log database" in result.stderr, result.stderr
            assert "hint: the file is damaged: move it aside (keep it: it is the record and evidence), " \
                   "restore the latest copy" in result.stderr
    # Nothing went out without a log to record it in (reading an instance's limits is not sending).
    assert [r.path for r in sandbox.received() if r.method != "GET"] == []

    # What the hint says works: keep the damaged file, put the copy back, and carry on where the log left off.
    if database.exists():
        database.rename(live / "broadcast.db.damaged")
    shutil.copyfile(good, database)
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 0 and "Alert A-2026-0002, incident" in result.output, result.output
    store = Store.open(database)
    assert store.verify().ok and [a.identifier for a in store.alerts()] == ["A-2026-0001", "A-2026-0002"]
    store.close()


def test_a_new_workspace_still_starts_its_log_and_marks_it(workspace_dir):
    database = workspace_dir / "broadcast.db"
    Store.open(database).close()
    assert database.exists() and (workspace_dir / "broadcast.db-id").is_file()
    Store.open(database).close()  # and opens it again as before
