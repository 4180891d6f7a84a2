"""A restored backup of the log reuses alert identifiers: a new warning must still reach every channel as new."""

from __future__ import annotations

import shutil

import pytest
from faultkit import PLATFORMS, accepted_by_target, environment, full_workspace, no_traceback, run, warn_args

from broadcast.store import Store


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_a_new_warning_after_restoring_an_older_log_reaches_every_channel(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url, channels=9)
    env = environment(sandbox.url)
    database = root / "broadcast.db"
    assert run(root, env, *warn_args("First School")).returncode == 0
    store = Store.open(database)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    backup = tmp_path / "backup.db"
    shutil.copyfile(database, backup)
    assert run(root, env, *warn_args("Second School")).returncode == 0  # A-2026-0002, then the log is lost

    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup, database)  # restored: it has never seen A-2026-0002
    third = run(root, env, *warn_args("Third School"))
    no_traceback(third)
    assert third.returncode == 0, third.stdout + third.stderr
    store = Store.open(database)
    # The marker beside the log remembers A-2026-0002 went out: the restored log goes on from there.
    assert [a.identifier.rsplit("-", 1)[1] for a in store.alerts()] == ["0001", "0003"]
    store.close()
    posted = accepted_by_target(sandbox, "Third School")
    kinds = {name: text.split('"')[1] for name, text in PLATFORMS.items()}
    for name, kind in kinds.items():  # every platform took it as a new post, the ones that dedupe by key included
        assert posted[kind] >= 1, (name, posted)
    assert posted["hook-00"] == 2 and posted["hook-01"] == 2, posted  # the partner hubs: en and cy, as new


@pytest.mark.real_clock
def test_a_second_workspace_on_the_same_accounts_is_never_taken_for_the_first(tmp_path, sandbox):
    env = environment(sandbox.url)
    first = full_workspace(tmp_path / "north", sandbox.url, channels=9)
    second = full_workspace(tmp_path / "south", sandbox.url, channels=9)  # the same accounts and partner hubs
    assert run(first, env, *warn_args("North School")).returncode == 0
    south = run(second, env, *warn_args("South School"))  # its own A-2026-0001
    no_traceback(south)
    assert south.returncode == 0, south.stdout + south.stderr
    posted = accepted_by_target(sandbox, "South School")
    kinds = {name: text.split('"')[1] for name, text in PLATFORMS.items()}
    for name, kind in kinds.items():
        assert posted[kind] >= 1, (name, posted)  # Mastodon and Bluesky dedupe by key: the keys differ
    assert posted["hook-00"] == 2 and posted["hook-01"] == 2, posted
