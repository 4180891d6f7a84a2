"""What differs between the two stores' SQL, in one place: SQLite (the embedded default) and PostgreSQL (several
duty officers sharing one log).

Everything else is written once, in the SQL both understand (`?` placeholders, ROW_NUMBER, COALESCE,
`ON CONFLICT DO NOTHING`, double-quoted names). A query reaches for the few things they spell differently through
`store.sql`: a JSON field of the `details` text, seconds between two stored instants.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

# Every writer takes this transaction-scoped lock first: one writer at a time, as SQLite's BEGIN IMMEDIATE gives, so
# the chain cannot fork and two machines never take the same alert identifier.
WRITE_LOCK = 0x62726F6164  # "broad"
LONG_LIST = 32  # parameters above which a statement is planned with its values, never prepared


class SQLite:
    name = "sqlite"

    @staticmethod
    def json(column: str, key: str) -> str:
        """A field of a JSON text column, as text (or a number, as SQLite keeps it)."""
        return f"json_extract({column}, '$.{key}')"

    @staticmethod
    def json_int(column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    @staticmethod
    def seconds(later: str, earlier: str) -> str:
        """Seconds from one stored instant (ISO 8601 text) to another."""
        return f"((julianday({later}) - julianday({earlier})) * 86400)"

    @staticmethod
    def whole(number: str) -> str:
        """A non-negative number's whole part."""
        return f"CAST({number} AS INTEGER)"

    @staticmethod
    def binary(text: str) -> str:
        """Text to sort as Python sorts str (by code point; UTF-8's byte order is the same), not by a locale."""
        return text


class PostgreSQL:
    name = "postgresql"

    @staticmethod
    def json(column: str, key: str) -> str:
        return f"(({column})::jsonb ->> '{key}')"

    @staticmethod
    def json_int(column: str, key: str) -> str:
        return f"((({column})::jsonb ->> '{key}')::bigint)"

    @staticmethod
    def seconds(later: str, earlier: str) -> str:
        return f"(EXTRACT(EPOCH FROM (({later})::timestamptz - ({earlier})::timestamptz)))"

    @staticmethod
    def whole(number: str) -> str:
        return f"FLOOR({number})::bigint"

    @staticmethod
    def binary(text: str) -> str:
        return f'({text}) COLLATE "C"'


Dialect = type[SQLite] | type[PostgreSQL]


def placeholders(sql: str) -> str:
    """SQLite's `?` as psycopg's `%s` (and a literal `%` doubled), outside quoted text."""
    out, quote = [], ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        else:
            out.append("%s" if char == "?" else "%%" if char == "%" else char)
    return "".join(out)


class PgConnection:
    """A psycopg connection that takes the SQL the rest of the code writes for SQLite (`?` placeholders) and
    raises the DB-API errors it catches under sqlite3's names (OperationalError: the log cannot be used now)."""

    def __init__(self, conn: psycopg.Connection[Any]):
        self.raw = conn

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        with _as_sqlite_errors():
            if not params and "%" not in sql and "?" not in sql:
                # As written, by the simple protocol: one round trip even for "BEGIN; SELECT ..."
                return self.raw.execute(sql)
            # A long list of values (`recipient IN (?, ?, ...)`) is planned with them: psycopg prepares a statement
            # run often, and a generic plan cannot hash a list of parameters, so it compares each row with every one.
            return self.raw.execute(_placeholders(sql), list(params),
                                    prepare=False if len(params) > LONG_LIST else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows: psycopg prepares it once and pipelines the rows (one round trip, not one
        a row), as the bulk sender's batches need."""
        with _as_sqlite_errors(), self.raw.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)

    def begin(self, then: str = "") -> tuple[Any, ...] | None:
        """BEGIN and take the write lock, and run `then` (a read the writer needs first), in one round trip by the
        simple protocol; returns `then`'s first row. Should the lock not be had in time, the transaction is open:
        the caller rolls it back."""
        with _as_sqlite_errors():
            cursor = self.raw.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                                      + (f"; {then}" if then else ""))
            cursor.nextset()
            if not then:
                return None
            cursor.nextset()
            return cursor.fetchone()

    def pipeline(self, statements: Iterable[tuple[str, Sequence[Sequence[Any]]]], *, commit: bool = False) -> None:
        """Statements, each run for its rows, then (if asked) COMMIT, all in one round trip. Should one fail, the
        rest are not run and the transaction is left failed, for the caller to roll back."""
        with _as_sqlite_errors(), self.raw.pipeline(), self.raw.cursor() as cursor:
            for sql, rows in statements:
                if rows:
                    cursor.executemany(_placeholders(sql), rows)
            if commit:
                cursor.execute("COMMIT")

    def close(self) -> None:
        self.raw.close()


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """placeholders(), remembered: the same few statements are written again and again."""
    return placeholders(sql)


