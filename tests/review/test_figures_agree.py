"""One vocabulary, the same figures in every view: what the sandbox received, `review metrics` (text and JSON), the
HTML review (its tables and its chart), the after-action report, the CSV export's header and `status`."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import SETS, invoke
from listkit import ENV, RESIDENTS, notify_channel

from broadcast.review.tally import WORDS
from broadcast.store import Store

FIELDS = ("attempted", "accepted", "delivered", "failed", "unknown")


@pytest.fixture
def incident(live, sandbox, monkeypatch):
    """A warning to Mastodon, two webhooks (one refusing), and texts and emails through Notify; receipts collected."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    (live / "lists").mkdir()
    (live / "lists" / "residents.csv").write_text(RESIDENTS, encoding="utf-8")
    name, text = notify_channel(sandbox.url, email=True)
    (live / "channels" / f"{name}.toml").write_text(text, encoding="utf-8")
    sandbox.fault("hook-b", fail_next=9, status=403)  # refused: not worth a retry
    sent = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert sent.exit_code == 1, sent.output  # hook-b failed
    accepted_by_sandbox = len([r for r in sandbox.received(accepted=True)])
    time.sleep(0.3)  # the sandbox's receipts arrive a moment after the send, as real ones do
    assert invoke(live, "review", "collect").exit_code == 0
    slug = Store.open(live / "broadcast.db").incidents()[0]["slug"]
    return slug, accepted_by_sandbox


def cells(row: tuple[str, ...] | list[str]) -> tuple[int | None, ...]:
    return tuple(None if cell == "-" else int(cell.replace(",", "")) for cell in row)


