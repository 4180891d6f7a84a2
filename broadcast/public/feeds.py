"""Machine outputs: the Atom feed (links each CAP file), RSS 2.0 for older readers, and status.json."""

from __future__ import annotations

import json
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from broadcast.public.cap import CONTENT_TYPE, escape_attribute, escape_text
from broadcast.public.cap import NS as CAP_NS
from broadcast.public.pagetext import count_text, machine_time, utf8, words
from broadcast.workspace import primary_tag

if TYPE_CHECKING:
    from collections.abc import Iterable

    from broadcast.public.summary import Incident, Summary, Update

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_BUDGET = 100_000  # bytes: Google's ideal CAP feed size
XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>"
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


def _element(indent: str, tag: str, text: str | None = None, **attributes: str) -> str:
    """One element on its line: text escaped, attributes in the order given; no text is an empty element."""
    said = "".join(f' {name}="{escape_attribute(value)}"' for name, value in attributes.items())
    return f"{indent}<{tag}{said}/>" if text is None else f"{indent}<{tag}{said}>{escape_text(text)}</{tag}>"


def atom(summary: Summary, language: str) -> bytes:
    """The Atom feed: one entry per public alert, newest first, its id the permanent URL of the CAP file.

    Written as text, in the very bytes lxml's tostring(pretty_print=True) gives for the same tree (a test compares
    the two, hostile text included); feedparser and lxml read it back in the tests."""
    base, prefix = base_url(summary), language_prefix(summary, language)
    org, licence = summary.workspace.organisation, summary.settings.licence
    updates = feed_updates(summary)
    head = [XML_DECLARATION,
            f'<feed xmlns="{ATOM_NS}" xmlns:cap="{CAP_NS}" xml:lang="{escape_attribute(language)}">',
            _element("  ", "id", f"{base}{prefix}feed.atom"),
            _element("  ", "title", f"{org.name.get(language)}: {_heading(language)}"),
            _element("  ", "updated", machine_time(updates[0].sent if updates else summary.generated, "UTC")),
            _element("  ", "link", rel="self", type="application/atom+xml", href=f"{base}{prefix}feed.atom"),
            _element("  ", "link", rel="alternate", type="text/html", href=f"{base}{prefix}index.html"),
            _element("  ", "link", rel="license", href=licence.url),
            _element("  ", "rights", f"{licence.name.get(language)}: {licence.url}"),
            "  <author>", _element("    ", "name", org.name.get(language)), _element("    ", "uri", base),
            "  </author>",
            _element("  ", "generator", "broadcast")]
    if summary.log[1]:  # the log's chain head this feed anchors (an Atom extension element, RFC 4287 section 6.4)
        head.append(f'  <log:head xmlns:log="{LOG_NS}" events="{summary.log[0]}" '
                    f'hash="{escape_attribute(summary.log[1])}"/>')
    return _fill(head, (_atom_entry(summary, update, language) for update in updates), ["</feed>"])


def _atom_entry(summary: Summary, update: Update, language: str) -> list[str]:
    base, prefix = base_url(summary), language_prefix(summary, language)
    alert, cap_url, sent = update.alert, base + update.cap_path, machine_time(update.sent, "UTC")
    lines = ["  <entry>", _element("    ", "id", cap_url), _element("    ", "title", marked(update, language)),
             _element("    ", "updated", sent), _element("    ", "published", sent),
             _element("    ", "link", rel="alternate", type=CONTENT_TYPE, href=cap_url),
             _element("    ", "link", rel="alternate", type="text/html", hreflang=language,
                      href=f"{base}{prefix}{update.page}#{update.anchor}")]
    lines += (_element("    ", "cap:" + tag, value) for tag, value in (
        ("identifier", alert.identifier), ("sender", alert.sender), ("sent", alert.sent), ("status", alert.status),
        ("msgType", alert.msg_type)))
    if alert.infos:
        info = alert.info(language)
        lines.append(_element("    ", "summary", info.description))
        lines += (_element("    ", "cap:" + tag, value) for tag, value in (
            ("event", info.event), ("urgency", info.urgency), ("severity", info.severity),
            ("certainty", info.certainty), ("expires", info.expires),
            ("areaDesc", "; ".join(area.desc for area in info.areas))))
        for name, value in sorted({g for area in info.areas for g in area.geocodes}):
            lines += ("    <cap:geocode>", _element("      ", "cap:valueName", name),
                      _element("      ", "cap:value", value), "    </cap:geocode>")
    lines.append("  </entry>")
    return lines


def _fill(head: list[str], entries: Iterable[list[str]], tail: list[str]) -> bytes:
    """The document: its head, then entries, newest first, while the whole stays within FEED_BUDGET bytes (the
    newest always), then its tail. An entry past the budget is never written."""
    start, end = ("\n".join(head) + "\n").encode("utf-8"), ("\n".join(tail) + "\n").encode("utf-8")
    parts, used = [start], len(start) + len(end)
    for count, entry in enumerate(entries):
        data = ("\n".join(entry) + "\n").encode("utf-8")
        used += len(data)
        if used > FEED_BUDGET and count:
            break
        parts.append(data)
    parts.append(end)
    return b"".join(parts)


def rss(summary: Summary, language: str) -> bytes:
    """RSS 2.0 for the readers and bots that only take RSS: link to the page, the CAP file as guid and enclosure.
    Written as text, as the Atom feed is."""
    base, prefix = base_url(summary), language_prefix(summary, language)
    org, licence = summary.workspace.organisation, summary.settings.licence
    updates = feed_updates(summary)
    head = [XML_DECLARATION, f'<rss xmlns:atom="{ATOM_NS}" version="2.0">', "  <channel>",
            _element("    ", "title", f"{org.name.get(language)}: {_heading(language)}"),
            _element("    ", "link", f"{base}{prefix}index.html"),
            _element("    ", "description", count_text(language, len(summary.current))),
            _element("    ", "language", language.lower()),
            _element("    ", "copyright", f"{licence.name.get(language)}: {licence.url}"),
            _element("    ", "atom:link", rel="self", type="application/rss+xml", href=f"{base}{prefix}feed.rss")]
    if updates:
        head.append(_element("    ", "lastBuildDate", format_datetime(updates[0].sent)))
    head += (_element("    ", "generator", "broadcast"), _element("    ", "ttl", "5"))
    return _fill(head, (_rss_item(summary, update, language) for update in updates), ["  </channel>", "</rss>"])


def _rss_item(summary: Summary, update: Update, language: str) -> list[str]:
    base, prefix = base_url(summary), language_prefix(summary, language)
    lines = ["    <item>", _element("      ", "title", marked(update, language)),
             _element("      ", "link", f"{base}{prefix}{update.page}#{update.anchor}")]
    if update.alert.infos:
        info = update.alert.info(language)
        lines += (_element("      ", "description", info.description), _element("      ", "category", info.event))
    lines += (_element("      ", "guid", base + update.cap_path, isPermaLink="true"),
              _element("      ", "pubDate", format_datetime(update.sent)), "    </item>")
    return lines


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
    return utf8(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")


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
