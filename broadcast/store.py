"""The log: incidents, alerts, deliveries and an append-only, hash-chained event table.

One store, two backends: a SQLite file beside the workspace (the default), or a PostgreSQL database several duty
officers share (`[store] url` in broadcast.toml). What their SQL spells differently is in broadcast.sql.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import operator
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Event ids are UUIDv7 (RFC 9562): they begin with the time, so each new one goes at the end of the events' unique
# index, where a random one (v4) lands on any of its pages: past 100,000 events every commit then wrote dozens of
# scattered index pages to the WAL.
from uuid_utils import uuid7

from broadcast.errors import StoreError
from broadcast.sql import EVENTS_BY_TYPE, POSTS_BY_STATE, PostgreSQL, SQLite, rows

if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations

    from broadcast.alert import Alert
    from broadcast.sql import Dialect, PgConnection
    from broadcast.workspace import Workspace

GENESIS = "0" * 64
MARKER_SUFFIX = "-id"  # beside the database (git-ignored as broadcast.db-*): this workspace has a log
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "retracted", "uncertain", "skipped")
PHASES = ("prepare", "warn", "inform", "recover", "review")
# Columns covered by an event's hash, in a fixed order; `hash` itself is not.
EVENT_COLUMNS = (
    "id", "event_id", "occurred_at", "recorded_at", "type", "phase", "actor", "incident", "alert",
    "channel", "description", "details", "pinned", "supersedes", "prev_hash",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """Write an instant as UTC ISO 8601 with milliseconds and a Z, the one form stored."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


_QUOTE = json.encoder.encode_basestring  # how json.dumps spells a str with ensure_ascii=False


def canonical_json(value: Any) -> str:
    """Serialise deterministically: sorted keys, no spaces, UTF-8 text kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# canonical_json of the hashed columns as one template: the keys sorted, each value spelt as json.dumps spells it.
_SORTED = sorted(range(len(EVENT_COLUMNS)), key=EVENT_COLUMNS.__getitem__)
_BODY = "{" + ",".join(f"{json.dumps(EVENT_COLUMNS[i])}:%s" for i in _SORTED) + "}"
_IN_KEY_ORDER = operator.itemgetter(*_SORTED)
_OTHER = object()  # a value of a type the template does not spell


def hashed_body(values: Sequence[Any]) -> str:
    """canonical_json of an event's hashed columns, given in EVENT_COLUMNS order.

    The stored types are text, integers and null, so a template spells them at twice the general encoder's speed;
    any other type (a bool, a float) goes to canonical_json, so the bytes are always the same.
    """
    quote = _QUOTE
    spelt = [quote(v) if v.__class__ is str else "null" if v is None else repr(v) if v.__class__ is int else _OTHER
             for v in _IN_KEY_ORDER(values)]
    if _OTHER in spelt:
        return canonical_json(dict(zip(EVENT_COLUMNS, values, strict=False)))
    return _BODY % tuple(spelt)


def event_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the row's hashed columns."""
    return hashlib.sha256((row["prev_hash"] + hashed_body(tuple(map(row.get, EVENT_COLUMNS)))).encode("utf-8")
                          ).hexdigest()


# An event as stored: the hashed columns, then the hash.
STORED_COLUMNS = (*EVENT_COLUMNS, "hash")
HEAD = "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1"  # the chain's last event
# The newest row of each of the log's tables, each read down from its table's root page: a damaged page there stops a
# command as it opens the log, with how to recover, even one whose look-ups then go by index alone (a resend with
# nothing left to send reads no event). Four descents of a tree: microseconds, whatever the log's size.
NEWEST = ("SELECT (SELECT max(id) FROM events), (SELECT max(rowid) FROM alerts), (SELECT max(id) FROM deliveries), "
          "(SELECT max(rowid) FROM incidents)")
INSERT_EVENT = f"INSERT INTO events ({', '.join(STORED_COLUMNS)}) VALUES ({', '.join('?' for _ in STORED_COLUMNS)})"


# The hashed columns and the hash, in chain order: what a walk of the chain reads, as tuples.
CHAIN_SELECT = f"SELECT {', '.join(EVENT_COLUMNS)}, hash FROM events"
# Each event with its hashed body spelt by SQLite, in C: json_object writes canonical_json's keys in the order given
# here, and spells text, integers and null as json.dumps(ensure_ascii=False) does (checked over every character to
# U+3000 and beyond). It spells a float otherwise, and cannot hold a blob: walk_sqlite deals with both.
FAST_SELECT = ("SELECT id, prev_hash, hash, json_object(" + ", ".join(f"'{name}', {name}" for name in
                                                                      sorted(EVENT_COLUMNS))
               + "), type, alert, details FROM events")
