"""Typed template variables: parse what the duty officer typed, and show it in each language."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcast.errors import ConfigError, VariableError
from broadcast.words import long_date
from broadcast.workspace import Localized, primary_tag

if TYPE_CHECKING:
    from broadcast.workspace import Area

TYPES = ("text", "choice", "date", "time", "url", "area", "list", "integer")
OPTION_KEYS = {
    "text": {"max_length", "pattern"},
    "choice": {"choices"},
    "date": set(),
    "time": set(),
    "url": set(),
    "area": set(),
    "list": {"max_items"},
    "integer": {"min", "max"},
}
COMMON_KEYS = {"type", "label", "example", "help"}
# Private-use characters mark optional sentences inside rendered text; no value may carry them. C1 controls and the
# Unicode line and paragraph separators are refused too: U+0085, U+2028 and U+2029 break a line wherever shown.
OPTIONAL_START, OPTIONAL_END = "\ue000", "\ue001"
# Half a character: how Python hands over bytes of a command line that are not UTF-8 (U+DC80-U+DCFF), or what a
# \ud800-style escape leaves. No page, feed or channel can carry it: a traceback at the first encode, before.
HALF_RE = re.compile("[\ud800-\udfff]")
NOT_UTF8 = "it holds bytes that are not UTF-8 text"
NOT_UTF8_HINT = "set the terminal to UTF-8 (e.g. LANG=en_GB.UTF-8) and type the value again"
FORBIDDEN_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ue000\ue001]")
# Invisible characters that reorder or hide text in a plain-text post: bidi embeddings, overrides and isolates, the
# zero-width space and the byte-order mark. The joiners and direction marks (U+200C-200F) are letters' business in
# scripts that need them (Arabic, Persian, Hebrew, Urdu, the Indic scripts), so only workspaces with such a language
# accept them.
INVISIBLE_RE = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200b\ufeff]")
JOINERS_RE = re.compile(r"[\u200c-\u200f]")
NEEDS_JOINERS = {"ar", "fa", "he", "ur", "ps", "yi", "hi", "bn", "pa", "gu", "mr", "ne", "ta", "te", "kn", "ml",
                 "si", "sd", "ku", "dv"}
TIME_RE = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?$", re.IGNORECASE)
URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/\S*)?$")


@dataclass(frozen=True)
class Context:
    """What parsing needs beyond the typed value: the areas and today's date in the workspace's zone."""

    today: date  # in the workspace's zone, never the machine's: no default to fall back on
    areas: Mapping[str, Area] = field(default_factory=dict)
    languages: tuple[str, ...] = ()  # the workspace's: whether zero-width joiners and direction marks belong


def check_typed(text: str, option: str, languages: tuple[str, ...] | list[str]) -> None:
    """Refuse typed text (--text, --reason) that would carry a control or invisible character to a channel."""
    from broadcast.errors import VariableError

    shown = text if len(text) <= 60 else text[:57] + "..."
    if HALF_RE.search(text):
        raise VariableError(f"{option}: {NOT_UTF8} (got {shown!r})", hint=NOT_UTF8_HINT)
    if FORBIDDEN_RE.search(text):
        raise VariableError(f"{option}: it contains a control character (got {shown!r})",
                            hint="retype the text rather than pasting it")
    hidden = invisible(text, languages)
    if hidden:
        raise VariableError(f"{option}: it contains an invisible character that can reorder or hide text ({hidden}; "
                            f"got {shown!r})", hint="retype the text rather than pasting it")


def invisible(text: str, languages: tuple[str, ...] | list[str] = ()) -> str | None:
    """The first invisible reordering or hiding character in `text`, named (e.g. 'U+202E RIGHT-TO-LEFT OVERRIDE'),
    or None. Joiners and direction marks pass where a workspace language's script needs them."""
    import unicodedata

    found = INVISIBLE_RE.search(text)
    if found is None and not {primary_tag(tag) for tag in languages} & NEEDS_JOINERS:
        found = JOINERS_RE.search(text)
    if found is None:
        return None
    char = found.group()
    return f"U+{ord(char):04X} {unicodedata.name(char, 'invisible character')}"


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    label: str
    example: str
    options: dict[str, Any]

    @classmethod
    def from_toml(cls, path: Path, name: str, raw: Any, languages: list[str]) -> Variable:
        key = f"variables.{name}"
        if not isinstance(raw, dict):
            raise ConfigError(path, key, "expected a table with type, label and example")
        vtype = raw.get("type")
        if vtype not in TYPES:
            from difflib import get_close_matches  # only for a mistake

            near = get_close_matches(str(vtype), TYPES, n=1)
            raise ConfigError(path, f"{key}.type", f"unknown type {vtype!r}" if vtype else "missing",
                              f"did you mean '{near[0]}'?" if near else f"one of: {', '.join(TYPES)}")
        allowed = COMMON_KEYS | OPTION_KEYS[vtype]
        for option in raw:
            if option not in allowed:
                raise ConfigError(path, f"{key}.{option}", f"not an option of a {vtype} variable",
                                  f"{vtype} takes: {', '.join(sorted(allowed))}")
        for required in ("label", "example"):
            if not isinstance(raw.get(required), str) or not raw[required].strip():
                raise ConfigError(path, f"{key}.{required}", "missing",
                                  f"every variable needs a {required} (text) so errors can show one")
        options = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
        if vtype == "choice":
            options["choices"] = _parse_choices(path, f"{key}.choices", options.get("choices"), languages)
        if vtype == "text" and "pattern" in options:
            try:
                re.compile(options["pattern"])
            except (re.error, TypeError) as exc:
                raise ConfigError(path, f"{key}.pattern", f"not a regular expression: {exc}") from None
        return cls(name, vtype, raw["label"].strip(), raw["example"], options)

    def describe(self) -> str:
        """What a valid value looks like, for error messages and `templates show`."""
        if self.type == "choice":
            return "one of: " + ", ".join(self.options["choices"])
        return {
            "text": f"text on one line, at most {self.options.get('max_length', 200)} characters",
            "date": "a date like 2026-11-23, or today, or tomorrow",
            "time": "a time like 06:30, 6:30am or 18:00",
            "url": "a web address starting https://",
            "area": "the id of an area in areas/",
            "list": "items separated by ';'",
            "integer": "a whole number",
        }[self.type]

    def parse(self, raw: str, context: Context) -> Any:
        """Turn the typed text into a value, or raise VariableError saying what was expected."""
        text = raw.strip()
        if HALF_RE.search(text):
            raise VariableError(f"--set {self.name}: {NOT_UTF8} (got {raw!r})", hint=NOT_UTF8_HINT)
        if FORBIDDEN_RE.search(text) or (self.type != "list" and "\n" in text):
            self._refuse(raw, "it contains a line break or a control character")
        hidden = invisible(text, context.languages)
        if hidden:
            self._refuse(raw, f"it contains an invisible character that can reorder or hide text ({hidden}); "
                         "retype the value rather than pasting it")
        if not text:
            self._refuse(raw, "it is empty")
        return PARSERS[self.type](self, text, context)

    def _refuse(self, raw: str, why: str) -> None:
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        raise VariableError(
            f"--set {self.name}: {why}; expected {self.describe()} (got {shown!r})",
            hint=f"example: --set {self.name}={quote(self.example)}",
        )


