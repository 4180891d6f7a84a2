"""After a kill mid-list, Twilio is asked what it already made (by recipient, day and text): few left uncertain."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest
from faultkit import command, environment, full_workspace, no_traceback, run, warn_args

from broadcast.store import Store

RECIPIENTS = 1500


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_a_resend_after_a_kill_asks_twilio_and_texts_nobody_twice(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url, channels=7, recipients=RECIPIENTS, twilio=True)
    (root / "channels" / "sms-residents.toml").unlink()  # Twilio alone: the list goes out through it only
    env = environment(sandbox.url)
    sandbox.store("twilio")["rate_limit"] = None
    sandbox.fault("twilio", latency=0.05)  # 50 in flight at a time: a kill finds many mid-request
    process = subprocess.Popen(command(root, *warn_args("Kill Twilio School")), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(sandbox.received("twilio", accepted=True)) < 300:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    store = Store.open(root / "broadcast.db")
    [identifier] = [a.identifier for a in store.alerts()]
    in_flight = store.conn.execute("SELECT count(*) FROM deliveries WHERE channel = 'sms-twilio' AND state = "
                                   "'sending'").fetchone()[0]
    store.close()
    assert in_flight > 0  # the kill left requests in flight, most of which Twilio had made

    sandbox.fault("twilio", latency=0.0)
    resent = run(root, env, "resend", identifier, "--yes", timeout=120)
    no_traceback(resent)
    assert resent.returncode == 0, resent.stdout + resent.stderr  # nothing left to check by hand
    texts = Counter(r.body["To"] for r in sandbox.received("twilio", accepted=True))
    assert len(texts) == RECIPIENTS and set(texts.values()) == {1}  # everyone once, nobody twice
    store = Store.open(root / "broadcast.db")
    states = Counter(d["state"] for d in store.deliveries(identifier, recipients=True))
    assert states == {"sent": RECIPIENTS}
    assert store.verify().ok
    store.close()
