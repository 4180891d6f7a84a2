"""A warn process killed with SIGKILL mid fan-out, then `broadcast resend`: every endpoint gets exactly one post."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import VALUES, only_identifier

from broadcast.prepare.approvals import approve
from broadcast.prepare.templates import find_template
from broadcast.sandbox.server import CREDENTIALS
from broadcast.store import Store
from broadcast.workspace import Workspace

ENDPOINTS = 200


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_sigkill_mid_fanout_then_resend(workspace_dir, sandbox):
    channels = workspace_dir / "channels"
    (channels / "mastodon-council.toml").unlink()
    for n in range(ENDPOINTS):
        (channels / f"hook-{n:03d}.toml").write_text(
            f'kind = "webhook"\n[settings]\nurl = "{sandbox.url}/hooks/hook-{n:03d}"\n'
            '[secrets]\nsigning_secret = "env:TEST_WEBHOOK_SECRET"\n', encoding="utf-8")
    config = workspace_dir / "broadcast.toml"
    # 50 at a time, so the kill finds deliveries sent, in flight and not yet started.
    config.write_text(config.read_text(encoding="utf-8") + "\n[fanout]\nconcurrency = 50\n", encoding="utf-8")
    workspace = Workspace(workspace_dir)
    store = Store.open(workspace.db_path)
    approve(workspace, find_template(workspace, "school-closure"), "Alex Morgan, Head of Communications", store)
    store.close()
    for n in range(ENDPOINTS):
        sandbox.fault(f"hook-{n:03d}", latency=0.2)
    env = {**os.environ, "TEST_WEBHOOK_SECRET": CREDENTIALS["webhook"], "BROADCAST_OPERATOR": "duty-officer"}
    command = [sys.executable, "-m", "broadcast", "--workspace", str(workspace_dir)]
    sets = [f"--set={k}={v}" for k, v in VALUES.items()]
    process = subprocess.Popen([*command, "warn", "school-closure", *sets, "--yes"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(sandbox.received("webhook", accepted=True)) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    arrived = len(sandbox.received("webhook", accepted=True))
    assert 0 < arrived < ENDPOINTS, "the kill should land mid fan-out"

    identifier = only_identifier(workspace_dir / "broadcast.db")
    store = Store.open(workspace_dir / "broadcast.db")
    states = Counter(d["state"] for d in store.deliveries(identifier))
    assert sum(states.values()) == ENDPOINTS  # every delivery was written before the first byte went out
    assert states["sent"] < ENDPOINTS and states["pending"] > 0
    store.close()

    for n in range(ENDPOINTS):
        sandbox.fault(f"hook-{n:03d}", latency=0.0)
    resent = subprocess.run([*command, "resend", identifier, "--yes"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert resent.returncode == 0, resent.stdout + resent.stderr

    accepted = Counter(r.target for r in sandbox.received("webhook", accepted=True))
    assert len(accepted) == ENDPOINTS and set(accepted.values()) == {1}  # each endpoint exactly one post
    store = Store.open(workspace_dir / "broadcast.db")
    deliveries = store.deliveries(identifier)
    assert {d["state"] for d in deliveries} == {"sent"}
    results = Counter(e["channel"] for e in store.events() if e["type"] == "delivery_result"
                      and '"outcome":"sent"' in e["details"])
    assert len(results) == ENDPOINTS  # the log accounts for every delivery
    assert store.verify().ok
