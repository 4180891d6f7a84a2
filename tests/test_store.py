"""The log, on both stores: a SQLite file, and a real PostgreSQL server (tests/pgkit.py starts one)."""

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import make_alert, sqlite_steps
from hypothesis import given
from hypothesis import strategies as st

from broadcast.prepare.templates import find_template
from broadcast.store import EVENT_COLUMNS, GENESIS, Store, canonical_json, event_hash, isoformat

pytest_plugins = ("pgkit",)  # postgres_url: an empty database on a throw-away server


class Backend:
    """Open the same log again, and change it behind the store's back (as someone with the database's keys could)."""

    def __init__(self, name, where):
        self.name, self.where = name, where

    def open(self):
        return Store.open(self.where) if self.name == "sqlite" else Store.open_url(self.where)

    def tamper(self, sql):
        if self.name == "sqlite":
            conn = sqlite3.connect(self.where)
            conn.execute("DROP TRIGGER events_no_update")
            conn.execute("DROP TRIGGER events_no_delete")
            conn.execute(sql)
            conn.commit()
            conn.close()
            return
        import psycopg

        with psycopg.connect(self.where, autocommit=True) as conn:
            conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
            conn.execute(sql)
            conn.execute("ALTER TABLE events ENABLE TRIGGER USER")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "broadcast.db")
    return Backend("postgresql", request.getfixturevalue("postgres_url"))


def test_migrations_create_every_table_from_an_empty_file(tmp_path):
    store = Store.open(tmp_path / "broadcast.db")
    tables = set(store.db.table_names())
    assert {"incidents", "alerts", "deliveries", "events", "_sqlite_migrations"} <= tables
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    store.close()
    # Opening again applies nothing twice.
    again = Store.open(tmp_path / "broadcast.db")
    assert again.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == 6  # m001 to m006