Seen = Callable[[int, str, str | None, str | None], None]  # an event's id, type, alert and details, as checked


def chained(prev: str, values: Sequence[Any]) -> str | None:
    """The hash an event (its hashed columns, in EVENT_COLUMNS order) must have after `prev`; None for a value no
    event holds (a blob, NaN), which can only have been put there behind the store's back."""
    try:
        return hashlib.sha256((prev + hashed_body(values)).encode("utf-8")).hexdigest()
    except (TypeError, ValueError):
        return None


def walk_chain(rows: Iterable[Sequence[Any]], see: Seen | None = None) -> Verification:
    """Check rows (CHAIN_SELECT's columns, from the first event, in order) link and hash as they should; report the
    first that does not. `see` is shown each row that does."""
    prev, count = GENESIS, 0
    for values in rows:
        count += 1
        if values[0] != count:
            return Verification(False, count - 1, prev, count, f"event {count} is missing (next is {values[0]})")
        if values[14] != prev:
            return Verification(False, count - 1, prev, values[0], "prev_hash does not match the event before")
        if chained(prev, values) != values[15]:
            return Verification(False, count - 1, prev, values[0], "content does not match its hash")
        prev = values[15]
        if see is not None:
            see(values[0], values[4], values[8], values[11])
    return Verification(True, count, prev)


def walk_sqlite(conn: sqlite3.Connection, upto: int | None = None, see: Seen | None = None) -> Verification:
    """walk_chain over a SQLite log (to event `upto`), each event's body spelt by SQLite rather than in Python: over
    100,000 events 0.86 s against 1.42 s. Python stays the judge: a body whose hash does not match is spelt again by
    hashed_body, and only that decides; a value json_object cannot hold (a blob), or a SQLite without JSON, sends the
    whole walk to walk_chain (which shows `see` the rows it had already seen again, in the same order)."""
    where, params = (" WHERE id <= ?", [upto]) if upto is not None else ("", [])
    prev, count, sha = GENESIS, 0, hashlib.sha256
    try:
        for number, prev_hash, stored, body, kind, alert, details in conn.execute(
                f"{FAST_SELECT}{where} ORDER BY id", params):
            count += 1
            if number != count:
                return Verification(False, count - 1, prev, count, f"event {count} is missing (next is {number})")
            if prev_hash != prev:
                return Verification(False, count - 1, prev, number, "prev_hash does not match the event before")
            if sha((prev + body).encode("utf-8")).hexdigest() != stored:
                values = conn.execute(f"{CHAIN_SELECT} WHERE id = ?", [number]).fetchone()
                if chained(prev, values) != stored:
                    return Verification(False, count - 1, prev, number, "content does not match its hash")
            prev = stored
            if see is not None:
                see(number, kind, alert, details)
    except sqlite3.OperationalError:  # "JSON cannot hold BLOB values", or no json_object at all
        return walk_chain(conn.execute(f"{CHAIN_SELECT}{where} ORDER BY id", params), see)
    return Verification(True, count, prev)


def content_sha256(alert: Alert) -> str:
    """Hash of the alert as sent, so what was said can be proved later."""
    return hashlib.sha256(canonical_json(alert.to_dict()).encode("utf-8")).hexdigest()


class LoggedRecords:
    """What the chain says of the stored records, gathered event by event: each alert's issued content hash, and
    each delivery's last logged state."""

    def __init__(self) -> None:
        self.issued: dict[str, tuple[int, str | None]] = {}
        self.last: dict[int, tuple[int, str | None]] = {}

    def see(self, event_id: int, kind: str, alert: str | None, text: str | None) -> None:
        """Take in one event: its id, type, alert and details."""
        # Only an alert's issue and a delivery's changes say anything here: the rest are not parsed at all.
        if alert is None or not text or (kind != "alert_issued" and '"deliver' not in text):
            return
        data = json.loads(text)
        if kind == "alert_issued":
            self.issued[alert] = (event_id, data.get("content_sha256"))
        if isinstance(data.get("delivery"), int):
            self.last[data["delivery"]] = (event_id, data.get("state"))
        for number in data.get("deliveries_settled") or []:
            self.last[number] = (event_id, data.get("state"))


@dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    head: str
    broken_at: int | None = None
    reason: str | None = None


