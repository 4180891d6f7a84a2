"""Recipient lists: CSV files in lists/, streamed row by row, checked, targeted, and never kept in clear.

A list has a header row with `phone` and/or `email`, and optionally `name`, `groups`, `areas` and `language`.
Phone numbers become E.164 (phonenumbers, default region GB); addresses are checked for syntax only (no DNS).
What the log keeps of a person is a keyed HMAC-SHA256 of their number or address (the key lives outside the
database) and a masked form such as `+44 7*** ***123` or `a***@example.org`.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import itertools
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from broadcast.errors import ConfigError

if TYPE_CHECKING:
    from broadcast.workspace import Workspace

COLUMNS = ("phone", "email", "name", "groups", "areas", "language")
OPT_OUT = "opt-out"
KEY_ENV = "BROADCAST_RECIPIENT_KEY"
KEY_FILE = Path(".broadcast") / "recipient.key"
MEDIA = ("sms", "email")
SEEN_BATCH = 256  # contacts checked against those already met in one look-up
PROBLEMS_KEPT = 200  # the report keeps the first problems; the counts cover them all
ALIASES = {"mobile": "phone", "mobile number": "phone", "telephone": "phone", "tel": "phone", "sms": "phone",
           "e-mail": "email", "email address": "email", "mail": "email"}
LANGUAGE_NAMES = {"english": "en", "saesneg": "en", "welsh": "cy", "cymraeg": "cy"}
TAG_SPLIT = re.compile(r"[;,\s]+")
# A UK mobile written the usual ways (07..., +447..., 00447..., with spaces or dashes): what most rows of a list
# are, and what phonenumbers would make of them, without its parse (about 40 µs a row when a list is sent).
UK_MOBILE = re.compile(r"(?:\+44|0044|0)(7\d{9})")
SEPARATORS = str.maketrans("", "", " -")
# Ofcom keeps 07700 900000-900999 for drama: never allocated, so phonenumbers calls them invalid; drills use them.
DRAMA_MOBILES = range(7700900000, 7700901000)
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str
    skipped: bool = True  # False: a note (the row was still used)


@dataclass
class ListReport:
    """What reading a list found: counts, and the first problems with their line numbers."""

    path: Path
    rows: int = 0
    skipped: int = 0
    duplicates: int = 0
    opted_out: int = 0
    not_targeted: int = 0
    selected: int = 0  # contacts: a row with a phone number and an email, on a channel that sends both, is two
    people: int = 0  # rows with at least one contact selected
    languages: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    tags: set[str] = field(default_factory=set)  # tags seen (up to 10,000), for a did-you-mean
    matched: set[str] = field(default_factory=set)  # the --to tags someone had

    def problem(self, line: int, reason: str, *, skipped: bool = True) -> None:
        self.problem_count += 1
        self.skipped += skipped
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(Problem(line, reason, skipped))

    def summary(self) -> str:
        parts = [f"{self.people:,} of {self.rows:,} rows selected"]
        if self.selected != self.people:
            parts[0] += f" ({self.selected:,} messages: some rows have both a phone number and an email)"
        for count, what in ((self.skipped, "bad rows skipped"), (self.duplicates, "duplicates merged"),
                            (self.opted_out, "opted out"), (self.not_targeted, "not in the --to groups")):
            if count:
                parts.append(f"{count:,} {what}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Row:
    """One valid row. The contact details live in memory only, for as long as it takes to send."""

    line: int
    phone: str | None
    email: str | None
    language: str
    tags: frozenset[str]

    def hashed(self, key: RecipientKey, media: tuple[str, ...]) -> Iterator[tuple[str, str, str]]:
        """(medium, contact, keyed hash) for each contact of the row a send on `media` can use."""
        for medium, contact in (("sms", self.phone), ("email", self.email)):
            if contact and medium in media:
                yield medium, contact, key.digest(medium, contact)


@dataclass(frozen=True)
class Recipient:
    """One person on one medium: what the adapter sends to, and what the log keeps (`key`, `masked`)."""

    medium: str
    contact: str
    key: str
    masked: str
    language: str
    line: int
    opted_out: bool = False


class RecipientKey:
    """The HMAC key: $BROADCAST_RECIPIENT_KEY, else a 0600 file under the workspace's git-ignored .broadcast/."""

    def __init__(self, secret: bytes):
        self._secret = secret
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)  # copied for each hash: the key is set up once

    @classmethod
    def for_workspace(cls, root: Path) -> RecipientKey:
        value = os.environ.get(KEY_ENV)
        if value:
            if len(value) < 32:
                raise ConfigError(KEY_ENV, None, "too short (fewer than 32 characters)",
                                  "use a random value, e.g. from: python -c 'import secrets; "
                                  "print(secrets.token_hex(32))'")
            from broadcast.secrets import remember

            remember(value)
            return cls(value.encode("utf-8"))
        path = root / KEY_FILE
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: read theirs
            else:
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(os.urandom(32).hex() + "\n")
        if path.stat().st_mode & 0o077:
            raise ConfigError(path, None, "readable by other users", f"chmod 600 {path}")
        return cls(path.read_text(encoding="ascii").strip().encode("ascii"))

    def digest(self, medium: str, contact: str) -> str:
        """The keyed hash stored in place of a number or address: `sms:<hex>` or `email:<hex>`."""
        mac = self._keyed.copy()
        mac.update(f"{medium}:{contact}".encode())
        return f"{medium}:{mac.hexdigest()}"

    def fingerprint(self) -> str:
        """Names the key without revealing it, so a resend can tell that the key has changed."""
        return hmac.new(self._secret, b"fingerprint", hashlib.sha256).hexdigest()[:12]


