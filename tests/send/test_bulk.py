"""Warnings to recipient lists end to end: the CLI, the sandbox's Notify and Twilio over real HTTP, the log."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import VALUES, as_account, only_identifier, sqlite_steps
from listkit import CLEAR, ENV, approved, list_workspace, many, notify_channel, twilio_channel

from broadcast.cli import cli
from broadcast.prepare import recipients
from broadcast.send import bulk
from broadcast.send.sending import plan_warning, send_warning
from broadcast.store import Store

SETS = [f"--set={k}={v}" for k, v in VALUES.items()]
pytest_plugins = ("listkit",)  # its `env` fixture




def invoke(root, *args):
    return CliRunner().invoke(cli, ["--workspace", str(root), *args], catch_exceptions=False)


def numbers(sandbox, platform):
    field = {"notify": "phone_number", "twilio": "To"}[platform]
    return Counter(r.body[field] for r in sandbox.received(platform, accepted=True) if field in r.body)


def test_warn_to_a_group_reaches_each_person_once_in_their_language(tmp_path, sandbox, env):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url, email=True), twilio_channel(sandbox.url)])
    approved(root)
    result = invoke(root, "warn", "school-closure", *SETS, "--to", "parents:hillside-primary", "--to", "valley",
                    "--yes")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Recipients (--to parents:hillside-primary, valley)" in out
    assert "sms-residents  govuk-notify en-GB  1 recipient x 1 segment = 1 segment, about £0.02" in out
    assert "sms-residents  govuk-notify cy-GB  1 recipient x 1 segment" in out  # Carys asked for Cymraeg
    assert "line 6: phone is not a phone number" in out  # bad rows are shown, and skipped
    assert "OK    sms-residents (en-GB)        4 attempts  4 sent of 4 on lists/residents.csv" in out  # 1 SMS, 3 emails
    assert "OK    sms-twilio (en-GB)           2 attempts  2 sent of 2" in out
    assert "2 of 2 channels delivered." in out
    assert numbers(sandbox, "notify") == {"+447700900001": 1, "+447700900003": 1}
    assert numbers(sandbox, "twilio") == {"+447700900001": 1, "+447700900003": 1}
    emails = sorted(r.body["email_address"] for r in sandbox.received("notify", accepted=True)
                    if "email_address" in r.body)
    assert emails == ["ann@example.org", "carys@example.org", "dai@example.org", "gwen@example.org"]
    welsh = next(r.body for r in sandbox.received("notify", accepted=True) if r.body.get("phone_number") ==
                 "+447700900003")
    assert welsh["personalisation"]["message"].startswith("Mae Hillside Primary School ar gau")
    store = Store.open(root / "broadcast.db")
    rows = store.deliveries("A-2026-0001", recipients=True)
    assert {r["idempotency_key"] for r in rows} == {r.body["reference"] for r in sandbox.received(
        "notify", accepted=True)} | {r["idempotency_key"] for r in rows if r["channel"] == "sms-twilio"}
    assert store.verify().ok
    types = Counter(e["type"] for e in store.events())
    assert types["delivery_result"] == len(rows) == 8 and types["recipients_queued"] == 2


def test_no_number_or_address_in_clear_in_the_database_files_or_output(tmp_path, sandbox, env):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url, email=True), twilio_channel(sandbox.url)])
    approved(root)
    sandbox.fault("twilio", fail_next=1, status=500)  # an error message, too
    result = invoke(root, "warn", "school-closure", *SETS, "--yes")
    resent = invoke(root, "resend", "A-2026-0001", "--json", "--yes")
    checked = invoke(root, "lists", "check")
    assert result.exit_code == 0 and "line 9: phone is not a valid number" in checked.output
    written = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and "lists" not in p.parts)
    seen = result.output + resent.output + checked.output + written.decode("utf-8", "replace")
    assert "+44 7*** ***001" in seen  # the masked form is there ...
    for clear in CLEAR:  # ... and never the number or address itself
        assert clear not in seen, clear
        assert clear.encode("utf-16-le") not in written


def test_plan_refuses_a_tag_nobody_has_and_one_segment_shortens(tmp_path, sandbox, env):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url)])
    approved(root)
    result = invoke(root, "warn", "school-closure", *SETS, "--to", "parents:hillside-primry", "--dry-run")
    assert result.exit_code == 2
    assert "--to parents:hillside-primry: no one on lists/residents.csv has this group or area tag" in result.stderr
    assert "did you mean 'parents:hillside-primary'?" in result.stderr
    long = {**VALUES, "school": "Hillside Primary School and Nursery of the Upper Lliw Valley"}
    sets = [f"--set={k}={v}" for k, v in long.items()]
    normal = invoke(root, "warn", "school-closure", *sets, "--dry-run")
    assert "2/6 SMS segments (GSM-7, 181 characters)" in normal.output and "x 2 segments = 2 segments" in normal.output
    short = invoke(root, "warn", "school-closure", *sets, "--one-segment", "--dry-run")
    assert short.exit_code == 0 and "1/1 SMS segments (GSM-7, 155 characters), shortened" in short.output
    assert "Pupils should not travel" not in short.output.split("Channels")[1]  # the optional sentence went
    welsh = [f"--set={k}={v}" for k, v in {**VALUES, "school": "Ysgol Gymraeg Bro Lliw a Chanolfan Dŵr y Cwm"}.items()]
    refused = invoke(root, "warn", "school-closure", *welsh, "--one-segment", "--dry-run")
    assert refused.exit_code == 2 and "nothing was sent" in refused.stderr  # ŵ makes it UCS-2: 70 is too few
    assert sandbox.received(accepted=True) == []


def test_notify_rate_limit_429_is_retried_until_everyone_has_it(tmp_path, sandbox, env):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url)], residents=many(24), fast=False)
    config = root / "broadcast.toml"  # backoff long enough for the sandbox's window to roll on
    config.write_text(config.read_text(encoding="utf-8") + "\n[fanout]\nfirst_backoff = 0.1\nmax_backoff = 0.3\n",
                      encoding="utf-8")
    approved(root)
    sandbox.store("notify")["rate_limit"] = (10, 0.1)
    result = invoke(root, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 0, result.output
    assert len(numbers(sandbox, "notify")) == 24 and set(numbers(sandbox, "notify").values()) == {1}
    refused = [r for r in sandbox.received("notify") if r.status == 429]
    assert refused and refused[0].path == "/notify/v2/notifications/sms"
    store = Store.open(root / "broadcast.db")
    retries = [json.loads(e["details"]) for e in store.events() if e["type"] == "retry_scheduled"]
    assert retries and "RateLimitError" in retries[0]["error"] and retries[0]["http_status"] == 429


def test_a_number_listed_again_in_the_next_batch_is_sent_one_text(tmp_path, sandbox, env, monkeypatch):
    # The list is read a batch at a time (hundreds of rows; here ten, and four to check for repeats), and read again
    # to send. These numbers are listed again at the start of the next batch, written another way, in another group
    # and language, while their first listing still waits its turn: one request at a time, each answered slowly.
    monkeypatch.setattr(bulk, "CHUNK", 10)
    monkeypatch.setattr(recipients, "SEEN_BATCH", 4)
    header, *rows = many(30).splitlines()
    again = [f"+44 7400 {100000 + n:06d},others,cy" for n in (8, 9, 0)]
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url, extra="concurrency = 1\n")],
                          residents="\n".join([header, *rows[:10], *again, *rows[10:]]) + "\n")
    approved(root)
    sandbox.store("notify")["rate_limit"] = None
    sandbox.fault("notify", latency=0.05, methods=("POST",))
    result = invoke(root, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 0, result.output
    sent = numbers(sandbox, "notify")
    assert len(sent) == 30 and set(sent.values()) == {1}
    store = Store.open(root / "broadcast.db")
    [queued] = [json.loads(e["details"]) for e in store.events() if e["type"] == "recipients_queued"]
    assert queued["duplicates"] == len(again) and queued["selected"] == queued["people"] == 30
    assert len(store.deliveries(only_identifier(root / "broadcast.db"), recipients=True)) == 30


def test_the_logs_work_for_a_send_grows_with_the_list_not_its_square(tmp_path, sandbox, env, monkeypatch):
    # SQLite's own count of the steps it took (its progress handler, every 100 virtual-machine instructions) over
    # a whole send, to 150 people and to 600. Each batch of the list is matched to its rows in the log; were that
    # look-up to walk every row still to send, as it once did, four times the people would take eight times the
    # work. Batches of ten, so that a short list has many.
    monkeypatch.setattr(bulk, "CHUNK", 10)

    def steps(people: int) -> int:
        sandbox.clear()
        sandbox.store("notify")["rate_limit"] = None
        workspace = approved(list_workspace(tmp_path / str(people), [notify_channel(sandbox.url)],
                                            residents=many(people)))
        store = Store.open(workspace.db_path)
        plan = plan_warning(workspace, "school-closure", VALUES, store=store)
        counted = sqlite_steps(store.conn, 100)
        report = send_warning(workspace, store, plan, actor="duty-officer")
        store.close()
        assert [o.state for o in report.outcomes] == ["sent"] * len(report.outcomes)
        assert len(numbers(sandbox, "notify")) == people
        return counted[0]

    small, large = steps(150), steps(600)
    assert large < 5 * small, (small, large)


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_sigkill_mid_send_to_5000_then_resend_reaches_everyone_exactly_once(tmp_path, sandbox):
    people = 5000
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url), twilio_channel(sandbox.url)],
                          residents=many(people))
    approved(root)
    sandbox.store("notify")["rate_limit"] = None
    sandbox.store("twilio")["rate_limit"] = None
    sandbox.fault("notify", latency=0.05)
    sandbox.fault("twilio", latency=0.05)
    env = {**os.environ, **ENV, "BROADCAST_OPERATOR": "duty-officer"}
    env.pop("BROADCAST_RECIPIENT_KEY", None)
    command = [sys.executable, "-m", "broadcast", "--workspace", str(root)]
    process = subprocess.Popen([*command, "warn", "school-closure", *SETS, "--yes"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(sandbox.received("notify", accepted=True)) < 1200 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert 0 < len(numbers(sandbox, "notify")) < people, "the kill should land mid-send"

    identifier = only_identifier(root / "broadcast.db")
    store = Store.open(root / "broadcast.db")
    states = Counter((d["channel"], d["state"]) for d in store.deliveries(identifier, recipients=True))
    assert sum(n for (channel, _), n in states.items() if channel == "sms-residents") == people  # all queued first
    assert states["sms-residents", "pending"] > 0 and states["sms-residents", "sending"] > 0
    store.close()

    sandbox.fault("notify", latency=0.0)
    sandbox.fault("twilio", latency=0.0)
    resent = subprocess.run([*command, "resend", identifier, "--yes"], env=env, capture_output=True, text=True,
                            timeout=120)
    notified = numbers(sandbox, "notify")
    assert len(notified) == people and set(notified.values()) == {1}  # Notify: each person exactly once
    texted = numbers(sandbox, "twilio")
    assert len(texted) == people and set(texted.values()) == {1}  # Twilio too: asked first, so exactly once each
    store = Store.open(root / "broadcast.db")
    twilio = Counter(d["state"] for d in store.deliveries(identifier, recipients=True)
                     if d["channel"] == "sms-twilio")
    assert twilio == {"sent": people}  # nothing left uncertain: Twilio's message list said which had been made
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert "OK    sms-twilio (en-GB)" in resent.stdout and "OK    sms-residents (en-GB)" in resent.stdout
    assert store.verify().ok


def test_a_draft_keeps_its_recipients_when_approved(tmp_path, sandbox, env, monkeypatch):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url)])
    result = invoke(root, "warn", "--text", "Hillside Primary is closed today.", "--to", "parents:hillside-primary",
                    "--yes")
    assert result.exit_code == 2 and "saved as draft 1" in result.stderr
    as_account(monkeypatch, "second-officer")
    approved_send = invoke(root, "approve", "1", "--yes")
    assert approved_send.exit_code == 0, approved_send.output
    # Only the drafter's choice: the parents of Hillside with a phone number, not everyone on the list.
    assert numbers(sandbox, "notify") == {"+447700900001": 1}
