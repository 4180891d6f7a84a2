"""`broadcast watch`: during an incident it collects receipts and pings the staff (Slack, Teams, a text to the duty
phone) before a promised update is due, when it is overdue and when texts fail; once each, even after a restart.

The loop runs on the suite's clock: its sleep moves the clock on by what the watch asked for, so an hour passes in
no time and the reminders fall when the clock says, whatever the day or the machine's time zone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from conftest import SETS, everything_stored, invoke
from listkit import approved, list_workspace, notify_channel

from broadcast.review.status import next_update_due
from broadcast.review.watch import watch
from broadcast.send.staff import Staff
from broadcast.store import Store
from broadcast.workspace import Workspace

pytest_plugins = ("listkit",)  # its `env` fixture

STAFF = {"slack-duty": 'kind = "slack"\n[secrets]\nwebhook_url = "env:TEST_SLACK_URL"\n',
         "teams-lrf": 'kind = "teams"\n[secrets]\nworkflow_url = "env:TEST_TEAMS_URL"\n'}
DUE_SOON, OVERDUE, FAILED = "Next update due in", "Next update overdue", "not delivered"
DUTY_PHONE = "07700 900555"


def with_staff(root, watch_section: str = "") -> None:
    for name, text in STAFF.items():
        (root / "channels" / f"{name}.toml").write_text(text, encoding="utf-8")
    if watch_section:
        config = root / "broadcast.toml"
        config.write_text(config.read_text(encoding="utf-8") + "\n[watch]\n" + watch_section, encoding="utf-8")


def warned(root) -> str:
    result = invoke(root, "warn", "school-closure", *SETS, "--json", "--yes")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)["incident"]


def said(sandbox, platform: str, words: str) -> list[str]:
    """What the staff channel received that contains `words` (the warning itself also went there)."""
    bodies = [json.dumps(r.body, ensure_ascii=False) for r in sandbox.received(platform, accepted=True)]
    return [body for body in bodies if words in body]


class Script:
    """The watch's sleep: runs the next step (noting what the staff had heard, closing the incident, pressing Ctrl-C),
    then moves the suite's clock on by what the watch asked for."""

    def __init__(self, clock, *steps):
        self.clock, self.steps, self.asked = clock, list(steps), []

    def __call__(self, seconds: float) -> None:
        self.asked.append((self.clock.now(), seconds))
        step = self.steps.pop(0) if self.steps else None
        if step:
            step()
        self.clock.move_to(self.clock.now() + timedelta(seconds=seconds))


def closing(root, slug: str):
    return lambda: invoke(root, "close", slug)


def ctrl_c() -> None:
    raise KeyboardInterrupt


def run_watch(root, script, *, incidents=(), every: float = 60, remind: float = 15):
    workspace = Workspace(root)
    store = Store.open(workspace.db_path)
    lines: list[str] = []
    try:
        result = watch(workspace, store, incidents, actor="duty-officer", every=every, remind=remind,
                       sleep=script, say=lines.append)
    finally:
        store.close()
    return result, lines


def events(root, kind: str) -> list[dict]:
    store = Store.open(root / "broadcast.db")
    try:
        return [{**e, "details": json.loads(e["details"])} for e in store.events() if e["type"] == kind]
    finally:
        store.close()


