"""The outbox at list scale: delivery state changes and their events, written in batches."""

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
        self.waiters: list[asyncio.Future[None]] = []
        self.written = 0
        self.error: Exception | None = None  # the storage error that stopped the writing, once there is one
        self._task: asyncio.Task[None] | None = None
        self._soon = False

    @property
    def incident(self) -> str | None:
        return self.incidents[self.alert]

    def record(self, row: dict[str, Any], state: str, event: str, *, description: str,
               details: dict[str, Any], **fields: Any) -> None:
        row["state"] = state
        self.updates.append(({"state": state, "updated_at": isoformat(utcnow()), **fields}, row["id"]))
        who = {"recipient": row["recipient_masked"]} if row.get("recipient") else {}  # a list's person, masked
        self.events.append({"type": event, "channel": row["channel"], "description": description,
                            "alert": row.get("alert", self.alert),
                            "details": {"state": state, "language": row["language"], "delivery": row["id"],
                                        **who, **details}})
        if len(self.events) >= self.batch:
            self.flush()

    def note(self, event: str, *, channel: str, description: str, details: dict[str, Any]) -> None:
        self.events.append({"type": event, "channel": channel, "description": description, "details": details})

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
        updates, events, waiters = self.updates, self.events, self.waiters
        self.updates, self.events, self.waiters = [], [], []
        try:
            self._write(updates, events)
        except Exception as exc:
            self.error = exc
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            raise
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _write(self, updates: list[tuple[dict[str, Any], int]], events: list[dict[str, Any]]) -> None:
        if updates or events:
            with self.store.transaction() as conn:
                for fields, row_id in updates:
                    assignments = ", ".join(f"{name} = ?" for name in fields)
                    conn.execute(f"UPDATE deliveries SET {assignments} WHERE id = ?", [*fields.values(), row_id])
                for event in events:
                    alert = event.get("alert", self.alert)
                    if alert not in self.incidents:
                        self.incidents[alert] = self.store.incident_of(alert)
                    self.store.append_event(event["type"], phase="warn", actor=self.actor, alert=alert,
                                            incident=self.incidents[alert], channel=event["channel"],
                                            description=event["description"], details=event["details"])
            self.written += len(updates)

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
