"""Send to recipient lists: one delivery per person, written pending first, sent at the platform's rate.

The outbox holds here as in the fan-out, at a scale where one transaction per state change would be the
bottleneck: `Journal` batches the row updates and their events into one transaction per few hundred, and a
delivery is only sent once its `sending` row is committed (a group commit), so after a kill every person is
accounted for. On a resend, a checkable platform (Notify: our key is its `reference`) is asked before anything
is sent again; on one that cannot be asked (Twilio, SMTP) what was in flight is `uncertain`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import ChannelError, Receipt
from broadcast.channels.lists import ListChannel
from broadcast.errors import BroadcastError
from broadcast.prepare.recipients import (
    ListReport,
    Recipient,
    RecipientKey,
    contacts,
    describe,
    read_opt_outs,
    scrub,
    select,
)
from broadcast.send.audience import default_language
from broadcast.send.fanout import Limits, Outcome, delivery_key
from broadcast.send.interrupt import NotStarted
from broadcast.send.journal import Journal
from broadcast.store import isoformat, utcnow

if TYPE_CHECKING:
    import httpx
    from tenacity import RetryCallState

    from broadcast.alert import Alert
    from broadcast.channels.base import Channel
    from broadcast.send.interrupt import Stop
    from broadcast.store import Store
    from broadcast.workspace import Workspace

CHUNK = 500  # a list's rows per look-up of their deliveries, and per turn of the loop while queueing
# Rows per queueing transaction: each commit writes every index page its rows touched, and a person's key is a
# hash, so 500 rows touched ~470 pages of the unique index at 100,000 people; 5,000 halve the queueing time.
QUEUE_COMMIT = 5000
QUEUE_AHEAD = 2  # recipients waiting for a worker, per worker
YIELD_EVERY = 25  # list rows read between turns of the event loop (a row costs tens of microseconds)
# What a send reads of a delivery row (recipient fifth: _dispatch keys on it).
ROW_COLUMNS = "id, alert, channel, language, recipient, recipient_masked, state, attempts, idempotency_key"
Sleep = Callable[[float], Awaitable[None]]


# -- pacing ------------------------------------------------------------------------------------------
class Pace:
    """At most `per_second` units a second (messages, or segments for Twilio); 0 is no limit of ours."""

    def __init__(self, per_second: float, sleep: Sleep):
        self.gap = 1.0 / per_second if per_second else 0.0
        self.sleep = sleep
        self.next = 0.0

    async def take(self, units: int = 1) -> None:
        if not self.gap:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self.next)
        self.next = start + self.gap * units
        if start > now:
            await self.sleep(start - now)


@dataclass
class Progress:
    """How far one list channel has got, for a progress bar."""

    channel: str
    total: int
    done: int = 0
    sent: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def left(self) -> float | None:
        """Seconds to go at the current rate."""
        return (self.total - self.done) / self.rate if self.rate else None


# -- sending -----------------------------------------------------------------------------------------
async def deliver_lists(workspace: Workspace, store: Store, alert: Alert, channels: dict[str, Channel], *,
                        states: tuple[str, ...], actor: str, limits: Limits, sleep: Sleep = asyncio.sleep,
                        on_outcome: Callable[[Outcome], None] | None = None,
                        on_progress: Callable[[Progress], None] | None = None,
                        stop: Stop | None = None) -> list[Outcome]:
    """Queue (if a killed run did not finish it) and send each list channel's deliveries; one Outcome per
    channel and language, with the counts in its note. After a stop no one new is sent to."""
    lists = {name: c for name, c in channels.items() if isinstance(c, ListChannel)}
    selections = {name: s for name in lists if (s := _selection(store, alert.identifier, name)) is not None}
    if not selections:
        return []
    from broadcast.send.client import list_client

    key = RecipientKey.for_workspace(workspace.root)
    opt_outs, _ = read_opt_outs(workspace.root, key)
    slots = asyncio.Semaphore(limits.concurrency)
    runs: list[Run] = []
    results: list[Any] = []
    try:
        async with list_client(limits.concurrency, connect=limits.connect_timeout, read=limits.read_timeout
                               ) as client, Journal(store, alert=alert.identifier, actor=actor) as journal:
            runs = [Run(workspace, store, alert, lists[name], selection, key=key, opt_outs=opt_outs, states=states,
                        journal=journal, client=client, slots=slots, limits=limits, sleep=sleep,
                        on_progress=on_progress, stop=stop) for name, selection in selections.items()]
            results = await asyncio.gather(*(run.go() for run in runs), return_exceptions=True)
            for result in results:
                if isinstance(result, sqlite3.Error) and stop:
                    stop.fail(str(result))  # the log cannot be written: nobody more is sent to
                elif isinstance(result, BaseException):
                    raise result
    except sqlite3.Error as exc:  # the last batch could not be written either
        if stop is None:
            raise
        stop.fail(str(exc))
    outcomes = []
    for run, result in zip(runs, results, strict=True):
        for outcome in (result if isinstance(result, list) else None) or run.outcomes():
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def _selection(store: Store, alert: str, channel: str) -> dict[str, Any] | None:
    row = store.conn.execute("SELECT details FROM events WHERE alert = ? AND channel = ? AND type = "
                             "'recipients_selected' ORDER BY id DESC LIMIT 1", [alert, channel]).fetchone()
    return json.loads(row[0]) if row else None


@dataclass
class Tally:
    attempts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    hints: dict[str, str | None] = field(default_factory=dict)


class Queued:
    """The rows of a send already queued, one bit each from the lowest id to the highest: a person the list names
    twice is sent to once, and memory stays flat (125 KB for a million people). A table on disk keyed by each
    person's hash did this before, and took a fifth of the time the send spent reading the list."""

    def __init__(self, lowest: int, highest: int) -> None:
        self.lowest = lowest
        self.bits = bytearray((highest - lowest) // 8 + 1)
        self.others: set[int] = set()  # a row that came into the send's states after it began (none do today)

    def first(self, number: int) -> bool:
        """True the first time a row is offered; it is remembered."""
        byte, bit = divmod(number - self.lowest, 8)
        if not 0 <= byte < len(self.bits):
            if number in self.others:
                return False
            self.others.add(number)
            return True
        if self.bits[byte] >> bit & 1:
            return False
        self.bits[byte] |= 1 << bit
        return True


class Run:
    """One list channel in one run: queue its people if need be, then send to each at the channel's pace."""

    def __init__(self, workspace: Workspace, store: Store, alert: Alert, channel: ListChannel,
                 selection: dict[str, Any], *, key: RecipientKey, opt_outs: set[str], states: tuple[str, ...],
                 journal: Journal, client: httpx.AsyncClient, slots: asyncio.Semaphore, limits: Limits,
                 sleep: Sleep, on_progress: Callable[[Progress], None] | None, stop: Stop | None = None):
        self.workspace, self.store, self.alert, self.channel = workspace, store, alert, channel
        self.selection, self.key, self.opt_outs, self.states = selection, key, opt_outs, states
        self.journal, self.client, self.slots, self.limits, self.sleep = journal, client, slots, limits, sleep
        self.on_progress, self.stop = on_progress, stop
        self.pace = Pace(channel.rate, sleep)
        self.tally: dict[str, Tally] = {language: Tally() for language in channel.config.languages}
        self.started = isoformat(utcnow())
        self.progress = Progress(channel.name, 0)
        self._shown = 0.0
        self.error: sqlite3.Error | None = None  # the storage error that stopped this run

    @property
    def path(self) -> Any:
        return self.channel.list_file(self.workspace.root)

    async def go(self) -> list[Outcome] | None:
        channel = self.channel
        if self.selection.get("key") != self.key.fingerprint():
            return [Outcome(channel.name, language, "failed", error=f"{channel.name}: the recipient key has changed "
                            "since this alert was sent, so its deliveries cannot be matched to the list",
                            hint="restore the recipient key used when it was sent ($BROADCAST_RECIPIENT_KEY or "
                            ".broadcast/recipient.key), then resend") for language in channel.config.languages]
        channel.with_max_segments(int(self.selection.get("max_segments") or channel.max_segments))
        try:
            self.posts = {language: channel.prepare(self.alert, language) for language in channel.config.languages}
            if not self._queued():
                await self.queue()
            await channel.open(self.client)
            try:
                await self.send()
            finally:
                await channel.close()
        except BroadcastError as exc:
            return [Outcome(channel.name, language, "failed", error=exc.message, hint=exc.hint)
                    for language in channel.config.languages]
        self.unmatched()
        return None

    def _queued(self) -> bool:
        return self.store.conn.execute(
            "SELECT 1 FROM events WHERE alert = ? AND channel = ? AND type = 'recipients_queued' LIMIT 1",
            [self.alert.identifier, self.channel.name]).fetchone() is not None

    async def queue(self) -> None:
        """Write one pending row per person, in chunked transactions, before anything is sent to them."""
        self.journal.flush()
        report = ListReport(self.path)
        alert, name, rows = self.alert.identifier, self.channel.name, []
        sql = ("INSERT INTO deliveries (alert, channel, language, recipient, recipient_masked, state, attempts, "
               "idempotency_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
               "ON CONFLICT DO NOTHING")
        now, space = isoformat(utcnow()), self.store.key_space(alert)
        language = default_language(self.workspace, self.channel)
        for recipient in select(self.path, report, key=self.key, media=self.channel.media,
                                to=tuple(self.selection["to"]), languages=self.channel.config.languages,
                                default_language=language, opt_outs=self.opt_outs):
            rows.append((alert, name, recipient.language, recipient.key, recipient.masked,
                         delivery_key(alert, name, recipient.language, recipient.key, space), now, now))
            if len(rows) >= QUEUE_COMMIT:
                with self.store.transaction() as conn:
                    conn.executemany(sql, rows)
                rows = []
            if not len(rows) % CHUNK:
                await asyncio.sleep(0)  # the social fan-out goes on meanwhile (never inside a transaction)
        with self.store.transaction() as conn:
            conn.executemany(sql, rows)
            self.store.append_event("recipients_queued", phase="warn", actor=self.journal.actor, alert=alert,
                                    channel=name, incident=self.journal.incident,
                                    description=f"{name}: {report.summary()}", details=describe(report))

    async def send(self) -> None:
        total, lowest, highest = self.store.conn.execute(
            f"SELECT count(*), min(id), max(id) FROM deliveries WHERE alert = ? AND channel = ? AND recipient != '' "
            f"AND state IN ({', '.join('?' for _ in self.states)})", [self.alert.identifier, self.channel.name,
                                                                      *self.states]).fetchone()
        self.progress = Progress(self.channel.name, total)
        if not total:
            return
        workers = max(1, min(self.channel.concurrency_limit, self.limits.concurrency))
        queue: asyncio.Queue[tuple[dict[str, Any], Recipient] | None] = asyncio.Queue(workers * QUEUE_AHEAD)

        async def work() -> None:
            while (item := await queue.get()) is not None:
                if self.error is not None:
                    continue  # drain, so the producer is never left waiting on a full queue
                try:
                    await self.deliver(*item)
                except sqlite3.Error as exc:  # the log cannot be written: nobody more may be sent to
                    self.error = exc
                    if self.stop:
                        self.stop.fail(str(exc))

        tasks = [asyncio.create_task(work()) for _ in range(workers)]
        try:
            await self.produce(queue, Queued(lowest, highest))
            for _ in tasks:
                await queue.put(None)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        self._show(force=True)
        if self.error is not None:
            raise self.error

    async def produce(self, queue: asyncio.Queue[tuple[dict[str, Any], Recipient] | None], queued: Queued) -> None:
        """Stream the list again (the log has no numbers or addresses) and match each person to their row by the
        keyed hash. The list was checked when queued: now a number is only normalised, and the row has the rest."""
        chunk: list[tuple[int, str, str, str]] = []
        for count, contact in enumerate(contacts(self.path, key=self.key, media=self.channel.media), 1):
            if (self.stop and self.stop.requested) or self.error is not None:
                return
            chunk.append(contact)
            if len(chunk) >= CHUNK:
                await self._dispatch(chunk, queued, queue)
                chunk = []
            elif not count % YIELD_EVERY:
                await asyncio.sleep(0)  # reading the list is CPU work: the answers arriving meanwhile go on
        await self._dispatch(chunk, queued, queue)

    async def _dispatch(self, chunk: list[tuple[int, str, str, str]], queued: Queued,
                        queue: asyncio.Queue[tuple[dict[str, Any], Recipient] | None]) -> None:
        """Queue each contact of the chunk whose row is still to be sent and was not queued before (a person the
        list names twice is one row: its second line finds it queued)."""
        if not chunk:
            return
        languages, states = self.channel.config.languages, self.states
        # Looked up by the rows' unique key alone, the state judged here: asked for `state IN (...)` too, SQLite
        # walks the state index instead, every row of the send in that state for every chunk (quadratic in the
        # list's length: a send to 10,000 read 10,000 rows per chunk).
        cursor = self.store.conn.execute(
            f"SELECT {ROW_COLUMNS} FROM deliveries WHERE alert = ? AND channel = ? AND language IN "
            f"({', '.join('?' for _ in languages)}) AND recipient IN ({', '.join('?' for _ in chunk)})",
            [self.alert.identifier, self.channel.name, *languages, *(c[3] for c in chunk)])
        names = [d[0] for d in cursor.description]
        rows = {values[4]: dict(zip(names, values, strict=True)) for values in cursor if values[6] in states}
        for line, medium, contact, digest in chunk:
            row = rows.pop(digest, None)
            if row is None or not queued.first(row["id"]):
                continue  # sent already, not part of this alert, or queued from an earlier line
            if digest in self.opt_outs:
                self.journal.record(row, "skipped", "delivery_result", description=f"{self.channel.name}: "
                                    f"{row['recipient_masked']} opted out since the alert was sent",
                                    details={"outcome": "skipped", "reason": "opted out"})
                self._count(row, "skipped")
                continue
            await queue.put((row, Recipient(medium, contact, digest, row["recipient_masked"], row["language"], line)))

    async def deliver(self, row: dict[str, Any], recipient: Recipient) -> None:
        """One person: look first where the platform lets us, then send with retries within the deadline."""
        channel, journal, tally = self.channel, self.journal, self.tally[row["language"]]
        post = self.posts[row["language"]]
        # Any earlier attempt may have landed (a kill can leave even a `pending` row mid-retry): ask first.
        state: dict[str, Any] = {"maybe_sent": row["state"] in ("sending", "uncertain") or bool(row["attempts"]),
                                 "in_flight": False, "attempts": int(row["attempts"] or 0)}
        masked, key = row["recipient_masked"], row["idempotency_key"]

        def scheduled(retry: RetryCallState) -> None:  # logged only when a retry will really happen
            exc = retry.outcome.exception() if retry.outcome else None
            backoff = retry.next_action.sleep if retry.next_action else 0.0
            journal.record(row, "pending", "retry_scheduled", description=f"{channel.name}: retry {masked} in "
                           f"{backoff:.1f}s", details={"wait_s": round(backoff, 3), "http_status":
                                                       getattr(exc, "status", None),
                                                       "error": _clean(exc, recipient)[:300]})

        async def attempt() -> Receipt:
            if state["maybe_sent"] and channel.checkable:
                found = await self._call(channel.lookup(key, self.client, recipient=recipient, post=post,
                                                        since=self.alert.sent), recipient)
                if found is not None:
                    return found
            await self.pace.take(channel.units(post, recipient.medium) if channel.paced_by_segment else 1)
            if self.stop:
                self.stop.check()
            state["attempts"] += 1
            tally.attempts += 1
            journal.sending(row, attempt=state["attempts"], key=key,
                            description=f"{channel.name}: attempt {state['attempts']} to {masked}")
            await journal.durable()
            async with self.slots:
                state["in_flight"] = True
                try:
                    return await self._call(channel.deliver(post, recipient, self.client, key), recipient)
                except ChannelError as exc:
                    state["maybe_sent"] = state["maybe_sent"] or exc.unknown_outcome
                    raise
                finally:
                    state["in_flight"] = False

        try:
            async with asyncio.timeout(self.limits.channel_deadline):
                try:
                    receipt: Receipt = await attempt()
                except Exception as exc:  # noqa: BLE001  judged by the retry rule
                    # Only now any retry machinery: most people are sent to at the first attempt.
                    from broadcast.send.retry import Retry

                    receipt = await Retry(self.limits, idempotent=channel.resend_is_safe, sleep=self.sleep,
                                          before_sleep=scheduled).after(attempt, exc)
        except NotStarted:
            return  # stopped (Ctrl-C): the row stays as it was, for a resend
        except ChannelError as exc:
            self._fail(row, recipient, exc, exc.unknown_outcome and not channel.resend_is_safe)
            return
        except TimeoutError:
            error = ChannelError(f"{channel.name}: no answer before the deadline"
                                 + (" (request in flight)" if state["in_flight"] else ""), transient=True,
                                 hint="resend later: broadcast resend")
            self._fail(row, recipient, error, state["in_flight"] and not channel.resend_is_safe)
            return
        journal.record(row, "sent", "delivery_result", description=f"{channel.name}: delivered to {masked}",
                       details={"outcome": "sent", "attempt": state["attempts"], "provider_ref": receipt.remote_id,
                                **({"note": receipt.note} if receipt.note else {})},
                       remote_id=receipt.remote_id, last_error=None)
        self._count(row, "sent")

    def _fail(self, row: dict[str, Any], recipient: Recipient, exc: ChannelError, uncertain: bool) -> None:
        message = _clean(exc, recipient)
        outcome = "uncertain" if uncertain else "failed"
        self.journal.record(row, outcome, "delivery_result", description=message,
                            details={"outcome": outcome, "http_status": exc.status, "error": message,
                                     "transient": exc.transient}, last_error=message)
        tally = self.tally[row["language"]]
        tally.errors[message] += 1
        tally.hints.setdefault(message, exc.hint)
        self._count(row, outcome)

    def _count(self, row: dict[str, Any], outcome: str) -> None:
        progress = self.progress
        progress.done += 1
        progress.sent += outcome == "sent"
        progress.failed += outcome in ("failed", "uncertain")
        self._show()

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress and (force or now - self._shown >= 0.25):
            self._shown = now
            self.on_progress(self.progress)

    async def _call(self, call: Awaitable[Any], recipient: Recipient) -> Any:
        """Run an adapter call, turning transport failures into ChannelErrors that say whether it may have gone."""
        from broadcast.send.retry import guarded

        return await guarded(self.channel.name, call)

    def unmatched(self) -> None:
        """Rows this run was to send but found no one for in the list (removed since, or the list replaced)."""
        self.journal.flush()
        cursor = self.store.conn.execute(
            f"SELECT * FROM deliveries WHERE alert = ? AND channel = ? AND recipient != '' AND updated_at < ? AND "
            f"state IN ({', '.join('?' for _ in self.states)}) ORDER BY id",
            [self.alert.identifier, self.channel.name, self.started, *self.states])
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            message = (f"{self.channel.name}: {row['recipient_masked']} is no longer on "
                       f"lists/{self.channel.list_name}.csv")
            self.journal.record(row, "failed", "delivery_result", description=message,
                                details={"outcome": "failed", "error": message}, last_error=message)
            tally = self.tally[row["language"]]
            tally.errors[message.replace(row["recipient_masked"], "someone")] += 1
        self.journal.flush()

    def outcomes(self) -> list[Outcome]:
        """One Outcome per language: the state the channel is in, and the counts."""
        counts: dict[str, Counter[str]] = {language: Counter() for language in self.channel.config.languages}
        for language, state, number in self.store.conn.execute(
                "SELECT language, state, count(*) FROM deliveries WHERE alert = ? AND channel = ? AND recipient != ''"
                " GROUP BY language, state", [self.alert.identifier, self.channel.name]):
            counts.setdefault(language, Counter())[state] = number
        return [self._outcome(language, count) for language, count in counts.items()]

    def _outcome(self, language: str, count: Counter[str]) -> Outcome:
        name, identifier = self.channel.name, self.alert.identifier
        tally = self.tally.get(language, Tally())
        waiting = count["failed"] + count["pending"] + count["sending"]
        state = "failed" if waiting else "uncertain" if count["uncertain"] else "sent"
        parts = [f"{count['sent']:,} sent"] + [f"{count[s]:,} {s}" for s in ("failed", "pending", "sending",
                                                                             "uncertain", "skipped") if count[s]]
        note = f"{', '.join(parts)} of {sum(count.values()):,} on lists/{self.channel.list_name}.csv"
        outcome = Outcome(name, language, state, tally.attempts, receipt=Receipt(note=note))
        if tally.errors:
            error, times = tally.errors.most_common(1)[0]
            outcome.error, outcome.hint = f"{note}; {times:,} x {error}", tally.hints.get(error)
        elif state != "sent":
            outcome.error = note
        if state == "uncertain" or (count["uncertain"] and not tally.errors):
            outcome.hint = (f"{count['uncertain']:,} may have been sent before an interruption and {self.channel.kind}"
                            f" cannot tell us: check its message log, then to send them anyway: broadcast resend "
                            f"{identifier} --only {name} --include-uncertain")
        return outcome


def _clean(exc: BaseException | None, recipient: Recipient) -> str:
    """An error with the person's number or address replaced by its masked form."""
    from broadcast.secrets import mask

    text = exc.message if isinstance(exc, BroadcastError) else str(exc or "")
    return mask(scrub(text, recipient))
