"""The Atom and RSS feeds and status.json, read the way consumers read them."""

import json
from dataclasses import replace
from datetime import timedelta

import feedparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sitekit import T0, MemoryStore, hostile_alert, incident_row, make_alert, save, with_page
from test_cap import ANY_TEXT, TEXT

from broadcast.public.site import build_site
from broadcast.store import Store

pytest_plugins = ("pagekit",)  # store: an empty log; example: the example workspace

BASE = "https://alerts.testshire.example/"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def snow_day(workspace, store):
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"), "Snow: schools closed")
    save(store, make_alert(workspace, "A-2026-0002", minutes=20, incident="snow", msg_type="Update",
                           references=("A-2026-0001",)))
    return build_site(workspace, store, now=T0 + timedelta(hours=1))


def test_the_atom_feed_parses_and_links_each_cap_file(workspace, store):
    site = snow_day(workspace, store)
    feed = feedparser.parse(site.files["feed.atom"])
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.title == "Testshire Council: emergency alerts"
    assert feed.feed.language == "en-GB"
    assert "Open Government Licence v3.0" in feed.feed.rights
    assert [e.id for e in feed.entries] == [BASE + "cap/A-2026-0002.xml", BASE + "cap/A-2026-0001.xml"]
    newest = feed.entries[0]
    links = {link.type: link.href for link in newest.links}
    assert links["application/cap+xml"] == newest.id
    assert links["text/html"] == BASE + "incidents/snow.html#A-2026-0002"
    assert newest.title == "Hillside Primary School is closed on Monday 23 November 2026"
    assert newest.published == "2026-11-23T07:02:00+00:00"
    assert newest.cap_msgtype == "Update" and newest.cap_status == "Actual"
    assert newest.summary.startswith("Testshire Council: Hillside Primary School in Testshire town is closed")
    # Each linked CAP file is in the site, byte for byte what the feed promises.
    assert site.files["cap/A-2026-0002.xml"].startswith(b"<?xml")


def test_the_welsh_feed_has_the_welsh_text(workspace, store):
    site = snow_day(workspace, store)
    feed = feedparser.parse(site.files["cy/feed.atom"])
    assert not feed.bozo
    assert feed.feed.title == "Cyngor Testshire: Rhybuddion brys"
    assert feed.entries[0].title.startswith("Mae Hillside Primary School ar gau")
    assert feed.entries[0].id == BASE + "cap/A-2026-0002.xml"  # the same CAP document: it holds both languages
    assert "Trwydded Llywodraeth Agored v3.0" in feed.feed.rights


def test_the_rss_feed_parses_with_the_cap_file_as_guid(workspace, store):
    feed = feedparser.parse(snow_day(workspace, store).files["feed.rss"])
    assert not feed.bozo
    assert feed.version == "rss20"
    assert "Open Government Licence" in feed.feed.rights
    item = feed.entries[0]
    assert item.id == BASE + "cap/A-2026-0002.xml"
    assert item.link == BASE + "incidents/snow.html#A-2026-0002"
    assert item.published_parsed[:5] == (2026, 11, 23, 7, 2)


def test_the_licence_the_workspace_chose_is_on_the_feeds(workspace_dir, store):
    workspace = with_page(workspace_dir, 'licence = "CC-BY-4.0"\n')
    site = snow_day(workspace, store)
    atom = feedparser.parse(site.files["feed.atom"])
    assert "Creative Commons Attribution 4.0" in atom.feed.rights
    assert any(link.rel == "license" and link.href == "https://creativecommons.org/licenses/by/4.0/"
               for link in atom.feed.links)
    assert "creativecommons.org/licenses/by/4.0" in feedparser.parse(site.files["feed.rss"]).feed.rights
    assert json.loads(site.files["status.json"])["page"]["licence"]["id"] == "CC-BY-4.0"


def test_the_feed_keeps_the_newest_entries(workspace_dir, store):
    workspace = with_page(workspace_dir, "feed_entries = 3\n")
    for n in range(1, 6):
        save(store, make_alert(workspace, f"A-2026-000{n}", minutes=n, incident=f"closure-{n}"))
    site = build_site(workspace, store, now=T0 + timedelta(hours=1))
    ids = [e.id for e in feedparser.parse(site.files["feed.atom"]).entries]
    assert ids == [BASE + f"cap/A-2026-000{n}.xml" for n in (5, 4, 3)]
    assert len(feedparser.parse(site.files["feed.rss"]).entries) == 3
    assert "cap/A-2026-0001.xml" in site.files  # older CAP files stay published


