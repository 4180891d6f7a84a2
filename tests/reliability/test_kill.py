"""SIGKILL at twenty seeded moments of a warn to 12 channels and 2,000 SMS recipients, each followed by a resend."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter

import pytest
from faultkit import IDEMPOTENT, PLATFORMS, command, environment, full_workspace, no_traceback, run, warn_args

from broadcast.store import Store
from broadcast.workspace import Workspace

KILLS = 20
SEED = 20261123
RECIPIENTS = 2000


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_twenty_kills_each_followed_by_resend_account_for_every_delivery(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url, recipients=RECIPIENTS)
    env = environment(sandbox.url)
    sandbox.store("notify")["rate_limit"] = None  # 40,000 texts in a minute: Notify's own limit is not under test
    for target in ("mastodon", "bluesky", "telegram", "slack", "teams", "facebook", "x", "webhook", "notify"):
        # Slow enough that a kill finds requests in flight; some 503s, so it also finds retries waiting.
        sandbox.fault(target, latency=0.005 if target == "notify" else 0.02, error_rate=0.05, status=503)
    channel_rows = sum(len(c.languages) for c in Workspace(root).channels.values() if c.kind != "govuk-notify")
    moments = random.Random(SEED)
    landed = Counter()
    for n in range(KILLS):
        process = subprocess.Popen(command(root, *warn_args(f"Kill{n:02d} School")), env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moments.uniform(0.3, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        sandbox.store("bluesky").pop("session_log", None)  # 40 logins in a minute would hit createSession's limit
        store = Store.open(root / "broadcast.db")
        alerts = [a.identifier for a in store.alerts() if f"Kill{n:02d}" in a.infos[0].headline]
        if not alerts:  # killed before anything was recorded: then nothing may have gone out
            store.close()
            assert not [r for r in sandbox.received(accepted=True) if f"Kill{n:02d}" in str(r.body)]
            landed["before the alert was recorded"] += 1
            continue
        [identifier] = alerts
        left = store.conn.execute("SELECT count(*) FROM deliveries WHERE alert = ? AND state != 'sent'",
                                  [identifier]).fetchone()[0]
        queued = store.conn.execute("SELECT count(*) FROM deliveries WHERE alert = ?", [identifier]).fetchone()[0]
        store.close()
        landed["mid-send" if left or queued < RECIPIENTS + channel_rows else "after the sending"] += 1
        resent = run(root, env, "resend", identifier, "--yes")
        # Someone whose five attempts all met an injected 503 (1 in 3.2 million; up to 40,000 texts are resent
        # here) fails for now, as they would for real. The hint says "a retry may help", and the duty officer
        # resends again: every failure must be such a 503, and the next resend must deliver it.
        for _ in range(2):
            no_traceback(resent)
            failed = [line for line in resent.stdout.splitlines() if line.startswith("FAIL ")]
            if resent.returncode == 0 or not failed:
                break
            assert all('answered HTTP 503: {"error": "sandbox fault"' in line for line in failed), resent.stdout
            landed["resent again after five 503s in a row"] += 1
            resent = run(root, env, "resend", identifier, "--yes")
        no_traceback(resent)
        assert resent.returncode in (0, 1), resent.stdout + resent.stderr
        if resent.returncode == 1:  # only a post that may have gone out and cannot be checked is left
            assert "CHECK" in resent.stdout and "FAIL " not in resent.stdout, resent.stdout

    # Most moments fall mid-send (on a loaded machine start-up takes longer, so fewer do): they test the outbox.
    assert landed["mid-send"] >= KILLS // 4, landed
    store = Store.open(root / "broadcast.db")
    kinds = {name: text.split('"')[1] for name, text in PLATFORMS.items()}
    received = sandbox.received(accepted=True)
    for alert in store.alerts():
        marker = alert.infos[0].headline.split()[0]
        rows = store.deliveries(alert.identifier, recipients=False)
        assert len(rows) == channel_rows  # every channel's row was written before its first byte went out
        posts = Counter(r.target for r in received if r.platform != "notify" and marker in str(r.body))
        for target in {row["channel"] for row in rows}:
            mine = [row for row in rows if row["channel"] == target]
            kind = kinds.get(target, "webhook")
            states = Counter(row["state"] for row in mine)
            assert set(states) <= {"sent", "uncertain"}, (alert.identifier, target, states)
            count = posts[target if kind == "webhook" else kind]
            if kind in IDEMPOTENT:
                assert states == {"sent": len(mine)} and count == len(mine), (alert.identifier, target, count)
            else:  # sent exactly once, or at most once where the outcome is unknown
                assert states["sent"] <= count <= len(mine), (alert.identifier, target, states, count)
        people = store.deliveries(alert.identifier, recipients=True)
        assert len(people) == RECIPIENTS and {p["state"] for p in people} == {"sent"}, alert.identifier
        references = sandbox.store("notify")["references"]
        assert all(len(references[p["idempotency_key"]]) == 1 for p in people)  # nobody texted twice
        assert {p["remote_id"] for p in people} == {references[p["idempotency_key"]][0] for p in people}
    # The log says the same as the table: each delivery's last result is its state.
    last = dict(store.conn.execute(
        "SELECT json_extract(details, '$.delivery'), json_extract(details, '$.state') FROM events "
        "WHERE type = 'delivery_result' AND json_extract(details, '$.delivery') IS NOT NULL ORDER BY id").fetchall())
    for row in store.conn.execute("SELECT id, alert, channel, language, recipient, state FROM deliveries"):
        assert last.get(row[0]) == row[5], row
    assert store.verify().ok  # which checks the same, and every alert's text, against the chain
    store.close()
