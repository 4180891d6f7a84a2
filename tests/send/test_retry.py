"""The retry rule: a first attempt that succeeds costs no retry machinery; one that fails is retried as before."""

import asyncio

import pytest
import tenacity

from broadcast.channels.base import ChannelError
from broadcast.send.fanout import Limits
from broadcast.send.retry import Retry


def answers(*outcomes):
    """A call that raises or returns each outcome in turn, and counts how often it was made."""
    made = []

    async def call():
        made.append(1)
        outcome = outcomes[len(made) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return call, made


def test_a_first_attempt_that_succeeds_builds_no_retrying(monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("tenacity was built for a request that needed no retry")

    monkeypatch.setattr(tenacity, "AsyncRetrying", refused)
    call, made = answers("ok")
    retry = Retry(Limits(), idempotent=False)
    assert asyncio.run(retry.run(call)) == "ok"
    assert made == [1] and retry.attempts == 1 and retry.last_error is None


def test_a_transient_failure_is_retried_with_the_platforms_wait_and_logged_before_each_sleep():
    slept, scheduled = [], []

    async def sleep(seconds):
        slept.append(seconds)

    busy = ChannelError("busy", transient=True, status=429, retry_after=2.0)
    down = ChannelError("down", transient=True, status=503)
    call, made = answers(busy, down, "ok")
    retry = Retry(Limits(first_backoff=1.0, max_backoff=8.0), idempotent=False, sleep=sleep,
                  before_sleep=lambda state: scheduled.append((state.attempt_number, state.next_action.sleep)))
    assert asyncio.run(retry.run(call)) == "ok"
    assert len(made) == 3 and retry.attempts == 3 and retry.last_error is down
    assert slept[0] == 2.0 and 1.0 <= slept[1] <= 3.0  # Retry-After exactly; then backoff 2 s x jitter 0.5-1.5
    assert scheduled == [(1, slept[0]), (2, slept[1])]


@pytest.mark.parametrize("error", [
    ChannelError("refused", transient=False, status=400),
    ChannelError("no answer", transient=True, unknown_outcome=True),  # may have landed: not again, not idempotent
    ChannelError("come back tomorrow", transient=True, status=429, retry_after=86_400),
])
def test_what_a_retry_cannot_help_is_raised_after_one_attempt(error):
    call, made = answers(error, "never")
    retry = Retry(Limits(), idempotent=False)
    with pytest.raises(ChannelError) as raised:
        asyncio.run(retry.run(call))
    assert raised.value is error and made == [1] and retry.attempts == 1


def test_attempts_stop_at_the_limit_with_the_last_error():
    async def sleep(seconds):
        pass

    errors = [ChannelError(f"down {n}", transient=True, status=503) for n in range(3)]
    call, made = answers(*errors)
    retry = Retry(Limits(max_attempts=3), idempotent=True, sleep=sleep)
    with pytest.raises(ChannelError) as raised:
        asyncio.run(retry.run(call))
    assert raised.value is errors[-1] and len(made) == 3 and retry.attempts == 3
