"""Send prepared posts to every channel at once, with retries, deadlines and an outbox in the log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uuid_utils

from broadcast.channels.base import ChannelError

if TYPE_CHECKING:
    import httpx
    from tenacity import RetryCallState

    from broadcast.channels.base import Channel, Post, Receipt
    from broadcast.send.interrupt import Stop
    from broadcast.send.journal import Journal
    from broadcast.store import Store
    from broadcast.workspace import Workspace

KEY_NAMESPACE = uuid.UUID("8f2b7c1e-4d6a-4f0e-9b3c-2a1d5e7f9c00")
_NAMESPACE = uuid_utils.UUID(str(KEY_NAMESPACE))  # the same, for uuid-utils: the same UUIDv5 in a tenth of the time


def delivery_key(alert: str, channel: str, language: str, recipient: str = "", space: str = "") -> str:
    """Stable per (alert, channel, language, recipient), so a resend carries the same key; `space` is the alert's
    random key space (Store.key_space), so the same identifier in a restored log or another workspace never
    yields the same key. RFC 9562's version 5 (uuid.uuid5 makes the very same: a list's queueing makes one per
    person, and the standard library's took 12 µs)."""
    name = f"{space}/{alert}/{channel}/{language}/{recipient}" if space else f"{alert}/{channel}/{language}/{recipient}"
    return str(uuid_utils.uuid5(_NAMESPACE, name))


@dataclass(frozen=True)
class Limits:
    """Bounds on a fan-out. Concurrency comes from platforms' rate limits, never from the CPU count."""

    concurrency: int = 200
    max_attempts: int = 5
    first_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0  # a platform asking for a longer wait fails now, to be resent later
    channel_deadline: float = 90.0
    overall_deadline: float = 180.0
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    stop_grace: float = 5.0  # after Ctrl-C, how long requests in flight may take to answer before they are cut

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> Limits:
        """The [fanout] section of broadcast.toml, each key optional."""
        from dataclasses import fields

        from broadcast.errors import ConfigError
        from broadcast.workspace import check_keys, expect

        section = workspace.config.get("fanout", {})
        path = workspace.config_path
        expect(path, "fanout", section, dict, "a [fanout] table")
        names = {f.name: f.type for f in fields(cls)}
        check_keys(path, section, set(names), "fanout.")
        values: dict[str, Any] = {}
        for key, value in section.items():
            kind = int if names[key] in ("int", int) else float
            expect(path, f"fanout.{key}", value, (int, float), "a number")
            if value <= 0:
                raise ConfigError(path, f"fanout.{key}", f"must be above 0, got {value}")
            values[key] = kind(value)
        return cls(**values)


@dataclass(frozen=True)
class Job:
    delivery: dict[str, Any]
    channel: Channel
    post: Post


@dataclass
class Outcome:
    channel: str
    language: str
    state: str
    attempts: int = 0
    receipt: Receipt | None = None
    error: str | None = None
    hint: str | None = None
    latency_ms: int | None = None
    waits: list[float] = field(default_factory=list)


Sleep = Callable[[float], Awaitable[None]]


async def fan_out(
    store: Store,
    jobs: list[Job],
    *,
    client: httpx.AsyncClient,
    actor: str,
    limits: Limits = Limits(),
    sleep: Sleep = asyncio.sleep,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: Stop | None = None,
) -> list[Outcome]:
    """Deliver every job concurrently; one channel's failure never stops another. After a stop (Ctrl-C) no new
    request starts: those deliveries come back `stopped`, as they were in the log.

    The log is written in batches (the outbox's Journal): each `sending` is committed before its request goes out,
    and each result before it is reported, but the deliveries that reach those points together share one
    transaction."""
    if not jobs:
        return []
    from broadcast.send.journal import Journal

    async with Journal(store, alert=jobs[0].delivery["alert"], actor=actor, eager=True) as journal:
        return await _fan_out(journal, jobs, client=client, actor=actor, limits=limits, sleep=sleep,
                              on_outcome=on_outcome, stop=stop)


