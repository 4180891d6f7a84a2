"""Send prepared posts to every channel at once, with retries, deadlines and an outbox in the log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import ChannelError
from broadcast.errors import BroadcastError
from broadcast.secrets import mask

if TYPE_CHECKING:
    import httpx
    from tenacity import RetryCallState

    from broadcast.channels.base import Channel, Post, Receipt
    from broadcast.send.interrupt import Stop
    from broadcast.store import Store
    from broadcast.workspace import Workspace

KEY_NAMESPACE = uuid.UUID("8f2b7c1e-4d6a-4f0e-9b3c-2a1d5e7f9c00")


def delivery_key(alert: str, channel: str, language: str, recipient: str = "", space: str = "") -> str:
    """Stable per (alert, channel, language, recipient), so a resend carries the same key; `space` is the alert's
    random key space (Store.key_space), so the same identifier in a restored log or another workspace never
    yields the same key."""
    name = f"{space}/{alert}/{channel}/{language}/{recipient}" if space else f"{alert}/{channel}/{language}/{recipient}"
    return str(uuid.uuid5(KEY_NAMESPACE, name))


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
    request starts: those deliveries come back `stopped`, as they were in the log."""
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
            outcome = await _deliver(store, job, client=client, actor=actor, limits=limits, sleep=sleep,
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
    store: Store, job: Job, *, client: httpx.AsyncClient, actor: str, limits: Limits, sleep: Sleep,
    slots: tuple[asyncio.Semaphore, asyncio.Semaphore], deadline: float, stop: Stop | None = None,
    requested: list[bool] | None = None,
) -> Outcome:
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    from broadcast.send.interrupt import NotStarted

    channel, post, delivery = job.channel, job.post, dict(job.delivery)
    outcome = Outcome(channel.name, post.language, "failed", attempts=int(delivery.get("attempts") or 0))
    loop = asyncio.get_running_loop()
    in_flight = False
    last_error: ChannelError | None = None  # what the platform last said, for when the deadline ends the retries

    def retryable(exc: BaseException) -> bool:
        nonlocal last_error
        if isinstance(exc, ChannelError):
            last_error = exc
        if not isinstance(exc, ChannelError) or not exc.transient:
            return False
        if exc.unknown_outcome and not channel.idempotent:
            return False  # it may have been posted: retrying could post twice
        return exc.retry_after is None or exc.retry_after <= limits.max_retry_after

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(limits.max_backoff, limits.first_backoff * 2 ** (state.attempt_number - 1))
        backoff *= 0.5 + _jitter()
        if isinstance(exc, ChannelError) and exc.retry_after is not None:
            backoff = max(exc.retry_after, 0.0)  # the platform said when: wait exactly that, not less
        return backoff

    def scheduled(state: RetryCallState) -> None:
        # Logged here, not in wait(): tenacity computes the wait before it decides to stop, and only calls this
        # when a retry will really happen.
        exc = state.outcome.exception() if state.outcome else None
        backoff = state.next_action.sleep if state.next_action else 0.0
        outcome.waits.append(backoff)
        store.transition(delivery, "pending", "retry_scheduled", actor=actor,
                         description=f"{channel.name}: retry in {backoff:.1f}s",
                         details={"wait_s": round(backoff, 3), "error": str(exc)[:300] if exc else None,
                                  "http_status": getattr(exc, "status", None)})

    async def attempt() -> Receipt:
        nonlocal in_flight
        async with slots[0], slots[1]:  # held for the request only: a wait never holds a slot
            if stop:
                stop.check()
            outcome.attempts += 1
            store.transition(delivery, "sending", "delivery_attempt", actor=actor,
                             description=f"{channel.name}: attempt {outcome.attempts}",
                             details={"attempt": outcome.attempts, "key": delivery["idempotency_key"]},
                             attempts=outcome.attempts)
            started = loop.time()
            in_flight = True
            if requested is not None:
                requested.append(True)
            try:
                receipt = await _send(channel, post, client, delivery["idempotency_key"])
            except asyncio.CancelledError:
                raise  # cut by the deadline (or a stop) after the request went: it may have landed, so in flight
            except BaseException:
                in_flight = False
                raise
            in_flight = False
            outcome.latency_ms = int((loop.time() - started) * 1000)
            return receipt

    try:
        async with asyncio.timeout_at(deadline):
            retrying = AsyncRetrying(stop=stop_after_attempt(limits.max_attempts), wait=wait,
                                     retry=retry_if_exception(retryable), sleep=sleep, reraise=True,
                                     before_sleep=scheduled)
            receipt: Receipt = await retrying(attempt)
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
        store.transition(delivery, outcome.state, "delivery_result", actor=actor, description=exc.message,
                         details={"outcome": outcome.state, "attempt": outcome.attempts, "http_status": exc.status,
                                  "error": exc.message, "transient": exc.transient},
                         last_error=exc.message)
        return outcome
    except TimeoutError:
        uncertain = in_flight and not channel.idempotent
        outcome.state = "uncertain" if uncertain else "failed"
        if in_flight:
            outcome.error = f"{channel.name}: no answer before the deadline, with the request sent: it may have landed"
        elif last_error is not None:  # the deadline came between retries: what the platform said is the news
            outcome.error = f"{last_error.message} (then the deadline passed before another try)"
        else:
            outcome.error = f"{channel.name}: no answer before the deadline"
        outcome.hint = (f"check {channel.name} by hand: if it is not there, resend with --include-uncertain"
                        if uncertain else (last_error.hint if last_error and last_error.hint else
                                           "resending is safe: broadcast resend"))
        store.transition(delivery, outcome.state, "delivery_result", actor=actor, description=outcome.error,
                         details={"outcome": outcome.state, "attempt": outcome.attempts, "error": "deadline"},
                         last_error=outcome.error)
        return outcome
    outcome.state, outcome.receipt = "sent", receipt
    store.transition(delivery, "sent", "delivery_result", actor=actor,
                     description=f"{channel.name}: delivered" + (f" {receipt.url}" if receipt.url else ""),
                     details={"outcome": "sent", "attempt": outcome.attempts, "latency_ms": outcome.latency_ms,
                              "provider_ref": receipt.remote_id, "url": receipt.url},
                     remote_id=receipt.remote_id, remote_url=receipt.url, last_error=None)
    return outcome


