"""The outbox at list scale: delivery state changes and their events, written in batches.

A batch is one transaction: each statement prepared once and run for all its rows (executemany), the events chained
on from one read of the head (`Store.append_events`; two round trips on PostgreSQL). A list's first attempts are
logged as one event per batch and channel, naming every delivery it moved to `sending` (`deliveries_settled`, as
verify reads it): the row is still `sending` in the log before its request goes out, at a fraction of an event each.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from broadcast.store import isoformat, utcnow

if TYPE_CHECKING:
    from broadcast.store import Store


class Journal:
    """Delivery state changes and their events, written in one transaction per batch.

    `durable()` waits until everything recorded so far is committed: a worker calls it after recording
    `sending` and before the request, so no request goes out that the log does not know may have gone.
    """

    def __init__(self, store: Store, *, alert: str, actor: str, batch: int = 400, interval: float = 0.005,
                 eager: bool = False):
        self.store, self.alert, self.actor = store, alert, actor
        self.incidents = {alert: store.incident_of(alert)}
        self.batch, self.interval = batch, interval
        # Eager: a wait for durability is answered in the loop's next turn, with whatever was recorded in this
        # one, rather than at the next tick: the social fan-out's few requests must not wait on a timer.
        self.eager = eager
        self.updates: list[tuple[dict[str, Any], int]] = []
        self.events: list[dict[str, Any]] = []
        self.first: dict[tuple[str, str], list[int]] = {}  # first attempts recorded, by (alert, channel)
        self.waiters: list[asyncio.Future[None]] = []
        self.error: Exception | None = None  # the storage error that stopped the writing, once there is one
        self._task: asyncio.Task[None] | None = None
        self._soon = False

    @property
    def incident(self) -> str | None:
        return self.incidents[self.alert]

    def _incident(self, alert: str) -> str | None:
        if alert not in self.incidents:
            self.incidents[alert] = self.store.incident_of(alert)
        return self.incidents[alert]

    def record(self, row: dict[str, Any], state: str, event: str, *, description: str,
               details: dict[str, Any], **fields: Any) -> None:
        row["state"] = state
        now = isoformat(utcnow())
        self.updates.append(({"state": state, "updated_at": now, **fields}, row["id"]))
        who = {"recipient": row["recipient_masked"]} if row.get("recipient") else {}  # a list's person, masked
        alert = row.get("alert", self.alert)
        self.events.append({"type": event, "phase": "warn", "actor": self.actor, "alert": alert,
                            "incident": self._incident(alert), "channel": row["channel"], "description": description,
                            "occurred_at": now, "details": {"state": state, "language": row["language"],
                                                            "delivery": row["id"], **who, **details}})
        if len(self.events) >= self.batch:
            self.flush()

    def sending(self, row: dict[str, Any], *, attempt: int, key: str, description: str) -> None:
        """Mark a delivery `sending` before its request (then await `durable()`). A first attempt is named in
        its batch's one event; a later one (a retry, or a resend of what may have gone) gets its own."""
        if attempt > 1:
            self.record(row, "sending", "delivery_attempt", description=description,
                        details={"attempt": attempt, "key": key}, attempts=attempt)
            return
        row["state"] = "sending"
        self.updates.append(({"state": "sending", "updated_at": isoformat(utcnow()), "attempts": 1}, row["id"]))
        self.first.setdefault((row.get("alert", self.alert), row["channel"]), []).append(row["id"])
        if len(self.updates) >= self.batch:
            self.flush()

    def note(self, event: str, *, channel: str, description: str, details: dict[str, Any]) -> None:
        self.events.append({"type": event, "phase": "warn", "actor": self.actor, "alert": self.alert,
                            "incident": self.incident, "channel": channel, "description": description,
                            "details": details})

    async def durable(self) -> None:
        if self.error is not None:
            raise self.error
        if not self.updates and not self.events:
            return
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        if self.eager:
            self.soon()
        await future

    def soon(self) -> None:
        """Write what was recorded at the loop's next turn, with whatever else is recorded in this one, without
        waiting for it (a retry's `pending`: nothing waits on it, but a kill during the wait should find it)."""
        if not self._soon:
            self._soon = True
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._soon = False
        if (self.updates or self.events) and self.error is None:
            with contextlib.suppress(Exception):  # kept in self.error, raised to the workers
                self.flush()

    def flush(self) -> None:
        """Write what was recorded; a storage error is raised, and given to every worker waiting on durable()."""
        if self.error is not None:
            raise self.error
        updates, events, first, waiters = self.updates, self.events, self.first, self.waiters
        self.updates, self.events, self.first, self.waiters = [], [], {}, []
        try:
            self._write(updates, self._firsts(first) + events)
        except Exception as exc:
            self.error = exc
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            raise
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _firsts(self, first: dict[tuple[str, str], list[int]]) -> list[dict[str, Any]]:
        """One event per channel for the first attempts in a batch. They come before the batch's other events:
        a delivery's result is only ever recorded in a later batch than its attempt (the request waits for it)."""
        events = []
        for (alert, channel), ids in first.items():
            count = f"{len(ids):,} {'person' if len(ids) == 1 else 'people'}"
            events.append({"type": "delivery_attempt", "phase": "warn", "actor": self.actor, "alert": alert,
                           "incident": self._incident(alert), "channel": channel,
                           "description": f"{channel}: first attempt to {count}",
                           "details": {"state": "sending", "attempt": 1, "deliveries": len(ids),
                                       "deliveries_settled": ids}})
        return events

    def _write(self, updates: list[tuple[dict[str, Any], int]], events: list[dict[str, Any]]) -> None:
        if not (updates or events):
            return
        # A row changed twice in a batch (a retry's `pending`, then its next `sending`) needs only its last values;
        # then each set of columns is one prepared statement, run for all its rows.
        latest: dict[int, dict[str, Any]] = {}
        for fields, row_id in updates:
            if row_id in latest:
                latest[row_id] = {**latest[row_id], **fields}
            else:
                latest[row_id] = fields
        statements: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row_id, fields in latest.items():
            statements.setdefault(tuple(fields), []).append((*fields.values(), row_id))
        self.store.append_events(events, changes=[
            (f"UPDATE deliveries SET {', '.join(f'{name} = ?' for name in names)} WHERE id = ?", rows)
            for names, rows in statements.items()])

    async def __aenter__(self) -> Journal:
        async def tick() -> None:
            while self.error is None:
                await asyncio.sleep(self.interval)
                if self.waiters or len(self.events) >= self.batch // 4:
                    with contextlib.suppress(Exception):  # kept in self.error, raised to the workers
                        self.flush()

        self._task = asyncio.create_task(tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        if self.error is None:
            self.flush()
