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

    def __init__(self, store: Store, *, alert: str, actor: str, batch: int = 400, interval: float = 0.005):
        self.store, self.alert, self.actor = store, alert, actor
        self.incident = store.incident_of(alert)
        self.batch, self.interval = batch, interval
        self.updates: list[tuple[dict[str, Any], int]] = []
        self.events: list[dict[str, Any]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.written = 0
        self.error: Exception | None = None  # the storage error that stopped the writing, once there is one
        self._task: asyncio.Task[None] | None = None

    def record(self, row: dict[str, Any], state: str, event: str, *, description: str,
               details: dict[str, Any], **fields: Any) -> None:
        row["state"] = state
        self.updates.append(({"state": state, "updated_at": isoformat(utcnow()), **fields}, row["id"]))
        self.events.append({"type": event, "channel": row["channel"], "description": description,
                            "details": {"state": state, "language": row["language"], "delivery": row["id"],
                                        "recipient": row["recipient_masked"], **details}})
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
        await future

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
                    self.store.append_event(event["type"], phase="warn", actor=self.actor, alert=self.alert,
                                            incident=self.incident, channel=event["channel"],
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
