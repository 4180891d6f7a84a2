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

from broadcast.review.timeline import SELECT, find_incident, snapshot, timeline

if TYPE_CHECKING:
    from broadcast.store import Store, Verification

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
        if self.count >= parallel_from and store.path is not None:  # a file a second process can open
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


def verify_upto(conn: Any, count: int, head: str) -> tuple[bool, int, str, int | None, str | None]:
    """Store.verify, up to the event that was the head when the export began (its hash must still be `head`)."""
    import sqlite3

    from broadcast.store import GENESIS, walk_chain, walk_sqlite

    if isinstance(conn, sqlite3.Connection):  # PostgreSQL checks its own pages
        problems = [r[0] for r in conn.execute("PRAGMA quick_check") if r[0] != "ok"]
        if problems:
            return False, 0, GENESIS, None, f"SQLite integrity check: {problems[0]}"
        result = walk_sqlite(conn, count)
    else:
        result = walk_chain(conn.execute(f"{SELECT} WHERE id <= ? ORDER BY id", [count]))
    if result.ok and result.head != head:
        return False, result.count, result.head, None, "the log changed while it was being read"
    return result.ok, result.count, result.head, result.broken_at, result.reason


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
