"""The review: an incident's timeline streamed from the log, and the notes and decisions reviewers add to it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from broadcast.errors import BroadcastError, PolicyError

if TYPE_CHECKING:
    from broadcast.store import Store

SCHEMA_VERSION = 2  # 2: the header's metrics count messages as attempted, accepted, delivered, failed, unknown
# Timeline columns, in export order. Each is either stored (and covered by the event's hash) or one of DERIVED.
FIELDS = (
    "incident", "seq", "chain_id", "event_id", "occurred_at", "recorded_at", "occurred_at_local", "phase", "type",
    "actor", "channel", "alert", "template", "template_sha256", "content_sha256", "attempt", "outcome",
    "provider_ref", "http_status", "error", "latency_ms", "description", "rationale", "pinned", "supersedes",
    "details", "prev_hash", "hash",
)
# Columns copied from the details key of the same name, so a third party can check them against the hashed details.
DERIVED = ("template", "template_sha256", "content_sha256", "attempt", "outcome", "provider_ref", "http_status",
           "error", "latency_ms", "rationale")
# Events logged without an incident that belong in the timeline of the incident they happen during.
CONTEXT_TYPES = ("fallback_published", "fallback_verified", "fallback_failed", "channel_disabled", "channel_enabled",
                 "template_approved", "draft_approved", "draft_rejected")
CONTEXT_TAIL = timedelta(minutes=10)  # how long after an incident's last event its context is still its own
HUMAN_TYPES = ("note", "decision")  # the only entries a later entry may supersede; system events are never corrected


class ReviewError(BroadcastError):
    """An incident, event or time the reviewer named cannot be used."""


def find_incident(store: Store, slug: str) -> dict[str, Any]:
    """The incident row, or a ReviewError naming the near matches."""
    import difflib

    row = store.conn.execute("SELECT slug, title, status, exercise, opened_at, closed_at FROM incidents "
                             "WHERE slug = ?", [slug]).fetchone()
    if row is not None:
        return dict(zip(("slug", "title", "status", "exercise", "opened_at", "closed_at"), row, strict=True))
    slugs = [r[0] for r in store.conn.execute("SELECT slug FROM incidents")]
    near = difflib.get_close_matches(slug, slugs, n=1)
    raise ReviewError(f"no incident '{slug}' in the log",
                      hint=f"did you mean '{near[0]}'?" if near else "see the incidents in: broadcast review list")


def zone(name: str) -> tzinfo:
    """A display zone by IANA name; an unknown name is refused."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReviewError(f"unknown time zone {name!r}", hint="use an IANA name such as Europe/London or UTC") from None


def parse_instant(text: str) -> datetime:
    """A stored UTC time (ISO 8601 with Z) as an aware datetime."""
    return datetime.fromisoformat(text)


def local(text: str | None, display: tzinfo) -> str | None:
    """A stored UTC time rendered in the display zone, with its offset."""
    return Localiser(display)(text)


@contextlib.contextmanager
def snapshot(store: Store) -> Iterator[None]:
    """One read transaction: every pass of an export sees the same log, even while a send is writing to it."""
    with store.snapshot():
        yield


# The stored columns in the hash's order, then the hash: the one select list every reader here uses.
COLUMNS = ("id", "event_id", "occurred_at", "recorded_at", "type", "phase", "actor", "incident", "alert", "channel",
           "description", "details", "pinned", "supersedes", "prev_hash", "hash")
SELECT = f"SELECT {', '.join(COLUMNS)} FROM events"


@dataclass(frozen=True)
class Window:
    """Which events are an incident's: its own, and the context events logged between its first and `end`."""

    slug: str
    first: int
    end: int


def window(store: Store, slug: str) -> Window | None:
    """The incident's window in the chain, or None when it has no events."""
    conn = store.conn
    first, last, last_at = conn.execute(
        "SELECT MIN(id), MAX(id), MAX(occurred_at) FROM events WHERE incident = ?", [slug]).fetchone()
    if first is None:
        return None
    marks = ", ".join("?" for _ in CONTEXT_TYPES)
    # The context after the incident's last event (the page published after the final fan-out) runs until
    # anything else is logged, and for a few minutes at most.
    until = conn.execute(
        f"SELECT MIN(id) FROM events WHERE id > ? AND (incident IS NOT NULL OR type NOT IN ({marks}) "
        "OR occurred_at > ?)", [last, *CONTEXT_TYPES, _iso(parse_instant(last_at) + CONTEXT_TAIL)]).fetchone()[0]
    return Window(slug, first, until - 1 if until is not None else store.head()[0])