def test_the_staff_hear_fifteen_minutes_before_the_promised_update_and_again_when_it_is_overdue(live, sandbox, clock):
    with_staff(live)
    slug = warned(live)
    store = Store.open(live / "broadcast.db")
    due = next_update_due(store.alerts()[0].sent, "10:00", "Europe/London")  # the template's next_update=10:00
    tables = {t: store.db[t].count for t in ("alerts", "deliveries")}
    store.close()
    clock.move_to(due - timedelta(minutes=76))  # so that an hourly check falls 16 minutes before it is due
    heard: list[tuple] = []  # at each sleep: the time, and the reminders Slack and Teams had by then

    def note() -> None:
        heard.append((clock.now(), *(len(said(sandbox, p, w)) for p in ("slack", "teams") for w in (DUE_SOON,
                                                                                                     OVERDUE))))

    script = Script(clock, note, note, note, note, lambda: (note(), closing(live, slug)()))
    result, lines = run_watch(live, script)

    # Every hour from 08:44 GMT, but woken at 09:45 exactly for the reminder and at 10:00 for the promise.
    assert [at.strftime("%H:%M") for at, _ in script.asked] == ["08:44", "09:44", "09:45", "10:00", "11:00"]
    assert result.cycles == 5 and len(heard) == 5
    for at, *counts in heard:
        if at < due - timedelta(minutes=15):
            assert counts == [0, 0, 0, 0], at
        elif at < due:
            assert counts == [1, 0, 1, 0], at
        else:
            assert counts == [1, 1, 1, 1], at
    assert heard[-1][1:] == (1, 1, 1, 1)  # once each, on both channels, another hour later too
    [soon] = said(sandbox, "slack", DUE_SOON)
    assert f"{slug}: the next update was promised for 10:00 GMT, in 15 minutes" in soon
    assert f"broadcast update {slug} school-closure --set" in soon
    pings = {(e["channel"], e["details"]["what"]): e for e in events(live, "staff_pinged")}
    assert set(pings) == {(c, w) for c in STAFF for w in ("due-soon", "overdue")}
    assert all(p["details"]["outcome"] == "sent" for p in pings.values())
    sent = datetime.fromisoformat(pings["slack-duty", "due-soon"]["occurred_at"].replace("Z", "+00:00"))
    assert due - timedelta(minutes=15) <= sent < due - timedelta(minutes=14)
    assert "DUE SOON" in "\n".join(lines) and any(line.startswith("10:00 GMT  OVERDUE") for line in lines)
    assert lines[-1].endswith("The incident watched is closed: the watch stops.")

    # Not a public alert: no new alert (so no CAP file, no page change), no delivery rows; the chain verifies.
    store = Store.open(live / "broadcast.db")
    assert {t: store.db[t].count for t in tables} == tables and store.verify().ok
    store.close()
    assert [e["details"]["why"] for e in events(live, "watch_stopped")] == ["every incident watched is closed"]


def test_failed_texts_are_pinged_once_with_the_count_and_reason_and_a_restart_does_not_repeat_it(
        tmp_path, sandbox, sandbox_env, env, monkeypatch, clock):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url)])
    with_staff(root, 'staff = ["slack-duty"]\nduty_phone = "env:DUTY_PHONE"\nsms_channel = "sms-residents"\n')
    monkeypatch.setenv("DUTY_PHONE", DUTY_PHONE)
    approved(root)
    slug = warned(root)
    time.sleep(0.3)  # the sandbox's receipts arrive a moment after the send, as real ones do
    texts_before = len(sandbox.received("notify", accepted=True))

    with pytest.raises(KeyboardInterrupt):  # one cycle, then Ctrl-C
        run_watch(root, Script(clock, ctrl_c))
    [ping] = said(sandbox, "slack", FAILED)
    # Bryn's number ends 002 (a permanent failure in the sandbox), Carys's 003 (a temporary one); both Welsh.
    assert f"{slug}: 2 messages on sms-residents (cy-GB) not delivered, alert A-2026-0001: " in ping
    assert "permanent-failure 1" in ping and "temporary-failure 1" in ping
    [text] = sandbox.received("notify", accepted=True)[texts_before:]  # one text, to the duty phone only
    assert text.body["phone_number"] == "+447700900555" and FAILED in text.body["personalisation"]["message"]
    assert [e["details"]["why"] for e in events(root, "watch_stopped")] == ["interrupted (Ctrl-C)"]

    # Started again: two more cycles, and nothing is said twice, to Slack or to the phone.
    result, lines = run_watch(root, Script(clock, None, closing(root, slug)))
    assert result.cycles == 2 and not result.reminders
    assert len(said(sandbox, "slack", FAILED)) == 1
    assert len(sandbox.received("notify", accepted=True)) == texts_before + 1
    [reminder] = events(root, "watch_reminder")
    assert reminder["details"]["failed"] == 2 and reminder["details"]["reasons"] == {
        "permanent-failure": 1, "temporary-failure": 1}
    pings = events(root, "staff_pinged")
    assert {(p["channel"], p["details"]["outcome"], p["details"]["to"]) for p in pings} == {
        ("slack-duty", "sent", None), ("sms-residents", "sent", "+44 7*** ***555")}

    # The duty phone is a secret: only its masked form is in the log and the output; no delivery row for it.
    store = Store.open(root / "broadcast.db")
    stored = everything_stored(store)
    # The log's digests and ids are hex: six digits in a row turn up in one now and then (CI once found 900555 in
    # an index_sha256), so the partial number is looked for outside them. The whole number is looked for anywhere.
    words = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32,}", "#", stored)
    assert "7700900555" not in stored and "900555" not in words and "+44 7*** ***555" in stored
    assert store.db["deliveries"].count_where("recipient_masked = ?", ["+44 7*** ***555"]) == 0
    store.close()
    assert not any("900555" in line for line in lines)


