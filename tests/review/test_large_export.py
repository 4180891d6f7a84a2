"""A long incident's HTML review: the first entries in full, then routine delivery events summarised, every failure
named and every event accounted for; the CSV and JSON Lines exports still hold every row."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from broadcast.review.exports import BATCH, export_file
from broadcast.review.report import HTML_IN_FULL
from broadcast.store import EVENT_COLUMNS, GENESIS, Store, canonical_json, event_hash, isoformat

SLUG = "gale-2026-12-01"
CHANNELS = [f"channel-{n}" for n in range(6)]
MAX_BYTES = 500_000  # the HTML of these 4,182 events (about 420 KB); written in full it is about 1.4 MB


def long_incident(path, alerts=110):
    """An incident of 4,182 events written straight into a fresh log, hash-chained as append_event does:
    alerts a minute apart to six channels, every 37th delivery failing, and a pinned note near the end."""
    clock = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    events = [("incident_declared", clock, SLUG, None, None, "Incident opened: gale", {"exercise": False}, 0)]
    failures = []
    for number in range(1, alerts + 1):
        at, alert = clock + timedelta(minutes=number), f"A-2026-{number:04d}"
        events += [("alert_issued", at, SLUG, alert, None, "Gale: stay indoors", {"status": "Actual"}, 0),
                   ("fallback_published", at, None, None, "page", None, {"target": "site"}, 0)]
        for channel in CHANNELS:
            for language in ("en-GB", "cy-GB"):
                sent = at + timedelta(seconds=2)
                events += [("delivery_queued", sent, SLUG, alert, channel, None, {"language": language}, 0),
                           ("delivery_attempt", sent, SLUG, alert, channel, None, {"attempt": 1}, 0)]
                if len(events) % 37 == 0:
                    failures.append(f"{channel}: {alert} {language} refused")
                    events.append(("delivery_result", sent, SLUG, alert, channel, failures[-1],
                                   {"attempt": 1, "outcome": "failed", "http_status": 500}, 0))
                else:
                    events.append(("delivery_result", sent, SLUG, alert, channel, None,
                                   {"attempt": 1, "outcome": "sent", "latency_ms": 300}, 0))
        if number == alerts - 3:
            events.append(("note", at, SLUG, None, None, "Roof of the depot lifted", {}, 1))
    store = Store.open(path)
    prev, rows = GENESIS, []
    for number, (kind, at, incident, alert, channel, description, details, pinned) in enumerate(events, start=1):
        row = {"id": number, "event_id": str(uuid.uuid4()), "occurred_at": isoformat(at), "recorded_at": isoformat(at),
               "type": kind, "phase": "warn", "actor": "duty-officer", "incident": incident, "alert": alert,
               "channel": channel, "description": description, "details": canonical_json(details), "pinned": pinned,
               "supersedes": None, "prev_hash": prev}
        row["hash"] = prev = event_hash(row)
        rows.append([row[name] for name in (*EVENT_COLUMNS, "hash")])
    with store.transaction():
        store.conn.execute("INSERT INTO incidents VALUES (?, 'Gale', 'closed', 0, ?, NULL)",
                           [SLUG, isoformat(clock)])
        marks = ", ".join("?" for _ in range(len(EVENT_COLUMNS) + 1))
        store.conn.executemany(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, hash) VALUES ({marks})", rows)
    return store, len(events), failures


@pytest.fixture
def exported(tmp_path):
    store, count, failures = long_incident(tmp_path / "broadcast.db")
    html = tmp_path / "review.html"
    header, _ = export_file(store, SLUG, "html", html, display_zone="Europe/London")
    jsonl = tmp_path / "review.jsonl"
    export_file(store, SLUG, "jsonl", jsonl, display_zone="Europe/London")
    store.close()
    return html, jsonl, header, count, failures


def test_a_long_incident_s_html_stays_small_and_names_every_failure(exported):
    html_path, jsonl, header, count, failures = exported
    assert count > 3 * HTML_IN_FULL and header.data["event_count"] == count
    assert html_path.stat().st_size < MAX_BYTES
    html = html_path.read_text(encoding="utf-8")
    timeline = html[html.index('id="timeline"'):]
    assert len(failures) > 30
    for failure in failures:  # each in full, as a failed row
        assert re.search(rf'<tr class="bad"><td class="n">\d+</td>(?:(?!</tr>).)*{re.escape(failure)}', timeline)
    assert "Roof of the depot lifted" in timeline  # pinned: in full, however late
    assert timeline.count("<td>alert_issued</td>") == 110
    assert "After the first 1,000 entries, routine delivery and page events are summarised" in timeline
    assert "Every entry, with its hash, is in the CSV and JSON Lines exports." in timeline
    assert "Deliveries over time" in html and "What became of the messages" in html  # the top is as it was
    lines = jsonl.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 2 + count  # the JSON Lines export keeps every row, one a line
    assert count > 2 * BATCH and [json.loads(line)["seq"] for line in lines[1:-1]] == list(range(1, count + 1))


def test_the_summary_accounts_for_every_event_it_leaves_out(exported):
    html_path, _, header, count, _ = exported
    timeline = html_path.read_text(encoding="utf-8").split('id="timeline"', 1)[1]
    in_full = re.findall(r'<tr(?: class="bad")?><td class="n">(\d+)</td>', timeline)
    runs = [int(n) for n in re.findall(r'<tr class="sum" data-events="(\d+)">', timeline)]
    shown, summarised = (int(n) for n in re.search(r'data-shown="(\d+)" data-summarised="(\d+)"', timeline).groups())
    assert len(in_full) == shown and sum(runs) == summarised and shown + summarised == count
    assert [int(n) for n in in_full[:HTML_IN_FULL]] == list(range(1, HTML_IN_FULL + 1))
    # Each run says how its events split by kind and by channel, and both add up to its count.
    for row in re.findall(r'<tr class="sum" data-events="\d+">.*</tr>', timeline):
        events = int(re.search(r'data-events="(\d+)"', row)[1])
        kinds, channels = re.search(r'<td class="d muted">(.*)\. By channel: (.*?)</td>', row).groups()
        assert sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) [a-z]", kinds)) == events
        assert sum(int(n.replace(",", "")) for n in re.findall(r" ([\d,]+)(?:,|$)", channels)) == events


def test_a_short_incident_is_shown_in_full(tmp_path):
    store, count, failures = long_incident(tmp_path / "broadcast.db", alerts=3)
    html = tmp_path / "review.html"
    export_file(store, SLUG, "html", html, display_zone="Europe/London")
    store.close()
    timeline = html.read_text(encoding="utf-8").split('id="timeline"', 1)[1]
    assert count < HTML_IN_FULL and 'class="sum"' not in timeline
    assert len(re.findall(r'<tr(?: class="bad")?><td class="n">\d+</td>', timeline)) == count
