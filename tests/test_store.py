import sqlite3

import pytest

from broadcast.prepare.templates import find_template
from broadcast.store import GENESIS, Store, canonical_json, event_hash


def test_migrations_create_every_table_from_an_empty_file(tmp_path):
    store = Store.open(tmp_path / "broadcast.db")
    tables = set(store.db.table_names())
    assert {"incidents", "alerts", "deliveries", "events", "_sqlite_migrations"} <= tables
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    store.close()
    # Opening again applies nothing twice.
    again = Store.open(tmp_path / "broadcast.db")
    assert again.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == 4  # m001 to m004


def test_events_chain_and_verify_ok(tmp_path):
    store = Store.open(tmp_path / "broadcast.db")
    first = store.append_event("note", phase="prepare", actor="a", description="one")
    second = store.append_event("note", phase="warn", actor="b", details={"x": "é"})
    assert first["prev_hash"] == GENESIS
    assert second["prev_hash"] == first["hash"]
    assert second["hash"] == event_hash(second)
    result = store.verify()
    assert result.ok and result.count == 2 and result.head == second["hash"]


def test_events_refuse_update_and_delete(tmp_path):
    store = Store.open(tmp_path / "broadcast.db")
    store.append_event("note", phase="prepare", actor="a")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE events SET actor = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM events")


def _tamper(path, sql):
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_verify_finds_the_changed_row(tmp_path):
    path = tmp_path / "broadcast.db"
    store = Store.open(path)
    for i in range(5):
        store.append_event("note", phase="review", actor="a", description=f"note {i}")
    store.close()
    _tamper(path, "UPDATE events SET description = 'rewritten' WHERE id = 3")
    result = Store.open(path).verify()
    assert not result.ok
    assert result.broken_at == 3 and result.count == 2
    assert "hash" in result.reason


def test_verify_finds_a_deleted_row(tmp_path):
    path = tmp_path / "broadcast.db"
    store = Store.open(path)
    for i in range(4):
        store.append_event("note", phase="review", actor="a", description=f"note {i}")
    store.close()
    _tamper(path, "DELETE FROM events WHERE id = 2")
    result = Store.open(path).verify()
    assert not result.ok and result.broken_at == 2 and "missing" in result.reason


def test_verify_finds_a_recomputed_row_by_its_successor(tmp_path):
    # Rewriting a row and its own hash still breaks the link from the next row.
    path = tmp_path / "broadcast.db"
    store = Store.open(path)
    for i in range(3):
        store.append_event("note", phase="review", actor="a", description=f"note {i}")
    row = next(r for r in store.events() if r["id"] == 2)
    store.close()
    row["description"] = "rewritten"
    forged = event_hash(row)
    _tamper(path, f"UPDATE events SET description = 'rewritten', hash = '{forged}' WHERE id = 2")
    result = Store.open(path).verify()
    assert result.broken_at == 3 and "prev_hash" in result.reason


def test_canonical_json_is_stable():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_concurrent_writers_keep_one_chain(tmp_path):
    import threading

    path = tmp_path / "broadcast.db"
    Store.open(path).close()

    def write(n):
        store = Store.open(path)
        for i in range(25):
            store.append_event("note", phase="warn", actor=f"w{n}", description=str(i))
        store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = Store.open(path).verify()
    assert result.ok and result.count == 100


def test_incidents_and_alerts_round_trip(tmp_path, workspace):
    from datetime import UTC, datetime

    from conftest import VALUES

    from broadcast.errors import StoreError
    from broadcast.prepare.templates import render
    from broadcast.send.compose import build_alert

    store = Store.open(tmp_path / "broadcast.db")
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
