"""Several duty officers, one incident: two workspaces ("machines") on one real PostgreSQL log, as a council with a
rota would run them. What one machine does, every machine sees; four processes at once make one chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, VALUES, approved, live_channels, make_workspace

from broadcast.store import Store
from broadcast.workspace import Workspace

pytest_plugins = ("pgkit",)
pytestmark = pytest.mark.real_clock  # broadcast runs in its own processes, as each officer runs it

FAST = "\n[fanout]\nfirst_backoff = 0.01\nmax_backoff = 0.02\n"
SHARED = '\n[store]\nurl = "env:BROADCAST_STORE_URL"\n'


def machine(root, sandbox, *, shared=True):
    """One officer's workspace (its own folder, git checkout and approvals), on the shared log."""
    make_workspace(root)
    (root / "broadcast.toml").write_text((root / "broadcast.toml").read_text(encoding="utf-8") + FAST
                                         + (SHARED if shared else ""), encoding="utf-8")
    live_channels(root, sandbox.url)
    approved(root)
    return root


@pytest.fixture
def machines(tmp_path, sandbox, sandbox_env, postgres_url, monkeypatch):
    monkeypatch.setenv("BROADCAST_STORE_URL", postgres_url)
    monkeypatch.setenv("BROADCAST_OPERATOR", "duty-officer")
    return machine(tmp_path / "a", sandbox), machine(tmp_path / "b", sandbox)