def list_path(workspace_root: Path, name: str) -> Path:
    from broadcast.workspace import check_name, within

    # A name, never a path out of lists/, nor a link out of the workspace.
    return within(workspace_root, workspace_root / "lists" / f"{check_name('list', name)}.csv")


def normalise_phone(raw: str, region: str = "GB", *, mobile: bool = True, check: bool = True) -> str:
    """E.164 (+447700900123), or ValueError saying why, never echoing the number.

    `check=False` only normalises: for a list already checked, whose rows are matched to the log by hash. A UK
    mobile written the usual ways is checked against phonenumbers' metadata without a parse (`_uk_mobile`).
    """
    if region == "GB" and (plain := UK_MOBILE.fullmatch(raw.strip().translate(SEPARATORS))) and (
            not check or _uk_mobile(plain[1])):
        return "+44" + plain[1]
    import phonenumbers
    from phonenumbers import PhoneNumberType

    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValueError("phone is not a phone number") from None
    drama = number.country_code == 44 and number.national_number in DRAMA_MOBILES
    if not check:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # number_type is what is_valid_number checks (UNKNOWN: not valid); asking once halves the cost.
    kind = PhoneNumberType.MOBILE if drama else phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        raise ValueError("phone is not a valid number" + ("" if raw.strip().startswith(("+", "00"))
                                                          else f" in {region} (add the country code if abroad)"))
    if mobile and kind not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER):
        raise ValueError("phone is not a mobile number: it cannot receive texts")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@cache
def _gb_descs() -> dict[str, tuple[frozenset[int], re.Pattern[str]] | None] | None:
    """phonenumbers' GB number descriptions (possible lengths, national pattern), compiled once; None if its
    metadata were ever shaped otherwise (one pattern for mobiles and fixed lines): every number then goes its way."""
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region("GB")
    if meta is None or meta.same_mobile_and_fixed_line_pattern:
        return None
    descs = {}
    for name in ("general_desc", "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
                 "uan", "voicemail", "fixed_line", "mobile"):
        desc = getattr(meta, name)
        descs[name] = (frozenset(desc.possible_length), re.compile(desc.national_number_pattern)) if (
            desc is not None and desc.national_number_pattern) else None
    return descs


def _uk_mobile(national: str) -> bool:
    """Whether a UK national number is one a list may text (mobile, fixed line or mobile, pager, or Ofcom's drama
    range), decided as phonenumbers' number_type decides for GB, in its order, from its metadata, without its parse
    and its per-call pattern look-ups (about 20 µs a row, twice a warning). False sends the number the slow way,
    where phonenumbers says what is wrong with it."""
    if int(national) in DRAMA_MOBILES:
        return True
    descs = _gb_descs()
    if descs is None:
        return False

    def matches(name: str) -> bool:
        desc = descs[name]
        return desc is not None and (not desc[0] or len(national) in desc[0]) and bool(desc[1].fullmatch(national))

    if not matches("general_desc") or any(matches(name) for name in (
            "premium_rate", "toll_free", "shared_cost", "voip", "personal_number")):
        return False
    if matches("pager"):
        return True
    if matches("uan") or matches("voicemail"):
        return False
    return matches("mobile")  # a fixed line that is not also mobile is not textable


def normalise_email(raw: str) -> str:
    """The address checked for syntax only (no DNS look-up), lower-cased whole.

    A local part may in theory be case-sensitive; in practice none is, and an opt-out written as Ann@ must
    match a list row written as ann@.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(raw.strip(), check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        raise ValueError(f"email is not a valid address ({exc})") from None


def mask_phone(e164: str) -> str:
    """+447700900123 -> +44 7*** ***123."""
    digits = e164.lstrip("+")
    code = _country_code(digits[:3])
    national = digits[len(code):]
    return f"+{code} {national[:1]}*** ***{national[-3:]}"


@lru_cache(maxsize=1024)
def _country_code(start: str) -> str:
    """The country calling code a number's first three digits begin with."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return next((start[:n] for n in (1, 2, 3) if int(start[:n]) in COUNTRY_CODE_TO_REGION_CODE), start[:2])