def test_a_busy_feed_stays_under_100_kb(workspace):
    long = "Flood water is rising. " * 150  # 3,450 characters of description in each language
    alerts = []
    for n in range(50):
        alert = make_alert(workspace, f"A-2026-{n:04d}", minutes=n, incident=f"flood-{n}")
        alerts.append(replace(alert, infos=tuple(replace(i, description=long) for i in alert.infos)))
    site = build_site(workspace, MemoryStore(alerts), now=T0)
    assert len(site.files["feed.atom"]) < 100_000
    entries = feedparser.parse(site.files["feed.atom"]).entries
    assert 5 < len(entries) < 50
    assert entries[0].id == BASE + "cap/A-2026-0049.xml"  # the newest kept, the oldest dropped
    assert len(site.files["feed.rss"]) < 100_000


def test_status_json_is_statuspage_shaped(workspace, store):
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"), "Snow: schools closed")
    save(store, make_alert(workspace, "A-2026-0002", minutes=5, template="school-closure", incident="flood",
                           values={"school": "Ysgol Bro Lliw", "date": "2026-11-23", "reason": "heating",
                                   "next_update": "10:00", "area": "town"}))
    data = json.loads(build_site(workspace, store, now=T0 + timedelta(hours=1)).files["status.json"])
    assert data["page"]["url"] == BASE and data["page"]["time_zone"] == "Europe/London"
    assert data["page"]["updated_at"] == "2026-11-23T07:42:00+00:00"
    assert data["status"] == {"indicator": "minor", "description": "2 current alerts"}
    assert data["summaryStatus"] == "notice"
    assert data["scheduled_maintenances"] == []
    incident = data["incidents"][0]
    assert incident["id"] == "flood" and incident["status"] == "identified"
    assert incident["shortlink"] == BASE + "incidents/flood.html"
    update = incident["incident_updates"][0]
    assert update["cap_url"] == BASE + "cap/A-2026-0002.xml"
    assert update["texts"]["cy-GB"]["headline"] == "Mae Ysgol Bro Lliw ar gau ar Dydd Llun 23 Tachwedd 2026"
    assert [s["name"] for s in data["schools"]] == ["Hillside Primary School", "Ysgol Bro Lliw"]
    assert data["schools"][1] == {"name": "Ysgol Bro Lliw", "status": "closed",
                                  "updated_at": "2026-11-23T06:47:00+00:00", "incident": "flood"}


def test_a_cancellation_resolves_the_incident_in_status_json_as_cancelled(workspace, store):
    first = save(store, make_alert(workspace, "A-2026-0001", incident="snow"), "Snow")
    save(store, replace(make_alert(workspace, "A-2026-0002", minutes=60, incident="snow", msg_type="Cancel",
                                   references=(first.identifier,)), infos=()))
    data = json.loads(build_site(workspace, store, now=T0 + timedelta(hours=2)).files["status.json"])
    assert data["status"]["indicator"] == "none" and data["summaryStatus"] == "ok"
    incident = data["incidents"][0]
    assert incident["status"] == "resolved" and incident["broadcast_status"] == "cancelled"  # not an all-clear
    assert incident["resolved_at"] == "2026-11-23T07:42:00+00:00"


