"""A platform that answers after the deadline may still have posted: never reported as safe to resend."""

from __future__ import annotations

import time

import pytest
from conftest import only_identifier
from faultkit import environment, full_workspace, no_traceback, run, warn_args


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_a_post_that_lands_after_its_deadline_is_not_posted_again(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url, channels=8)
    config = root / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("channel_deadline = 20", "channel_deadline = 1"),
                      encoding="utf-8")
    env = environment(sandbox.url)
    sandbox.fault("telegram", latency=2.0)  # it answers, and posts, a second after we stop waiting
    sent = run(root, env, *warn_args("Deadline School"))
    no_traceback(sent)
    assert sent.returncode == 1, sent.stdout + sent.stderr
    assert "CHECK telegram-alerts (en-GB)" in sent.stdout
    assert "no answer before the deadline, with the request sent: it may have landed" in sent.stdout
    assert "check telegram-alerts by hand: if it is not there, resend with --include-uncertain" in sent.stdout
    assert "resending is safe" not in sent.stdout.split("telegram-alerts (en-GB)")[1].split("\n")[1]
    time.sleep(1.5)  # the English post lands; the Welsh one, queued behind it on Telegram's one slot, never started
    assert len(sandbox.received("telegram", accepted=True)) == 1

    sandbox.fault("telegram", latency=0.0)
    resent = run(root, env, "resend", only_identifier(root / "broadcast.db"), "--yes")
    no_traceback(resent)
    assert resent.returncode == 1 and "CHECK telegram-alerts (en-GB)" in resent.stdout  # left alone, to check
    texts = [r.body["text"] for r in sandbox.received("telegram", accepted=True)]
    assert len(texts) == 2 and len(set(texts)) == 2  # the Welsh one sent now; the English one not posted twice


@pytest.mark.real_clock
def test_the_last_error_is_reported_when_the_deadline_ends_the_retries(tmp_path, sandbox):
    root = full_workspace(tmp_path / "ws", sandbox.url, channels=8)
    config = root / "broadcast.toml"
    text = config.read_text(encoding="utf-8").replace("channel_deadline = 20", "channel_deadline = 1")
    config.write_text(text.replace("max_backoff = 0.1", "max_backoff = 0.4"), encoding="utf-8")
    sandbox.fault("x", error_rate=1.0, status=500)  # every try: HTTP 500
    sent = run(root, environment(sandbox.url), *warn_args("Error School"))
    no_traceback(sent)
    line = next(row for row in sent.stdout.splitlines() if row.startswith(("FAIL  x-council", "CHECK x-council")))
    assert "500" in line and "no answer" not in line, sent.stdout