def test_migrations_create_every_table_in_postgresql_once(postgres_url):
    store = Store.open_url(postgres_url)
    tables = {row[0] for row in store.conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {"incidents", "alerts", "deliveries", "events", "drafts", "broadcast_migrations"} <= tables
    store.close()
    again = Store.open_url(postgres_url)  # another machine starting up: nothing applied twice
    assert again.conn.execute("SELECT count(*) FROM broadcast_migrations").fetchone()[0] == 6
    assert again.sql.name == "postgresql" and "@" in again.where
    again.close()


def test_events_chain_and_verify_ok(backend):
    store = backend.open()
    first = store.append_event("note", phase="prepare", actor="a", description="one")
    second = store.append_event("note", phase="warn", actor="b", details={"x": "é"})
    assert first["prev_hash"] == GENESIS
    assert second["prev_hash"] == first["hash"]
    assert second["hash"] == event_hash(second)
    result = store.verify()
    assert result.ok and result.count == 2 and result.head == second["hash"]


def test_event_ids_begin_with_the_time_so_each_new_one_goes_at_the_end_of_the_index(tmp_path):
    # Read as the standard library reads a UUID: RFC 9562's version 7, in the chain's order across transactions.
    # A random id (version 4) lands on any page of the events' unique index: with 3,000 events in the log, each
    # commit of ten then wrote 16 pages to the WAL, against 7 with ids that begin with the time.
    store = Store.open(tmp_path / "broadcast.db")
    event = {"type": "delivery_result", "phase": "warn", "actor": "duty-officer", "alert": "A-2026-0001",
             "incident": "snow", "channel": "sms-residents", "description": "sms-residents: delivered",
             "details": {"outcome": "sent", "attempt": 1}}
    for _ in range(300):
        store.append_events([event] * 10)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.conn.execute("PRAGMA wal_autocheckpoint = 0")  # every page the next commits write stays in the WAL
    for _ in range(100):
        store.append_events([event] * 10)
    page = store.conn.execute("PRAGMA page_size").fetchone()[0]
    # SQLite's WAL: a 32-byte header, then each page written with a 24-byte header of its own
    frames = ((tmp_path / "broadcast.db-wal").stat().st_size - 32) / (24 + page)
    ids = [row[0] for row in store.conn.execute("SELECT event_id FROM events ORDER BY id")]
    store.close()
    assert frames / 100 <= 10
    assert len(ids) == 4000 == len(set(ids)) and ids == sorted(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}


def test_an_alerts_posts_are_found_without_reading_a_lists_people(tmp_path):
    # SQLite's count of its steps (every 10 instructions) to find an alert's sent posts, as a send, a resend and a
    # retraction ask, beside 100 and 20,000 people sent another alert: the same few steps.
    def steps(people: int) -> int:
        store = Store.open(tmp_path / f"{people}.db")
        store.conn.execute("PRAGMA foreign_keys = OFF")  # rows without their alerts: only the look-up is measured
        store.conn.executemany(
            "INSERT INTO deliveries (alert, channel, language, recipient, state) VALUES (?, ?, ?, ?, ?)",
            [("A-2026-0001", "sms-residents", "en-GB", f"{n:064x}", "sent") for n in range(people)]
            + [("A-2026-0002", "mastodon-council", "en-GB", "", "sent")])
        counted = sqlite_steps(store.conn)
        [post] = store.deliveries("A-2026-0002", ("sent",), recipients=False)
        store.close()
        assert post["channel"] == "mastodon-council"
        return counted[0]

    few, many = steps(100), steps(20_000)
    assert many < few + 20, (few, many)


def test_a_batch_whose_change_fails_writes_nothing_of_it_and_the_store_goes_on(backend, workspace):
    """Changes and events in one transaction (on PostgreSQL: begun, locked and the head read in one round trip, the
    rest pipelined with the commit): a change that fails leaves the rows and the chain as they were."""
    store = backend.open()
    alert = make_alert(workspace)
    store.save_alert(alert, sent_by="test")
    store.add_deliveries(alert.identifier, [
        {"channel": "sms", "language": "en-GB", "recipient": f"sms:{n}", "recipient_masked": f"07*** ***{n}",
         "idempotency_key": f"key-{n}"} for n in range(3)], actor="test")
    ids = [row["id"] for row in store.deliveries(alert.identifier, recipients=True)]
    head = store.head()
    sent = [{"type": "delivery_result", "phase": "warn", "actor": "test", "alert": alert.identifier, "channel": "sms",
             "details": {"delivery": i, "state": "sent", "outcome": "sent"}} for i in ids]
    with pytest.raises(sqlite3.IntegrityError):  # the second change: one person twice
        store.append_events(sent, changes=[("UPDATE deliveries SET state = ? WHERE id = ?", [("sent", ids[0])]),
                                           ("UPDATE deliveries SET recipient = ? WHERE id = ?",
                                            [("sms:0", ids[1])])])
    assert store.head() == head and {row["state"] for row in store.deliveries(alert.identifier)} == {"pending"}
    assert store.append_events(sent, changes=[("UPDATE deliveries SET state = ? WHERE id = ?",
                                               [("sent", i) for i in ids])]) == 3
    assert {row["state"] for row in store.deliveries(alert.identifier)} == {"sent"}
    assert store.head()[0] == head[0] + 3 and store.verify().ok
    store.close()
    assert backend.open().verify().ok  # as another process reads it


def test_a_long_list_of_values_is_planned_with_them_on_postgresql(postgres_url):
    """psycopg prepares a statement run five times; a generic plan cannot hash a list of parameters, so a bulk
    send's `recipient IN (500 values)` compared every row with each of them (24 ms a chunk against 2). Such
    statements are never prepared; short ones still are."""
    store = Store.open_url(postgres_url)
    many = [f"sms:{n}" for n in range(100)]
    for _ in range(8):
        store.conn.execute(f"SELECT id FROM deliveries WHERE recipient IN ({', '.join('?' for _ in many)})", many)
        store.conn.execute("SELECT id FROM deliveries WHERE recipient = ?", ["sms:1"])
    prepared = [row[0] for row in store.conn.execute("SELECT statement FROM pg_prepared_statements")]
    assert any("recipient = $1" in sql for sql in prepared)  # the rule is what tells the two apart
    assert not any("recipient IN" in sql for sql in prepared)
    store.close()


def test_events_refuse_update_and_delete(backend):
    store = backend.open()
    store.append_event("note", phase="prepare", actor="a")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE events SET actor = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM events")


def test_verify_finds_the_changed_row(backend):
    store = backend.open()
    for i in range(5):
        store.append_event("note", phase="review", actor="a", description=f"note {i}")
    store.close()
    backend.tamper("UPDATE events SET description = 'rewritten' WHERE id = 3")
    result = backend.open().verify()
    assert not result.ok
    assert result.broken_at == 3 and result.count == 2
    assert "hash" in result.reason


def test_verify_finds_a_deleted_row(backend):
    store = backend.open()
    for i in range(4):
        store.append_event("note", phase="review", actor="a", description=f"note {i}")
    store.close()
    backend.tamper("DELETE FROM events WHERE id = 2")
    result = backend.open().verify()
    assert not result.ok and result.broken_at == 2 and "missing" in result.reason


def test_verify_finds_a_recomputed_row_by_its_successor(backend):
    # Rewriting a row and its own hash still breaks the link from the next row.
    store = backend.open()
    for i in range(3):
        store.append_event("note", phase="review", actor="a", description=f"note {i}")
    row = next(r for r in store.events() if r["id"] == 2)
    store.close()
    row["description"] = "rewritten"
    forged = event_hash(row)
    backend.tamper(f"UPDATE events SET description = 'rewritten', hash = '{forged}' WHERE id = 2")
    result = backend.open().verify()
    assert result.broken_at == 3 and "prev_hash" in result.reason


def test_verify_spells_what_sqlite_spells_as_python_does_and_python_judges_the_rest(tmp_path):
    """SQLite spells each event's hashed body for verify (json_object). Text with quotes, controls, bidi marks and
    emoji verifies; a float, which SQLite spells otherwise, is judged by Python's spelling and verifies too; a
    rewritten row is still found, and so is a blob, which json_object cannot hold."""
    path = tmp_path / "broadcast.db"
    store = Store.open(path)
    store.append_event("note", phase="review", actor="a", description='"quoted" \\ \t\n\x00\x1f\x7f \u2028 \u202e '
                       "Ysgol ar gau 😀 \ufeff", details={"x": "\u0007é", "n": 2**62})
    store.append_event("note", phase="review", actor="b", description="second")
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_no_update")
    row = dict(zip(EVENT_COLUMNS, conn.execute("SELECT * FROM events WHERE id = 2").fetchone(), strict=False))
    row["pinned"] = 1e100  # a float, as another writer might have stored it, hashed as Python spells it
    conn.execute("UPDATE events SET pinned = ?, hash = ? WHERE id = 2", [1e100, event_hash(row)])
    conn.commit()
    assert conn.execute("SELECT json_object('p', pinned) FROM events WHERE id = 2").fetchone() == ('{"p":1.0e+100}',)
    assert canonical_json({"p": 1e100}) == '{"p":1e+100}'  # so Python spells this body again, and judges it
    assert Store.open(path).verify().ok
    conn.execute("UPDATE events SET description = 'rewritten' WHERE id = 1")
    conn.commit()
    result = Store.open(path).verify()
    assert (result.ok, result.broken_at, result.reason) == (False, 1, "content does not match its hash")
    conn.execute("UPDATE events SET description = ? WHERE id = 1", [b"\x00blob"])
    conn.commit()
    result = Store.open(path).verify()
    assert (result.ok, result.broken_at, result.reason) == (False, 1, "content does not match its hash")
    conn.close()


def test_sqlite_spells_text_as_canonical_json_does_for_every_character_verify_meets():
    """What verify relies on to let SQLite spell the bodies: json_object's text is json.dumps(ensure_ascii=False)'s,
    for every character below U+3000, the specials above it and the astral planes' ends."""
    conn = sqlite3.connect(":memory:")
    codes = [*range(0x3000), 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0x1F600, 0x10FFFF]
    texts = [f'a{chr(code)}b"\\/' for code in codes if not 0xD800 <= code <= 0xDFFF]
    conn.execute("CREATE TABLE t (k TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(text,) for text in texts])
    spelt = [row[0] for row in conn.execute("SELECT json_object('k', k) FROM t ORDER BY rowid")]
    assert spelt == [canonical_json({"k": text}) for text in texts]


def test_canonical_json_is_stable():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_concurrent_writers_keep_one_chain_and_never_share_an_identifier(backend, workspace):
    import dataclasses
    import threading
    from datetime import UTC, datetime

    from conftest import VALUES

    from broadcast.prepare.templates import render
    from broadcast.send.compose import build_alert

    first = backend.open()
    first.open_incident("snow-2026-11-23", "Snow: schools closed")
    first.close()
    rendering = render(find_template(workspace, "school-closure"), workspace, VALUES)
    alert = build_alert(workspace, rendering, identifier="A-2026-0000", sent=datetime(2026, 11, 23, 6, 5, tzinfo=UTC),
                        incident="snow-2026-11-23")
    taken = []

    def write(n):
        store = backend.open()
        for i in range(25):
            store.append_event("note", phase="warn", actor=f"w{n}", description=str(i))
            if i % 5 == 0:
                with store.transaction():  # as sending allocates one: inside the transaction that records it
                    identifier = store.next_identifier(2026)
                    store.save_alert(dataclasses.replace(alert, identifier=identifier), sent_by=f"w{n}")
                taken.append(identifier)
        store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = backend.open().verify()
    assert result.ok and result.count == 121  # the incident, 100 notes and 20 alerts
    assert sorted(taken) == [f"A-2026-{n:04d}" for n in range(1, 21)]


def test_incidents_and_alerts_round_trip(backend, workspace):
    from datetime import UTC, datetime

    from conftest import VALUES

    from broadcast.errors import StoreError
    from broadcast.prepare.templates import render
    from broadcast.send.compose import build_alert

    store = backend.open()
    store.open_incident("snow-2026-11-23", "Snow: schools closed", actor="duty officer")
    with pytest.raises(StoreError, match="already exists"):
        store.open_incident("snow-2026-11-23", "again")
    rendering = render(find_template(workspace, "school-closure"), workspace, VALUES)
    alert = build_alert(workspace, rendering, identifier="A-2026-0001", sent=datetime(2026, 11, 23, 6, 5, tzinfo=UTC),
                        incident="snow-2026-11-23")
    store.save_alert(alert, sent_by="duty officer")
    with pytest.raises(StoreError, match="never reused"):
        store.save_alert(alert, sent_by="duty officer")
    assert store.alerts("snow-2026-11-23") == [alert]
    assert store.incidents("open")[0]["title"] == "Snow: schools closed"
    types = [e["type"] for e in store.events("snow-2026-11-23")]
    assert types == ["incident_declared", "alert_issued"]
    assert store.verify().ok


def test_coordinates_are_plain_decimals():
    from broadcast.alert import degrees

    assert [degrees(v) for v in (0.00001, -3.4, 52.05, 0.0, -0.0000001, 1.23456789)] == [
        "0.00001", "-3.4", "52.05", "0", "0", "1.234568"]


ZONES = [UTC, timezone(timedelta(hours=13)), timezone(timedelta(hours=-9, minutes=-30))]


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from(ZONES)))
def test_an_instant_is_stored_as_utc_with_milliseconds_and_a_z(moment):
    stored = isoformat(moment)
    assert stored == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # the form always stored
    assert datetime.fromisoformat(stored) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_a_time_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        isoformat(datetime(2026, 11, 23, 6))
