"""Evidence: the whole hash chain checked beside an export (by a helper process for a large log), and the digest
of the events an export holds."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcast.review.timeline import COLUMNS, SELECT, find_incident, snapshot, timeline

if TYPE_CHECKING:
    import sqlite3

    from broadcast.store import Store, Verification

HASHED = COLUMNS[:15]  # broadcast.store.EVENT_COLUMNS
_SORTED = sorted(range(len(HASHED)), key=HASHED.__getitem__)
_BODY = "{" + ",".join(f"{json.dumps(HASHED[i])}:%s" for i in _SORTED) + "}"
_SCALARS: dict[type, Any] = {str: json.encoder.encode_basestring, int: str, type(None): lambda _: "null"}


def canonical_body(values: tuple[Any, ...]) -> str:
    """canonical_json of an event's hashed columns, built from a template: the stored types are text, integers
    and null, and the general encoder (kept for anything else) costs twice as much per event."""
    try:
        return _BODY % tuple(_SCALARS[type(values[i])](values[i]) for i in _SORTED)
    except KeyError:
        from broadcast.store import canonical_json

        return canonical_json(dict(zip(HASHED, values, strict=False)))


class ChainCheck:
    """Store.verify's walk, one event at a time, at twice its speed (canonical_body): the check an export waits on."""

    def __init__(self) -> None:
        from broadcast.store import GENESIS

        self.count, self.prev = 0, GENESIS
        self.broken_at: int | None = None
        self.reason: str | None = None

    def add(self, values: tuple[Any, ...]) -> None:
        if self.reason is not None:
            return
        number = self.count + 1
        if values[0] != number:
            self.broken_at, self.reason = number, f"event {number} is missing (next is {values[0]})"
        elif values[14] != self.prev:
            self.broken_at, self.reason = values[0], "prev_hash does not match the event before"
        elif hashlib.sha256((self.prev + canonical_body(values)).encode()).hexdigest() != values[15]:
            self.broken_at, self.reason = values[0], "content does not match its hash"
        else:
            self.count, self.prev = number, values[15]


PARALLEL_FROM = 20_000  # events: from here the chain is checked in a second process while the incident is read
HELPER = "import sys; from broadcast.review.evidence import verify_main; verify_main(sys.argv)"


class ChainJob:
    """The whole chain being checked as it was when the job started: `result()` waits for the Verification.

    A large log is checked by a helper process (a core of its own) while the caller reads and writes the incident;
    a small one, or where no process can start, here when the result is asked for.
    """

    def __init__(self, store: Store, *, parallel_from: int = PARALLEL_FROM):
        import subprocess
        import sys

        self.store = store
        self.count, self.head = store.head()
        self.process: subprocess.Popen[bytes] | None = None
        if self.count >= parallel_from:
            import broadcast

            package_root = str(Path(broadcast.__file__).resolve().parent.parent)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (package_root,
                                                                             os.environ.get("PYTHONPATH"))))}
            with contextlib.suppress(OSError):
                self.process = subprocess.Popen(
                    [sys.executable, "-c", HELPER, str(store.path), str(self.count), self.head],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)

    def result(self) -> Verification:
        from broadcast.store import Verification

        if self.process is not None:
            out, _ = self.process.communicate()
            self.process = None
            with contextlib.suppress(ValueError, TypeError):
                return Verification(*json.loads(out))
        return Verification(*verify_upto(self.store.conn, self.count, self.head))

    def cancel(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def verify_main(argv: list[str]) -> None:
    """The helper process: verify the log at argv[1] up to event argv[2], whose hash must be argv[3]; print JSON."""
    import sqlite3

    conn = sqlite3.connect(argv[1], timeout=30)
    try:
        print(json.dumps(verify_upto(conn, int(argv[2]), argv[3])))
    finally:
        conn.close()


def verify_upto(conn: sqlite3.Connection, count: int, head: str) -> tuple[bool, int, str, int | None, str | None]:
    """Store.verify, up to the event that was the head when the export began (its hash must still be `head`)."""
    from broadcast.store import GENESIS

    problems = [r[0] for r in conn.execute("PRAGMA quick_check") if r[0] != "ok"]
    if problems:
        return False, 0, GENESIS, None, f"SQLite integrity check: {problems[0]}"
    check = ChainCheck()
    for values in conn.execute(f"{SELECT} WHERE id <= ? ORDER BY id", [count]):
        check.add(values)
        if check.reason is not None:
            break
    if check.reason is None and check.prev != head:
        return False, check.count, check.prev, None, "the log changed while it was being read"
    return check.reason is None, check.count, check.prev, check.broken_at, check.reason


@dataclass
class Digest:
    """The count and SHA-256 of an export's entry hashes: what a third party compares with an anchored copy."""

    count: int = 0
    first_chain_id: int | None = None
    last_chain_id: int | None = None
    last_hash: str | None = None

    def __post_init__(self) -> None:
        self._sha = hashlib.sha256()

    def add(self, row: dict[str, Any]) -> None:
        self.count += 1
        self.first_chain_id = self.first_chain_id or row["chain_id"]
        self.last_chain_id, self.last_hash = row["chain_id"], row["hash"]
        self._sha.update((row["hash"] + "\n").encode("ascii"))

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def digest(rows: Iterable[dict[str, Any]]) -> Digest:
    """Digest a stream of timeline rows."""
    result = Digest()
    for row in rows:
        result.add(row)
    return result


@dataclass(frozen=True)
class IncidentCheck:
    """`review verify INCIDENT`: the whole chain's result and what the incident's own events add up to."""

    chain: Verification
    incident: dict[str, Any]
    digest: Digest


def verify_incident(store: Store, slug: str) -> IncidentCheck:
    """Verify the whole chain, and count and digest one incident's events (all of them, as an export has)."""
    incident = find_incident(store, slug)
    with snapshot(store):
        chain = ChainJob(store)
        try:
            result = digest(timeline(store, slug))
        except BaseException:
            chain.cancel()
            raise
        return IncidentCheck(chain.result(), incident, result)
