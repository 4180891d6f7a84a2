"""Ctrl-C and SIGTERM sent to a real `broadcast warn` process mid-send, as a duty officer or a service manager would.

What must hold: nothing new starts after the signal, what was in flight settles or is marked uncertain, the page is
published again, the exact resend line is printed, the exit code is 130; and `resend` then finishes the job without
sending anyone anything twice. A second Ctrl-C exits at once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter

import pytest
from faultkit import IDEMPOTENT, PLATFORMS, SMS, command, environment, full_workspace, no_traceback, run, warn_args

from broadcast.store import Store

RECIPIENTS = 3000


def started(sandbox, platform: str, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(sandbox.received(platform)) < at_least:
        assert time.monotonic() < deadline, f"{platform} never got {at_least} requests"
        time.sleep(0.01)


@pytest.mark.real_clock  # broadcast runs in a subprocess, against this process's sandbox
@pytest.mark.parametrize("number, said", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_signal_mid_send_stops_new_deliveries_and_says_how_to_finish(tmp_path, sandbox, number, said):
    root = full_workspace(tmp_path / "ws", sandbox.url, recipients=RECIPIENTS, twilio=True)
    config = root / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + "stop_grace = 1\n", encoding="utf-8")
    env = environment(sandbox.url)
    for store in ("notify", "twilio"):
        sandbox.store(store)["rate_limit"] = None
    for target in ("notify", "twilio"):
        sandbox.fault(target, latency=0.02)  # 6,000 texts take a while: the signal lands mid-list
    sandbox.fault("x", latency=3)  # and finds a post in flight past the grace, on a platform that cannot dedupe
    process = subprocess.Popen(command(root, *warn_args("Signal School")), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    started(sandbox, "twilio", 100)
    started(sandbox, "x", 1)
    signalled = time.monotonic()
    process.send_signal(number)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    no_traceback(subprocess.CompletedProcess([], 130, out, err))
    assert f"Stopping ({said}): nothing new will be sent" in err

    # Nothing new started: every request the platforms saw began before the signal (or just after, on its way).
    late = [r for r in sandbox.received() if r.at > signalled + 0.5]
    assert not late, [(r.platform, r.at - signalled) for r in late[:5]]
    store = Store.open(root / "broadcast.db")
    [alert] = store.alerts()
    identifier = alert.identifier
    states = Counter((d["channel"], d["state"]) for d in store.deliveries(identifier))
    assert states[(SMS, "pending")] > 0 and states[("sms-twilio", "pending")] > 0  # stopped mid-list
    assert not [key for key in states if key[1] == "sending"]  # all settled: sent, uncertain or not started
    assert states[("x-council", "uncertain")] == 1  # in flight at the signal, cut after the grace: may have landed
    published = json.loads((root / "site" / "status.json").read_text(encoding="utf-8"))["log"]
    assert published["events"] == store.anchor()[0]  # published again after the stop was settled in the log
    store.close()
    assert f"Stopped by {said}: " in out and f"Next: to finish the job: broadcast resend {identifier}" in out
    assert "STOP  sms-residents" in out

    before = len(sandbox.received())
    dry = run(root, env, "resend", identifier, "--dry-run")
    assert dry.returncode == 0 and "Dry run: nothing was sent" in dry.stdout
    assert "x-council (en-GB)  1 may have gone out already: left alone" in dry.stdout
    assert SMS in dry.stdout and "people pending" in dry.stdout
    assert len(sandbox.received()) == before
    refused = run(root, env, "resend", identifier)
    assert refused.returncode == 2 and "add --yes to send from a script" in refused.stderr
    assert len(sandbox.received()) == before

    for target in ("notify", "twilio", "x"):
        sandbox.fault(target, latency=0.0)
    resent = run(root, env, "resend", identifier, "--yes", timeout=120)
    no_traceback(resent)
    assert resent.returncode == 1 and "CHECK x-council" in resent.stdout, resent.stdout + resent.stderr
    store = Store.open(root / "broadcast.db")
    people = Counter(d["state"] for d in store.deliveries(identifier, recipients=True))
    assert set(people) <= {"sent", "uncertain"} and people["sent"] >= 2 * RECIPIENTS - 200
    store.close()
    texts = Counter((r.platform, json.dumps(r.body.get("phone_number") or r.body.get("To"))) for r in
                    sandbox.received(accepted=True) if r.platform in ("notify", "twilio"))
    assert len(texts) >= 2 * RECIPIENTS - 200 and max(texts.values()) == 1  # nobody was sent a text twice
    kinds = {name: text.split('"')[1] for name, text in PLATFORMS.items()}
    posts = Counter(r.target if r.platform == "webhook" else r.platform for r in sandbox.received(accepted=True)
                    if r.platform not in ("notify", "twilio"))
    for name, kind in kinds.items():
        if kind in IDEMPOTENT:
            assert posts[name if kind == "webhook" else kind] >= 1
    assert all(count <= 2 for count in posts.values()), posts  # a channel in two languages posts twice, no more


@pytest.mark.real_clock
def test_a_second_ctrl_c_exits_at_once(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url)
    config = root / "broadcast.toml"
    settings = config.read_text(encoding="utf-8").replace("read_timeout = 5", "read_timeout = 120")
    settings = settings.replace("channel_deadline = 20", "channel_deadline = 120")
    config.write_text(settings.replace("overall_deadline = 30", "overall_deadline = 120") + "stop_grace = 60\n",
                      encoding="utf-8")
    sandbox.fault("x", hang=True)  # a request that will never answer: the grace would run its full minute
    process = subprocess.Popen(command(root, *warn_args("Twice School")), env=environment(sandbox.url),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started(sandbox, "x", 1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    second = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, out + err
    assert time.monotonic() - second < 5  # not the 60 s grace
    assert "Stopped at once. Run broadcast status to see what went out." in err
