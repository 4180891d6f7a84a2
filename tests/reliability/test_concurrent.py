"""Four warns started at once on one workspace: each is recorded, the chain holds, nobody sees a locked database."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest
from faultkit import command, environment, full_workspace, no_traceback, warn_args

from broadcast.store import Store
from broadcast.workspace import Workspace

PROCESSES = 4
RECIPIENTS = 200


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_four_warns_at_once_are_all_recorded_with_the_chain_intact(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url, recipients=RECIPIENTS)
    env = environment(sandbox.url)
    sandbox.fault("webhook", latency=0.05)  # keep all four in their fan-out at the same time
    processes = [subprocess.Popen(command(root, *warn_args(f"Parallel{n} School")), env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in range(PROCESSES)]
    results = [(process.wait(60), *process.communicate()) for process in processes]
    for code, out, err in results:
        assert code == 0, out + err
        assert "locked" not in out + err
        no_traceback(subprocess.CompletedProcess([], code, out, err))

    store = Store.open(root / "broadcast.db")
    alerts = store.alerts()
    assert sorted(a.infos[0].headline.split()[0] for a in alerts) == [f"Parallel{n}" for n in range(PROCESSES)]
    assert len({a.identifier for a in alerts}) == PROCESSES and len(store.incidents()) == PROCESSES
    channel_rows = sum(len(c.languages) for c in Workspace(root).channels.values() if c.kind != "govuk-notify")
    for alert in alerts:
        states = Counter(d["state"] for d in store.deliveries(alert.identifier))
        assert states == {"sent": channel_rows + RECIPIENTS}, (alert.identifier, states)
    # One recipient key for all four (they raced to create it), so a later resend can match every person.
    keys = {json.loads(e["details"])["key"] for e in store.events() if e["type"] == "recipients_selected"}
    assert len(keys) == 1, keys
    check = store.verify()
    assert check.ok and check.count == len(list(store.events())), check
    # The page published last was built after every alert was recorded: all four are on it.
    status = json.loads((root / "site" / "status.json").read_text(encoding="utf-8"))
    assert all(a.identifier in json.dumps(status) for a in alerts), status
    store.close()
    assert len(sandbox.received("notify", accepted=True)) == PROCESSES * RECIPIENTS
