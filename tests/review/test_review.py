"""The review commands: exporting by incident name, notes and decisions, verify, list, summary, a live incident."""

import json
import sqlite3

import pytest
from conftest import VALUES
from reviewkit import SLUG, live_workspace

from broadcast.review.evidence import ChainJob
from broadcast.review.timeline import snapshot
from broadcast.store import Store

pytest_plugins = ("reviewkit",)  # its `known` fixture


def count_events(workspace_dir):
    store = Store.open(workspace_dir / "broadcast.db")
    try:
        return store.head()[0]
    finally:
        store.close()


def test_review_incident_is_the_export_command(run, known):
    direct = run("review", SLUG, "--format", "jsonl")
    named = run("review", "export", SLUG, "--format", "jsonl")
    options_first = run("review", "--format", "jsonl", SLUG)
    assert direct.exit_code == named.exit_code == options_first.exit_code == 0
    strip = [[line for line in r.stdout.splitlines()[1:]] for r in (direct, named, options_first)]
    assert strip[0] == strip[1] == strip[2] and len(strip[0]) == 22
    assert run("review", SLUG).stdout.startswith("# Incident timeline: Snow closes schools")  # Markdown by default
    help_text = run("review", "--help").output
    assert "review INCIDENT [--format csv|jsonl|md|html] [-o FILE] [OPTIONS]" in help_text
    assert "or: cli review COMMAND [ARGS]..." in help_text
    for command in ("verify", "metrics", "note", "decision", "aar", "list", "summary"):
        assert f"  {command} " in help_text


def test_an_unknown_incident_or_a_mistyped_command_says_what_to_do(run, known):
    result = run("review", "snow-2026-10-52")
    assert result.exit_code == 2
    assert "Error: no incident 'snow-2026-10-52' in the log" in result.stderr
    assert "hint: did you mean 'snow-2026-10-25'?" in result.stderr
    assert "see the incidents in: broadcast review list" in run("review", "lsit").stderr


def test_a_decision_without_a_reason_is_refused_and_nothing_is_logged(run, known, workspace_dir):
    before = count_events(workspace_dir)
    result = run("review", "decision", SLUG, "Open the rest centre at the leisure centre")
    assert result.exit_code == 2
    assert "Error: a decision needs its reasons: nothing was logged" in result.stderr
    assert 'hint: add --reason "why this was decided, on what information"' in result.stderr
    assert run("review", "decision", SLUG, "Open the rest centre", "--reason", "  ").exit_code == 2
    assert count_events(workspace_dir) == before


def test_a_decision_with_its_reason_is_logged_and_exported(run, known, tmp_path):
    result = run("review", "decision", SLUG, "Open the rest centre", "--reason", "Power cut in 400 homes",
                 "--by", "Sam Rees, Emergency Planning Manager", "--at", "2026-10-25T01:30Z")
    assert result.exit_code == 0, result.output
    assert "Logged decision " in result.stdout and " at 2026-10-25 01:30:00 GMT (recorded " in result.stdout
    md = run("review", SLUG).stdout
    assert ("- 2026-10-25 01:30:00 GMT: Open the rest centre (Sam Rees, Emergency Planning Manager). "
            "Reason: Power cut in 400 homes") in md


def test_a_backfilled_note_keeps_both_times(run, known, workspace_dir):
    result = run("review", "note", SLUG, "Head teacher phoned the duty officer", "--at", "2026-10-25 00:50", "--pin")
    assert result.exit_code == 0, result.output
    store = Store.open(workspace_dir / "broadcast.db")
    note = list(store.events())[-1]
    store.close()
    assert (note["type"], note["occurred_at"], note["pinned"]) == ("note", "2026-10-24T23:50:00.000Z", 1)
    assert note["recorded_at"] > "2026-11" and note["recorded_at"] != note["occurred_at"]  # written later, and says so
    assert note["phase"] == "review"  # the incident is closed
    rows = [json.loads(line) for line in run("review", SLUG, "--format", "jsonl", "--pinned").stdout.splitlines()[1:]]
    assert [(r["type"], r["occurred_at"], r["recorded_at"], r["occurred_at_local"]) for r in rows][-1] == (
        "note", "2026-10-24T23:50:00.000Z", note["recorded_at"], "2026-10-25T00:50:00.000+01:00")