def test_a_platform_failing_to_report_does_not_stop_the_watch_and_its_failures_come_when_it_answers(
        tmp_path, sandbox, sandbox_env, env, clock):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url)])
    with_staff(root, 'staff = ["slack-duty"]\n')
    approved(root)
    slug = warned(root)
    time.sleep(0.3)  # the sandbox's receipts arrive a moment after the send
    sandbox.fault("notify", fail_next=10_000, status=500, methods=("GET",))  # Notify cannot say what became of them

    result, lines = run_watch(root, Script(clock, lambda: sandbox.faults.clear(), None, closing(root, slug)))

    assert result.cycles == 3
    assert f"07:12 GMT  {slug}  texts and emails: 0 delivered, 0 failed, 0 on their way, 3 unknown; " in lines[1]
    [note] = [line for line in lines if "(cy-GB): 2 could not be asked" in line]  # said once, not every cycle
    assert note.startswith(f"07:12 GMT  {slug}  A-2026-0001 sms-residents (cy-GB): 2 could not be asked: "
                           "sms-residents: Notify (reading a message's status) answered HTTP 500")
    assert any(line.startswith(f"08:12 GMT  FAILED    {slug}: 2 messages") for line in lines)
    [ping] = said(sandbox, "slack", FAILED)  # at the second cycle, when Notify answers again; once
    assert "2 messages on sms-residents (cy-GB) not delivered" in ping
    assert [r.what for r in result.reminders] == ["failures"]


def test_a_staff_channel_answering_500_does_not_stop_the_watch_and_hears_once_it_is_back(live, sandbox, clock):
    with_staff(live)
    slug = warned(live)
    store = Store.open(live / "broadcast.db")
    due = next_update_due(store.alerts()[0].sent, "10:00", "Europe/London")
    store.close()
    clock.move_to(due - timedelta(minutes=10))
    sandbox.fault("slack", fail_next=99, status=500)
    script = Script(clock, None, lambda: sandbox.faults.clear(), closing(live, slug))

    result, lines = run_watch(live, script)

    assert result.cycles == 3  # due soon (Slack failing), overdue (still failing), an hour later (Slack is back)
    assert len(said(sandbox, "teams", DUE_SOON)) == 1 and len(said(sandbox, "teams", OVERDUE)) == 1
    assert not said(sandbox, "slack", DUE_SOON)  # no longer true once overdue: not sent late
    assert len(said(sandbox, "slack", OVERDUE)) == 1
    failing = [line for line in lines if "FAIL  slack-duty" in line]
    assert len(failing) == 2 and all("5 attempts" in line and "HTTP 500" in line and "tried again at the next check"
                                     in line for line in failing)
    outcomes = [(e["details"]["what"], e["details"]["outcome"]) for e in events(live, "staff_pinged")
                if e["channel"] == "slack-duty"]
    assert outcomes == [("due-soon", "failed"), ("overdue", "failed"), ("overdue", "sent")]


def test_without_a_watch_section_it_pings_every_slack_and_teams_channel_that_is_on(live, sandbox, clock):
    with_staff(live)
    slug = warned(live)
    assert invoke(live, "channels", "disable", "teams-lrf", "--reason", "account hacked").exit_code == 0
    store = Store.open(live / "broadcast.db")
    clock.move_to(next_update_due(store.alerts()[0].sent, "10:00", "Europe/London") - timedelta(minutes=5))
    store.close()

    result, lines = run_watch(live, Script(clock, closing(live, slug)))

    assert lines[0] == ("No staff list in broadcast.toml ([watch] staff): pinging every enabled Slack and Teams "
                        "channel (slack-duty, teams-lrf).")
    assert lines[1].startswith("teams-lrf will not be pinged: switched off by ") and "account hacked" in lines[1]
    assert len(said(sandbox, "slack", DUE_SOON)) == 1 and not said(sandbox, "teams", DUE_SOON)
    assert [p.outcome for p in result.pings if p.channel == "teams-lrf"] == ["skipped"]