def _rows(store: Store, slug: str) -> Iterator[tuple[Any, ...]]:
    found = window(store, slug)
    if found is None:
        return
    marks = ", ".join("?" for _ in CONTEXT_TYPES)
    yield from store.conn.execute(
        f"{SELECT} WHERE id BETWEEN ? AND ? AND (incident = ? OR (incident IS NULL AND type IN ({marks})))"
        " ORDER BY id", [found.first, found.end, slug, *CONTEXT_TYPES])


def _iso(moment: datetime) -> str:
    from broadcast.store import isoformat

    return isoformat(moment)


def timeline(store: Store, slug: str, *, display: tzinfo = UTC, pinned_only: bool = False
             ) -> Iterator[dict[str, Any]]:
    """Stream an incident's timeline rows (FIELDS), numbered per incident before any filter."""
    for _, row in incident_rows(store, slug, display):
        if row["pinned"] or not pinned_only:
            yield row


def incident_rows(store: Store, slug: str, display: tzinfo = UTC
                  ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Stream (stored values, timeline row) pairs: the stored values keep details as the exact JSON hashed."""
    localise = Localiser(display)
    for seq, values in enumerate(_rows(store, slug), start=1):
        yield values, timeline_row(values, seq, localise)


class Localiser:
    """Stored UTC times in a display zone, fast: the offset and zone name are looked up once per minute of the log."""

    def __init__(self, display: tzinfo):
        self.display = display
        self.minutes: dict[str, tuple[str, str, str]] = {}

    def _minute(self, text: str) -> tuple[str, str, str]:
        key = text[:16]  # every zone's offset is whole minutes, so seconds and milliseconds carry over unchanged
        found = self.minutes.get(key)
        if found is None:
            if len(self.minutes) > 4096:  # a long incident: keep memory flat
                self.minutes.clear()
            moment = parse_instant(key + ":00+00:00").astimezone(self.display)
            found = self.minutes[key] = (moment.strftime("%Y-%m-%dT%H:%M"), moment.isoformat()[19:],
                                         moment.strftime("%Z"))
        return found

    def __call__(self, text: str | None) -> str | None:
        """ISO 8601 with the offset: 2026-10-25T01:30:00.000+01:00."""
        if not text:
            return None
        prefix, offset, _ = self._minute(text)
        return f"{prefix}{text[16:23]}{offset}"

    def clock(self, text: str) -> str:
        """As people read it, zone named (BST and GMT differ by an hour): 2026-10-25 01:30:00 BST."""
        prefix, _, name = self._minute(text)
        return f"{prefix[:10]} {prefix[11:]}{text[16:19]} {name}"

    def time(self, text: str) -> str:
        """01:30:00 BST"""
        prefix, _, name = self._minute(text)
        return f"{prefix[11:]}{text[16:19]} {name}"

    def day(self, text: str) -> str:
        """The local date: 2026-10-25."""
        return self._minute(text)[0][:10]


def timeline_row(values: tuple[Any, ...], seq: int, localise: Localiser) -> dict[str, Any]:
    """One stored event (COLUMNS) as a timeline row: the stored columns, the local time, the details worth a column."""
    (id_, event_id, occurred, recorded, kind, phase, actor, incident, alert, channel, description, raw, pinned,
     supersedes, prev_hash, entry_hash) = values
    details = parse_details(raw)
    get = details.get
    return {
        "incident": incident, "seq": seq, "chain_id": id_, "event_id": event_id, "occurred_at": occurred,
        "recorded_at": recorded, "occurred_at_local": localise(occurred), "phase": phase, "type": kind,
        "actor": actor, "channel": channel, "alert": alert, "template": get("template"),
        "template_sha256": get("template_sha256"), "content_sha256": get("content_sha256"), "attempt": get("attempt"),
        "outcome": get("outcome"), "provider_ref": get("provider_ref"), "http_status": get("http_status"),
        "error": get("error"), "latency_ms": get("latency_ms"), "description": description,
        "rationale": get("rationale"), "pinned": bool(pinned), "supersedes": supersedes, "details": details,
        "prev_hash": prev_hash, "hash": entry_hash,
    }


_SCAN = json.JSONDecoder().raw_decode


def parse_details(text: str | None) -> dict[str, Any]:
    """An event's stored details: json.loads, without its checks for whitespace the canonical text never has."""
    if not text:
        return {}
    with contextlib.suppress(ValueError):
        value, end = _SCAN(text)
        if end == len(text):
            return value
    return json.loads(text)


def default_phase(incident: dict[str, Any]) -> str:
    """The phase an entry belongs to when the reviewer does not say: from the incident's status."""
    return {"open": "warn", "recovering": "recover"}.get(incident["status"], "review")


def add_note(store: Store, slug: str, text: str, *, actor: str, at: datetime | None = None, pinned: bool = False,
             corrects: str | None = None, phase: str | None = None) -> dict[str, Any]:
    """Log a note on an incident; `at` backfills when it happened (the record keeps when it was written)."""
    return _add_entry(store, slug, "note", text, {}, actor=actor, at=at, pinned=pinned, corrects=corrects,
                      phase=phase)


def add_decision(store: Store, slug: str, text: str, *, reason: str | None, actor: str, at: datetime | None = None,
                 pinned: bool = False, corrects: str | None = None, phase: str | None = None) -> dict[str, Any]:
    """Log a decision with its reasons (a decision without one is refused, as JESIP asks)."""
    if not (reason or "").strip():
        raise PolicyError("a decision needs its reasons: nothing was logged",
                          hint='add --reason "why this was decided, on what information"')
    return _add_entry(store, slug, "decision", text, {"rationale": (reason or "").strip()}, actor=actor, at=at,
                      pinned=pinned, corrects=corrects, phase=phase)


def _add_entry(store: Store, slug: str, kind: str, text: str, details: dict[str, Any], *, actor: str,
               at: datetime | None, pinned: bool, corrects: str | None, phase: str | None) -> dict[str, Any]:
    from broadcast.store import utcnow

    incident = find_incident(store, slug)
    if not text.strip():
        raise PolicyError(f"the {kind} is empty: nothing was logged", hint=f'give the text, e.g. "{_EXAMPLE[kind]}"')
    if at is not None and at > utcnow() + timedelta(minutes=1):
        raise PolicyError(f"--at {_iso(at)} is in the future: a {kind} records what has happened",
                          hint="leave out --at for now, or give the time it happened")
    if corrects:
        _check_correctable(store, slug, corrects, kind)
    return store.append_event(kind, phase=phase or default_phase(incident), actor=actor, incident=slug,
                              description=text.strip(), details=details, occurred_at=at, pinned=pinned,
                              supersedes=corrects)


_EXAMPLE = {"note": "Gritter crews report the A470 passable from 07:40",
            "decision": "Close all schools in the north of the county"}


def _check_correctable(store: Store, slug: str, event_id: str, kind: str) -> None:
    row = store.conn.execute("SELECT type, incident FROM events WHERE event_id = ?", [event_id]).fetchone()
    if row is None:
        raise ReviewError(f"no event {event_id} to correct",
                          hint=f"copy the event_id from the timeline: broadcast review {slug} --format csv")
    if row[1] != slug:
        raise ReviewError(f"event {event_id} belongs to {row[1] or 'no incident'}, not {slug}")
    if row[0] not in HUMAN_TYPES:
        raise PolicyError(f"event {event_id} is a {row[0]} event, which the system logged: it cannot be corrected",
                          hint="add a note that says what was wrong with it instead (without --corrects)")
    if row[0] != kind:
        raise PolicyError(f"event {event_id} is a {row[0]}: correct it with another {row[0]}",
                          hint=f"broadcast review {row[0]} {slug} \"...\" --corrects {event_id}"
                          + (' --reason "..."' if row[0] == "decision" else ""))


def parse_when(text: str, display: tzinfo, *, now: datetime | None = None) -> datetime:
    """A time the reviewer typed: ISO 8601 with Z or an offset, or a local date and time, or HH:MM today.

    A local time the clock change makes ambiguous (or skips) is refused: the reviewer must give the offset.
    """
    now = now or datetime.now(UTC)
    raw = text.strip()
    try:
        if len(raw) <= 5 and ":" in raw:
            hours, minutes = (int(part) for part in raw.split(":"))
            moment = datetime.combine(now.astimezone(display).date(), datetime.min.time()).replace(
                hour=hours, minute=minutes)
        else:
            moment = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        raise ReviewError(f"--at {text!r} is not a time", hint="e.g. --at 06:10, --at '2026-11-23 06:10' (local) "
                          "or --at 2026-11-23T06:10Z") from None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    early, late = moment.replace(tzinfo=display, fold=0), moment.replace(tzinfo=display, fold=1)
    if early.utcoffset() != late.utcoffset():
        raise ReviewError(f"--at {text!r} is ambiguous or skipped in {display} because of the clock change",
                          hint=f"give the offset, e.g. --at {early.isoformat(timespec='minutes')}, or UTC with a Z")
    return early.astimezone(UTC)


def incidents_table(store: Store) -> Iterator[dict[str, Any]]:
    """Every incident, newest first, with its alert and event counts (`review list`)."""
    cursor = store.conn.execute(
        "SELECT i.slug, i.title, i.status, i.exercise, i.opened_at, i.closed_at, "
        "(SELECT COUNT(*) FROM alerts a WHERE a.incident = i.slug), "
        "(SELECT COUNT(*) FROM events e WHERE e.incident = i.slug) FROM incidents i ORDER BY i.opened_at DESC")
    names = ("slug", "title", "status", "exercise", "opened_at", "closed_at", "alerts", "events")
    for values in cursor:
        yield dict(zip(names, values, strict=True))
