"""How counts and long dates are said; the long dates' table against babel, which it stands in for."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta

import pytest
from babel.dates import format_date, get_day_names, get_month_names

from broadcast.words import DATE_NAMES, LONG_DATE, counted, long_date

LOCALES = ("en", "en_GB", "cy", "cy_GB", "ga", "gd")  # the UK's languages (and Irish), as babel names them


def babel_names(locale: str) -> dict[str, list[str]]:
    """What data/date_names.json holds for `locale`, from babel's CLDR data: weekdays from Monday, months from
    January, in the form a date uses (CLDR's 'format' context)."""
    days, months = get_day_names("wide", "format", locale), get_month_names("wide", "format", locale)
    return {"days": [days[i] for i in range(7)], "months": [months[i] for i in range(1, 13)]}


def write_table() -> None:
    """Regenerate data/date_names.json from the installed babel: python tests/test_words.py"""
    lines = [f"  {json.dumps(locale)}: {json.dumps(babel_names(locale), ensure_ascii=False)}" for locale in LOCALES]
    DATE_NAMES.write_text('{"source": "babel\'s CLDR data, written by python tests/test_words.py",\n "locales": {\n'
                          + ",\n".join(lines) + "\n }\n}\n", encoding="utf-8")


def test_counts_are_said_with_their_plural():
    assert counted(1, "error") == "1 error"
    assert counted(1204, "template") == "1,204 templates"
    assert counted(2, "person") == "2 people"


def test_the_table_holds_what_babel_says_for_each_locale():
    table = json.loads(DATE_NAMES.read_text(encoding="utf-8"))["locales"]
    assert sorted(table) == sorted(LOCALES)
    for locale in LOCALES:
        assert table[locale] == babel_names(locale), f"{locale}: run python tests/test_words.py to regenerate"


@pytest.mark.parametrize("language", ["en-GB", "cy-GB", "en", "cy", "ga", "gd", "fr-FR", "de"])
def test_every_day_of_a_leap_year_reads_as_babel_writes_it(language):
    # fr-FR and de are not in the table: they go to babel itself, and must read the same way.
    locale = language.replace("-", "_")
    first = date(2028, 1, 1)
    for offset in range(366):
        day = first + timedelta(days=offset)
        assert long_date(day, language) == format_date(day, LONG_DATE, locale=locale)


def test_welsh_and_english_long_dates():
    assert long_date(date(2026, 11, 23), "en-GB") == "Monday 23 November 2026"
    assert long_date(date(2026, 11, 23), "cy-GB") == "Dydd Llun 23 Tachwedd 2026"


def test_a_tabled_language_does_not_load_babel():
    code = ("import sys; from datetime import date; from broadcast.words import long_date; "
            "print(long_date(date(2026, 11, 23), 'cy-GB')); "
            "print(sorted(name for name in sys.modules if name.startswith('babel')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["Dydd Llun 23 Tachwedd 2026", "[]"]


if __name__ == "__main__":
    write_table()