def quote(value: str) -> str:
    return f"'{value}'" if re.search(r"[\s;&|<>()$`\"']", value) else value


def _parse_choices(path: Path, key: str, raw: Any, languages: list[str]) -> dict[str, Localized]:
    if isinstance(raw, list) and raw and all(isinstance(c, str) for c in raw):
        return {c: Localized({"*": c}) for c in raw}
    if isinstance(raw, dict) and raw:
        return {name: Localized.parse(path, f"{key}.{name}", words, languages) for name, words in raw.items()}
    raise ConfigError(path, key, "expected a list of choices or a table of choice = { en = \"…\", cy = \"…\" }")


def _text(var: Variable, text: str, context: Context) -> str:
    limit = int(var.options.get("max_length", 200))
    if len(text) > limit:
        var._refuse(text, f"it is {len(text)} characters long")
    pattern = var.options.get("pattern")
    if pattern and not re.fullmatch(pattern, text):
        var._refuse(text, f"it does not match the pattern {pattern}")
    return text


def _choice(var: Variable, text: str, context: Context) -> Localized:
    choices: dict[str, Localized] = var.options["choices"]
    if text not in choices:
        from difflib import get_close_matches  # only for a mistake

        near = get_close_matches(text, choices, n=1)
        var._refuse(text, f"it is not a choice{f' (did you mean {near[0]!r}?)' if near else ''}")
    return choices[text]


