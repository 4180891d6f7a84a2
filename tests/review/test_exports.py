"""Timeline exports of a known incident, field by field, and the third-party check of a JSON Lines export."""

import csv
import importlib.util
import io
import json
import random
import subprocess
import sys

from conftest import REPO
from hypothesis import given
from hypothesis import strategies as st
from reviewkit import SHA, SLUG

from broadcast.review.exports import FORMULA_START, write_csv
from broadcast.review.timeline import COLUMNS, DERIVED, FIELDS
from broadcast.store import EVENT_COLUMNS, canonical_json, hashed_body

VERIFIER = REPO / "docs" / "verify_export.py"

pytest_plugins = ("reviewkit",)  # its `known` fixture


def load_verifier():
    spec = importlib.util.spec_from_file_location("verify_export", VERIFIER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export(run, tmp_path, fmt, *extra):
    path = tmp_path / f"timeline.{fmt}"
    result = run("review", SLUG, "--format", fmt, "-o", str(path), *extra)
    assert result.exit_code == 0, result.output
    return path, result


def test_csv_field_by_field(run, known, tmp_path):
    store, e = known
    path, result = export(run, tmp_path, "csv")
    assert f"Wrote {path}" in result.stderr and "(verified)" in result.stderr
    raw = path.read_bytes()
    assert raw.startswith(b"incident,seq,chain_id,event_id,") and b"\r\n" in raw and not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert list(rows[0]) == list(FIELDS)
    assert [r["type"] for r in rows] == [
        "incident_declared", "message_drafted", "draft_approved", "alert_issued", "fallback_published",
        "fallback_verified", "delivery_queued", "delivery_queued", "delivery_attempt", "delivery_result",
        "delivery_attempt", "retry_scheduled", "delivery_attempt", "delivery_result", "decision", "alert_issued",
        "delivery_result", "delivery_result", "delivery_attempt", "delivery_result", "alert_issued", "incident_closed"]
    declared = e["declared"]
    assert rows[0] == {
        "incident": SLUG, "seq": "1", "chain_id": "2", "event_id": declared["event_id"],
        "occurred_at": "2026-10-25T00:20:00.000Z", "recorded_at": declared["recorded_at"],
        "occurred_at_local": "2026-10-25T01:20:00.000+01:00", "phase": "warn", "type": "incident_declared",
        "actor": "duty-officer", "channel": "", "alert": "", "template": "", "template_sha256": "",
        "content_sha256": "", "attempt": "", "outcome": "", "provider_ref": "", "http_status": "", "error": "",
        "latency_ms": "", "description": "Incident opened: Snow closes schools", "rationale": "", "pinned": "false",
        "supersedes": "", "details": '{"exercise":false}', "prev_hash": declared["prev_hash"],
        "hash": declared["hash"]}
    issued = rows[3]
    assert (issued["alert"], issued["template"], issued["template_sha256"], issued["content_sha256"]) == (
        "A-2026-0001", "school-closure", SHA["template"], SHA["content"])
    assert issued["hash"] == e["issued"]["hash"] and issued["prev_hash"] == e["issued"]["prev_hash"]
    page = rows[4]
    assert (page["incident"], page["channel"], page["seq"], page["chain_id"]) == ("", "page", "5", "6")
    sent = rows[9]
    assert (sent["channel"], sent["outcome"], sent["attempt"], sent["latency_ms"], sent["provider_ref"]) == (
        "mastodon-council", "sent", "1", "400", "1001")
    failed = rows[13]
    assert (failed["outcome"], failed["http_status"], failed["attempt"], failed["error"]) == (
        "failed", "500", "2", "hook-b: answered HTTP 500")
    assert failed["description"] == "'=hook-b: the webhook receiver answered HTTP 500"  # not a formula in Excel
    decision = rows[14]
    assert (decision["rationale"], decision["pinned"], decision["actor"]) == (
        "Gritting not finished before 08:00", "true", "Sam Rees, Emergency Planning Manager")
    assert rows[20]["occurred_at_local"] == "2026-10-25T01:50:00.000+00:00"  # after the clocks went back
    meta = json.loads((tmp_path / "timeline.meta.json").read_text(encoding="utf-8"))
    assert meta["event_count"] == 22 and meta["chain"]["verified"] is True
    assert meta["chain"]["head"] == store.head()[1] and meta["times"]["all_clear_at"] == "2026-10-25T01:50:00.000Z"


def test_csv_with_a_bom_for_excel_and_another_zone(run, known, tmp_path):
    path, _ = export(run, tmp_path, "csv", "--bom", "--tz", "America/New_York")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfincident,seq,")
    first = next(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert first["occurred_at_local"] == "2026-10-24T20:20:00.000-04:00"
    assert json.loads((tmp_path / "timeline.meta.json").read_text())["display_timezone"] == "America/New_York"


def test_jsonl_field_by_field(run, known, tmp_path):
    store, e = known
    path, _ = export(run, tmp_path, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["record"] == "header" and header["schema_version"] == 2
    assert header["generator"]["name"] == "broadcast"
    assert header["incident"] == {"slug": SLUG, "title": "Snow closes schools", "status": "closed", "exercise": False,
                                  "opened_at": "2026-10-25T00:20:00.000Z", "closed_at": "2026-10-25T02:00:00.000Z"}
    assert header["times"] == {
        "declared_at": "2026-10-25T00:20:00.000Z", "first_warning_at": "2026-10-25T00:32:01.000Z",
        "all_clear_at": "2026-10-25T01:50:00.000Z", "closed_at": "2026-10-25T02:00:00.000Z"}
    assert header["times_local"]["declared_at"] == "2026-10-25T01:20:00.000+01:00"
    assert (header["display_timezone"], header["filters"], header["event_count"]) == (
        "Europe/London", {"pinned_only": False}, 22)
    assert header["chain"] == {"verified": True, "events": store.head()[0], "head": store.head()[1],
                               "broken_at": None, "reason": None}
    assert header["metrics"]["time_to_first_warning_s"] == 721.0 and (
        header["metrics"]["attempted"], header["metrics"]["accepted"], header["metrics"]["failed"]) == (4, 3, 1)
    rows = [json.loads(line) for line in lines[1:]]
    assert len(rows) == 22 and all(list(row) == list(FIELDS) for row in rows)
    decision = rows[14]
    assert decision == {
        "incident": SLUG, "seq": 15, "chain_id": e["decision"]["id"], "event_id": e["decision"]["event_id"],
        "occurred_at": "2026-10-25T00:40:00.000Z", "recorded_at": e["decision"]["recorded_at"],
        "occurred_at_local": "2026-10-25T01:40:00.000+01:00", "phase": "warn", "type": "decision",
        "actor": "Sam Rees, Emergency Planning Manager", "channel": None, "alert": None, "template": None,
        "template_sha256": None, "content_sha256": None, "attempt": None, "outcome": None, "provider_ref": None,
        "http_status": None, "error": None, "latency_ms": None, "description": "Keep schools closed all day",
        "rationale": "Gritting not finished before 08:00", "pinned": True, "supersedes": None,
        "details": {"rationale": "Gritting not finished before 08:00"}, "prev_hash": e["decision"]["prev_hash"],
        "hash": e["decision"]["hash"]}
    assert rows[13]["description"] == "=hook-b: the webhook receiver answered HTTP 500"  # JSON keeps text exact
    assert [r["hash"] for r in rows] == [r["hash"] for r in csv.DictReader(io.StringIO(
        export(run, tmp_path, "csv")[0].read_text(encoding="utf-8"), newline=""))]


def test_markdown_layout(run, known, tmp_path):
    path, _ = export(run, tmp_path, "md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Incident timeline: Snow closes schools\n")
    assert "| Declared | 2026-10-25 01:20:00 BST (2026-10-25T00:20:00.000Z) |" in text
    assert "| All clear | 2026-10-25 01:50:00 GMT (2026-10-25T01:50:00.000Z) |" in text
    assert "| Time to first warning | 12m 01s |" in text and "| Time to all-clear | 1h 30m |" in text
    assert "| hook-c | en-GB | 1 | 0 | - | 1 | 0 |" in text and "| All channels |  | 4 | 3 | - | 1 | 0 |" in text
    assert "| hook-c | - | - | - | 0 |" in text  # how fast: nothing was accepted
    assert ("- 2026-10-25 01:40:00 BST: Keep schools closed all day (Sam Rees, Emergency Planning Manager). "
            "Reason: Gritting not finished before 08:00") in text
    # The constructed log was written today about October: every entry shows it was recorded later.
    assert ("### Sunday 25 October 2026\n\n- 01:20:00 BST — Incident opened: Snow closes schools (duty-officer) · #1 · "
            "incident_declared · backfilled: recorded 20") in text
    assert ("- 01:50:00 GMT — All clear: schools open tomorrow (duty-officer, A-2026-0003) · #21 · alert_issued · "
            "backfilled") in text
    assert "- 01:32:00 BST — delivery queued (en-GB) (duty-officer, hook-b, A-2026-0001) · #8" in text
    assert "- 01:40:00 BST — **Decision:** Keep schools closed all day. Reason: Gritting not finished before " \
           "08:00 (Sam Rees, Emergency Planning Manager) · #15 · decision · pinned" in text


def test_pinned_export_keeps_the_numbering_and_still_verifies(run, known, tmp_path):
    path, result = export(run, tmp_path, "jsonl", "--pinned")
    lines = path.read_text(encoding="utf-8").splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["filters"] == {"pinned_only": True} and header["event_count"] == 1
    assert [(r["seq"], r["type"]) for r in rows] == [(15, "decision")]
    assert header["metrics"]["attempted"] == 4  # the metrics still cover the whole incident
    assert subprocess.run([sys.executable, str(VERIFIER), str(path)], capture_output=True).returncode == 0


def test_third_party_script_verifies_an_export_and_fails_on_one_changed_byte(run, known, tmp_path):
    path, _ = export(run, tmp_path, "jsonl")
    ok = subprocess.run([sys.executable, str(VERIFIER), str(path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.startswith(f"OK    22 events of incident {SLUG} verify; digest ")
    raw = bytearray(path.read_bytes())
    spot = raw.index(b"Keep schools closed all day")
    raw[spot] = ord("k")
    changed = tmp_path / "changed.jsonl"
    changed.write_bytes(bytes(raw))
    failed = subprocess.run([sys.executable, str(VERIFIER), str(changed)], capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stdout == "FAIL  line 16 (seq 15): content does not match its hash\n"


def test_every_sampled_one_byte_change_to_an_event_line_fails(run, known, tmp_path):
    verifier = load_verifier()
    path, _ = export(run, tmp_path, "jsonl")
    raw = path.read_bytes()
    assert verifier.verify(raw.decode("utf-8").splitlines(keepends=True)) == []
    start = raw.index(b"\n") + 1  # the event lines; the header is covered by what anchors it (docs/evidence.md)
    rng = random.Random(7)
    for spot in rng.sample(range(start, len(raw)), 150):
        changed = bytearray(raw)
        changed[spot] = changed[spot] + 1 if changed[spot] < 0x7E else 0x21
        lines = bytes(changed).decode("utf-8", "surrogateescape").splitlines(keepends=True)
        assert verifier.verify(lines), f"a change at byte {spot} went unnoticed"


def test_removing_a_line_or_anchoring_fails(run, known, tmp_path):
    verifier = load_verifier()
    path, _ = export(run, tmp_path, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = json.loads(lines[0])
    assert any("seq 6 follows 4" in p for p in verifier.verify(lines[:5] + lines[6:]))
    assert any("holds 21" in p for p in verifier.verify(lines[:-1]))  # tail truncation, caught by the header count
    assert verifier.verify(lines, expect_digest=header["events_digest"], expect_head=header["chain"]["head"]) == []
    assert verifier.verify(lines, expect_digest="0" * 64) == ["the events digest does not match the anchored digest"]


def test_the_verifier_and_the_export_share_one_schema():
    verifier = load_verifier()
    assert verifier.DERIVED == DERIVED and verifier.HASHED == COLUMNS[:15] == EVENT_COLUMNS
    assert set(FIELDS) == verifier.FIELDS


@given(st.text(), st.text())
def test_any_text_reads_back_from_the_csv_export_as_written(description, actor):
    row = dict.fromkeys(FIELDS, "")
    row.update(description=description, actor=actor, pinned=0)
    out = io.StringIO(newline="")
    write_csv(iter([((None,) * 11 + ('{"a":"é"}',), row)]), out)
    [head, cells] = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    shown = dict(zip(head, cells, strict=True))

    def kept(text):  # what a spreadsheet would run as a formula is kept as text
        return "'" + text if text.startswith(FORMULA_START) else text

    assert (shown["description"], shown["actor"]) == (kept(description), kept(actor))
    assert (shown["details"], shown["pinned"]) == ('{"a":"é"}', "false")


scalar = st.one_of(st.none(), st.integers(), st.text())


@given(st.tuples(*[scalar] * 15))
def test_the_hashed_body_is_canonical_json(values):
    assert hashed_body(values) == canonical_json(dict(zip(EVENT_COLUMNS, values, strict=True)))


def test_an_export_is_the_same_text_to_a_file_to_stdout_and_to_any_text_stream(run, known, tmp_path):
    """The rows are spooled while the header is worked out, then copied after it: as bytes onto a UTF-8 file,
    as text onto anything else. The reader gets the same text whichever way it went."""
    from datetime import UTC, datetime

    import time_machine

    from broadcast.review.exports import write_export

    store, _ = known
    store.append_event("note", phase="review", actor="Reviewer", incident=SLUG,
                       description="Ysgol ar gau — ŵ, ŷ and “quotes”")  # text that UTF-8 and latin-1 spell apart
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False):  # one generated_at for all
        same_text_every_way(run, store, tmp_path, write_export)


def same_text_every_way(run, store, tmp_path, write_export):
    for fmt in ("jsonl", "md", "html"):
        path, _ = export(run, tmp_path, fmt)
        on_file = path.read_text(encoding="utf-8")
        to_stdout = run("review", SLUG, "--format", fmt)
        assert to_stdout.exit_code == 0 and to_stdout.stdout == on_file
        stream = io.StringIO()
        write_export(store, SLUG, fmt, stream, display_zone="Europe/London")
        assert stream.getvalue() == on_file and "Ysgol ar gau — ŵ" in on_file
        with (tmp_path / f"utf16.{fmt}").open("w", encoding="utf-16", newline="") as other:
            write_export(store, SLUG, fmt, other, display_zone="Europe/London")
        assert (tmp_path / f"utf16.{fmt}").read_text(encoding="utf-16") == on_file