async def _fan_out(journal: Journal, jobs: list[Job], *, client: httpx.AsyncClient, actor: str, limits: Limits,
                   sleep: Sleep, on_outcome: Callable[[Outcome], None] | None, stop: Stop | None) -> list[Outcome]:
    loop = asyncio.get_running_loop()
    overall_end = loop.time() + limits.overall_deadline
    slots = asyncio.Semaphore(limits.concurrency)
    per_channel: dict[str, asyncio.Semaphore] = {}
    for job in jobs:
        per_channel.setdefault(job.channel.name, asyncio.Semaphore(job.channel.concurrency))

    async def run(job: Job) -> Outcome:
        import sqlite3

        requested: list[bool] = []  # appended to when the request goes out
        try:
            outcome = await _deliver(journal, job, client=client, limits=limits, sleep=sleep,
                                     slots=(slots, per_channel[job.channel.name]), stop=stop, requested=requested,
                                     deadline=min(loop.time() + limits.channel_deadline, overall_end))
        except sqlite3.Error as exc:  # the log cannot be written: what happened to this one is not recorded
            if stop:
                stop.fail(str(exc))
            if requested:
                outcome = Outcome(job.channel.name, job.post.language, "unrecorded", len(requested),
                                  error=f"{job.channel.name}: the log could not be written ({exc}): it may have "
                                  "gone out", hint="the log holds it as in flight; a resend once the log can be "
                                  "written settles it, without posting twice where the platform can tell us")
            else:  # it stopped at writing `sending`, before the request: nothing went
                outcome = Outcome(job.channel.name, job.post.language, "stopped",
                                  error=f"not sent: the log could not be written ({exc})")
        if on_outcome and outcome.state != "stopped":  # a stopped one is reported with the rest at the end
            on_outcome(outcome)
        return outcome

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def _deliver(
    journal: Journal, job: Job, *, client: httpx.AsyncClient, limits: Limits, sleep: Sleep,
    slots: tuple[asyncio.Semaphore, asyncio.Semaphore], deadline: float, stop: Stop | None = None,
    requested: list[bool] | None = None,
) -> Outcome:
    from broadcast.send.interrupt import NotStarted
    from broadcast.send.retry import Retry, guarded

    channel, post, delivery = job.channel, job.post, dict(job.delivery)
    outcome = Outcome(channel.name, post.language, "failed", attempts=int(delivery.get("attempts") or 0))
    loop = asyncio.get_running_loop()
    in_flight = False

    def scheduled(state: RetryCallState) -> None:
        # Logged here, not in wait(): tenacity computes the wait before it decides to stop, and only calls this
        # when a retry will really happen.
        exc = state.outcome.exception() if state.outcome else None
        backoff = state.next_action.sleep if state.next_action else 0.0
        outcome.waits.append(backoff)
        journal.record(delivery, "pending", "retry_scheduled", description=f"{channel.name}: retry in {backoff:.1f}s",
                       details={"wait_s": round(backoff, 3), "error": str(exc)[:300] if exc else None,
                                "http_status": getattr(exc, "status", None)})
        journal.soon()

    async def attempt() -> Receipt:
        nonlocal in_flight
        async with slots[0], slots[1]:  # held for the request only: a wait never holds a slot
            if stop:
                stop.check()
            outcome.attempts += 1
            journal.record(delivery, "sending", "delivery_attempt", description=f"{channel.name}: attempt "
                           f"{outcome.attempts}", details={"attempt": outcome.attempts,
                                                           "key": delivery["idempotency_key"]},
                           attempts=outcome.attempts)
            await journal.durable()  # the outbox: the log knows it may have gone before a byte goes out
            started = loop.time()
            in_flight = True
            if requested is not None:
                requested.append(True)
            try:
                receipt = await guarded(channel.name, channel.send(post, client, delivery["idempotency_key"]))
            except asyncio.CancelledError:
                raise  # cut by the deadline (or a stop) after the request went: it may have landed, so in flight
            except BaseException:
                in_flight = False
                raise
            in_flight = False
            outcome.latency_ms = int((loop.time() - started) * 1000)
            return receipt

    retry = Retry(limits, idempotent=channel.idempotent, sleep=sleep, before_sleep=scheduled)
    try:
        async with asyncio.timeout_at(deadline):
            receipt: Receipt = await retry.run(attempt)
    except NotStarted as exc:
        outcome.state, outcome.error = "stopped", f"not sent: stopped by {exc}"
        return outcome
    except ChannelError as exc:
        uncertain = exc.unknown_outcome and not channel.idempotent
        outcome.state = "uncertain" if uncertain else "failed"
        outcome.error, outcome.hint = exc.message, exc.hint
        if uncertain:
            outcome.hint = (f"check {channel.name} by hand: the request may have been posted. If it was not, "
                            f"resend with --include-uncertain")
        journal.record(delivery, outcome.state, "delivery_result", description=exc.message,
                       details={"outcome": outcome.state, "attempt": outcome.attempts, "http_status": exc.status,
                                "error": exc.message, "transient": exc.transient},
                       last_error=exc.message)
        await journal.durable()
        return outcome
    except TimeoutError:
        uncertain = in_flight and not channel.idempotent
        outcome.state = "uncertain" if uncertain else "failed"
        if in_flight:
            outcome.error = f"{channel.name}: no answer before the deadline, with the request sent: it may have landed"
        elif retry.last_error is not None:  # the deadline came between retries: what the platform said is the news
            outcome.error = f"{retry.last_error.message} (then the deadline passed before another try)"
        else:
            outcome.error = f"{channel.name}: no answer before the deadline"
        outcome.hint = (f"check {channel.name} by hand: if it is not there, resend with --include-uncertain"
                        if uncertain else (retry.last_error.hint if retry.last_error and retry.last_error.hint else
                                           "resending is safe: broadcast resend"))
        journal.record(delivery, outcome.state, "delivery_result", description=outcome.error,
                       details={"outcome": outcome.state, "attempt": outcome.attempts, "error": "deadline"},
                       last_error=outcome.error)
        await journal.durable()
        return outcome
    outcome.state, outcome.receipt = "sent", receipt
    journal.record(delivery, "sent", "delivery_result",
                   description=f"{channel.name}: delivered" + (f" {receipt.url}" if receipt.url else ""),
                   details={"outcome": "sent", "attempt": outcome.attempts, "latency_ms": outcome.latency_ms,
                            "provider_ref": receipt.remote_id, "url": receipt.url},
                   remote_id=receipt.remote_id, remote_url=receipt.url, last_error=None)
    await journal.durable()  # reported only once it is in the log
    return outcome