def mask_email(address: str) -> str:
    """ann.other@example.org -> a***@example.org."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def scrub(text: str, recipient: Recipient) -> str:
    """Replace the recipient's number or address in a platform's message with its masked form."""
    if recipient.medium == "email":
        return re.sub(re.escape(recipient.contact), recipient.masked, text, flags=re.IGNORECASE)
    digits = recipient.contact.lstrip("+")
    national = "0" + digits[2:] if digits.startswith("44") else digits
    for form in sorted({recipient.contact, digits, national, f"{national[:5]} {national[5:]}"}, key=len,
                       reverse=True):
        text = text.replace(form, recipient.masked)
    return text


@lru_cache(maxsize=256)  # a list holds a few spellings of a few languages
def language_for(wanted: str, offered: tuple[str, ...], default: str) -> str | None:
    """The channel language matching a row's preference ('cy', 'cy-GB', 'Cymraeg'), or None if not offered."""
    from broadcast.workspace import primary_tag

    if not wanted:
        return default
    tag = LANGUAGE_NAMES.get(wanted.strip().lower(), primary_tag(wanted.strip()))
    return next((language for language in offered if primary_tag(language) == tag), None)


def read_rows(path: Path, report: ListReport, *, region: str = "GB", check: bool = True) -> Iterator[Row]:
    """Stream a list's valid rows; every bad row goes into the report with its line number and the reason."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise ConfigError(path, None, "list not found",
                          "lists are personal data and git-ignored: copy the list onto this machine "
                          "(format: channels/README.md, section lists)") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip().lower() for name in next(reader, [])]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(path, None, f"not a readable CSV file ({exc})", "save it as UTF-8 CSV") from None
        _check_header(path, header)
        index = {name: header.index(name) for name in COLUMNS if name in header}
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:  # the decoder cannot step past it: every later read fails the same way
                raise ConfigError(path, None, f"not UTF-8 text after line {reader.line_num} ({exc.reason})",
                                  "save it as UTF-8 CSV") from None
            except csv.Error as exc:
                report.rows += 1
                report.problem(reader.line_num, f"unreadable row ({exc})")
                continue
            if not any(value.strip() for value in values):
                continue  # a blank line
            report.rows += 1
            row = _row(reader.line_num, values, index, report, region, check)
            if row is not None:
                yield row


def _check_header(path: Path, header: list[str]) -> None:
    import difflib

    if "phone" not in header and "email" not in header:
        near = [[ALIASES[name]] if name in ALIASES else difflib.get_close_matches(name, COLUMNS, n=1)
                for name in header]
        guess = next((f"did you mean '{n[0]}' for '{h}'? " for h, n in zip(header, near, strict=True)
                      if n and n[0] != h), "")
        raise ConfigError(path, None, "the first row must name the columns, with phone and/or email",
                          f"{guess}columns: {', '.join(COLUMNS)} (see channels/README.md, section lists)")


def _row(line: int, values: list[str], index: dict[str, int], report: ListReport, region: str,
         check: bool = True) -> Row | None:
    def cell(name: str) -> str:
        position = index.get(name)
        return values[position].strip() if position is not None and position < len(values) else ""

    phone = email = None
    notes = []
    if cell("phone"):
        try:
            phone = normalise_phone(cell("phone"), region, check=check)
        except ValueError as exc:
            notes.append(str(exc))
    if cell("email"):
        try:
            email = normalise_email(cell("email"))
        except ValueError as exc:
            notes.append(str(exc))
    if phone is None and email is None:
        report.problem(line, "; ".join(notes) or "no phone and no email")
        return None
    for note in notes:  # one of the two was good: the row is used for that one
        report.problem(line, f"{note}; the row's other contact is still used", skipped=False)
    tags = frozenset(_tags(cell("groups")) | _tags(cell("areas")))
    if len(report.tags) < 10_000:
        report.tags.update(tags)
    return Row(line, phone, email, cell("language"), tags)


def _tags(text: str) -> set[str]:
    """Tags and their parents: 'parents:hillside-primary' is also in 'parents'."""
    tags = set()
    for tag in TAG_SPLIT.split(text.lower()):
        if tag:
            tags.add(tag)
            while ":" in tag:
                tag = tag.rpartition(":")[0]
                tags.add(tag)
    return tags


def read_opt_outs(workspace_root: Path, key: RecipientKey) -> tuple[set[str], ListReport | None]:
    """The keyed hashes of everyone in lists/opt-out.csv (phone and/or email), if the file exists."""
    path = list_path(workspace_root, OPT_OUT)
    if not path.exists():
        return set(), None
    report = ListReport(path)
    hashes = set()
    for row in read_rows(path, report):
        if row.phone:
            hashes.add(key.digest("sms", row.phone))
        if row.email:
            hashes.add(key.digest("email", row.email))
    return hashes, report


class Seen:
    """Keys already met, in a temporary on-disk SQLite table: memory stays flat however long the list. It is asked
    a batch at a time, in one transaction never committed (the table goes with the connection): a statement per
    row, each its own transaction, was a tenth of reading a list."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self.db.execute("BEGIN")

    def first(self, keys: Sequence[str]) -> list[bool]:
        """For each key in turn, True the first time it is met, in this batch or any before; remembers them all."""
        if not keys:
            return []
        met = {key for (key,) in self.db.execute(
            f"SELECT key FROM seen WHERE key IN ({', '.join('?' for _ in keys)})", keys)}
        firsts = []
        for key in keys:
            firsts.append(key not in met)
            met.add(key)
        self.db.executemany("INSERT INTO seen VALUES (?)", [(key,) for key, new in zip(keys, firsts, strict=True)
                                                            if new])
        return firsts

    def close(self) -> None:
        self.db.close()