def test_times_the_clock_change_makes_ambiguous_or_in_the_future_are_refused(run, known):
    result = run("review", "note", SLUG, "Gritters out", "--at", "2026-10-25 01:30")
    assert result.exit_code == 2
    assert "is ambiguous or skipped in Europe/London because of the clock change" in result.stderr
    assert "hint: give the offset, e.g. --at 2026-10-25T01:30+01:00" in result.stderr
    assert run("review", "note", SLUG, "Gritters out", "--at", "2026-10-25T01:30+01:00").exit_code == 0
    assert run("review", "note", SLUG, "Later", "--at", "2099-01-01T00:00Z").exit_code == 2
    assert "is not a time" in run("review", "note", SLUG, "x", "--at", "half past").stderr


def test_corrections_are_new_entries_and_system_events_cannot_be_corrected(run, known, workspace_dir):
    store, e = known
    refused = run("review", "note", SLUG, "Wrong time", "--corrects", e["issued"]["event_id"])
    assert refused.exit_code == 2
    assert "is a alert_issued event, which the system logged: it cannot be corrected" in refused.stderr
    first = run("review", "note", SLUG, "Gritters out at 05:00")
    event_id = first.stdout.split()[2]
    fixed = run("review", "note", SLUG, "Gritters out at 04:30", "--corrects", event_id)
    assert fixed.exit_code == 0 and f"It corrects {event_id}, which stays in the log" in fixed.stdout
    rows = [json.loads(line) for line in run("review", SLUG, "--format", "jsonl").stdout.splitlines()[1:]]
    original, correction = rows[-2], rows[-1]
    assert original["event_id"] == event_id and original["description"] == "Gritters out at 05:00"
    assert correction["supersedes"] == event_id
    md = run("review", SLUG).stdout
    assert "~~Gritters out at 05:00~~ (corrected at " in md and f"corrects {event_id[:8]}" in md
    mixed = run("review", "decision", SLUG, "Gritters out at 04:30", "--reason", "x", "--corrects", event_id)
    assert mixed.exit_code == 2 and "is a note: correct it with another note" in mixed.stderr
    assert json.loads(run("review", "metrics", SLUG, "--json").stdout)["log_corrections"] == 1


def test_verify_with_an_incident_reports_its_digest(run, known, tmp_path):
    store, _ = known
    result = run("review", "verify", SLUG)
    assert result.exit_code == 0
    count, head = store.head()
    lines = result.stdout.splitlines()
    assert lines[0] == f"OK  {count} events, head {head}; the stored alerts and deliveries match it"
    header = json.loads(run("review", SLUG, "--format", "jsonl").stdout.splitlines()[0])
    assert lines[1] == (f"OK  {SLUG}: 22 events (chain ids 2..{count}), digest {header['events_digest']}")


def test_a_tampered_log_fails_verify_and_says_so_in_every_export(run, known, workspace_dir):
    conn = sqlite3.connect(workspace_dir / "broadcast.db")
    conn.executescript("DROP TRIGGER events_no_update; UPDATE events SET description = 'Schools open' WHERE id = 5;")
    conn.commit()
    conn.close()
    result = run("review", "verify", SLUG)
    assert result.exit_code == 1
    assert "Error: the log does not verify at event 5: content does not match its hash" in result.stderr
    exported = run("review", SLUG, "--format", "jsonl")
    assert exported.exit_code == 0
    assert json.loads(exported.stdout.splitlines()[0])["chain"] == {
        "verified": False, "events": 23, "head": known[0].head()[1], "broken_at": 5,
        "reason": "content does not match its hash"}
    assert "Warning: the log does not verify at event 5" in exported.stderr


@pytest.mark.parametrize("tamper", [None, "UPDATE events SET actor = 'x' WHERE id = 7",
                                    "UPDATE events SET prev_hash = hash WHERE id = 9"])
def test_the_helper_process_check_agrees_with_store_verify(known, workspace_dir, tamper):
    store, _ = known
    if tamper:
        store.conn.executescript(f"DROP TRIGGER events_no_update; {tamper};")
    with snapshot(store):
        job = ChainJob(store, parallel_from=0)
        assert job.process is not None
        assert job.result() == store.verify()


