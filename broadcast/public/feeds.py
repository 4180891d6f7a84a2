"""Machine outputs: the Atom feed (links each CAP file), RSS 2.0 for older readers, and status.json."""

from __future__ import annotations

import json
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from broadcast.public.cap import CONTENT_TYPE, xml_text
from broadcast.public.cap import NS as CAP_NS
from broadcast.public.pagetext import count_text, machine_time, words
from broadcast.workspace import primary_tag

if TYPE_CHECKING:
    from lxml.etree import _Element

    from broadcast.public.summary import Incident, Summary, Update

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_BUDGET = 100_000  # bytes: Google's ideal CAP feed size
IMPACT = {"Extreme": "critical", "Severe": "major", "Moderate": "minor", "Minor": "minor", "Unknown": "minor"}
SUMMARY_STATUS = {"none": "ok", "minor": "notice", "major": "disrupted", "critical": "down"}


def language_prefix(summary: Summary, language: str) -> str:
    """'' for the first language, 'cy/' for the others: where that language's files live."""
    return "" if language == summary.workspace.languages[0] else f"{primary_tag(language)}/"


def base_url(summary: Summary) -> str:
    return summary.workspace.organisation.web + "/"


def marked(update: Update, language: str) -> str:
    """The headline, with EXERCISE or TEST in front when it is one."""
    headline = update.alert.info(language).headline if update.alert.infos else update.alert.identifier
    return f"{words(language)['marker_' + update.marker]}: {headline}" if update.marker else headline


LOG_NS = "urn:broadcast:log"  # the chain head a reviewer checks a log against: broadcast review verify --head


def feed_updates(summary: Summary) -> list[Update]:
    return summary.updates[: summary.settings.feed_entries]


def _sub(parent: _Element, tag: str, text: str | None = None, **attributes: str) -> _Element:
    from lxml import etree

    element = etree.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attributes.items()} if attributes else None)
    if text is not None:
        element.text = xml_text(text)
    return element


def atom(summary: Summary, language: str) -> bytes:
    """The Atom feed: one entry per public alert, newest first, its id the permanent URL of the CAP file."""
    from lxml import etree

    base, prefix = base_url(summary), language_prefix(summary, language)
    org, licence = summary.workspace.organisation, summary.settings.licence
    updates = feed_updates(summary)
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS, "cap": CAP_NS})
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", language)
    a = f"{{{ATOM_NS}}}"
    _sub(feed, a + "id", f"{base}{prefix}feed.atom")
    _sub(feed, a + "title", f"{org.name.get(language)}: {_heading(language)}")
    _sub(feed, a + "updated", machine_time(updates[0].sent if updates else summary.generated, "UTC"))
    _sub(feed, a + "link", rel="self", type="application/atom+xml", href=f"{base}{prefix}feed.atom")
    _sub(feed, a + "link", rel="alternate", type="text/html", href=f"{base}{prefix}index.html")
    _sub(feed, a + "link", rel="license", href=licence.url)
    _sub(feed, a + "rights", f"{licence.name.get(language)}: {licence.url}")
    author = _sub(feed, a + "author")
    _sub(author, a + "name", org.name.get(language))
    _sub(author, a + "uri", base)
    _sub(feed, a + "generator", "broadcast")
    if summary.log[1]:  # the log's chain head this feed anchors (an Atom extension element, RFC 4287 section 6.4)
        etree.SubElement(feed, f"{{{LOG_NS}}}head", {"events": str(summary.log[0]), "hash": summary.log[1]},
                         nsmap={"log": LOG_NS})
    _fill(feed, [_atom_entry(summary, update, language) for update in updates])
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _atom_entry(summary: Summary, update: Update, language: str) -> _Element:
    from lxml import etree

    base, prefix = base_url(summary), language_prefix(summary, language)
    a, c = f"{{{ATOM_NS}}}", f"{{{CAP_NS}}}"
    alert, cap_url = update.alert, base + update.cap_path
    entry = etree.Element(a + "entry", nsmap={None: ATOM_NS, "cap": CAP_NS})
    _sub(entry, a + "id", cap_url)
    _sub(entry, a + "title", marked(update, language))
    _sub(entry, a + "updated", machine_time(update.sent, "UTC"))
    _sub(entry, a + "published", machine_time(update.sent, "UTC"))
    _sub(entry, a + "link", rel="alternate", type=CONTENT_TYPE, href=cap_url)
    _sub(entry, a + "link", rel="alternate", type="text/html", hreflang=language,
         href=f"{base}{prefix}{update.page}#{update.anchor}")
    for tag, value in (("identifier", alert.identifier), ("sender", alert.sender), ("sent", alert.sent),
                       ("status", alert.status), ("msgType", alert.msg_type)):
        _sub(entry, c + tag, value)
    if alert.infos:
        info = alert.info(language)
        _sub(entry, a + "summary", info.description)
        for tag, value in (("event", info.event), ("urgency", info.urgency), ("severity", info.severity),
                           ("certainty", info.certainty), ("expires", info.expires),
                           ("areaDesc", "; ".join(area.desc for area in info.areas))):
            _sub(entry, c + tag, value)
        for name, value in sorted({g for area in info.areas for g in area.geocodes}):
            geocode = _sub(entry, c + "geocode")
            _sub(geocode, c + "valueName", name)
            _sub(geocode, c + "value", value)
    return entry