def broadcast(root, *args):
    return subprocess.Popen([sys.executable, "-m", "broadcast", "--workspace", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def run(root, *args):
    process = broadcast(root, *args)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def sets(school, **changed):
    return [f"--set={k}={v}" for k, v in {**VALUES, "school": school, **changed}.items()]


def draft_as(root, text):
    """A free-text draft, written by another officer (OS account alex) on that machine."""
    from click.testing import CliRunner

    from broadcast.cli import cli

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("broadcast.prepare.approvals.os_account", lambda: "alex")
        result = CliRunner().invoke(cli, ["--workspace", str(root), "warn", "--text", text, "--yes"],
                                    catch_exceptions=False)
    assert result.exit_code == 2 and "saved as draft" in result.stderr, result.output


def test_four_processes_on_two_machines_make_one_chain_and_one_page(machines, sandbox, postgres_url):
    a, b = machines
    draft_as(a, "Pont-y-Lliw bridge is closed.")  # draft 1, written on machine A
    draft_as(b, "Heol Fawr is flooded.")  # draft 2, written on machine B
    assert "1  waiting" in run(b, "drafts")[1] and "2  waiting" in run(a, "drafts")[1]  # each sees the other's

    at_once = [broadcast(a, "warn", "school-closure", *sets("Hillside Primary School"), "--yes"),
               broadcast(b, "warn", "school-closure", *sets("Ysgol Bro Lliw"), "--yes"),
               broadcast(b, "approve", "1", "--yes"),  # drafted on A, approved on B by another account
               broadcast(a, "approve", "2", "--yes")]
    results = [(p.wait(timeout=120), *p.communicate()) for p in at_once]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results

    store = Store.open_url(postgres_url)
    identifiers = [row[0] for row in store.conn.execute("SELECT identifier FROM alerts ORDER BY rowid")]
    assert len(identifiers) == 4 and len(set(identifiers)) == 4
    assert {int(i.rsplit("-", 1)[1]) for i in identifiers} == {1, 2, 3, 4}
    verified = store.verify()
    assert verified.ok, verified.reason
    store.close()
    for root in (a, b):  # either machine verifies the one chain
        code, out, _ = run(root, "review", "verify")
        assert code == 0 and f"OK  {verified.count} events, head {verified.head}" in out

    # Every publisher publishes every live alert: the page from machine B lists the warnings A sent too.
    code, _, err = run(b, "page", "build")
    assert code == 0, err
    status = json.loads((b / "site" / "status.json").read_text(encoding="utf-8"))
    listed = {update["id"] for incident in status["incidents"] for update in incident["incident_updates"]}
    assert listed == set(identifiers)
    assert {incident["status"] for incident in status["incidents"]} != {"resolved"}
    index = (b / "site" / "index.html").read_text(encoding="utf-8")
    assert all((b / "site" / "cap" / f"{identifier}.xml").is_file() for identifier in identifiers)
    assert "Hillside Primary School" in index and "Ysgol Bro Lliw" in index
    assert "Pont-y-Lliw bridge is closed." in index and "Heol Fawr is flooded." in index


RUNBOOK = "# School closures\n\n## Warn\n- [ ] W1. Send the closure.\n- [ ] W2. Tell the press office.\n"


def test_a_switch_a_promise_and_a_runbook_on_one_machine_are_what_the_other_sees(machines, sandbox):
    a, b = machines
    code, _, err = run(a, "channels", "disable", "hook-a", "--reason", "account hacked")
    assert code == 0, err
    code, out, err = run(b, "warn", "school-closure", *sets("Hillside Primary School"), "--yes")
    assert code == 0, out + err
    assert "hook-a" in out and "switched off" in out + err
    assert [r for r in sandbox.received(accepted=True) if r.target == "hook-a"] == []
    assert [r for r in sandbox.received(accepted=True) if r.target == "hook-b"]
    code, out, _ = run(a, "status", "--json")
    status = json.loads(out)
    [incident] = status["incidents"]  # machine B's warning, with its promise of a 10:00 update
    assert incident["next_update_due"] is not None
    [why] = [o["why"] for o in status["off"] if o["channel"] == "hook-a"]
    assert why.startswith("switched off by duty-officer") and why.endswith(": account hacked")

    for root in (a, b):
        (root / "runbooks").mkdir()
        (root / "runbooks" / "school-closures.md").write_text(RUNBOOK, encoding="utf-8")
    assert run(a, "runbook", "start", "school-closures", "--incident", incident["slug"])[0] == 0
    assert run(b, "runbook", "tick", "W1")[0] == 0  # ticked on the other machine
    code, out, _ = run(a, "runbook", "show", "--json")
    steps = {step["id"]: step for step in json.loads(out)["steps"]}
    assert steps["W1"]["done_at"] is not None and steps["W2"]["done_at"] is None


def test_a_sqlite_log_moves_to_postgresql_and_verifies_on_both_sides(tmp_path, sandbox, sandbox_env, postgres_url,
                                                                     monkeypatch):
    root = machine(tmp_path / "solo", sandbox, shared=False)  # one laptop, as today
    config = root / "broadcast.toml"
    monkeypatch.setenv("BROADCAST_OPERATOR", "duty-officer")
    code, out, err = run(root, "warn", "school-closure", *sets("Hillside Primary School"), "--yes")
    assert code == 0, out + err
    before = Store.open(root / "broadcast.db").verify()

    monkeypatch.setenv("SHARED_LOG", postgres_url)
    code, out, err = run(root, "store", "migrate", "--to", "env:SHARED_LOG")
    assert code == 0, out + err
    assert f"OK    SQLite     verifies: {before.count:,} events, head {before.head}" in out
    assert f"OK    PostgreSQL verifies: {before.count:,} events, head {before.head}" in out
    again = run(root, "store", "migrate", "--to", "env:SHARED_LOG")  # never into a log that has one
    assert again[0] == 2 and "already holds a log" in again[2]

    config.write_text(config.read_text(encoding="utf-8") + '\n[store]\nurl = "env:SHARED_LOG"\n', encoding="utf-8")
    code, out, _ = run(root, "store", "info", "--json")
    info = json.loads(out)
    assert (info["kind"], info["events"], info["head"]) == ("postgresql", before.count, before.head)
    assert info["rows"]["alerts"] == 1 and "@" in info["where"]
    code, out, err = run(root, "warn", "school-closure", *sets("Ysgol Bro Lliw"), "--yes")  # numbering goes on
    assert code == 0, out + err
    store = Store.open_url(postgres_url)
    assert [row[0].rsplit("-", 1)[1] for row in store.conn.execute("SELECT identifier FROM alerts ORDER BY rowid")] \
        == ["0001", "0002"]
    assert store.verify().ok
    store.close()


def test_a_password_in_broadcast_toml_is_refused_and_never_shown(tmp_path, sandbox, monkeypatch):
    root = tmp_path / "ws"
    make_workspace(root)
    (root / "broadcast.toml").write_text((root / "broadcast.toml").read_text(encoding="utf-8")
                                         + '\n[store]\nurl = "postgresql://alerts:s3cr3t-pw@db.example/broadcast"\n',
                                         encoding="utf-8")
    code, out, err = run(root, "status")
    assert code == 2 and "store.url: holds a password" in err and "env:BROADCAST_STORE_URL" in err
    assert "s3cr3t-pw" not in out + err
    monkeypatch.setenv("SHARED_LOG", "postgresql://alerts:s3cr3t-pw@127.0.0.1:1/broadcast")  # nothing listens
    (root / "broadcast.toml").write_text((root / "broadcast.toml").read_text(encoding="utf-8").replace(
        '"postgresql://alerts:s3cr3t-pw@db.example/broadcast"', '"env:SHARED_LOG"'), encoding="utf-8")
    code, out, err = run(root, "status")
    assert code == 2 and "cannot use the log database postgresql://alerts:***@127.0.0.1:1/broadcast" in err, err
    assert "s3cr3t-pw" not in out + err


def test_a_whole_incident_runs_on_postgresql_as_on_sqlite(machines, sandbox, postgres_url):
    """Warn, update, correct, cancel, resend, review, verify, publish and close: all on the shared log."""
    a, b = machines
    code, out, err = run(a, "warn", "school-closure", *sets("Hillside Primary School"), "--yes", "--json")
    assert code == 0, out + err
    sent = json.loads(out)
    incident, first = sent["incident"], sent["alert"]
    code, out, err = run(b, "update", incident, "school-closure",
                         *sets("Hillside Primary School", reason="heating"), "--yes")
    assert code == 0, out + err
    store = Store.open_url(postgres_url)
    [_, second] = [a.identifier for a in store.alerts(incident)]
    store.close()
    code, out, err = run(a, "correct", second, "--set=date=2026-11-24", "--yes")
    assert code == 0, out + err
    sandbox.fault("hook-b", fail_next=9, status=500)
    code, out, err = run(b, "cancel", first, "--reason", "sent for the wrong school", "--yes")
    assert code == 1 and "hook-b" in out, out + err  # hook-b refuses: one channel left to finish
    sandbox.clear()
    code, out, err = run(a, "status")
    assert code == 1 and "resend" in out  # machine A sees what machine B left undone
    store = Store.open_url(postgres_url)
    cancel = store.alerts(incident)[-1]
    store.close()
    code, out, err = run(a, "resend", cancel.identifier, "--yes")
    assert code == 0, out + err
    assert cancel.msg_type == "Cancel" and {r.target for r in sandbox.received(accepted=True)} == {"hook-b"}

    code, out, _ = run(b, "review", "metrics", incident, "--json")
    metrics = json.loads(out)
    assert metrics["attempted"] == metrics["reached"] + metrics["failed"] + metrics["unknown"]
    assert metrics["failed"] == 0 and metrics["corrections"] == 1 and metrics["retractions"] == 1
    code, _, err = run(a, "review", incident, "--format", "jsonl", "-o", str(a / "timeline.jsonl"))
    assert code == 0, err
    check = subprocess.run([sys.executable, str(REPO / "docs" / "verify_export.py"), str(a / "timeline.jsonl")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert run(b, "close", incident)[0] == 0
    code, out, _ = run(a, "review", "verify")
    assert code == 0 and out.startswith("OK")
    code, _, err = run(a, "page", "build")
    assert code == 0, err
    status = json.loads((a / "site" / "status.json").read_text(encoding="utf-8"))
    [shown] = status["incidents"]
    assert shown["id"] == incident and shown["broadcast_status"] == "cancelled"


def test_a_drill_or_rehearsal_copy_never_writes_to_the_shared_log(tmp_path):
    from broadcast.drill import copy_workspace

    root = make_workspace(tmp_path / "council")
    (root / "broadcast.toml").write_text((root / "broadcast.toml").read_text(encoding="utf-8") + SHARED
                                         + '\n[policy]\nunapproved = "draft"\n', encoding="utf-8")
    copy = copy_workspace(root, tmp_path / "rehearsal")
    config = (copy / "broadcast.toml").read_text(encoding="utf-8")
    assert "[store]" not in config and "BROADCAST_STORE_URL" not in config
    assert '[policy]\nunapproved = "draft"' in config  # the section after it is kept
    assert Workspace(copy).store_url() is None  # its own SQLite file, beside the copy
