"""warn and resend end to end: the CLI, the sandbox over real HTTP, the log on disk."""

import json
import uuid

import pytest
from conftest import SETS, VALUES, invoke, sqlite_steps

from broadcast.prepare.templates import find_template
from broadcast.send.fanout import KEY_NAMESPACE, Limits, delivery_key
from broadcast.send.sending import plan_warning, send_warning
from broadcast.store import Store
from broadcast.workspace import Workspace

SECRET = "whsec_c2FuZGJveC13ZWJob29rLXNpZ25pbmcta2V5LTMy"


def test_warn_sends_everywhere_and_logs_it(live, sandbox):
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "OK    mastodon-council (en-GB)" in out
    assert "OK    hook-a (cy-GB)" in out and "OK    hook-b (en-GB)" in out
    assert "3 of 3 channels delivered. Alert A-2026-0001, incident school-closure-20261123-0001." in out
    assert len(sandbox.received("mastodon", accepted=True)) == 1
    assert len(sandbox.received("webhook", accepted=True)) == 4
    store = Store.open(live / "broadcast.db")
    assert {d["state"] for d in store.deliveries("A-2026-0001")} == {"sent"}
    assert store.verify().ok
    types = [e["type"] for e in store.events()]
    assert types.count("delivery_result") == 5 and "alert_issued" in types and "incident_declared" in types
    [alert] = store.alerts()
    assert alert.template_sha256 == find_template(Workspace(live), "school-closure").sha256


def test_secrets_never_appear_in_output_database_or_files(live, sandbox):
    sandbox.fault("hook-b", fail_next=9, status=500)
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 1
    written = result.output + "".join(p.read_bytes().decode("utf-8", "replace") for p in live.rglob("*")
                                      if p.is_file())
    for secret in ("sandbox-mastodon-token", SECRET, SECRET.removeprefix("whsec_")):
        assert secret not in written


def test_unapproved_template_becomes_a_draft_and_nothing_is_sent(live, sandbox):
    path = live / "templates" / "school-closure.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Keep children", "Keep all children"), "utf-8")
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 2
    assert "not sent: saved as draft 1 (template modified since approval)" in result.stderr
    assert "hint: the second person runs: broadcast approve 1" in result.stderr
    assert sandbox.received(accepted=True) == []
    assert Store.open(live / "broadcast.db").alerts() == []


def test_a_failing_channel_exits_1_with_the_resend_command_then_resend_completes(live, sandbox):
    sandbox.fault("mastodon", fail_next=1, status=422)
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 1
    assert "FAIL  mastodon-council (en-GB)" in result.output
    assert "then: broadcast resend A-2026-0001 --only mastodon-council" in result.output
    assert "2 of 3 channels delivered." in result.output
    again = invoke(live, "resend", "A-2026-0001", "--yes")
    assert again.exit_code == 0, again.output
    assert "1 of 1 channels delivered." in again.output
    assert len(sandbox.received("mastodon", accepted=True)) == 1
    assert len(sandbox.received("webhook", accepted=True)) == 4  # nothing sent twice


def test_nothing_delivered_exits_3(live, sandbox):
    for target in ("mastodon", "hook-a", "hook-b"):
        sandbox.fault(target, fail_next=99, status=400)
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 3 and "0 of 3 channels delivered." in result.output


def test_switched_off_channel_is_skipped_by_warn_and_resend(live, sandbox):
    assert invoke(live, "channels", "disable", "hook-b").exit_code == 2  # a reason is required
    assert invoke(live, "channels", "disable", "hook-b", "--reason", "partner asked us to stop").exit_code == 0
    assert "partner asked us to stop" in invoke(live, "channels", "list").output
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 0
    assert "SKIP  hook-b" in result.output and "partner asked us to stop" in result.output
    assert {r.target for r in sandbox.received("webhook")} == {"hook-a"}
    resent = invoke(live, "resend", "A-2026-0001", "--yes")
    assert resent.exit_code == 0 and "hook-b  skipped: switched off by duty-officer" in resent.output
    assert "Nothing to resend now for A-2026-0001: every delivery has gone out." in resent.output
    assert {r.target for r in sandbox.received("webhook")} == {"hook-a"}
    invoke(live, "channels", "enable", "hook-b")
    assert "hook-b" not in invoke(live, "channels", "list").output.split("partner")[0].split("\n")[-1]


def test_a_warning_that_reaches_no_channel_issues_nothing_and_exits_3(live, sandbox):
    assert invoke(live, "channels", "disable", "hook-b", "--reason", "account hacked").exit_code == 0
    result = invoke(live, "warn", "school-closure", *SETS, "--only", "hook-b", "--yes")
    assert result.exit_code == 3
    assert "Error: nothing was issued: this message would reach no channel (hook-b: switched off" in result.stderr
    assert "account hacked" in result.stderr and "broadcast channels enable NAME" in result.stderr
    assert sandbox.received(accepted=True) == []
    assert Store.open(live / "broadcast.db").alerts() == []  # no Actual alert on the page or in CAP
    assert not (live / "site" / "cap").exists()


def test_not_a_terminal_needs_yes(live, sandbox):
    result = invoke(live, "warn", "school-closure", *SETS)
    assert result.exit_code == 2 and "add --yes to send from a script" in result.stderr
    assert sandbox.received(accepted=True) == []


def test_json_alone_never_sends(live, sandbox):
    result = invoke(live, "warn", "school-closure", *SETS, "--json")
    assert result.exit_code == 2 and "add --yes to send from a script" in result.stderr
    assert sandbox.received(accepted=True) == [] and not result.stdout


