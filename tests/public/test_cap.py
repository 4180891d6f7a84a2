"""CAP 1.2 documents: schema order and validity, the checks the XSD cannot make, and hostile text."""

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sitekit import SQUARE, hostile_alert, make_alert

from broadcast.alert import AlertArea
from broadcast.public.cap import (
    NS,
    XML_ILLEGAL_RE,
    CapError,
    alert_xml,
    cap_document,
    cap_filename,
    check_alert,
    schema,
    validate_xml,
    xml_text,
)

EXAMPLES = Path(__file__).parent.parent / "data" / "cap"
XSD_SHA256 = "b7798ef25868b068c97b268bda02d067c7d4ba9373adc5638bf37105804ee723"
ALERT_ORDER = ["identifier", "sender", "sent", "status", "msgType", "scope", "references", "incidents", "info", "info"]
INFO_ORDER = ["language", "category", "event", "responseType", "urgency", "severity", "certainty", "expires",
              "senderName", "headline", "description", "instruction", "web", "contact", "area"]
# What a duty officer might paste in: markup, a CDATA end, entities, quotes, right-to-left text, emoji.
HOSTILE = st.sampled_from(["<script>alert('x')</script>", "]]>", "&", "&amp;", "&#x3c;", '"', "'", "<!--",
                           "\u202eevil\u202c", "مدرسة الأمل", "בית ספר", "🌨️", "👩‍👩‍👧", "\u200f", "x" * 5000])
PLAIN = st.text(st.characters(whitelist_categories=("L", "M", "N", "P", "S", "Zs")), max_size=40)
TEXT = st.lists(st.one_of(HOSTILE, PLAIN), min_size=1, max_size=5).map("".join).filter(lambda t: t.strip())


def children(element):
    return [etree.QName(child).localname for child in element]


def test_the_shipped_schema_is_the_official_oasis_file():
    data = (Path(__file__).parent.parent.parent / "broadcast" / "data" / "CAP-v1.2.xsd").read_bytes()
    assert hashlib.sha256(data).hexdigest() == XSD_SHA256
    assert schema() is schema()  # loaded once


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_real_and_oasis_examples_validate_against_the_shipped_schema(path):
    validate_xml(path.read_bytes(), path.name)


def test_a_warning_from_a_template_is_valid_cap_in_schema_order(workspace):
    first = make_alert(workspace, "A-2026-0001", incident="snow-2026-11-23")
    update = make_alert(workspace, "A-2026-0002", minutes=30, incident="snow-2026-11-23", msg_type="Update",
                        references=("A-2026-0001",))
    known = {a.identifier: a for a in (first, update)}
    root = etree.fromstring(cap_document(update, known))
    assert root.tag == f"{{{NS}}}alert"
    assert children(root) == ALERT_ORDER
    assert children(root.find(f"{{{NS}}}info")) == INFO_ORDER
    text = {name: root.findtext(f"{{{NS}}}{name}") for name in ("sent", "msgType", "references", "incidents")}
    assert text == {"sent": "2026-11-23T07:12:00-00:00", "msgType": "Update", "incidents": "snow-2026-11-23",
                    "references": "alerts@testshire.example,A-2026-0001,2026-11-23T06:42:00-00:00"}
    languages = [info.findtext(f"{{{NS}}}language") for info in root.iter(f"{{{NS}}}info")]
    assert languages == ["en-GB", "cy-GB"]
    welsh = root.findall(f"{{{NS}}}info")[1]
    assert welsh.findtext(f"{{{NS}}}headline").startswith("Mae Hillside Primary School ar gau")
    assert welsh.find(f"{{{NS}}}area").findtext(f"{{{NS}}}areaDesc") == "Tref Testshire"


def test_summer_time_is_written_with_its_offset(workspace):
    alert = make_alert(workspace, "A-2026-0001", minutes=60 * 24 * 200)  # mid-June: BST
    sent = etree.fromstring(cap_document(alert, {})).findtext(f"{{{NS}}}sent")
    assert sent == "2027-06-11T07:42:00+01:00"


def test_an_alert_with_no_area_gets_the_organisation_as_its_area(workspace):
    alert = make_alert(workspace, "A-2026-0001", template="school-closure",
                       values={"school": "Ysgol Bro Lliw", "date": "2026-11-23", "reason": "snow",
                               "next_update": "10:00", "area": "town"})
    bare = replace(alert, infos=tuple(replace(i, areas=(AlertArea("Testshire Council"),)) for i in alert.infos))
    root = etree.fromstring(cap_document(bare, {}))
    assert [a.findtext(f"{{{NS}}}areaDesc") for a in root.iter(f"{{{NS}}}area")] == ["Testshire Council"] * 2