def test_exercise_and_test_alerts_stay_off_the_feeds_unless_the_workspace_shows_them(workspace_dir, tmp_path):
    from broadcast.workspace import Workspace

    def site(workspace):
        store = Store.open(tmp_path / f"{id(workspace)}.db")
        save(store, make_alert(workspace, "A-2026-0001", incident="real"), "Real")
        save(store, make_alert(workspace, "A-2026-0002", minutes=1, incident="drill", status="Exercise",
                               note="Exercise Frosty Morning"), "Drill", exercise=True)
        save(store, make_alert(workspace, "A-2026-0003", minutes=2, incident="test", status="Test"), "Test")
        save(store, make_alert(workspace, "A-2026-0004", minutes=3, incident="draft", status="Draft"), "Draft")
        return build_site(workspace, store, now=T0 + timedelta(hours=1))

    hidden = site(Workspace(workspace_dir))
    assert [e.id for e in feedparser.parse(hidden.files["feed.atom"]).entries] == [BASE + "cap/A-2026-0001.xml"]
    assert "cap/A-2026-0002.xml" not in hidden.files and "cap/A-2026-0003.xml" not in hidden.files
    assert [i["id"] for i in json.loads(hidden.files["status.json"])["incidents"]] == ["real"]

    shown = site(with_page(workspace_dir, "show_exercises = true\n"))
    titles = {e.id.rsplit("/", 1)[1]: e.title for e in feedparser.parse(shown.files["feed.atom"]).entries}
    assert titles["A-2026-0002.xml"].startswith("EXERCISE: ")
    assert titles["A-2026-0003.xml"].startswith("TEST: ")
    assert not titles["A-2026-0001.xml"].startswith(("EXERCISE", "TEST"))
    assert "A-2026-0004.xml" not in titles  # Draft never
    welsh = feedparser.parse(shown.files["cy/feed.atom"]).entries
    assert any(e.title.startswith("YMARFER: ") for e in welsh)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_hostile_text_comes_back_exactly_from_atom_rss_and_json(workspace, text):
    store = MemoryStore([hostile_alert(text)], [incident_row("hostile", text)])
    files = build_site(workspace, store, now=T0).files
    for name in ("feed.atom", "cy/feed.atom"):
        entry = etree.fromstring(files[name]).find(f"{ATOM}entry")
        assert entry.findtext(f"{ATOM}title") == text
        assert entry.findtext(f"{ATOM}summary") == text
        assert entry.findtext(f"{CAP}areaDesc") == text
        assert entry.find(f"{CAP}geocode").findtext(f"{CAP}value") == text
    item = etree.fromstring(files["feed.rss"]).find("channel/item")
    assert item.findtext("title") == text and item.findtext("description") == text
    data = json.loads(files["status.json"])
    assert data["incidents"][0]["name"] == text
    assert data["incidents"][0]["incident_updates"][0]["texts"]["cy-GB"]["instruction"] == text
    assert data["schools"][0]["name"] == text.strip()
    for name in ("feed.atom", "feed.rss"):
        assert b"<script" not in files[name]
    assert feedparser.parse(files["feed.atom"]).bozo == 0


