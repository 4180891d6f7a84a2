"""The public page's own words in each language, and how it writes times (explicit, with the zone)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from broadcast.words import long_date
from broadcast.workspace import primary_tag


def utf8(text: str) -> bytes:
    """Text as the site's UTF-8 bytes. Half a character (a lone surrogate, which a log written before the command
    line and area files refused them may hold) is dropped, as the CAP and feed writers drop it: the only
    characters UTF-8 cannot encode."""
    return text.encode("utf-8", "ignore")


# Welsh drafted by the development team: a Welsh translator should check it, as for the templates.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "language_name": "English",
        "languages": "Language",
        "skip": "Skip to main content",
        "heading": "Emergency alerts",
        "count_0": "No current alerts",
        "count_1": "1 current alert",
        "count_n": "{n} current alerts",
        "published": "This page was last published at {time}.",
        "schools": "Schools",
        "schools_note": "If a school is not listed, it is open unless the school tells you otherwise.",
        "updated": "updated",
        "Updated": "Updated",
        "current_heading": "Current alerts",
        "none_current": "There are no current alerts.",
        "ended_heading": "Ended recently",
        "status_current": "Current",
        "status_all-clear": "All clear",
        "status_cancelled": "Cancelled",
        "status_ended": "Ended",
        "kind_alert": "Alert",
        "kind_update": "Update",
        "kind_all-clear": "All clear",
        "kind_cancel": "Cancelled",
        "kind_error": "Correction",
        "school_closed": "closed",
        "school_open": "open",
        "school_late-start": "late start",
        "marker_Exercise": "EXERCISE",
        "marker_Test": "TEST",
        "exercise_note": "This is an exercise, not a real emergency. You do not need to do anything.",
        "test_note": "This is a test. You do not need to do anything.",
        "what_to_do": "What to do",
        "area": "Area",
        "sent": "Sent",
        "expires": "Expires",
        "cap_file": "CAP alert file (for other systems)",
        "all_alerts": "All alerts",
        "about": "About this page",
        "published_by": "This page is published by {org}.",
        "checked": "We check it at least every {minutes} minutes while an alert is current.",
        "contact": "To talk to us, call {phone}.",
        "licence": "You may republish this information under the {licence}.",
        "feeds": "The same alerts as a feed: {atom}, {rss}, {json}.",
        "log": "Our record of these messages: entry {count}, fingerprint {head}.",
    },
    "cy": {
        "language_name": "Cymraeg",
        "languages": "Iaith",
        "skip": "Neidio i'r prif gynnwys",
        "heading": "Rhybuddion brys",
        "count_0": "Dim rhybuddion cyfredol",
        "count_1": "1 rhybudd cyfredol",
        "count_n": "Rhybuddion cyfredol: {n}",
        "published": "Cyhoeddwyd y dudalen hon ddiwethaf am {time}.",
        "schools": "Ysgolion",
        "schools_note": "Os nad yw ysgol ar y rhestr, mae ar agor oni bai bod yr ysgol yn dweud yn wahanol.",
        "updated": "diweddarwyd",
        "Updated": "Diweddarwyd",
        "current_heading": "Rhybuddion cyfredol",
        "none_current": "Does dim rhybuddion cyfredol.",
        "ended_heading": "Wedi dod i ben yn ddiweddar",
        "status_current": "Cyfredol",
        "status_all-clear": "Popeth yn glir",
        "status_cancelled": "Wedi'i ganslo",
        "status_ended": "Wedi dod i ben",
        "kind_alert": "Rhybudd",
        "kind_update": "Diweddariad",
        "kind_all-clear": "Popeth yn glir",
        "kind_cancel": "Wedi'i ganslo",
        "kind_error": "Cywiriad",
        "school_closed": "ar gau",
        "school_open": "ar agor",
        "school_late-start": "yn agor yn hwyr",
        "marker_Exercise": "YMARFER",
        "marker_Test": "PRAWF",
        "exercise_note": "Ymarfer yw hwn, nid argyfwng go iawn. Does dim angen i chi wneud dim.",
        "test_note": "Prawf yw hwn. Does dim angen i chi wneud dim.",
        "what_to_do": "Beth i'w wneud",
        "area": "Ardal",
        "sent": "Anfonwyd",
        "expires": "Yn dod i ben",
        "cap_file": "Ffeil rhybudd CAP (ar gyfer systemau eraill)",
        "all_alerts": "Pob rhybudd",
        "about": "Am y dudalen hon",
        "published_by": "{org} sy'n cyhoeddi'r dudalen hon.",
        "checked": "Rydyn ni'n ei gwirio o leiaf bob {minutes} munud tra bo rhybudd yn gyfredol.",
        "contact": "I siarad â ni, ffoniwch {phone}.",
        "licence": "Cewch ailgyhoeddi'r wybodaeth hon o dan delerau {licence}.",
        "feeds": "Yr un rhybuddion fel ffrwd: {atom}, {rss}, {json}.",
        "log": "Ein cofnod o'r negeseuon hyn: cofnod {count}, ôl bys {head}.",
    },
}


def words(language: str) -> dict[str, str]:
    """The page's words in a language; English where there is no translation."""
    return WORDS.get(primary_tag(language), WORDS["en"])


def count_text(language: str, count: int) -> str:
    said = words(language)
    key = "count_0" if count == 0 else "count_1" if count == 1 else "count_n"
    return said[key].format(n=count)


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def clock(moment: datetime, zone: str) -> str:
    """'06:42 GMT': 24-hour, with the zone, as the snow-day list shows it."""
    return _clock(moment.astimezone(UTC), zone)


def long_time(moment: datetime, zone: str, language: str) -> str:
    """'06:42 GMT, Monday 23 November 2026' in the page's language."""
    return _long_time(moment.astimezone(UTC), zone, language)


def machine_time(moment: datetime, zone: str) -> str:
    """The <time datetime> value: ISO 8601 with the offset, no fractions."""
    return _machine_time(moment.astimezone(UTC), zone)


def utc_time(moment: datetime) -> str:
    """The shortest <time datetime> value of an instant, for the index's byte budget: UTC, seconds only when there
    are some ('2026-11-23T06:42Z'). The text beside it gives the local time and its zone."""
    return _utc_time(moment.astimezone(UTC))


# Each remembered by the instant in UTC (a build writes each update's times in several places): two local times an
# hour apart in the hour a clock goes back compare equal (01:30 BST and 01:30 GMT), two UTC ones never do.
@lru_cache(maxsize=4096)
def _clock(instant: datetime, zone: str) -> str:
    here = local(instant, zone)
    return f"{here:%H:%M} {here.tzname()}"


@lru_cache(maxsize=4096)
def _long_time(instant: datetime, zone: str, language: str) -> str:
    return f"{_clock(instant, zone)}, {long_date(local(instant, zone).date(), language)}"


@lru_cache(maxsize=4096)
def _machine_time(instant: datetime, zone: str) -> str:
    return local(instant, zone).replace(microsecond=0).isoformat()


@lru_cache(maxsize=4096)
def _utc_time(instant: datetime) -> str:
    here = instant.replace(microsecond=0)
    return here.strftime("%Y-%m-%dT%H:%M:%SZ" if here.second else "%Y-%m-%dT%H:%MZ")