@pytest.mark.parametrize("polygon, why", [
    ("52,-3.4 52,-3.3 52.1,-3.3 52.1,-3.4", "not closed"),
    ("52,-3.4 52,-3.3 52,-3.4", "has 3 points"),
    ("52,-3.4 52,-3.4", "has 2 points"),
    ("52;-3.4 52,-3.3 52.1,-3.3 52;-3.4", "is not 'latitude,longitude'"),
    ("95,-3.4 52,-3.3 52.1,-3.3 95,-3.4", "outside WGS 84"),
])
def test_a_bad_polygon_is_refused_though_the_xsd_accepts_it(workspace, polygon, why):
    alert = make_alert(workspace, "A-2026-0001")
    area = replace(alert.infos[0].areas[0], polygons=(polygon,))
    broken = replace(alert, infos=(replace(alert.infos[0], areas=(area,)), *alert.infos[1:]))
    with pytest.raises(CapError, match=why) as caught:
        cap_document(broken, {})
    assert "A-2026-0001 is not valid CAP 1.2" in caught.value.message
    assert "not published" in caught.value.hint


@pytest.mark.parametrize("identifier", ["A-2026-0001,2", "A 2026", "A<1", "A&B", ""])
def test_an_identifier_that_would_break_references_is_refused(workspace, identifier):
    alert = replace(make_alert(workspace, "A-2026-0001"), identifier=identifier)
    with pytest.raises(CapError, match="contains a space, comma, '<' or '&'"):
        check_alert(alert, {})


def test_a_sender_with_a_space_is_refused(workspace):
    alert = replace(make_alert(workspace, "A-2026-0001"), sender="council alerts")
    with pytest.raises(CapError, match="sender 'council alerts'"):
        check_alert(alert, {})


def test_a_dangling_reference_is_refused(workspace):
    update = make_alert(workspace, "A-2026-0002", msg_type="Update", references=("A-2026-0001",))
    with pytest.raises(CapError, match="references 'A-2026-0001', which is not an earlier alert") as caught:
        cap_document(update, {})
    assert "typo" in caught.value.hint


def test_a_reference_triple_must_match_the_alert_it_names(workspace):
    first = make_alert(workspace, "A-2026-0001")
    wrong_time = "alerts@testshire.example,A-2026-0001,2026-11-23T09:00:00-00:00"
    update = make_alert(workspace, "A-2026-0002", msg_type="Update", references=(wrong_time,))
    with pytest.raises(CapError, match="does not match A-2026-0001 as sent"):
        check_alert(update, {"A-2026-0001": first})


def test_an_update_without_references_is_refused(workspace):
    with pytest.raises(CapError, match="a Update must reference"):
        check_alert(make_alert(workspace, "A-2026-0002", msg_type="Update"), {})


def test_only_a_cancel_may_have_no_info(workspace):
    first = make_alert(workspace, "A-2026-0001")
    known = {"A-2026-0001": first}
    with pytest.raises(CapError, match="needs at least one <info>"):
        check_alert(replace(first, identifier="A-2026-0002", infos=()), known)
    cancel = replace(first, identifier="A-2026-0002", msg_type="Cancel", infos=(), references=("A-2026-0001",))
    root = etree.fromstring(cap_document(cancel, known))
    assert children(root) == ["identifier", "sender", "sent", "status", "msgType", "scope", "references"]


def test_the_schema_check_names_the_file_line_and_problem(workspace):
    alert = replace(make_alert(workspace, "A-2026-0001"), sent="2026-11-23T06:42:00.123Z")
    with pytest.raises(CapError) as caught:
        cap_document(alert, {})
    message = caught.value.message
    assert message.startswith("cap/A-2026-0001.xml does not validate against the CAP 1.2 schema (line 5): "
                              "Element 'sent'")
    assert "is not accepted by the pattern" in message


def test_control_characters_xml_cannot_hold_are_dropped(workspace):
    alert = make_alert(workspace, "A-2026-0001")
    dirty = replace(alert, infos=(replace(alert.infos[0], headline="Snow\x00 \x0bnow\ufffe"), *alert.infos[1:]))
    root = etree.fromstring(cap_document(dirty, {}))
    assert root.find(f"{{{NS}}}info").findtext(f"{{{NS}}}headline") == "Snow now"