@contextlib.contextmanager
def _as_sqlite_errors() -> Iterator[None]:
    import psycopg

    try:
        yield
    except (psycopg.IntegrityError, psycopg.errors.RaiseException) as exc:  # a constraint, or our trigger
        raise sqlite3.IntegrityError(str(exc).strip()) from exc
    except (psycopg.OperationalError, psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
        raise sqlite3.OperationalError(str(exc).strip()) from exc
    except psycopg.Error as exc:
        raise sqlite3.DatabaseError(str(exc).strip()) from exc


def connect(url: str, *, readonly: bool = False, wait: float = 30.0) -> PgConnection:
    """Open a PostgreSQL log: autocommit (transactions are explicit, as with SQLite here), numbers as Python ints."""
    try:
        import psycopg
        from psycopg.adapt import Loader
    except ImportError:
        from broadcast.errors import StoreError

        raise StoreError("the log is on PostgreSQL ([store] url in broadcast.toml), and its driver is not installed",
                         hint="pip install 'broadcast[postgres]' (psycopg 3)") from None

    class Number(Loader):
        """SUM() and friends give numeric: an int when whole, as SQLite gives."""

        def load(self, data: Any) -> Any:
            text = bytes(data).decode()
            return int(text) if text.lstrip("-").isdigit() else float(text)

    options = f"-c lock_timeout={int(wait * 1000)} -c statement_timeout=0"
    if readonly:
        options += " -c default_transaction_read_only=on"
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=int(max(wait, 2)), options=options,
                               application_name="broadcast")
    except psycopg.OperationalError as exc:
        raise sqlite3.OperationalError(str(exc).strip().splitlines()[0] if str(exc).strip() else
                                       "cannot connect") from exc
    conn.adapters.register_loader("numeric", Number)
    return PgConnection(conn)


def redact(url: str) -> str:
    """The URL without its password, for messages and `store info`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, parts.fragment))


# Events found by their kind, and the alert they are about: the kill switches (every warn), a list's selection and
# queueing (every send to a list), the people a follow-up goes to. Each was a walk of the whole log: 50 ms each with
# 100,000 events in it (one send to a long list), 480 ms the first time. The kind leads, so a delivery's event is
# added at the end of its own kind and alert's entries: one more page per commit. Migration m005, in both stores.
EVENTS_BY_TYPE = "CREATE INDEX idx_events_type_alert ON events (type, alert)"
# An alert's posts (not a list's people) by state: what a send, a resend and a retraction look up. Through the state
# index that was every row in that state, of every alert: 135 ms for the posts sent, after one send to 100,000
# people. Partial, so a list's rows are not in it and queueing a list pays nothing for it. Migration m006.
POSTS_BY_STATE = "CREATE INDEX idx_deliveries_posts ON deliveries (alert, state) WHERE recipient = ''"

# The log's tables in PostgreSQL, as the SQLite migrations make them (sqlite-utils), with the same column names and
# text timestamps, so an event hashes the same on both and a log moves between them unchanged. The names are the
# SQLite migrations' too: a SQLite log with all of them applied needs nothing from sqlite-utils.
POSTGRES_MIGRATIONS: list[tuple[str, str]] = [
    ("m001_initial", """
CREATE TABLE incidents (slug text PRIMARY KEY, title text, status text, exercise bigint, opened_at text,
    closed_at text);
CREATE TABLE alerts (rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE, identifier text PRIMARY KEY,
    incident text REFERENCES incidents (slug), msg_type text, status text, "references" text, template text,
    template_sha256 text, variables text, alert text, sent_at text, sent_by text, approved_by text);
CREATE TABLE deliveries (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    alert text NOT NULL REFERENCES alerts (identifier), channel text NOT NULL, language text NOT NULL DEFAULT '',
    recipient text NOT NULL DEFAULT '', recipient_masked text, state text NOT NULL, attempts bigint DEFAULT 0,
    remote_id text, remote_url text, idempotency_key text, last_error text, created_at text, updated_at text);
CREATE UNIQUE INDEX idx_deliveries_alert_channel_language_recipient
    ON deliveries (alert, channel, language, recipient);
CREATE INDEX idx_deliveries_state ON deliveries (state);
CREATE TABLE events (id bigint PRIMARY KEY, event_id text NOT NULL UNIQUE, occurred_at text NOT NULL,
    recorded_at text NOT NULL, type text NOT NULL, phase text NOT NULL, actor text NOT NULL, incident text,
    alert text, channel text, description text, details text, pinned bigint DEFAULT 0, supersedes text,
    prev_hash text NOT NULL, hash text NOT NULL);
CREATE INDEX idx_events_incident ON events (incident);
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'events are append-only: % refused', TG_OP; END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events FOR EACH ROW
    EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT
    EXECUTE FUNCTION events_append_only();
"""),
    ("m002_drafts", """
CREATE TABLE drafts (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, created_at text, drafted_by text,
    template text, variables text, text text, issue text, "only" text, state text, decided_by text, decided_at text,
    reason text, alert text);
"""),
    ("m003_draft_accounts", "ALTER TABLE drafts ADD COLUMN drafted_account text;"),
    ("m004_alert_key_spaces", "ALTER TABLE alerts ADD COLUMN key_space text;"),
    ("m005_events_by_type", EVENTS_BY_TYPE),
    ("m006_deliveries_posts", POSTS_BY_STATE),
]


def migrate_postgres(conn: PgConnection) -> None:
    """Bring a PostgreSQL log up to date, under the write lock (another machine may be doing the same)."""
    conn.execute("BEGIN")
    try:
        conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        conn.execute("CREATE TABLE IF NOT EXISTS broadcast_migrations (name text PRIMARY KEY, applied_at text)")
        done = {row[0] for row in conn.execute("SELECT name FROM broadcast_migrations")}
        for name, ddl in POSTGRES_MIGRATIONS:
            if name not in done:
                conn.raw.execute(ddl)
                conn.execute("INSERT INTO broadcast_migrations (name, applied_at) VALUES (?, now()::text)", [name])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def rows(cursor: Any) -> Iterator[dict[str, Any]]:
    """A cursor's rows as dicts, by column name (either driver)."""
    names = [d[0] for d in cursor.description]
    for values in cursor:
        yield dict(zip(names, values, strict=True))