def _migrations() -> Migrations:
    from sqlite_utils import Migrations

    migrations = Migrations("broadcast")

    @migrations()
    def m001_initial(db: Database) -> None:
        table = db.table
        table("incidents").create(
            {"slug": str, "title": str, "status": str, "exercise": int, "opened_at": str, "closed_at": str},
            pk="slug",
        )
        table("alerts").create(
            {
                "identifier": str, "incident": str, "msg_type": str, "status": str, "references": str,
                "template": str, "template_sha256": str, "variables": str, "alert": str,
                "sent_at": str, "sent_by": str, "approved_by": str,
            },
            pk="identifier",
            foreign_keys=[("incident", "incidents", "slug")],
        )
        table("deliveries").create(
            {
                "id": int, "alert": str, "channel": str, "language": str, "recipient": str, "recipient_masked": str,
                "state": str, "attempts": int, "remote_id": str, "remote_url": str, "idempotency_key": str,
                "last_error": str, "created_at": str, "updated_at": str,
            },
            pk="id",
            foreign_keys=[("alert", "alerts", "identifier")],
            defaults={"recipient": "", "language": "", "attempts": 0},
            not_null={"alert", "channel", "language", "recipient", "state"},
        )
        table("deliveries").create_index(["alert", "channel", "language", "recipient"], unique=True)
        table("deliveries").create_index(["state"])
        table("events").create(
            {
                "id": int, "event_id": str, "occurred_at": str, "recorded_at": str, "type": str,
                "phase": str, "actor": str, "incident": str, "alert": str, "channel": str,
                "description": str, "details": str, "pinned": int, "supersedes": str,
                "prev_hash": str, "hash": str,
            },
            pk="id",
            not_null={"event_id", "occurred_at", "recorded_at", "type", "phase", "actor", "prev_hash", "hash"},
            defaults={"pinned": 0},
        )
        table("events").create_index(["event_id"], unique=True)
        table("events").create_index(["incident"])
        for action in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
                f"BEGIN SELECT RAISE(ABORT, 'events are append-only: {action} refused'); END"
            )

    @migrations()
    def m002_drafts(db: Database) -> None:
        db.table("drafts").create(
            {
                "id": int, "created_at": str, "drafted_by": str, "template": str, "variables": str, "text": str,
                "issue": str, "only": str, "state": str, "decided_by": str, "decided_at": str, "reason": str,
                "alert": str,
            },
            pk="id",
        )

    @migrations()
    def m003_draft_accounts(db: Database) -> None:
        # The drafter's OS account: the second person must approve from another (a name set in
        # $BROADCAST_OPERATOR is not a second person).
        db.table("drafts").add_column("drafted_account", str)

    @migrations()
    def m004_alert_key_spaces(db: Database) -> None:
        # A random value per alert, mixed into its delivery keys: alert identifiers restart with a restored or
        # copied log (and repeat across workspaces), so keys from them alone could make a platform take a new
        # message for an old one. Alerts recorded before this keep the keys they were sent with.
        db.table("alerts").add_column("key_space", str)

    @migrations()
    def m005_events_by_type(db: Database) -> None:
        db.execute(EVENTS_BY_TYPE)

    @migrations()
    def m006_deliveries_posts(db: Database) -> None:
        db.execute(POSTS_BY_STATE)

    return migrations


def lock_wait() -> float:
    """Seconds to wait for another broadcast process to finish writing the log: $BROADCAST_LOCK_WAIT, else 30."""
    raw = os.environ.get("BROADCAST_LOCK_WAIT", "").strip()
    try:
        wait = float(raw) if raw else 30.0
    except ValueError:
        raise StoreError(f"BROADCAST_LOCK_WAIT={raw!r} is not a number of seconds", hint="e.g. 30") from None
    if not 0 < wait <= 3600:
        raise StoreError(f"BROADCAST_LOCK_WAIT={raw!r} must be above 0 and at most 3600 seconds", hint="e.g. 30")
    return wait


def unusable(exc: sqlite3.DatabaseError, path: Path | str | None = None) -> StoreError:
    """What SQLite's complaint about the log means for the duty officer, and what to do about it."""
    where = f"the log database {path}" if path else "the log database"
    if isinstance(exc, sqlite3.OperationalError):  # locked past the busy timeout, disk full, not writable
        return StoreError(f"cannot use {where}: {exc}",
                          hint="if another broadcast command is running, let it finish and run this again; "
                          "otherwise check the disk is not full and the folder is writable")
    return StoreError(f"cannot use {where}: {exc}",
                      hint="the file is damaged: move it aside (keep it: it is the record and evidence), restore the "
                      "latest copy (docs/evidence.md), check it with: broadcast review verify, then run this again")


