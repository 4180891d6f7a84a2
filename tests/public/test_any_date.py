"""The whole warning, as the public sees it, on any date, across London's clock changes and in any machine zone."""

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import feedparser
import pytest
from conftest import FAR_FUTURE, VALUES, invoke
from lxml import etree

LONDON = ZoneInfo("Europe/London")  # the fixture workspace's zone
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
CLOCKS = {
    "400 days on": FAR_FUTURE,
    "ten minutes before London's clocks go forward": datetime(2027, 3, 28, 0, 50, tzinfo=UTC),
    "in the hour London repeats (BST)": datetime(2027, 10, 31, 0, 40, tzinfo=UTC),
    "in the hour London repeats (GMT)": datetime(2027, 10, 31, 1, 10, tzinfo=UTC),
    "New Year's Eve in London, New Year's Day in Auckland": datetime(2027, 12, 31, 12, 30, tzinfo=UTC),
}


@pytest.fixture(params=["UTC", "Pacific/Auckland"])
def machine_zone(request, monkeypatch):
    """The machine's own time zone, which must change nothing: the workspace names its zone."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("clock", CLOCKS.values(), ids=CLOCKS.keys(), indirect=True)
def test_a_warning_is_current_on_the_page_feed_and_cap_then_expires(live, sandbox, clock, machine_zone):
    sets = [f"--set={k}={v}" for k, v in {**VALUES, "date": "today"}.items()]
    result = invoke(live, "warn", "school-closure", *sets, "--yes")
    assert result.exit_code == 0, result.output
    identifier = f"A-{clock.start.year}-0001"
    assert f"3 of 3 channels delivered. Alert {identifier}, incident " in result.output
    site = live / "site"
    cap = etree.parse(str(site / "cap" / f"{identifier}.xml")).getroot()
    sent = datetime.fromisoformat(cap.findtext(f"{CAP}sent"))
    expires = datetime.fromisoformat(cap.findtext(f"{CAP}info/{CAP}expires"))
    assert timedelta(0) <= sent - clock.start.replace(microsecond=0) < timedelta(minutes=1)
    assert expires - sent == timedelta(hours=18)
    local = sent.astimezone(LONDON)
    [posted] = sandbox.received("mastodon", accepted=True)
    assert f"is closed on {local:%A} {local.day} {local:%B}" in str(posted.body)  # "today" in London, not here

    status = json.loads((site / "status.json").read_text(encoding="utf-8"))
    assert status["status"]["description"] == "1 current alert"
    assert [(i["broadcast_status"], [u["id"] for u in i["incident_updates"]]) for i in status["incidents"]] == \
        [("current", [identifier])]
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "1 current alert" in index
    instant = sent.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ" if sent.second else "%Y-%m-%dT%H:%MZ")
    shown = f'<time datetime="{instant}">{local:%H:%M} {local.tzname()}'  # London's time, zone named; UTC for machines
    assert shown in index, index
    incident = (site / "incidents" / f"{status['incidents'][0]['id']}.html").read_text(encoding="utf-8")
    assert f'<time datetime="{local.isoformat()}">{local:%H:%M} {local.tzname()}, {local:%A}' in incident
    feed = feedparser.parse((site / "feed.atom").read_bytes())
    [entry] = feed.entries
    assert datetime(*entry.updated_parsed[:6], tzinfo=UTC) == sent.astimezone(UTC)

    clock.move_to(expires + timedelta(minutes=1))
    built = invoke(live, "page", "build", "--output", str(live / "later"))
    assert built.exit_code == 0, built.output
    assert "no current alerts" in built.output
    later = json.loads((live / "later" / "status.json").read_text(encoding="utf-8"))
    assert later["status"]["description"] == "No current alerts"
    assert [(i["broadcast_status"], [u["id"] for u in i["incident_updates"]]) for i in later["incidents"]] == \
        [("ended", [identifier])]


def test_the_two_local_times_of_the_hour_the_clocks_go_back_are_each_written_with_their_own_offset():
    from broadcast.public.pagetext import clock, long_time, machine_time

    zone = "Europe/London"
    summer, winter = (datetime(2026, 10, 25, hour, 30, tzinfo=UTC).astimezone(ZoneInfo(zone)) for hour in (0, 1))
    assert summer == winter  # the same wall time in the same zone: Python compares them equal, an hour apart
    for first, second in ((summer, winter), (winter, summer)):
        assert {clock(first, zone), clock(second, zone)} == {"01:30 BST", "01:30 GMT"}
        assert {machine_time(first, zone), machine_time(second, zone)} == {"2026-10-25T01:30:00+01:00",
                                                                           "2026-10-25T01:30:00+00:00"}
        assert {long_time(first, zone, "en-GB"), long_time(second, zone, "en-GB")} == {
            "01:30 BST, Sunday 25 October 2026", "01:30 GMT, Sunday 25 October 2026"}