def test_json_output_for_scripts(live, sandbox):
    result = invoke(live, "warn", "school-closure", *SETS, "--json", "--yes")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["alert"] == "A-2026-0001" and report["exit_code"] == 0
    assert sorted((d["channel"], d["language"], d["state"]) for d in report["deliveries"]) == [
        ("hook-a", "cy-GB", "sent"), ("hook-a", "en-GB", "sent"), ("hook-b", "cy-GB", "sent"),
        ("hook-b", "en-GB", "sent"), ("mastodon-council", "en-GB", "sent")]


def test_a_hung_endpoint_is_stopped_by_its_deadline_while_the_others_complete(live, sandbox):
    sandbox.fault("hook-b", hang=True)
    workspace = Workspace(live)
    store = Store.open(workspace.db_path)
    plan = plan_warning(workspace, "school-closure", VALUES, store=store)
    report = send_warning(workspace, store, plan, actor="test",
                          limits=Limits(channel_deadline=0.5, overall_deadline=5, read_timeout=30))
    states = {(o.channel, o.language): o.state for o in report.outcomes}
    assert states[("mastodon-council", "en-GB")] == "sent" and states[("hook-a", "en-GB")] == "sent"
    assert states[("hook-b", "en-GB")] == "failed" and states[("hook-b", "cy-GB")] == "failed"
    hung = next(o for o in report.outcomes if o.channel == "hook-b")
    assert "no answer before the deadline" in hung.error and "resending is safe" in hung.hint
    assert report.exit_code == 1


def test_channels_check_reports_each_channel(live, sandbox, monkeypatch):
    result = invoke(live, "channels", "check")
    assert result.exit_code == 0, result.output
    assert f"OK    mastodon-council  posting as @council on {sandbox.url}/mastodon" in result.output
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "expired-value")
    result = invoke(live, "channels", "check", "mastodon-council")
    assert result.exit_code == 1
    assert "FAIL  mastodon-council" in result.output and "HTTP 401" in result.output
    assert "hint: create a new access token with the write:statuses scope" in result.output
    assert "expired-value" not in result.output
    assert sandbox.received(accepted=True) == []  # checking never posts


def test_missing_secret_names_the_variable(live, sandbox, monkeypatch):
    monkeypatch.delenv("TEST_MASTODON_TOKEN")
    result = invoke(live, "warn", "school-closure", *SETS, "--yes", "--only", "mastodon-council")
    assert result.exit_code == 3
    assert "the environment variable TEST_MASTODON_TOKEN is not set" in result.output


def test_garbage_from_a_platform_is_a_clear_error_not_a_crash(live, sandbox):
    sandbox.fault("mastodon", garbage="html")
    result = invoke(live, "warn", "school-closure", *SETS, "--yes", "--only", "mastodon-council")
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert "CHECK mastodon-council (en-GB)" not in result.output  # Mastodon is idempotent: safe to retry
    assert "the platform's answer could not be read" in result.output


@pytest.mark.parametrize(("line", "words"), [("concurrency = 0", "fanout.concurrency: must be above 0"),
                                             ("retries = 3", "fanout.retries: unknown key"),
                                             ('channel_deadline = "soon"', "expected a number")])
def test_fanout_settings_are_checked(live, line, words):
    config = live / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"{line}\n", encoding="utf-8")
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 2 and words in result.stderr


def test_resend_says_what_a_switched_off_channel_still_owes_and_exits_1(live, sandbox):
    sandbox.fault("hook-b", error_rate=1.0, status=500)
    first = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert first.exit_code == 1 and "FAIL  hook-b (en-GB)" in first.output
    invoke(live, "channels", "disable", "hook-b", "--reason", "partner hub down")
    resent = invoke(live, "resend", "A-2026-0001", "--yes")
    assert resent.exit_code == 1, resent.output  # not 0: hook-b's messages are still not delivered
    assert "FAIL  hook-b (en-GB)" in resent.output and "not sent: switched off by duty-officer" in resent.output
    assert "hint: when hook-b can be used again: broadcast resend A-2026-0001 --only hook-b" in resent.output


def test_a_delivery_key_is_the_uuid5_that_earlier_versions_stored():
    # Rows queued by an earlier version hold keys the standard library made; a resend must carry the same ones.
    cases = [("A-2026-0001", "mastodon-council", "en-GB", "", ""),
             ("A-2026-0001", "sms-residents", "cy-GB", "9f" * 32, "0c1d" * 8),
             ("watch:A-2026-0042", "teams-duty", "en-GB", "", "é/ü/ß/\U0001F600")]
    for alert, channel, language, recipient, space in cases:
        name = "/".join([*([space] if space else []), alert, channel, language, recipient])
        assert delivery_key(alert, channel, language, recipient, space) == str(uuid.uuid5(KEY_NAMESPACE, name))


def test_planning_a_warning_reads_no_more_of_a_longer_log(workspace, tmp_path):
    # SQLite's own count of its steps (its progress handler, every 10 virtual-machine instructions) while a warning
    # is planned, with 100 events in the log and with 20,000 (a send to a long list leaves that many): the kill
    # switches are found by their kind, not by reading every event, as they were before.
    def steps(events: int) -> int:
        store = Store.open(tmp_path / f"{events}.db")
        note = {"type": "delivery_result", "phase": "warn", "actor": "duty-officer", "alert": "A-2026-0001",
                "channel": "sms-residents", "description": "sms-residents: delivered", "details": {"outcome": "sent"}}
        for _ in range(events // 100):
            store.append_events([note] * 100)
        counted = sqlite_steps(store.conn)
        plan_warning(workspace, "school-closure", VALUES, store=store)
        store.close()
        return counted[0]

    short, long = steps(100), steps(20_000)
    assert long < short + 50, (short, long)
