"""What a send to a list writes to the log: a row `sending` before each request, one result event per person, the
first attempts named in one event per batch, the chain appended in batches; the same on SQLite and PostgreSQL."""

import asyncio
import json
import sqlite3
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import VALUES, make_alert
from listkit import list_workspace, many, notify_channel

from broadcast.cli import cli
from broadcast.send.journal import Journal
from broadcast.store import Store, event_hash, open_store
from broadcast.workspace import Workspace

pytest_plugins = ("listkit", "pgkit")
SETS = [f"--set={k}={v}" for k, v in VALUES.items()]
PEOPLE = 60


def details(event):
    return json.loads(event["details"])


def approve_in_log(root):
    """As listkit's approved(), into the workspace's own log (PostgreSQL when it names one)."""
    from broadcast.prepare.approvals import approve
    from broadcast.prepare.templates import find_template

    workspace = Workspace(root)
    store = open_store(workspace)
    approve(workspace, find_template(workspace, "school-closure"), "Alex Morgan, Head of Communications", store)
    store.close()


def warn_to_many(root, sandbox):
    approve_in_log(root)
    sandbox.clear()
    sandbox.store("notify")["rate_limit"] = None
    result = CliRunner().invoke(cli, ["--workspace", str(root), "warn", "school-closure", *SETS, "--yes"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    texted = Counter(r.body["phone_number"] for r in sandbox.received("notify", accepted=True))
    assert len(texted) == PEOPLE and set(texted.values()) == {1}  # everyone, once
    store = open_store(Workspace(root))
    try:
        events = list(store.events())
        rows = store.deliveries("A-2026-0001", recipients=True)
        assert store.verify().ok  # each row's state is what its last logged change says
    finally:
        store.close()
    assert len(rows) == PEOPLE and {r["state"] for r in rows} == {"sent"} and {r["attempts"] for r in rows} == {1}
    results = [e for e in events if e["type"] == "delivery_result"]
    assert sorted(details(e)["delivery"] for e in results) == sorted(r["id"] for r in rows)  # one each
    attempts = [details(e) for e in events if e["type"] == "delivery_attempt"]
    named = [number for a in attempts for number in a["deliveries_settled"]]
    assert sorted(named) == sorted(r["id"] for r in rows)  # each first attempt logged, once, before its request
    assert all(a["state"] == "sending" and a["attempt"] == 1 and a["deliveries"] == len(a["deliveries_settled"])
               for a in attempts)
    assert len(attempts) <= PEOPLE // 10  # one event per batch, not one per person
    assert "retry_scheduled" not in {e["type"] for e in events}
    return events, rows


def summary(events, rows):
    """The log as a reader compares two backends: kinds of event, each delivery's result, every row's state."""
    kinds = Counter((e["type"], e["channel"]) for e in events if e["type"] != "delivery_attempt")
    results = Counter((e["channel"], details(e)["language"], details(e)["outcome"], details(e)["attempt"])
                      for e in events if e["type"] == "delivery_result")
    states = Counter((r["channel"], r["language"], r["state"], r["attempts"]) for r in rows)
    return kinds, results, states


def test_a_list_send_logs_one_result_a_person_and_the_same_on_postgresql_as_on_sqlite(tmp_path, sandbox, env,
                                                                                      postgres_url, monkeypatch):
    lite = list_workspace(tmp_path / "lite", [notify_channel(sandbox.url)], residents=many(PEOPLE))
    shared = list_workspace(tmp_path / "shared", [notify_channel(sandbox.url)], residents=many(PEOPLE))
    monkeypatch.setenv("BULK_LOG", postgres_url)
    with (shared / "broadcast.toml").open("a", encoding="utf-8") as config:
        config.write('\n[store]\nurl = "env:BULK_LOG"\n')
    monkeypatch.setenv("BROADCAST_RECIPIENT_KEY", "k" * 64)  # both lists hash alike
    on_sqlite = warn_to_many(lite, sandbox)
    on_postgresql = warn_to_many(shared, sandbox)
    assert summary(*on_postgresql) == summary(*on_sqlite)
    assert {r["recipient"] for r in on_postgresql[1]} == {r["recipient"] for r in on_sqlite[1]}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = Store.open(tmp_path / "broadcast.db")
    else:
        opened = Store.open_url(request.getfixturevalue("postgres_url"))
    yield opened
    opened.close()


def test_events_appended_in_a_batch_are_chained_and_hashed_as_one_at_a_time(store):
    store.append_event("note", phase="warn", actor="officer", description="before the batch")
    count = store.append_events([
        {"type": "note", "phase": "warn", "actor": "officer", "description": "Ysgol ar gau — ŵ", "pinned": True,
         "details": {"b": None, "a": [1, "два"], "n": 2}},
        {"type": "delivery_result", "phase": "warn", "actor": "bulk", "channel": "sms", "alert": None,
         "occurred_at": "2026-11-23T06:05:00.123Z", "details": {"outcome": "sent", "delivery": 7}},
        {"type": "note", "phase": "review", "actor": "reviewer", "supersedes": "x"},
    ])
    store.append_event("note", phase="warn", actor="officer", description="after the batch")
    events = list(store.events())
    assert count == 3 and [e["id"] for e in events] == [1, 2, 3, 4, 5]
    assert all(e["hash"] == event_hash(e) for e in events)
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]
    assert events[2]["occurred_at"] == "2026-11-23T06:05:00.123Z" and events[1]["pinned"] == 1
    assert store.verify().ok
    with pytest.raises(ValueError, match="phase must be one of"):
        store.append_events([{"type": "note", "phase": "warn", "actor": "a"},
                             {"type": "note", "phase": "later", "actor": "a"}])
    assert store.head()[0] == 5  # refused whole: nothing of it was written


def test_first_attempts_are_durable_as_sending_one_event_a_batch_and_a_retry_is_logged_alone(workspace):
    store = Store.open(workspace.db_path)
    alert = make_alert(workspace)
    store.save_alert(alert, sent_by="test")
    store.add_deliveries(alert.identifier, [
        {"channel": "sms-residents", "language": "en-GB", "recipient": f"sms:{n:064x}",
         "recipient_masked": f"+44 7*** ***00{n}", "idempotency_key": f"key-{n}"} for n in range(5)], actor="test")
    rows = store.deliveries(alert.identifier, recipients=True)
    commits: list[str] = []
    store.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    async def go():
        async with Journal(store, alert=alert.identifier, actor="test") as journal:
            for row in rows:
                journal.sending(row, attempt=1, key=row["idempotency_key"], description="attempt 1")
            await journal.durable()
            # What another process (a resend after a kill) finds now: everyone in flight, and the log agrees.
            reader = sqlite3.connect(workspace.db_path)
            seen = [state for (state,) in reader.execute("SELECT state FROM deliveries WHERE recipient != ''")]
            reader.close()
            assert seen == ["sending"] * 5 and store.verify().ok
            for row in rows[:4]:
                journal.record(row, "sent", "delivery_result", description="sent", details={"outcome": "sent",
                               "attempt": 1}, remote_id=f"id-{row['id']}", last_error=None)
            last = rows[4]  # a retry: back to pending, then its second attempt, in the same batch
            journal.record(last, "pending", "retry_scheduled", description="retry", details={"wait_s": 0.1})
            journal.sending(last, attempt=2, key=last["idempotency_key"], description="attempt 2")
            await journal.durable()

    asyncio.run(go())
    store.conn.set_trace_callback(None)
    assert len(commits) == 2  # two batches, two transactions
    events = list(store.events())
    firsts = [e for e in events if e["type"] == "delivery_attempt" and "deliveries_settled" in details(e)]
    assert len(firsts) == 1 and details(firsts[0])["deliveries_settled"] == [r["id"] for r in rows]
    second = [details(e) for e in events if e["type"] == "delivery_attempt" and "delivery" in details(e)]
    assert second == [{"attempt": 2, "delivery": rows[4]["id"], "key": "key-4", "language": "en-GB",
                       "recipient": "+44 7*** ***004", "state": "sending"}]
    assert [e["type"] for e in events[-6:]] == ["delivery_result"] * 4 + ["retry_scheduled", "delivery_attempt"]
    stored = {r["id"]: (r["state"], r["attempts"]) for r in store.deliveries(alert.identifier, recipients=True)}
    assert list(stored.values()) == [("sent", 1)] * 4 + [("sending", 2)]
    assert store.verify().ok
    store.close()


def test_a_batch_that_cannot_be_written_sends_nothing_of_it(workspace):
    store = Store.open(workspace.db_path)
    alert = make_alert(workspace)
    store.save_alert(alert, sent_by="test")
    store.add_deliveries(alert.identifier, [{"channel": "sms-residents", "language": "en-GB", "recipient": "sms:1",
                                             "recipient_masked": "+44 7*** ***001", "idempotency_key": "k"}],
                         actor="test")
    [row] = store.deliveries(alert.identifier, recipients=True)
    blocker = sqlite3.connect(workspace.db_path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the log
    store.conn.execute("PRAGMA busy_timeout = 0")

    async def go():
        async with Journal(store, alert=alert.identifier, actor="test") as journal:
            journal.sending(row, attempt=1, key="k", description="attempt 1")
            with pytest.raises(sqlite3.OperationalError):
                await journal.durable()  # the worker is told, and its request never goes out

    asyncio.run(go())
    blocker.rollback()
    blocker.close()
    [after] = store.deliveries(alert.identifier, recipients=True)
    assert after["state"] == "pending" and store.verify().ok  # as it was: a resend sends it
    store.close()