def _fill(parent: _Element, entries: list[_Element]) -> None:
    """Append entries, newest first, while the feed stays within the size consumers expect."""
    from lxml import etree

    used = len(etree.tostring(parent)) + 500
    for count, entry in enumerate(entries):
        used += len(etree.tostring(entry, encoding="UTF-8"))
        if used > FEED_BUDGET and count:
            return
        parent.append(entry)


def rss(summary: Summary, language: str) -> bytes:
    """RSS 2.0 for the readers and bots that only take RSS: link to the page, the CAP file as guid and enclosure."""
    from lxml import etree

    base, prefix = base_url(summary), language_prefix(summary, language)
    org, licence = summary.workspace.organisation, summary.settings.licence
    updates = feed_updates(summary)
    root = etree.Element("rss", {"version": "2.0"}, nsmap={"atom": ATOM_NS})
    channel = _sub(root, "channel")
    _sub(channel, "title", f"{org.name.get(language)}: {_heading(language)}")
    _sub(channel, "link", f"{base}{prefix}index.html")
    _sub(channel, "description", count_text(language, len(summary.current)))
    _sub(channel, "language", language.lower())
    _sub(channel, "copyright", f"{licence.name.get(language)}: {licence.url}")
    _sub(channel, f"{{{ATOM_NS}}}link", rel="self", type="application/rss+xml", href=f"{base}{prefix}feed.rss")
    if updates:
        _sub(channel, "lastBuildDate", format_datetime(updates[0].sent))
    _sub(channel, "generator", "broadcast")
    _sub(channel, "ttl", "5")
    items = []
    for update in updates:
        item = etree.Element("item")
        cap_url = base + update.cap_path
        _sub(item, "title", marked(update, language))
        _sub(item, "link", f"{base}{prefix}{update.page}#{update.anchor}")
        if update.alert.infos:
            _sub(item, "description", update.alert.info(language).description)
            _sub(item, "category", update.alert.info(language).event)
        _sub(item, "guid", cap_url, isPermaLink="true")
        _sub(item, "pubDate", format_datetime(update.sent))
        items.append(item)
    _fill(channel, items)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _heading(language: str) -> str:
    return words(language)["heading"].lower() if primary_tag(language) == "en" else words(language)["heading"]


def status_json(summary: Summary) -> bytes:
    """A Statuspage-like summary (page, status.indicator, incidents[].incident_updates[]) plus cState's
    summaryStatus, the school list and every language's text."""
    workspace, settings = summary.workspace, summary.settings
    languages, zone = workspace.languages, workspace.timezone
    indicator = IMPACT[summary.current[0].latest.severity] if summary.current else "none"
    data: dict[str, Any] = {
        "page": {
            "id": base_url(summary), "name": workspace.organisation.name.get(languages[0]),
            "url": base_url(summary), "time_zone": zone, "updated_at": machine_time(summary.generated, zone),
            "languages": languages,
            "licence": {"id": settings.licence.id, "name": settings.licence.name.get(languages[0]),
                        "url": settings.licence.url},
        },
        "status": {"indicator": indicator, "description": count_text(languages[0], len(summary.current))},
        "summaryStatus": SUMMARY_STATUS[indicator],
        "incidents": [_incident_json(summary, i) for i in (*summary.current, *summary.ended)],
        "scheduled_maintenances": [],
        "schools": [{"name": s.name, "status": s.status, "updated_at": machine_time(s.updated, zone),
                     "incident": s.incident} for s in summary.schools],
        # The log's chain head when this was built: a reviewer checks a log against it with the command below, so
        # a log rewritten after this was published does not pass.
        "log": {"events": summary.log[0], "head": summary.log[1], "recorded_at": summary.log[2],
                "verify": f"broadcast review verify --head {summary.log[0]}:{summary.log[1]}"},
    }
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _incident_json(summary: Summary, incident: Incident) -> dict[str, Any]:
    zone, base = summary.workspace.timezone, base_url(summary)

    def at(moment: datetime) -> str:
        return machine_time(moment, zone)

    resolved = incident.status != "current"
    return {
        "id": incident.slug, "name": incident.title,
        "status": "resolved" if resolved else "monitoring" if incident.state == "recovering" else "identified",
        "broadcast_status": incident.status, "exercise": incident.marker,
        "impact": IMPACT.get(incident.latest.severity, "minor"),
        "created_at": at(incident.updates[-1].sent), "updated_at": at(incident.latest.sent),
        "resolved_at": at(incident.latest.sent) if resolved else None,
        "shortlink": base + incident.page,
        "incident_updates": [_update_json(summary, u, base, u is incident.latest) for u in incident.updates],
    }


def _update_json(summary: Summary, update: Update, base: str, latest: bool) -> dict[str, Any]:
    """An update; only the newest of each incident carries its full text in every language (what the index shows),
    so the file stays small on a busy day: the incident page has the rest."""
    zone, alert = summary.workspace.timezone, update.alert
    first = alert.info(summary.workspace.languages[0]) if alert.infos else None
    data: dict[str, Any] = {
        "id": alert.identifier, "status": "resolved" if update.kind in ("all-clear", "cancel") else "identified",
        "kind": update.kind, "msg_type": alert.msg_type, "cap_status": alert.status,
        "body": (first.description if latest else first.headline) if first else "",
        "created_at": machine_time(update.sent, zone), "display_at": machine_time(update.sent, zone),
        "expires_at": machine_time(update.expires, zone) if update.expires else None,
        "cap_url": base + update.cap_path,
    }
    if latest:
        data["texts"] = {info.language: {"headline": info.headline, "description": info.description,
                                         "instruction": info.instruction, "areas": [a.desc for a in info.areas]}
                         for info in alert.infos}
    return data