def test_watch_refuses_an_unknown_incident_naming_the_open_ones_and_a_wrong_watch_section(live, sandbox):
    slug = warned(live)
    unknown = invoke(live, "watch", "no-such-incident")
    assert unknown.exit_code == 2 and "no incident 'no-such-incident'" in unknown.stderr
    assert f"hint: open incidents: {slug}" in unknown.stderr

    config = live / "broadcast.toml"
    plain = config.read_text(encoding="utf-8")
    config.write_text(plain + '\n[watch]\nstaff = ["mastodon-council"]\n', encoding="utf-8")
    wrong = invoke(live, "watch")
    assert wrong.exit_code == 2 and "watch.staff: mastodon-council is a mastodon channel" in wrong.stderr
    config.write_text(plain + '\n[watch]\nstaff = []\nduty_phone = "07700 900555"\nsms_channel = "x"\n',
                      encoding="utf-8")
    number = invoke(live, "watch")
    assert number.exit_code == 2 and "must be a reference such as env:NAME" in number.stderr
    assert "900555" not in number.output + number.stderr
    config.write_text(plain, encoding="utf-8")
    invoke(live, "close", slug)
    closed = invoke(live, "watch", slug)
    assert closed.exit_code == 2 and f"incident {slug} is closed" in closed.stderr


def test_the_examples_watch_section_is_valid_once_uncommented(example_dir):
    config = example_dir / "broadcast.toml"
    text = config.read_text(encoding="utf-8")
    section = text[text.index("# [watch]"):]
    config.write_text(text.replace(section, "\n".join(line.removeprefix("# ") for line in section.splitlines())),
                      encoding="utf-8")
    staff = Staff.from_workspace(Workspace(example_dir))
    assert staff == Staff(("slack-duty", "teams-lrf"), "env:BROADCAST_DUTY_PHONE", "sms-residents")


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_watch_and_collect_watch_stop_when_the_incident_is_closed_and_ctrl_c_exits_130(live, sandbox):
    slug = warned(live)

    def start(*args: str, operator: str = "duty-officer") -> subprocess.Popen:
        environ = {**{k: v for k, v in os.environ.items() if k != "BROADCAST_DEBUG"}, "BROADCAST_OPERATOR": operator}
        return subprocess.Popen([sys.executable, "-m", "broadcast", "--workspace", str(live), *args], env=environ,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    watching, interrupted = start("watch", "--every", "0.01"), start("watch", slug, "--every", "0.01")
    collecting = start("review", "collect", slug, "--watch", "0.01", operator="reviewer")
    deadline = time.monotonic() + 60
    while len(events(live, "watch_started")) < 2 or len(
            [e for e in events(live, "engagement_collected") if e["actor"] == "reviewer"]) < 10:
        assert time.monotonic() < deadline, "the watches never started"
        time.sleep(0.1)
    interrupted.send_signal(signal.SIGINT)
    out, err = interrupted.communicate(timeout=30)
    assert interrupted.returncode == 130, out + err
    assert "Watch stopped (Ctrl-C)" in err and "Traceback" not in out + err

    assert invoke(live, "close", slug).exit_code == 0  # from another process
    outputs = {}
    for name, process in (("watch", watching), ("collect", collecting)):
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, out + err
        assert f"{slug} is closed" in out and "Traceback" not in out + err
        outputs[name] = out
    assert f"Watching {slug} every 0.01 minutes" in outputs["watch"]
    # Each snapshot printed with its time, in the workspace's zone (GMT or BST, on the real clock).
    assert re.search(r"^\d\d:\d\d (GMT|BST)  A-\d{4}-0001 mastodon-council \(en-GB\)  ", outputs["collect"], re.M)
    assert [e["details"]["why"] for e in events(live, "watch_stopped")] == [
        "interrupted (Ctrl-C)", "every incident watched is closed"]
