"""Moving a log from one store to another (`broadcast store migrate --to URL`), and what a store holds
(`broadcast store info`).

The copy is exact: every row of every table, events with their ids and hashes, so the chain verifies the same on
both sides and the published head still points into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broadcast.errors import StoreError

if TYPE_CHECKING:
    from broadcast.store import Store, Verification

# In an order the foreign keys accept; each table's columns as both stores have them.
TABLES = ("incidents", "alerts", "deliveries", "events", "drafts")
BATCH = 2000


@dataclass
class Info:
    kind: str  # sqlite, postgresql
    where: str  # the file, or the URL without its password
    rows: dict[str, int]
    events: int
    head: str
    size_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "rows": self.rows, "events": self.events, "head": self.head,
                "size_bytes": self.size_bytes}


def info(store: Store) -> Info:
    """Which store, where, how big, and the chain head."""
    rows = {table: int(store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in TABLES}
    count, head = store.head()
    if store.path is not None:
        size: int | None = sum(p.stat().st_size for p in (store.path, store.path.with_name(store.path.name + "-wal"))
                               if p.exists())
    else:
        size = int(store.conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    return Info(store.sql.name, store.where, rows, count, head, size)


@dataclass
class Migration:
    source: Verification
    target: Verification
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.source.ok and self.target.ok and self.source.count == self.target.count
                and self.source.head == self.target.head)


def migrate(source: Store, target: Store) -> Migration:
    """Copy every row of `source` into the empty `target`, in one transaction, then verify the chain on both sides."""
    before = source.verify()
    if not before.ok:
        raise StoreError(f"the log at {source.where} does not verify: {before.reason}; nothing was copied",
                         hint="copy only a log that verifies (broadcast review verify); keep this one as evidence")
    held = {table: int(target.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in TABLES}
    if any(held.values()):
        raise StoreError(f"{target.where} already holds a log ({held['events']:,} events); nothing was copied",
                         hint="migrate into a new, empty database: createdb broadcast_new, then --to that URL")
    copied: dict[str, int] = {}
    with source.snapshot(), target.transaction():
        for table in TABLES:
            copied[table] = _copy(source, target, table)
        if target.sql.name == "postgresql":
            for table in ("deliveries", "drafts"):  # the next row made there goes on from the copied ones
                target.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
    return Migration(before, target.verify(), copied)


def _copy(source: Store, target: Store, table: str) -> int:
    order = "rowid" if table == "alerts" else "id" if table != "incidents" else "opened_at, slug"
    cursor = source.conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
    # alerts.rowid is made by each store in the order the rows arrive: the copy keeps the order, not the number.
    names = [d[0] for d in cursor.description if d[0] != "rowid"]
    keep = [i for i, d in enumerate(cursor.description) if d[0] != "rowid"]
    sql = (f"INSERT INTO {table} ({', '.join(f'{chr(34)}{n}{chr(34)}' for n in names)}) "
           f"VALUES ({', '.join('?' for _ in names)})")
    count = 0
    while batch := cursor.fetchmany(BATCH):
        target.conn.executemany(sql, [[row[i] for i in keep] for row in batch])
        count += len(batch)
    return count