def test_every_view_gives_the_same_figures_and_they_add_up(live, incident, tmp_path):
    slug, accepted_by_sandbox = incident
    data = json.loads(invoke(live, "review", "metrics", slug, "--json").stdout)
    assert data["version"] == 2
    rows = data["reach"]
    totals = tuple(data[f] for f in FIELDS)

    # Each row adds up, and the rows add up to the incident's figures.
    for row in rows:
        assert row["reached"] + row["failed"] + row["unknown"] == row["attempted"], row
        assert row["reached"] == (row["accepted"] if row["delivered"] is None else row["delivered"])
    assert data["reached"] + data["failed"] + data["unknown"] == data["attempted"]
    for field in ("attempted", "accepted", "failed", "unknown"):
        assert sum(r[field] for r in rows) == data[field]
    assert sum(r["delivered"] or 0 for r in rows) == data["delivered"]
    for channel in data["channels"]:
        mine = [r for r in rows if r["channel"] == channel["channel"]]
        assert tuple(channel[f] for f in ("attempted", "accepted", "failed", "unknown")) == tuple(
            sum(r[f] for r in mine) for f in ("attempted", "accepted", "failed", "unknown"))

    # What the third parties saw: one delivery row per message; what the sandbox accepted is what we call accepted.
    store = Store.open(live / "broadcast.db")
    assert data["attempted"] == store.conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    store.close()
    assert data["accepted"] == accepted_by_sandbox
    by_key = {(r["channel"], r["language"]): r for r in rows}
    assert (by_key["hook-b", "en-GB"]["accepted"], by_key["hook-b", "en-GB"]["failed"]) == (0, 1)
    assert by_key["hook-b", "en-GB"]["reasons"] == {"HTTP 403": 1}
    welsh = by_key["sms-residents", "cy-GB"]  # Bryn (002) fails permanently, Carys (003) temporarily
    assert (welsh["delivered"], welsh["failed"], welsh["unknown"]) == (welsh["attempted"] - 2, 2, 0)
    assert welsh["reasons"] == {"permanent-failure": 1, "temporary-failure": 1}
    assert by_key["mastodon-council", "en-GB"]["delivered"] is None  # a post has no receipt
    receipts = {(r["channel"], r["language"]): r for r in data["receipts"]}
    assert receipts["sms-residents", "cy-GB"]["failed"] == 2
    assert [e["channel"] for e in data["engagement"]].count("mastodon-council") == 1

    # The terminal.
    text = invoke(live, "review", "metrics", slug).stdout
    [all_line] = [line for line in text.splitlines() if line.startswith("All channels")]
    assert cells(all_line.split()[2:]) == totals
    for row in rows:
        [line] = [line for line in text.splitlines() if line.split()[:2] == [row["channel"], row["language"]]]
        assert cells(line.split()[2:]) == tuple(row[f] for f in FIELDS)

    # The HTML review: its table, and its chart counting each message once.
    html_path = tmp_path / "review.html"
    assert invoke(live, "review", slug, "--format", "html", "-o", str(html_path)).exit_code == 0
    html = html_path.read_text(encoding="utf-8")
    table = html[html.index("What became of the messages"):]
    table = table[:table.index("</table>")]
    shown = [re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", tr) for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table)][1:]
    assert [(r[0], r[1]) for r in shown[:-1]] == [(r["channel"], r["language"]) for r in rows]
    assert [cells(r[2:]) for r in shown[:-1]] == [tuple(r[f] for f in FIELDS) for r in rows]
    assert shown[-1][0] == "All channels" and cells(shown[-1][2:]) == totals
    chart = re.search(r'<desc id="dchart-d">(.*?)</desc>', html, re.S)[1]
    for channel in data["channels"]:
        found = re.search(rf"{channel['channel']}: (\d+) accepted, (\d+) refused or cut off", chart)
        accepted, refused = found.groups()
        assert (int(accepted), int(refused)) == (channel["accepted"], channel["attempted"] - channel["accepted"])

    # The after-action report: its table, and the words explained.
    aar = tmp_path / "aar.md"
    assert invoke(live, "review", "aar", slug, "-o", str(aar)).exit_code == 0
    report = aar.read_text(encoding="utf-8")
    for row in rows:
        expected = " | ".join(["-" if row[f] is None else f"{row[f]:,}" for f in FIELDS])
        assert f"| {row['channel']} | {row['language']} | {expected} |" in report
    assert f"| All channels |  | {' | '.join(f'{v:,}' for v in totals)} |" in report
    assert all(f"- *{word}*: {meaning}" in report for word, meaning in WORDS.items())
    assert "sms-residents (cy-GB): 1 of 3 delivered per receipt, 2 not delivered" in report

    # The CSV export's header carries the same metrics.
    csv_path = tmp_path / "timeline.csv"
    assert invoke(live, "review", slug, "--format", "csv", "-o", str(csv_path)).exit_code == 0
    meta = json.loads((tmp_path / "timeline.meta.json").read_text(encoding="utf-8"))
    assert tuple(meta["metrics"][f] for f in FIELDS) == totals and meta["metrics"]["reach"] == rows

    # status: the same sentence, and the texts that did not arrive.
    status = json.loads(invoke(live, "status", "--json").stdout)
    [open_incident] = status["incidents"]
    assert open_incident["messages"].startswith(f"{data['attempted']:,} attempted = {data['delivered']:,} delivered")
    assert [(u["channel"], u["language"], u["count"]) for u in status["undelivered"]] == [("sms-residents", "cy-GB", 2)]
    shown_status = invoke(live, "status").stdout
    assert "2 texts or emails not delivered on sms-residents (cy-GB)" in shown_status
    assert "permanent-failure 1, temporary-failure 1" in shown_status


def merged_by_message(store, slugs):
    """tally() as it was written before: each message's Tally from by_message, merged in key order (the oracle)."""
    from broadcast.review.tally import Tally, by_message

    merged = {}
    for (_, channel, language), row in sorted(by_message(store, slugs).items()):
        merged.setdefault((channel, language), Tally(channel, language)).add(row)
    return [merged[key] for key in sorted(merged)]


def test_the_tally_equals_each_message_s_figures_merged(live, incident, tmp_path):
    """Receipts (Notify's texts and emails), a refusal with its reason, posts; and a long incident's thousands of
    messages with retries and failures on six channels."""
    from test_large_export import SLUG, long_incident

    from broadcast.review.tally import tally

    slug, _ = incident
    store = Store.open(live / "broadcast.db")
    long, _, _ = long_incident(tmp_path / "long.db")
    for log, slugs in ((store, [slug]), (long, [SLUG])):
        ours, oracle = tally(log, slugs), merged_by_message(log, slugs)
        assert ours == oracle and len(ours) > 1
        assert [(list(t.reasons.items()), list(t.receipt_reasons.items())) for t in ours] == [
            (list(t.reasons.items()), list(t.receipt_reasons.items())) for t in oracle]  # the order ties show in
    assert any(t.delivered is not None for t in tally(store, [slug]))  # receipts were taken
    assert any(t.reasons for t in tally(long, [SLUG]))


def test_the_tally_is_summed_as_it_is_read_four_times_the_messages_in_about_the_same_memory(tmp_path):
    """One figure per channel and language is held, not one entry per message: a long incident (one per person on a
    list) would otherwise hold tens of thousands."""
    import tracemalloc

    from test_large_export import SLUG, long_incident

    from broadcast.review.tally import tally

    peaks, figures = [], []
    for alerts in (110, 440):  # 660 and 2,640 messages
        log, _, _ = long_incident(tmp_path / f"long-{alerts}.db", alerts=alerts)
        tracemalloc.start()
        try:
            figures.append(tally(log, [SLUG]))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
            log.close()
    assert [sum(t.attempted for t in f) for f in figures] == [660, 2640]
    assert peaks[1] < peaks[0] * 1.5, peaks  # it grew fourfold with the messages when they were kept to be sorted