# -- the bytes: what lxml writes for the same tree ---------------------------------------------------------------
def lxml_atom(summary, language, count):
    """The Atom feed as lxml serialises the tree feeds.py built before it wrote text, with its first `count`
    entries (how many fit the budget is tested on its own, below): the oracle."""
    from broadcast.public.feeds import LOG_NS, base_url, feed_updates, language_prefix, machine_time, marked
    from broadcast.public.feeds import _heading as heading

    base, prefix = base_url(summary), language_prefix(summary, language)
    org, licence = summary.workspace.organisation, summary.settings.licence
    updates = feed_updates(summary)
    feed = etree.Element(f"{ATOM}feed", nsmap={None: ATOM[1:-1], "cap": CAP[1:-1]})
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", language)
    sub(feed, ATOM + "id", f"{base}{prefix}feed.atom")
    sub(feed, ATOM + "title", f"{org.name.get(language)}: {heading(language)}")
    sub(feed, ATOM + "updated", machine_time(updates[0].sent if updates else summary.generated, "UTC"))
    sub(feed, ATOM + "link", rel="self", type="application/atom+xml", href=f"{base}{prefix}feed.atom")
    sub(feed, ATOM + "link", rel="alternate", type="text/html", href=f"{base}{prefix}index.html")
    sub(feed, ATOM + "link", rel="license", href=licence.url)
    sub(feed, ATOM + "rights", f"{licence.name.get(language)}: {licence.url}")
    author = sub(feed, ATOM + "author")
    sub(author, ATOM + "name", org.name.get(language))
    sub(author, ATOM + "uri", base)
    sub(feed, ATOM + "generator", "broadcast")
    if summary.log[1]:
        etree.SubElement(feed, f"{{{LOG_NS}}}head", {"events": str(summary.log[0]), "hash": summary.log[1]},
                         nsmap={"log": LOG_NS})
    for update in updates[:count]:
        alert, cap_url = update.alert, base + update.cap_path
        entry = etree.SubElement(feed, ATOM + "entry")
        sub(entry, ATOM + "id", cap_url)
        sub(entry, ATOM + "title", marked(update, language))
        sub(entry, ATOM + "updated", machine_time(update.sent, "UTC"))
        sub(entry, ATOM + "published", machine_time(update.sent, "UTC"))
        sub(entry, ATOM + "link", rel="alternate", type="application/cap+xml", href=cap_url)
        sub(entry, ATOM + "link", rel="alternate", type="text/html", hreflang=language,
            href=f"{base}{prefix}{update.page}#{update.anchor}")
        for tag, value in (("identifier", alert.identifier), ("sender", alert.sender), ("sent", alert.sent),
                           ("status", alert.status), ("msgType", alert.msg_type)):
            sub(entry, CAP + tag, value)
        if alert.infos:
            info = alert.info(language)
            sub(entry, ATOM + "summary", info.description)
            for tag, value in (("event", info.event), ("urgency", info.urgency), ("severity", info.severity),
                               ("certainty", info.certainty), ("expires", info.expires),
                               ("areaDesc", "; ".join(area.desc for area in info.areas))):
                sub(entry, CAP + tag, value)
            for name, value in sorted({g for area in info.areas for g in area.geocodes}):
                geocode = sub(entry, CAP + "geocode")
                sub(geocode, CAP + "valueName", name)
                sub(geocode, CAP + "value", value)
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def lxml_rss(summary, language, count):
    """RSS 2.0 as lxml serialises the tree feeds.py built before it wrote text, with its first `count` items."""
    from email.utils import format_datetime

    from broadcast.public.feeds import _heading as heading
    from broadcast.public.feeds import base_url, count_text, feed_updates, language_prefix, marked

    base, prefix = base_url(summary), language_prefix(summary, language)
    org, licence = summary.workspace.organisation, summary.settings.licence
    updates = feed_updates(summary)
    root = etree.Element("rss", {"version": "2.0"}, nsmap={"atom": ATOM[1:-1]})
    channel = sub(root, "channel")
    sub(channel, "title", f"{org.name.get(language)}: {heading(language)}")
    sub(channel, "link", f"{base}{prefix}index.html")
    sub(channel, "description", count_text(language, len(summary.current)))
    sub(channel, "language", language.lower())
    sub(channel, "copyright", f"{licence.name.get(language)}: {licence.url}")
    sub(channel, ATOM + "link", rel="self", type="application/rss+xml", href=f"{base}{prefix}feed.rss")
    if updates:
        sub(channel, "lastBuildDate", format_datetime(updates[0].sent))
    sub(channel, "generator", "broadcast")
    sub(channel, "ttl", "5")
    for update in updates[:count]:
        item = sub(channel, "item")
        sub(item, "title", marked(update, language))
        sub(item, "link", f"{base}{prefix}{update.page}#{update.anchor}")
        if update.alert.infos:
            sub(item, "description", update.alert.info(language).description)
            sub(item, "category", update.alert.info(language).event)
        sub(item, "guid", base + update.cap_path, isPermaLink="true")
        sub(item, "pubDate", format_datetime(update.sent))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def sub(parent, tag, text=None, **attributes):
    from broadcast.public.cap import xml_text

    element = etree.SubElement(parent, tag, attributes or None)
    if text is not None:
        element.text = xml_text(text)
    return element