def select(path: Path, report: ListReport, *, key: RecipientKey, media: tuple[str, ...], to: tuple[str, ...] = (),
           languages: tuple[str, ...], default_language: str, opt_outs: set[str] | None = None,
           include_opted_out: bool = False, check: bool = True) -> Iterator[Recipient]:
    """Stream the people a send goes to: valid, in the --to groups, not opted out, each once per medium."""
    wanted = {tag.lower() for tag in to}

    def candidates() -> Iterator[tuple[int, str, str, str, str]]:  # (line, medium, contact, hash, language)
        for row in read_rows(path, report, check=check):
            if wanted:
                hits = wanted & row.tags
                if not hits:
                    report.not_targeted += 1
                    continue
                report.matched |= hits
            language = language_for(row.language, languages, default_language)
            if language is None:
                report.problem(row.line, f"language {row.language!r} is not offered: sent in {default_language}",
                               skipped=False)
                language = default_language
            for medium, contact, digest in row.hashed(key, media):
                yield row.line, medium, contact, digest, language

    seen, counted = Seen(), 0  # counted: the line of the last row counted as a person
    try:
        for batch in batches(candidates(), SEEN_BATCH):
            for (line, medium, contact, digest, language), first in zip(batch, seen.first([c[3] for c in batch]),
                                                                        strict=True):
                if not first:
                    report.duplicates += 1
                    continue
                opted_out = opt_outs is not None and digest in opt_outs
                if opted_out:
                    report.opted_out += 1
                    if not include_opted_out:
                        continue
                else:
                    report.selected += 1
                    report.people += counted != line
                    counted = line
                    report.languages[language] += 1
                masked = mask_phone(contact) if medium == "sms" else mask_email(contact)
                yield Recipient(medium, contact, digest, masked, language, line, opted_out)
    finally:
        seen.close()


def contacts(path: Path, *, key: RecipientKey, media: tuple[str, ...]) -> Iterator[tuple[int, str, str, str]]:
    """(line, medium, contact, keyed hash) for each contact of each row that a send on `media` could use, repeats
    included: for matching a list already checked to the deliveries queued from it. A number is only normalised;
    nothing is counted, and groups, languages and opt-outs are the caller's (the queued row has them)."""
    for row in read_rows(path, ListReport(path), check=False):
        for medium, contact, digest in row.hashed(key, media):
            yield row.line, medium, contact, digest


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items in turn (itertools.batched, from Python 3.12)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def describe(report: ListReport) -> dict[str, Any]:
    """The counts for the log: no names, numbers or addresses."""
    return {"rows": report.rows, "selected": report.selected, "people": report.people, "bad_rows": report.skipped,
            "duplicates": report.duplicates, "opted_out": report.opted_out, "not_targeted": report.not_targeted,
            "languages": dict(report.languages), "problems": [[p.line, p.reason] for p in report.problems[:20]]}


def check_list(workspace: Workspace, name: str) -> ListReport:
    """Read a whole list as a send would (every row checked, duplicates and opt-outs counted); send nothing."""
    key = RecipientKey.for_workspace(workspace.root)
    opt_outs, _ = read_opt_outs(workspace.root, key)
    report = ListReport(list_path(workspace.root, name))
    for _ in select(report.path, report, key=key, media=MEDIA, languages=tuple(workspace.languages),
                    default_language=workspace.languages[0], opt_outs=opt_outs):
        pass
    return report