def test_list_and_summary(run, known):
    listed = run("review", "list")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[1].split()[:5] == [SLUG, "closed", "2026-10-25", "00:20", "3"]
    assert json.loads(run("review", "list", "--json").stdout)["incidents"][0]["events"] == 19
    summary = run("review", "summary", "--since", "2026-10-01", "--until", "2026-11-01")
    assert summary.exit_code == 0
    out = summary.stdout
    assert "1 incident from 2026-10-01 to 2026-11-01 (0 exercises)" in out
    assert f"2026-10-25  {SLUG}  3 alerts, first warning after 12m 01s" in out
    assert out.splitlines()[-4:] == [
        "  CHANNEL           ATTEMPTED  ACCEPTED  DELIVERED  FAILED  UNKNOWN",
        "  hook-b                    1         1          -       0        0",
        "  hook-c                    1         0          -       1        0",
        "  mastodon-council          2         2          -       0        0"]
    assert run("review", "summary", "--since", "1 October").exit_code == 2


def test_metrics_command(run, known):
    out = run("review", "metrics", SLUG).stdout
    assert "Declared:                       2026-10-25 01:20:00 BST" in out
    assert "All clear:                      2026-10-25 01:50:00 GMT" in out
    assert "Time to all-clear:              1h 30m" in out
    assert ("Messages:                       4 attempted = 3 accepted (no receipts reported) + 1 failed + 0 unknown; "
            "3 accepted by the platforms") in out
    assert "All channels                        4         3          -       1        0" in out
    assert "Approval latency (median, max): 6m 00s, 6m 00s (1 drafts)" in out
    assert out.splitlines()[-1].split() == ["mastodon-council", "1.0s", "400", "ms", "600", "ms", "0"]


def test_a_live_incident_end_to_end(run, workspace_dir, sandbox, sandbox_env, monkeypatch, tmp_path):
    """Send through the sandbox with one channel failing, then review what the log holds."""
    live_workspace(workspace_dir, sandbox)
    monkeypatch.setenv("BROADCAST_OPERATOR", "duty-officer")
    sandbox.fault("hook-b", fail_next=9, status=500)
    sent = run("warn", "school-closure", *[f"--set={k}={v}" for k, v in VALUES.items()], "--yes")
    assert sent.exit_code == 1, sent.output
    slug = json.loads(run("review", "list", "--json").stdout)["incidents"][0]["slug"]
    path = tmp_path / "live.jsonl"
    assert run("review", slug, "-o", str(path)).exit_code == 0  # the format from the suffix
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    results = {r["channel"]: r for r in rows if r["type"] == "delivery_result"}
    store = Store.open(workspace_dir / "broadcast.db")
    [mastodon] = store.deliveries("A-2026-0001", ("sent",))
    store.close()
    assert results["mastodon-council"]["outcome"] == "sent"
    assert results["mastodon-council"]["provider_ref"] == mastodon["remote_id"]
    assert isinstance(results["mastodon-council"]["latency_ms"], int)
    assert (results["hook-b"]["outcome"], results["hook-b"]["http_status"], results["hook-b"]["attempt"]) == (
        "failed", 500, 2)
    assert [r["type"] for r in rows][:2] == ["incident_declared", "alert_issued"]
    assert any(r["type"] == "fallback_verified" and r["incident"] is None for r in rows)
    metrics = json.loads(run("review", "metrics", slug, "--json").stdout)
    assert (metrics["accepted"], metrics["attempted"], metrics["failed"], metrics["retries"]) == (1, 2, 1, 1)
    assert metrics["page_publish_lag_s"] is not None and metrics["time_to_first_warning_s"] < 60
    assert run("review", "verify", slug).exit_code == 0


def test_a_read_only_evidence_copy_verifies_and_is_left_as_it_was(run, known, workspace_dir, tmp_path):
    import hashlib
    import os
    import stat

    source = Store.open(workspace_dir / "broadcast.db")
    source.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    source.close()
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    copy = evidence / "broadcast-copy.db"
    copy.write_bytes((workspace_dir / "broadcast.db").read_bytes())
    copy.chmod(stat.S_IRUSR | stat.S_IRGRP)
    evidence.chmod(stat.S_IRUSR | stat.S_IXUSR)  # a read-only folder (root may still write: the bytes tell)
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    try:
        result = run("review", "verify", "--database", str(copy))
        assert result.exit_code == 0, result.output
        assert result.output.startswith("OK  ") and " events, head " in result.output
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == before
        assert sorted(os.listdir(evidence)) == ["broadcast-copy.db"]  # no -wal, -shm or -id written beside it
    finally:
        evidence.chmod(stat.S_IRWXU)