def _date(var: Variable, text: str, context: Context) -> date:
    lowered = text.lower()
    if lowered == "today":
        return context.today
    if lowered == "tomorrow":
        return context.today + timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        var._refuse(text, "it is not a date")
        raise


def _time(var: Variable, text: str, context: Context) -> time:
    match = TIME_RE.match(text)
    if not match:
        var._refuse(text, "it is not a time")
        raise AssertionError
    hour, minute, half = int(match[1]), int(match[2] or 0), (match[3] or "").lower()
    if half:
        if not 1 <= hour <= 12:
            var._refuse(text, "the hour is not 1 to 12 with am/pm")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        var._refuse(text, "the hour or minute is out of range")
    return time(hour, minute)


def _url(var: Variable, text: str, context: Context) -> str:
    if not URL_RE.match(text):
        var._refuse(text, "it is not an http(s) address")
    return text


def _area(var: Variable, text: str, context: Context) -> Area:
    if text not in context.areas:
        from difflib import get_close_matches  # only for a mistake

        near = get_close_matches(text, context.areas, n=1)
        known = ", ".join(context.areas) or "none: add GeoJSON files to areas/"
        var._refuse(text, f"no such area{f' (did you mean {near[0]!r}?)' if near else ''}; areas: {known}")
    return context.areas[text]


def _list(var: Variable, text: str, context: Context) -> list[str]:
    items = [item.strip() for item in re.split(r"[;\n]", text) if item.strip()]
    limit = int(var.options.get("max_items", 50))
    if len(items) > limit:
        var._refuse(text, f"it has {len(items)} items; at most {limit}")
    for item in items:
        if len(item) > 200:
            var._refuse(item, "an item is over 200 characters")
    return items


def _integer(var: Variable, text: str, context: Context) -> int:
    if not re.fullmatch(r"[+-]?\d{1,12}", text.replace(",", "")):
        var._refuse(text, "it is not a whole number")
    number = int(text.replace(",", ""))
    low, high = var.options.get("min"), var.options.get("max")
    if (low is not None and number < low) or (high is not None and number > high):
        var._refuse(text, f"it is outside {low} to {high}")
    return number


PARSERS: dict[str, Callable[[Variable, str, Context], Any]] = {
    "text": _text, "choice": _choice, "date": _date, "time": _time,
    "url": _url, "area": _area, "list": _list, "integer": _integer,
}


def display(value: Any, language: str) -> Any:
    """The value as the text of a section in `language` shows it."""
    from broadcast.workspace import Area

    if isinstance(value, Localized):
        return value.get(language)
    if isinstance(value, Area):
        return value.name.get(language)
    if isinstance(value, datetime):
        raise TypeError("variables hold dates or times, not datetimes")
    if isinstance(value, date):
        return long_date(value, language)
    if isinstance(value, time):
        return format_time(value, language)
    if isinstance(value, int):
        return f"{value:,}"
    return value


def format_time(moment: time, language: str) -> str:
    """GOV.UK style in English (6:30am, 9am, midday); 24-hour elsewhere (06:30)."""
    if primary_tag(language) != "en":
        return moment.strftime("%H:%M")
    if moment.hour == 12 and moment.minute == 0:
        return "midday"
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    return f"{hour}{f':{moment.minute:02d}' if moment.minute else ''}{suffix}"


def and_list(items: list[str], language: str) -> str:
    """Join items as a sentence does: 'A, B and C' (en), 'A, B a C' (cy)."""
    items = [str(i) for i in items]
    if len(items) < 2:
        return "".join(items)
    tag = primary_tag(language)
    conjunction = {"cy": "a", "fr": "et", "de": "und", "ga": "agus", "gd": "agus"}.get(tag, "and")
    if tag == "cy" and items[-1][:1].lower() in "aeiouwyâêîôûŵŷ":
        conjunction = "ac"  # Welsh 'a' becomes 'ac' before a vowel
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