def _marker(marker: Path) -> dict[str, Any]:
    """The marker file's record ({} when it is missing or unreadable)."""
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_marker(marker: Path, data: dict[str, Any]) -> None:
    """Replace the marker; issued numbers only ever go up (another process may have written a higher one)."""
    now = _marker(marker).get("issued") or {}
    issued = dict(data.get("issued") or {})
    for year, number in now.items():
        issued[year] = max(int(issued.get(year, 0)), int(number))
    data = {**data, "issued": issued}
    staged = marker.with_name(f"{marker.name}.{os.getpid()}.new")
    staged.write_text(canonical_json(data) + "\n", encoding="utf-8")
    staged.replace(marker)


def _started(marker: Path) -> str:
    try:
        return str(json.loads(marker.read_text(encoding="utf-8"))["created_at"])[:16].replace("T", " ") + "Z"
    except (OSError, ValueError, KeyError, TypeError):
        return "an earlier run"


def open_store(workspace: Workspace, *, create: bool = True, readonly: bool = False) -> Store:
    """The workspace's log: its PostgreSQL database when `[store] url` names one, else its SQLite file."""
    url = workspace.store_url()
    if url:
        return Store.open_url(url, readonly=readonly)
    if readonly:
        return Store.open_readonly(workspace.db_path)
    return Store.open(workspace.db_path, create=create)