async def _send(channel: Channel, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
    """Call the adapter, turning transport failures into ChannelErrors that say whether the post may have landed."""
    import httpx

    try:
        return await channel.send(post, client, key)
    except ChannelError:
        raise
    except BroadcastError as exc:  # e.g. a secret not set: this channel fails, the others go on
        raise ChannelError(exc.message, transient=False, hint=exc.hint) from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ChannelError(f"{channel.name}: cannot connect: {mask(str(exc)) or type(exc).__name__}",
                           transient=True, hint="check the network and the platform's status page") from None
    except httpx.TransportError as exc:  # read timeout, dropped connection: the request may have arrived
        raise ChannelError(f"{channel.name}: no complete answer ({type(exc).__name__})", transient=True,
                           unknown_outcome=True) from None
    except httpx.InvalidURL as exc:  # before any request: the address itself is wrong
        raise ChannelError(f"{channel.name}: its address is not a valid URL ({mask(str(exc))})", transient=False,
                           hint=f"fix the address in channels/{channel.name}.toml, or the environment variable "
                           "it names") from None
    except (ValueError, KeyError, TypeError) as exc:  # an answer we cannot read (HTML page, truncated JSON)
        raise ChannelError(f"{channel.name}: the platform's answer could not be read ({type(exc).__name__})",
                           transient=True, unknown_outcome=True,
                           hint="the platform may be having problems; check its status page") from None
    except Exception as exc:  # noqa: BLE001  one channel's failure, whatever it is, never stops the others
        while isinstance(exc, ExceptionGroup) and exc.exceptions:  # e.g. anyio's, around a bad port number
            exc = exc.exceptions[0]
        raise ChannelError(f"{channel.name}: failed unexpectedly ({type(exc).__name__}: {mask(str(exc))[:200]})",
                           transient=False, unknown_outcome=True,
                           hint="check the channel's settings and the platform by hand; please report this "
                           "error") from None


def _jitter() -> float:
    import random

    return random.random()