def test_no_printable_character_is_one_xml_forbids():
    """xml_text passes printable text through unchecked: that holds for every character this Python knows."""
    assert not [c for c in map(chr, range(0x110000)) if c.isprintable() and XML_ILLEGAL_RE.search(c)]
    assert xml_text("Snow\x00 \x0bnow\ufffe\ud800") == "Snow now" and xml_text("Eira ar ŵyl") == "Eira ar ŵyl"


def test_identifiers_become_safe_file_names():
    assert cap_filename("A-2026-0001") == "A-2026-0001.xml"
    odd = cap_filename("urn:oid:2.49.0.1.826/../x")
    assert "/" not in odd and ":" not in odd and odd.endswith(".xml") and odd != cap_filename("urn:oid:2.49.0.1.826")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT)
def test_hostile_text_comes_back_exactly_from_the_cap_file(text):
    document = cap_document(hostile_alert(text), {})
    root = etree.fromstring(document)
    info = root.find(f"{{{NS}}}info")
    for field in ("event", "senderName", "headline", "description", "instruction", "contact"):
        assert info.findtext(f"{{{NS}}}{field}") == text
    area = info.find(f"{{{NS}}}area")
    assert area.findtext(f"{{{NS}}}areaDesc") == text
    assert area.findtext(f"{{{NS}}}polygon") == SQUARE
    assert b"<script" not in document


def lxml_alert_xml(alert, references):
    """The document as lxml serialises the same tree (how alert_xml wrote it before it wrote text): the oracle."""
    def add(parent, tag, value):
        if value:
            etree.SubElement(parent, f"{{{NS}}}{tag}").text = xml_text(value)

    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    for tag, value in (("identifier", alert.identifier), ("sender", alert.sender), ("sent", alert.sent),
                       ("status", alert.status), ("msgType", alert.msg_type), ("scope", alert.scope),
                       ("note", alert.note), ("references", " ".join(references)), ("incidents", alert.incidents)):
        add(root, tag, value)
    for info in alert.infos:
        element = etree.SubElement(root, f"{{{NS}}}info")
        add(element, "language", info.language)
        for category in info.category:
            add(element, "category", category)
        add(element, "event", info.event)
        for response in info.response_type:
            add(element, "responseType", response)
        for tag, value in (("urgency", info.urgency), ("severity", info.severity), ("certainty", info.certainty),
                           ("expires", info.expires), ("senderName", info.sender_name), ("headline", info.headline),
                           ("description", info.description), ("instruction", info.instruction), ("web", info.web),
                           ("contact", info.contact)):
            add(element, tag, value)
        for area in info.areas:
            area_element = etree.SubElement(element, f"{{{NS}}}area")
            add(area_element, "areaDesc", area.desc)
            for polygon in area.polygons:
                add(area_element, "polygon", polygon)
            for name, value in area.geocodes:
                geocode = etree.SubElement(area_element, f"{{{NS}}}geocode")
                add(geocode, "valueName", name)
                add(geocode, "value", value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(TEXT, ANY_TEXT, st.sampled_from(["\r", "\r\n", "a\rb", "\x85", "\x7f\x80\x9f", "\t\n", " ",
                                                         "\x00", "\ufffe", "\ud800", "]]>&<>\"'"])),
       other=ANY_TEXT, empty_area=st.booleans(), note=st.one_of(st.none(), ANY_TEXT))
def test_the_document_is_byte_for_byte_what_lxml_writes_for_the_same_tree(text, other, empty_area, note):
    alert = hostile_alert(text)
    areas = (AlertArea(other, (), ((other, ""), ("", ""))), AlertArea("")) if empty_area else alert.infos[0].areas
    alert = replace(alert, note=note, references=("a,b,c",),
                    infos=(replace(alert.infos[0], areas=areas, category=(other, "Safety")), *alert.infos[1:]))
    for references in ([], ["alerts@testshire.example,A-2026-0000,2026-11-23T06:00:00-00:00", other]):
        assert alert_xml(alert, references) == lxml_alert_xml(alert, references)


def test_a_template_warning_and_hostile_text_are_written_as_lxml_writes_them(workspace):
    alerts = [make_alert(workspace, "A-2026-0001"), hostile_alert("Ysgol <Bro> & \"Lliw\" \r\n ŵ 🌨️")]
    for alert in alerts:
        assert alert_xml(alert, []) == lxml_alert_xml(alert, [])