class Store:
    """One workspace's log. Open with `open_store(workspace)`, `Store.open(path)` or `Store.open_url(url)`."""

    def __init__(self, conn: sqlite3.Connection | PgConnection, path: Path | None, *, url: str | None = None,
                 sql: Dialect = SQLite):
        self.conn: Any = conn  # sqlite3.Connection, or a PgConnection that takes the same SQL
        self.path = path  # the SQLite file; None on PostgreSQL
        self.url = url  # the PostgreSQL URL; None on SQLite
        self.sql = sql
        self._db: Database | None = None
        self._issued: tuple[Path, dict[str, Any]] | None = None  # the marker's record, once the alert commits
        self._alerts_recorded = 0  # by this store: with SQLite's data_version, whether the alerts may have changed

    def _migrated(self) -> bool:
        """Whether every migration is applied, asked without sqlite-utils (its import costs a fresh process about
        60 ms, and is needed only when there is something to apply)."""
        from broadcast.sql import POSTGRES_MIGRATIONS

        try:
            applied = {row[0] for row in self.conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'broadcast'")}
        except sqlite3.OperationalError:  # a new log: no table yet
            return False
        return applied >= {name for name, _ in POSTGRES_MIGRATIONS}

    @property
    def where(self) -> str:
        """Where the log is, for people (a PostgreSQL URL without its password)."""
        from broadcast.sql import redact

        return redact(self.url) if self.url else str(self.path)

    @classmethod
    def open_url(cls, url: str, *, readonly: bool = False) -> Store:
        """Open (and migrate) a PostgreSQL log; writers take one lock, so N machines make one chain."""
        from urllib.parse import urlsplit

        from broadcast.secrets import remember
        from broadcast.sql import connect, migrate_postgres, redact

        remember(urlsplit(url).password or "")  # masked in every error, as a channel's secrets are
        try:
            conn = connect(url, readonly=readonly, wait=lock_wait())
            if not readonly:
                migrate_postgres(conn)
        except sqlite3.DatabaseError as exc:
            raise unusable(exc, redact(url)) from exc
        return cls(conn, None, url=url, sql=PostgreSQL)

    @classmethod
    def open(cls, path: Path | str, *, create: bool = True) -> Store:
        """Open (and migrate) the log at `path`; WAL mode, a busy timeout, foreign keys on.

        A log this workspace has had (its `-id` marker is there) that is now missing or empty is refused rather
        than started afresh: a new log would lose the record and reuse alert identifiers.
        """
        path = Path(path)
        marker = path.with_name(path.name + MARKER_SUFFIX)
        missing = not path.exists() or path.stat().st_size == 0
        if missing and marker.is_file():
            raise StoreError(
                f"the log database {path} is {'empty' if path.exists() else 'missing'}, but this workspace has kept "
                f"one since {_started(marker)}; nothing was done",
                hint=f"restore {path.name} from the latest copy (docs/evidence.md), then run the command again. "
                f"Only to start a new, empty log on purpose: delete {marker}",
            )
        if not create and missing:
            raise StoreError(
                f"no log database at {path}",
                hint="run the command from the workspace that holds broadcast.db, or pass --workspace",
            )
        try:
            wait = lock_wait()
            conn = sqlite3.connect(path, isolation_level=None, timeout=wait)
            conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL with NORMAL survives a killed process (what the outbox guards against); only a power cut can
            # lose the last commits, and fsync on every delivery would cost more than the fan-out itself.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(conn, path)
            if not store._migrated():
                with store.transaction():
                    _migrations().apply(store.db)
            conn.execute(NEWEST).fetchone()
        except sqlite3.DatabaseError as exc:
            raise unusable(exc, path) from exc
        if not marker.exists():
            with contextlib.suppress(OSError):  # a read-only folder: the log still works, unguarded
                marker.write_text(canonical_json({"database": path.name, "created_at": isoformat(utcnow())}) + "\n",
                                  encoding="utf-8")
        return store

    @classmethod
    def open_readonly(cls, path: Path | str, *, copy: bool = False) -> Store:
        """Open the log to read only: nothing is migrated or written. A `copy` (an evidence copy), or a log in a
        folder that cannot be written, is opened as a file that cannot change (SQLite's `immutable`): not even
        the -wal and -shm files are made beside it."""
        path = Path(path)
        if not path.is_file() or path.stat().st_size == 0:
            raise StoreError(f"no log database at {path}",
                             hint="give the path of a copy of broadcast.db, or run it from the workspace")
        fixed = copy or not os.access(path.parent, os.W_OK)
        try:
            conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro{'&immutable=1' if fixed else ''}",
                                   uri=True, isolation_level=None, timeout=30)
            conn.execute("SELECT count(*) FROM events").fetchone()
        except sqlite3.DatabaseError as exc:
            raise unusable(exc, path) from exc
        return cls(conn, path)

    @property
    def db(self) -> Database:
        if self._db is None:
            from sqlite_utils import Database

            self._db = Database(self.conn)
        return self._db

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same log, even while another process writes to it."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if self.sql is PostgreSQL else "BEGIN")
        try:
            yield
        finally:
            self.conn.execute("ROLLBACK")

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """Insert one row (names quoted: `references` and `only` are words PostgreSQL keeps)."""
        names = ", ".join(f'"{name}"' for name in row)
        self.conn.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))

    def rows(self, table: str, where: str | None = None, params: list[Any] | None = None, *,
             order_by: str | None = None) -> list[dict[str, Any]]:
        """A table's rows as dicts."""
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + (
            f" ORDER BY {order_by}" if order_by else "")
        return list(rows(self.conn.execute(sql, params or [])))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time: the write lock is taken up front (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory
        lock), so the chain cannot fork and an identifier is never taken twice."""
        if self.conn.in_transaction:
            yield self.conn
            return
        if self.sql is PostgreSQL:  # one round trip for both: a batch of a bulk send pays it every few ms
            self._begin()
        else:
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._issued = None
            raise
        else:
            self.conn.execute("COMMIT")
            if self._issued is not None:
                marker, data = self._issued
                self._issued = None
                with contextlib.suppress(OSError):  # a read-only folder: the log alone decides, as before
                    _write_marker(marker, data)

    def _begin(self, then: str = "") -> tuple[Any, ...] | None:
        """PostgreSQL: begin, lock and run `then` in one round trip (PgConnection.begin)."""
        try:
            return self.conn.begin(then)
        except BaseException:
            if self.conn.in_transaction:  # begun, but the lock was not had (waited past lock_timeout)
                self.conn.execute("ROLLBACK")
            raise

    def append_event(
        self,
        type: str,
        *,
        phase: str,
        actor: str,
        incident: str | None = None,
        alert: str | None = None,
        channel: str | None = None,
        description: str | None = None,
        details: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        pinned: bool = False,
        supersedes: str | None = None,
    ) -> dict[str, Any]:
        """Append one event to the chain and return the stored row."""
        [values] = self._append([{"type": type, "phase": phase, "actor": actor, "incident": incident, "alert": alert,
                                  "channel": channel, "description": description, "details": details,
                                  "occurred_at": occurred_at, "pinned": pinned, "supersedes": supersedes}])
        return dict(zip(STORED_COLUMNS, values, strict=True))

    def append_events(self, events: Iterable[dict[str, Any]], *,
                      changes: Sequence[tuple[str, Sequence[Sequence[Any]]]] = ()) -> int:
        """Append events to the chain in one transaction, reading its head once: each a dict of append_event's
        keywords (`occurred_at` a datetime, or already in the stored form). Each is stored, and hashed, exactly as
        append_event would store it; returns how many. `changes` (SQL, and the rows to run it for) are made in the
        same transaction, before the events: on PostgreSQL the whole is two round trips however many rows."""
        return len(self._append(events, changes))

    def _append(self, events: Iterable[dict[str, Any]],
                changes: Sequence[tuple[str, Sequence[Sequence[Any]]]] = ()) -> list[tuple[Any, ...]]:
        """The events as stored rows (STORED_COLUMNS), chained on from the head and inserted by one prepared
        statement, after the changes."""
        events = list(events)
        for event in events:
            if event["phase"] not in PHASES:
                raise ValueError(f"phase must be one of {', '.join(PHASES)}; got {event['phase']!r}")
        if not events and not changes:
            return []
        if self.sql is PostgreSQL and not self.conn.in_transaction:
            # Begin, lock and read the head; then the changes, the events and the commit, pipelined.
            head = self._begin(HEAD)
            try:
                stored = self._chain(events, head)
                self.conn.pipeline([*changes, (INSERT_EVENT, stored)], commit=True)
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            return stored
        with self.transaction():
            for sql, rows in changes:
                if rows:
                    self.conn.executemany(sql, rows)
            stored = self._chain(events, self.conn.execute(HEAD).fetchone() if events else None)
            if len(stored) == 1:
                self.conn.execute(INSERT_EVENT, stored[0])
            elif stored:
                self.conn.executemany(INSERT_EVENT, stored)
        return stored

    @staticmethod
    def _chain(events: list[dict[str, Any]], head: tuple[Any, ...] | None) -> list[tuple[Any, ...]]:
        """The events as stored rows, numbered and hashed on from the head (id, hash) of the chain."""
        recorded = isoformat(utcnow())
        sha, body, new_id, spell = hashlib.sha256, hashed_body, uuid7, canonical_json
        number, prev = (head[0], head[1]) if head else (0, GENESIS)
        stored: list[tuple[Any, ...]] = []
        for event in events:
            when = event.get("occurred_at")
            number += 1
            occurred = recorded if when is None else when if when.__class__ is str else isoformat(when)
            values = (number, str(new_id()), occurred, recorded, event["type"], event["phase"], event["actor"],
                      event.get("incident"), event.get("alert"), event.get("channel"), event.get("description"),
                      spell(event.get("details") or {}), int(event.get("pinned") or False),
                      event.get("supersedes"), prev)
            prev = sha((prev + body(values)).encode("utf-8")).hexdigest()
            stored.append((*values, prev))
        return stored

    def open_incident(self, slug: str, title: str, *, exercise: bool = False, actor: str = "system") -> dict[str, Any]:
        """Create an incident (status open) and log it; an existing slug is refused."""
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM incidents WHERE slug = ?", [slug]).fetchone():
                raise StoreError(f"an incident '{slug}' already exists",
                                 hint="add to it with --incident, or choose another name")
            row = {"slug": slug, "title": title, "status": "open", "exercise": int(exercise),
                   "opened_at": isoformat(utcnow()), "closed_at": None}
            self.insert("incidents", row)
            self.append_event("incident_declared", phase="warn", actor=actor, incident=slug,
                              description=f"Incident opened: {title}", details={"exercise": exercise})
        return row

    def incidents(self, status: str | None = None) -> list[dict[str, Any]]:
        """Incidents, newest first, optionally only those with one status."""
        where, params = ("status = ?", [status]) if status else (None, [])
        return self.rows("incidents", where, params, order_by="opened_at desc")

    def save_alert(self, alert: Alert, *, sent_by: str, approved_by: str | None = None) -> None:
        """Record an Alert (immutable: an identifier is never reused) and log it."""
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM alerts WHERE identifier = ?", [alert.identifier]).fetchone():
                raise StoreError(f"alert {alert.identifier} already exists: identifiers are never reused")
            self.insert("alerts", {
                "identifier": alert.identifier, "incident": alert.incidents, "msg_type": alert.msg_type,
                "status": alert.status, "references": canonical_json(list(alert.references)),
                "template": alert.template, "template_sha256": alert.template_sha256,
                "variables": canonical_json(alert.variables), "alert": canonical_json(alert.to_dict()),
                "sent_at": alert.sent, "sent_by": sent_by, "approved_by": approved_by,
                "key_space": secrets.token_hex(16),
            })
            self._alerts_recorded += 1
            self.append_event("alert_issued", phase="warn", actor=sent_by, incident=alert.incidents,
                              alert=alert.identifier, description=alert.infos[0].headline if alert.infos else None,
                              details={"msg_type": alert.msg_type, "status": alert.status,
                                       "template": alert.template, "template_sha256": alert.template_sha256,
                                       "content_sha256": content_sha256(alert)})

    def key_space(self, identifier: str) -> str:
        """The alert's random part of every delivery key ('' for an alert recorded before there was one)."""
        row = self.conn.execute("SELECT key_space FROM alerts WHERE identifier = ?", [identifier]).fetchone()
        return (row[0] or "") if row else ""

    def alerts(self, incident: str | None = None) -> list[Alert]:
        """Alerts in the order they were recorded, optionally one incident's."""
        return [alert for alert, _ in self.stored_alerts(incident)]

    def stored_alerts(self, incident: str | None = None) -> list[tuple[Alert, str]]:
        """Alerts in the order they were recorded, each with its stored text (what `alert_issued` hashes)."""
        from broadcast.alert import Alert

        return [(Alert.from_dict(json.loads(text)), text) for text in self.alert_texts(incident)]

    def alerts_version(self) -> tuple[int, int] | None:
        """A value that differs whenever the alerts may have changed since it was last asked: another connection's
        commit (SQLite's data_version) or an alert this store recorded. None on PostgreSQL, which cannot say."""
        if self.url is not None:
            return None
        return self.conn.execute("PRAGMA data_version").fetchone()[0], self._alerts_recorded

    def alert_texts(self, incident: str | None = None) -> list[str]:
        """The stored text of each alert, in the order recorded."""
        where, params = (" WHERE incident = ?", [incident]) if incident else ("", [])
        return [text for (text,) in self.conn.execute(f"SELECT alert FROM alerts{where} ORDER BY rowid", params)]

    def add_deliveries(self, alert: str, rows: list[dict[str, Any]], *, actor: str) -> None:
        """Write delivery rows as pending before the first byte goes out; rows already there are kept. Each new row
        of a channel (not a list's person) is logged as queued, in one append after them."""
        now = isoformat(utcnow())
        with self.transaction():
            incident, queued = self.incident_of(alert), []
            for row in rows:
                cursor = self.conn.execute(
                    "INSERT INTO deliveries (alert, channel, language, recipient, recipient_masked, state, attempts, "
                    "idempotency_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [alert, row["channel"], row.get("language", ""), row.get("recipient", ""),
                     row.get("recipient_masked"), row["idempotency_key"], now, now],
                )
                if cursor.rowcount and not row.get("recipient"):
                    queued.append({"type": "delivery_queued", "phase": "warn", "actor": actor, "alert": alert,
                                   "channel": row["channel"], "incident": incident,
                                   "details": {"language": row.get("language", ""), "key": row["idempotency_key"]}})
            self.append_events(queued)

    def deliveries(self, alert: str, states: tuple[str, ...] = (), *,
                   recipients: bool | None = None) -> list[dict[str, Any]]:
        """One alert's delivery rows, optionally only those in the given states.

        `recipients=False` leaves out the per-person rows of list channels (there may be a hundred thousand);
        `True` gives only those.
        """
        sql, params = "alert = ?", [alert]
        if recipients is not None:
            sql += " AND recipient != ''" if recipients else " AND recipient = ''"
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params += list(states)
        return self.rows("deliveries", sql, params, order_by="id")

    def transition(self, delivery: dict[str, Any], state: str, event: str, *, actor: str,
                   description: str | None = None, details: dict[str, Any] | None = None,
                   **fields: Any) -> None:
        """Move a delivery to `state` and log why, in one transaction."""
        if state not in DELIVERY_STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        changes = {"state": state, "updated_at": isoformat(utcnow()), **fields}
        with self.transaction():
            assignments = ", ".join(f"{name} = ?" for name in changes)
            self.conn.execute(f"UPDATE deliveries SET {assignments} WHERE id = ?", [*changes.values(), delivery["id"]])
            self.append_event(event, phase="warn", actor=actor, alert=delivery["alert"], channel=delivery["channel"],
                              incident=self.incident_of(delivery["alert"]), description=description,
                              details={"state": state, "language": delivery.get("language", ""),
                                       "delivery": delivery["id"], **(details or {})})

    def incident_of(self, alert: str) -> str | None:
        """The incident an alert belongs to."""
        row = self.conn.execute("SELECT incident FROM alerts WHERE identifier = ?", [alert]).fetchone()
        return row[0] if row else None

    def next_identifier(self, year: int) -> str:
        """The next alert identifier, A-<year>-<number>; call inside the transaction that saves the alert."""
        prefix = f"A-{year}-"
        row = self.conn.execute("SELECT identifier FROM alerts WHERE identifier LIKE ? "
                                "ORDER BY length(identifier) DESC, identifier DESC LIMIT 1", [prefix + "%"]).fetchone()
        number = int(row[0].removeprefix(prefix)) + 1 if row else 1
        if self.path is None:  # PostgreSQL: the shared log alone decides, under the write lock
            return f"{prefix}{number:04d}"
        # The marker beside the log remembers the highest number issued: a log restored from an older copy goes
        # on from there, so no identifier is issued twice (CAP: unique per sender; aggregators key on it).
        marker = self.path.with_name(self.path.name + MARKER_SUFFIX)
        seen = _marker(marker)
        number = max(number, int((seen.get("issued") or {}).get(str(year), 0)) + 1)
        if seen:  # written once the transaction commits: an alert that was never saved leaves no gap
            self._issued = (marker, {**seen, "issued": {**(seen.get("issued") or {}), str(year): number}})
        return f"{prefix}{number:04d}"

    def events(self, incident: str | None = None) -> Iterator[dict[str, Any]]:
        """Stream events in chain order, optionally only one incident's."""
        sql = "SELECT * FROM events"
        params: list[Any] = []
        if incident is not None:
            sql += " WHERE incident = ?"
            params.append(incident)
        yield from rows(self.conn.execute(sql + " ORDER BY id", params))

    def head(self) -> tuple[int, str]:
        """Return the event count and the chain's head hash."""
        row = self.conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def anchor(self) -> tuple[int, str, str | None]:
        """The chain head as the page publishes it: the last event that is not the page's own publishing (so
        publishing twice with nothing new between gives the same page), as (count, hash, when)."""
        row = self.conn.execute(
            "SELECT id, hash, recorded_at FROM events WHERE type NOT IN ('fallback_published', 'fallback_failed', "
            "'fallback_verified') ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0], row[1], row[2]) if row else (0, GENESIS, None)

    def verify(self, head: tuple[int, str] | None = None) -> Verification:
        """Walk the chain from the first event, then check the records everything reads (alerts, deliveries)
        against it; report the first thing that does not fit. `head` (count, hash): a head published earlier,
        which the chain must still pass through."""
        logged = LoggedRecords()
        result = self._verify_chain(logged.see)
        if not result.ok:
            return result
        if head is not None:
            count, expected = head
            row = self.conn.execute("SELECT hash FROM events WHERE id = ?", [count]).fetchone()
            if row is None:
                return Verification(False, result.count, result.head, count,
                                    f"the published head is event {count}, but the log has only {result.count}")
            if row[0] != expected:
                return Verification(False, result.count, result.head, count,
                                    f"event {count} does not have the published head hash {expected[:16]}...: the "
                                    "log was rewritten since it was published")
        problem = self.check_records(logged)
        if problem:
            return Verification(False, result.count, result.head, problem[0], problem[1])
        return result

    def check_records(self, logged: LoggedRecords | None = None) -> tuple[int | None, str] | None:
        """The stored alerts must be what the chain says was issued, and each delivery's state what its last
        logged event says; (event id or None, why) for the first that is not. `logged`: gathered during the chain
        walk, so verify reads the events once."""
        if logged is None:
            logged = LoggedRecords()
            for event_id, kind, alert, text in self.conn.execute(
                    "SELECT id, type, alert, details FROM events ORDER BY id"):
                logged.see(event_id, kind, alert, text)
        issued, last = logged.issued, logged.last
        for identifier, text in self.conn.execute("SELECT identifier, alert FROM alerts ORDER BY rowid"):
            if identifier not in issued:
                return None, f"alert {identifier} is stored but the log never issued it"
            event_id, digest = issued[identifier]
            # Stored as the canonical JSON content_sha256 hashes: what resend, the page, CAP and exports read.
            if digest != hashlib.sha256(text.encode("utf-8")).hexdigest():
                return event_id, (f"alert {identifier} as stored is not what was issued (event {event_id}): its "
                                  "text was changed afterwards")
        checked = {row[0] for row in self.conn.execute("SELECT identifier FROM alerts WHERE key_space IS NOT NULL")}
        for number, alert, channel, state in self.conn.execute(
                "SELECT id, alert, channel, state FROM deliveries ORDER BY id"):
            if number in last:
                event_id, logged_state = last[number]
                if logged_state != state:
                    return event_id, (f"delivery {number} ({alert}, {channel}) is stored as {state}, but its last "
                                      f"logged change (event {event_id}) made it {logged_state}")
            elif state != "pending" and alert in checked:  # older logs did not name deliveries in every event
                return None, f"delivery {number} ({alert}, {channel}) is {state} with no change of it in the log"
        return None

    def _verify_chain(self, see: Seen | None = None) -> Verification:
        """Walk the chain from the first event; report the first row that does not fit. `see` is shown each event
        that does (its id, type, alert and details)."""
        if self.sql is SQLite:  # PostgreSQL checks its own pages
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check") if r[0] != "ok"]
            if problems:
                return Verification(False, 0, GENESIS, None, f"SQLite integrity check: {problems[0]}")
            return walk_sqlite(self.conn, see=see)
        return walk_chain(self.conn.execute(f"{CHAIN_SELECT} ORDER BY id"), see)
