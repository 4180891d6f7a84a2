"""How things are said in every layer: counts ('1 error', '2 errors', '1,204 templates') and long dates ('Monday
23 November 2026', 'Dydd Llun 23 Tachwedd 2026')."""

from __future__ import annotations

import json
from datetime import date
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

IRREGULAR = {"person": "people", "delivery": "deliveries", "entry": "entries", "copy": "copies", "reply": "replies"}
LONG_DATE = "EEEE d MMMM y"  # CLDR's pattern: the weekday, the day of the month, the month and the year, in full
DATE_NAMES = Path(__file__).parent / "data" / "date_names.json"


def counted(number: int, word: str, plural: str | None = None) -> str:
    """A count as people write it, with thousands separated."""
    return f"{number:,} {word if number == 1 else plural or IRREGULAR.get(word, word + 's')}"


@lru_cache(maxsize=4096)
def long_date(day: date, language: str) -> str:
    """A date as CLDR writes LONG_DATE in `language` (a BCP 47 tag such as en-GB or cy-GB).

    The weekday and month names of the UK's languages are in data/date_names.json, taken from babel's CLDR data (a
    test keeps them equal to babel's own format_date), so that a warning does not pay for loading babel and its
    locale data (about 70 ms, more than the rest of a render). Any other language asks babel.
    """
    locale = language.replace("-", "_")
    names = _date_names().get(locale)
    if names is None:
        from babel.dates import format_date

        return format_date(day, LONG_DATE, locale=locale)
    return f"{names['days'][day.weekday()]} {day.day} {names['months'][day.month - 1]} {day.year}"


@cache
def _date_names() -> dict[str, Any]:
    return dict(json.loads(DATE_NAMES.read_text(encoding="utf-8"))["locales"])
