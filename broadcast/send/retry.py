"""One retry rule for every request to a platform, and one reading of what went wrong on the wire.

The fan-out's posts, the texts and emails to lists, the staff's pings and the read-backs (receipts, engagement) all
retry alike: a transient failure (429, 5xx, a dropped connection) again after an exponential backoff with jitter, a
platform's Retry-After honoured exactly, and never again where the request may have landed unless the platform
dedupes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from broadcast.channels.base import ChannelError
from broadcast.errors import BroadcastError
from broadcast.secrets import mask

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Limits(Protocol):
    """What the rule reads of the workspace's [fanout] limits (broadcast.send.fanout.Limits, frozen)."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def first_backoff(self) -> float: ...
    @property
    def max_backoff(self) -> float: ...
    @property
    def max_retry_after(self) -> float: ...


class Retry:
    """One request's retries under `limits`; `attempts` and `last_error` say how it went."""

    def __init__(self, limits: Limits, *, idempotent: bool, sleep: Sleep = asyncio.sleep,
                 before_sleep: Callable[[RetryCallState], None] | None = None):
        self.limits, self.idempotent, self.sleep, self.before_sleep = limits, idempotent, sleep, before_sleep
        self.attempts = 0
        self.last_error: ChannelError | None = None  # what the platform last said, for when a deadline ends it

    def retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, ChannelError):
            self.last_error = exc
        if not isinstance(exc, ChannelError) or not exc.transient:
            return False
        if exc.unknown_outcome and not self.idempotent:
            return False  # it may have been posted: retrying could post twice
        return exc.retry_after is None or exc.retry_after <= self.limits.max_retry_after

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ChannelError) and exc.retry_after is not None:
            return max(exc.retry_after, 0.0)  # the platform said when: wait exactly that, not less
        limits = self.limits
        return min(limits.max_backoff, limits.first_backoff * 2 ** (state.attempt_number - 1)) * (0.5 + _jitter())

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Await `call()` until it succeeds, fails for good, or runs out of attempts (the last error is raised)."""
        self.attempts += 1
        try:
            return await call()
        except Exception as exc:  # noqa: BLE001  judged by `retryable`, as tenacity would
            failed = exc
        return await self.after(call, failed)

    async def after(self, call: Callable[[], Awaitable[T]], failed: Exception) -> T:
        """Go on from a first attempt of `call()` that raised `failed`: retried as `run` would, or `failed` raised.

        The first attempt costs no retry machinery (most requests succeed first time, and a list sends one per
        person): tenacity is only built here, and replays the first failure so its waits and counts are the same.
        """
        self.attempts = max(self.attempts, 1)
        if not self.retryable(failed) or self.limits.max_attempts <= 1:
            raise failed
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        replay: list[Exception] = [failed]

        async def attempt() -> T:
            if replay:
                raise replay.pop()
            self.attempts += 1
            return await call()

        retrying = AsyncRetrying(stop=stop_after_attempt(self.limits.max_attempts), wait=self.wait,
                                 retry=retry_if_exception(self.retryable), sleep=self.sleep, reraise=True,
                                 before_sleep=self.before_sleep)
        return await retrying(attempt)


async def guarded(name: str, call: Awaitable[T]) -> T:
    """Await an adapter's call, turning whatever goes wrong into a ChannelError that says whether a retry could help
    and whether the request may have landed."""
    try:
        return await call
    except ChannelError:
        raise
    except BroadcastError as exc:  # e.g. a secret not set: this channel fails, the others go on
        raise ChannelError(exc.message, transient=False, hint=exc.hint) from None
    except Exception as exc:  # noqa: BLE001  one channel's failure, whatever it is, never stops another
        raise classify(name, exc) from None


def classify(name: str, exc: BaseException) -> ChannelError:
    """What a failure below the platform's answer means: no connection (nothing went), no complete answer (it may
    have landed), an answer we cannot read (it may have landed), or a bad address (nothing went)."""
    import httpx

    while isinstance(exc, ExceptionGroup) and exc.exceptions:  # e.g. anyio's, around a bad port number
        exc = exc.exceptions[0]
    said = type(exc).__name__
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):  # the address is wrong
        return ChannelError(f"{name}: its address is not a valid URL ({mask(str(exc))})", transient=False,
                            hint=f"fix the address in channels/{name}.toml, or the environment variable it names")
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ChannelError(f"{name}: cannot connect: {mask(str(exc)) or said}", transient=True,
                            hint="check the network and the platform's status page")
    if isinstance(exc, httpx.LocalProtocolError):  # refused here, before the request could have been acted on
        from broadcast.send.wire import refused_type

        said = str(exc) if isinstance(exc, refused_type()) else said  # another's message may quote a header's value
        return ChannelError(f"{name}: the request cannot be sent as it stands: {mask(said)}", transient=False,
                            hint=f"a setting in channels/{name}.toml (or the environment variable it names) or a "
                                 "template's text put it there")
    if isinstance(exc, httpx.TransportError | TimeoutError):
        return ChannelError(f"{name}: no complete answer ({said})", transient=True, unknown_outcome=True)
    if isinstance(exc, ValueError | KeyError | TypeError):  # an answer we cannot read (an HTML page, cut-off JSON)
        return ChannelError(f"{name}: the platform's answer could not be read ({said})", transient=True,
                            unknown_outcome=True, hint="the platform may be having problems; check its status page")
    return ChannelError(f"{name}: failed unexpectedly ({said}: {mask(str(exc))[:200]})", transient=False,
                        unknown_outcome=True,
                        hint="check the channel's settings and the platform by hand; please report this error")


def _jitter() -> float:
    import random

    return random.random()
