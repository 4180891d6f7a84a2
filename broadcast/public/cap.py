"""CAP 1.2: write an Alert as XML, and check it against the official schema and the rules the schema cannot make."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from broadcast.errors import BroadcastError

if TYPE_CHECKING:
    from lxml.etree import XMLSchema

    from broadcast.alert import Alert, AlertArea

NS = "urn:oasis:names:tc:emergency:cap:1.2"
CONTENT_TYPE = "application/cap+xml"
NEEDS_REFERENCES = ("Update", "Cancel", "Ack", "Error")
BAD_ID_RE = re.compile(r"[\s,<&]")
SAFE_STEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
# Characters XML 1.0 cannot carry at all; they are dropped rather than stop a warning going out.
XML_ILLEGAL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
POINT_RE = re.compile(r"^(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)$")
XSD = Path(__file__).parent.parent / "data" / "CAP-v1.2.xsd"  # as words.py finds its data: importlib.resources
# would cost a fresh process a millisecond or two to import, for the same file
HINT = "the alert is not published; fix its source (template, area file or --set values) and send a corrected alert"


class CapError(BroadcastError):
    """A CAP document would be invalid: nothing is published until it is fixed."""


def xml_text(text: str) -> str:
    """Text as XML 1.0 can hold it: characters it forbids are removed. Printable text (most of it) has none: every
    character XML forbids is a control character, a surrogate or a noncharacter, none of which is printable."""
    return text if text.isprintable() else XML_ILLEGAL_RE.sub("", text)


@lru_cache(maxsize=4096)
def safe_stem(name: str) -> str:
    """A file-name-safe form of an identifier or slug; a hash keeps two unsafe names apart. Remembered: a site
    build asks for each alert's several times (its CAP file, its anchor, its links from pages and feeds)."""
    if SAFE_STEM_RE.match(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "x"
    return f"{cleaned}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def cap_filename(identifier: str) -> str:
    """The file (and URL path) of an alert's CAP document under cap/."""
    return safe_stem(identifier) + ".xml"


def resolve_references(alert: Alert, known: Mapping[str, Alert]) -> list[str]:
    """The alert's references as CAP 'sender,identifier,sent' triples, each checked against the known alerts."""
    triples = []
    for reference in alert.references:
        parts = reference.strip().split(",")
        if len(parts) not in (1, 3):
            raise CapError(f"alert {alert.identifier}: reference {reference!r} is not 'sender,identifier,sent'",
                           hint=HINT)
        identifier = parts[0] if len(parts) == 1 else parts[1]
        earlier = known.get(identifier)
        if earlier is None or earlier.identifier == alert.identifier:
            raise CapError(f"alert {alert.identifier} references {identifier!r}, which is not an earlier alert "
                           f"from this workspace", hint="check the identifier it updates or cancels "
                           "(a typo, or an alert from another workspace); " + HINT)
        if len(parts) == 3 and (parts[0] != earlier.sender or parts[2] != earlier.sent):
            raise CapError(f"alert {alert.identifier}: reference {reference!r} does not match {identifier} "
                           f"as sent ({earlier.sender},{earlier.identifier},{earlier.sent})", hint=HINT)
        triples.append(f"{earlier.sender},{earlier.identifier},{earlier.sent}")
    return triples


def check_alert(alert: Alert, known: Mapping[str, Alert]) -> list[str]:
    """The checks the XSD cannot make; returns the resolved references or raises CapError naming every problem."""
    problems = []
    for name, value in (("identifier", alert.identifier), ("sender", alert.sender)):
        if not value or BAD_ID_RE.search(value):
            problems.append(f"{name} {value!r} is empty or contains a space, comma, '<' or '&'")
    if alert.msg_type in NEEDS_REFERENCES and not alert.references:
        problems.append(f"a {alert.msg_type} must reference the alert(s) it applies to")
    if not alert.infos and alert.msg_type != "Cancel":
        problems.append(f"a {alert.msg_type} needs at least one <info> block (only a Cancel may have none)")
    for info in alert.infos:
        if not info.areas:
            problems.append(f"info {info.language} has no <area>")
        for area in info.areas:
            found = filter(None, map(polygon_problem, area.polygons))
            problems.extend(f"info {info.language}, area {area.desc!r}: {problem}" for problem in found)
    if problems:
        raise CapError(f"alert {alert.identifier} is not valid CAP 1.2: " + "; ".join(problems), hint=HINT)
    return resolve_references(alert, known)


@lru_cache(maxsize=1024)
def polygon_problem(polygon: str) -> str | None:
    """Why a CAP polygon ('lat,lon lat,lon …') would break consumers, or None if it is good. Remembered: a site
    build checks the same few area polygons in every alert."""
    pairs = polygon.split()
    points = []
    for pair in pairs:
        match = POINT_RE.match(pair)
        if not match:
            return f"polygon point {pair!r} is not 'latitude,longitude'"
        lat, lon = float(match[1]), float(match[2])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return f"polygon point {pair!r} is outside WGS 84 latitude/longitude"
        points.append((lat, lon))
    if len(points) < 4:
        return f"polygon has {len(points)} points; CAP needs at least 4 (the first repeated as the last)"
    if points[0] != points[-1]:
        return "polygon is not closed: its first and last points differ"
    return None


def alert_xml(alert: Alert, references: list[str]) -> bytes:
    """Serialise the Alert as a CAP 1.2 document, elements in the schema's order.

    Written as text, in the very bytes lxml's tostring(pretty_print=True) gives for the same tree (a test compares
    the two over every field and every kind of character): building that tree took longer than parsing and
    validating the document, and was a third of a full site build. cap_document still parses and validates every
    document with lxml."""
    out = ["<?xml version='1.0' encoding='UTF-8'?>", f'<alert xmlns="{NS}">']
    _texts(out, "  ", (("identifier", alert.identifier), ("sender", alert.sender), ("sent", alert.sent),
                       ("status", alert.status), ("msgType", alert.msg_type), ("scope", alert.scope),
                       ("note", alert.note), ("references", " ".join(references)), ("incidents", alert.incidents)))
    for info in alert.infos:
        inner = _texts([], "    ", (("language", info.language),))
        inner += _codes(info.category, info.event, info.response_type, info.urgency, info.severity, info.certainty)
        _texts(inner, "    ", (("expires", info.expires), ("senderName", info.sender_name),
                                ("headline", info.headline), ("description", info.description),
                                ("instruction", info.instruction), ("web", info.web), ("contact", info.contact)))
        inner += map(_area, info.areas)
        _wrap(out, "  ", "info", inner)
    out.append("</alert>\n")
    return "\n".join(out).encode("utf-8")


@lru_cache(maxsize=256)
def _codes(category: tuple[str, ...], event: str, response_type: tuple[str, ...], urgency: str, severity: str,
           certainty: str) -> tuple[str, ...]:
    """An info's codes, from <category> to <certainty>: remembered, as most alerts of a site share theirs."""
    return tuple(_texts([], "    ", (*(("category", c) for c in category), ("event", event),
                                    *(("responseType", r) for r in response_type), ("urgency", urgency),
                                    ("severity", severity), ("certainty", certainty))))


@lru_cache(maxsize=256)
def _area(area: AlertArea) -> str:
    """An <area> element, indented inside its <info>: remembered, as a site's alerts share a few areas."""
    parts: list[str] = []
    _texts(parts, "      ", (("areaDesc", area.desc), *(("polygon", p) for p in area.polygons)))
    for name, value in area.geocodes:
        _wrap(parts, "      ", "geocode", _texts([], "        ", (("valueName", name), ("value", value))))
    out: list[str] = []
    _wrap(out, "    ", "area", parts)
    return "\n".join(out)


def _texts(out: list[str], indent: str, fields: Iterable[tuple[str, str | None]]) -> list[str]:
    """An element for each field with a value (an empty one is left out, as CAP wants)."""
    for tag, value in fields:
        if value:
            out.append(f"{indent}<{tag}>{escape_text(value)}</{tag}>")
    return out


@lru_cache(maxsize=2048)
def escape_text(value: str) -> str:
    """An element's text as XML 1.0 can hold it, escaped as libxml2 escapes it. Remembered: most of a document's
    values (sender, area, polygon, event, codes) are in every other document of a site."""
    return xml_text(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def escape_attribute(value: str) -> str:
    """An attribute's value (in double quotes), escaped as libxml2 escapes it: as text, and the quote, line feed and
    tab too, which an attribute would otherwise lose or end at."""
    return escape_text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def _wrap(out: list[str], indent: str, tag: str, children: list[str]) -> None:
    out.extend((f"{indent}<{tag}>", *children, f"{indent}</{tag}>") if children else (f"{indent}<{tag}/>",))


@cache
def schema() -> XMLSchema:
    """The official OASIS CAP 1.2 schema, shipped in the package."""
    from lxml import etree

    data = XSD.read_bytes()
    return etree.XMLSchema(etree.fromstring(data, etree.XMLParser(no_network=True)))


_PARSERS = threading.local()


def validate_xml(document: bytes, name: str) -> None:
    """Check a CAP document against the XSD; raise CapError with the schema's own words and line."""
    from lxml import etree

    parser = getattr(_PARSERS, "parser", None)
    if parser is None:  # one per thread (an lxml parser is not thread-safe), made once: a build checks hundreds
        # Blank text between elements is dropped as it is read (a fifth less parsing): CAP's elements hold either
        # elements or text, never both, so the schema sees the same document; an element's own text is kept.
        parser = _PARSERS.parser = etree.XMLParser(no_network=True, resolve_entities=False, remove_blank_text=True)
    try:
        tree = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as exc:
        raise CapError(f"{name} is not well-formed XML: {exc}", hint=HINT) from None
    checker = schema()
    if not checker.validate(tree):
        error = checker.error_log.last_error
        said = error.message.replace(f"{{{NS}}}", "")
        raise CapError(f"{name} does not validate against the CAP 1.2 schema (line {error.line}): {said}", hint=HINT)


def cap_document(alert: Alert, known: Mapping[str, Alert]) -> bytes:
    """The checked, schema-valid CAP 1.2 document of an alert."""
    document = alert_xml(alert, check_alert(alert, known))
    validate_xml(document, f"cap/{cap_filename(alert.identifier)}")
    return document
