"""The log cannot be written mid-send (the disk fills, another process holds it): say what happened, and resend."""

from __future__ import annotations

import resource
import signal
import subprocess
import time
from collections import Counter

import pytest
from conftest import only_identifier
from faultkit import IDEMPOTENT, PLATFORMS, command, environment, full_workspace, no_traceback, run, warn_args

from broadcast.store import Store

RECIPIENTS = 2000


def limited(size: int):
    def apply() -> None:  # in the child: files may not grow past `size` bytes, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return apply


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_a_disk_filling_mid_send_is_reported_truthfully_and_resend_completes(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url, recipients=RECIPIENTS)
    env = environment(sandbox.url)
    sandbox.store("notify")["rate_limit"] = None
    sandbox.fault("notify", latency=0.002)
    database = root / "broadcast.db"
    store = Store.open(database)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = database.stat().st_size
    store.close()
    started = time.monotonic()
    full = subprocess.run(command(root, *warn_args("Full School")), env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=limited(size + 3_000_000))  # the WAL fills mid-list
    no_traceback(full)
    out = full.stdout + full.stderr
    assert full.returncode in (1, 3), out
    assert "refused before anything was sent" not in out and "cannot use the log database" not in out, out
    assert "Stopped: the log could not be written (" in full.stdout, out
    identifier = only_identifier(database)
    assert f"then: broadcast resend {identifier}" in full.stdout, out
    assert any(line.startswith(("OK    ", "CHECK ", "STOP  ")) for line in full.stdout.splitlines()), out
    before = len(sandbox.received("notify", accepted=True))
    assert 0 < before < RECIPIENTS  # it stopped mid-list
    assert time.monotonic() - started < 60

    resent = run(root, env, "resend", identifier, "--yes", timeout=120)
    no_traceback(resent)
    assert resent.returncode in (0, 1), resent.stdout + resent.stderr
    phones = Counter(r.body["phone_number"] for r in sandbox.received("notify", accepted=True))
    assert len(phones) == RECIPIENTS and set(phones.values()) == {1}  # everyone once, nobody twice
    kinds = {name: text.split('"')[1] for name, text in PLATFORMS.items()}
    posts = Counter(r.target if r.platform == "webhook" else r.platform for r in sandbox.received(accepted=True)
                    if r.platform != "notify")
    for name, kind in kinds.items():
        if kind in IDEMPOTENT:
            assert posts[kind] == 1, (name, posts)
    assert all(count <= 2 for count in posts.values()), posts  # two languages at most, never a post twice
    store = Store.open(database)
    assert store.verify().ok
    assert {d["state"] for d in store.deliveries(identifier, recipients=True)} == {"sent"}
    store.close()


HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the write lock, as another program holding the log would
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@pytest.mark.real_clock
def test_a_lock_held_by_another_process_mid_send_is_reported_and_resend_completes(tmp_path, sandbox):
    import sys

    root = full_workspace(tmp_path / "ws", sandbox.url, recipients=RECIPIENTS)
    env = environment(sandbox.url, BROADCAST_LOCK_WAIT="1")
    sandbox.store("notify")["rate_limit"] = None
    sandbox.fault("notify", latency=0.005)
    database = root / "broadcast.db"
    warn = subprocess.Popen(command(root, *warn_args("Locked School")), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(sandbox.received("notify", accepted=True)) < 100:
        assert time.monotonic() < deadline and warn.poll() is None, "the send should be mid-list"
        time.sleep(0.01)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(database), "4"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    out, err = warn.communicate(timeout=60)
    holder.wait(10)
    no_traceback(subprocess.CompletedProcess([], warn.returncode, out, err))
    assert warn.returncode in (1, 3), out + err
    assert "Stopped: the log could not be written (database is locked)" in out, out + err
    assert "refused before anything was sent" not in out + err
    identifier = only_identifier(database)
    assert f"then: broadcast resend {identifier}" in out
    assert len(sandbox.received("notify", accepted=True)) < RECIPIENTS

    resent = run(root, env, "resend", identifier, "--yes", timeout=120)
    no_traceback(resent)
    assert resent.returncode in (0, 1), resent.stdout + resent.stderr
    phones = Counter(r.body["phone_number"] for r in sandbox.received("notify", accepted=True))
    assert len(phones) == RECIPIENTS and set(phones.values()) == {1}
    store = Store.open(database)
    assert store.verify().ok
    store.close()