def same_as_lxml(site):
    from broadcast.public.feeds import atom, rss

    for language in site.summary.workspace.languages:
        prefix = "" if language == site.summary.workspace.languages[0] else "cy/"
        ours = site.files[f"{prefix}feed.atom"]
        assert ours == atom(site.summary, language) == lxml_atom(site.summary, language, ours.count(b"<entry>"))
        ours = site.files[f"{prefix}feed.rss"]
        assert ours == rss(site.summary, language) == lxml_rss(site.summary, language, ours.count(b"<item>"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(text=st.one_of(TEXT, ANY_TEXT, st.sampled_from(["", "\r", "a\rb\nc\td", "\x00", "\ufffe", "]]>&<>\"'"])),
       other=st.one_of(ANY_TEXT, st.just("\ud800")), expires=st.booleans(), cancel=st.booleans(),
       exercise=st.booleans())
def test_the_feeds_are_byte_for_byte_what_lxml_writes_for_the_same_tree(workspace, text, other, expires, cancel,
                                                                        exercise):
    # Raw in what CAP may leave out (headline, description); after a letter in what it must have, so that the CAP
    # file is still valid and the build goes on to the feeds.
    first = hostile_alert(text)
    area = first.infos[0].areas[0]
    areas = (replace(area, desc="A" + text, geocodes=(("GSS", "V" + text),)),
             replace(area, desc="A" + other, geocodes=(("N" + other, "V" + text), ("GSS", "W1"))))
    infos = tuple(replace(info, headline=text, description=text, event="E" + text, areas=areas,
                          expires=info.expires if expires else None) for info in first.infos)
    first = replace(first, infos=infos)
    second = replace(make_alert(workspace, "A-2026-0002", minutes=5, incident="hostile"), status="Exercise"
                     if exercise else "Actual", msg_type="Cancel" if cancel else "Update",
                     references=("A-2026-0001",), infos=() if cancel else first.infos)
    same_as_lxml(build_site(workspace, MemoryStore([first, second], [incident_row("hostile", text)]), now=T0))


def test_a_logged_site_s_feeds_carry_its_chain_head_as_lxml_wrote_it(workspace, store):
    site = snow_day(workspace, store)
    assert site.summary.log[1] and b"<log:head xmlns:log=" in site.files["feed.atom"]
    same_as_lxml(site)


def test_a_busy_feed_holds_every_entry_that_fits_and_not_one_more(workspace):
    from broadcast.public.feeds import FEED_BUDGET, _atom_entry, _rss_item

    long = "Flood water is rising. " * 150
    alerts = [replace(alert, infos=tuple(replace(i, description=long) for i in alert.infos)) for alert in (
        make_alert(workspace, f"A-2026-{n:04d}", minutes=n, incident=f"flood-{n}") for n in range(50))]
    site = build_site(workspace, MemoryStore(alerts), now=T0)
    updates = site.summary.updates
    for name, entry, tag in (("feed.atom", _atom_entry, b"<entry>"), ("feed.rss", _rss_item, b"<item>")):
        data = site.files[name]
        kept = data.count(tag)
        following = ("\n".join(entry(site.summary, updates[kept], "en-GB")) + "\n").encode("utf-8")
        assert 5 < kept < 50 and len(data) <= FEED_BUDGET < len(data) + len(following)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(ANY_TEXT, st.sampled_from(["a&b<c>d\"e'f", "\r\n\t", "https://x.example/?a=1&b=2"])),
       text=st.one_of(st.none(), ANY_TEXT))
def test_an_element_with_attributes_is_written_as_lxml_writes_it(value, text):
    """Attributes in the feeds hold the workspace's own addresses and languages; any text must still come out as
    lxml wrote it (lxml refuses what XML cannot hold, where the text writer drops it, as from element text)."""
    from broadcast.public.cap import xml_text
    from broadcast.public.feeds import _element

    root = etree.Element("r")
    sub(root, "link", text, rel="alternate", href=xml_text(value), hreflang="cy")
    expected = etree.tostring(root, encoding="UTF-8", pretty_print=True).decode("utf-8")
    assert f"<r>\n{_element('  ', 'link', text, rel='alternate', href=value, hreflang='cy')}\n</r>\n" == expected


def test_half_a_character_in_an_older_log_is_dropped_from_every_file_the_site_has(workspace):
    """The command line and area files refuse half characters now; a log written before may still hold one."""
    text = "Ysgol \ud800Lliw"
    files = build_site(workspace, MemoryStore([hostile_alert(text)], [incident_row("hostile", text)]), now=T0).files
    assert all(data.decode("utf-8") for data in files.values())  # every file is UTF-8, none is empty
    assert "Ysgol Lliw" in files["index.html"].decode("utf-8")
    assert json.loads(files["status.json"])["incidents"][0]["name"] == "Ysgol Lliw"
    assert feedparser.parse(files["feed.atom"]).entries[0].title == "Ysgol Lliw"
