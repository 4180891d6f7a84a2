"""Ctrl-C or SIGTERM during a send: start nothing new, let what is in flight settle, then say how to finish.

The first signal stops new deliveries (a retry's wait or a pacing wait ends at once) and gives the requests in
flight `grace` seconds to answer; after that they are cancelled, and the ones that may have landed on a platform
that cannot tell us are marked uncertain. A second signal exits at once: the log is written before each request,
so that is as safe as a kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Coroutine
from types import FrameType, TracebackType
from typing import Any, TypeVar

from broadcast.errors import INTERRUPTED

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class NotStarted(Exception):
    """Raised in place of a delivery's request once a stop is asked for: the delivery stays as it was."""


class Stop:
    """Catches SIGINT and SIGTERM while a send runs (`with Stop(grace):`), and lets the send ask whether to go on."""

    def __init__(self, grace: float = 5.0):
        self.grace = grace
        self.by: str | None = None  # "Ctrl-C" or "SIGTERM" once asked, or "a storage error"
        self.failure: str | None = None  # why the log could not be written, when that is what stopped it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._task: asyncio.Future[Any] | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.by is not None

    def check(self) -> None:
        """Call just before a request goes out."""
        if self.by is not None:
            raise NotStarted(self.by)

    def __enter__(self) -> Stop:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.by is not None:
            os.write(2, b"\nStopped at once. Run broadcast status to see what went out.\n")
            os._exit(INTERRUPTED)
        self.by = NAMES.get(signal.Signals(number), signal.Signals(number).name)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._trip)

    def fail(self, why: str) -> None:
        """The log cannot be written (disk full, locked, I/O error): start nothing more, since nothing more could be
        recorded. Called from within the running send."""
        if self.by is not None:
            return
        self.by, self.failure = "a storage error", why
        if self._loop is not None:
            self._trip()

    def _trip(self) -> None:
        assert self._loop is not None and self._event is not None
        if self._event.is_set():
            return
        self._event.set()
        if self.failure:
            os.write(2, f"\nStopping: the log cannot be written ({self.failure}), so nothing new will be sent.\n"
                     .encode())
        else:
            os.write(2, f"\nStopping ({self.by}): nothing new will be sent; waiting up to {self.grace:g} s for the "
                     f"requests in flight. Press Ctrl-C again to quit at once.\n".encode())
        self._loop.call_later(self.grace, self._give_up)

    def _give_up(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def run(self, main: Coroutine[Any, Any, T]) -> T | None:
        """Run the send; None if a stop cancelled what was still in flight after the grace period."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._task = asyncio.ensure_future(main)
        if self.by is not None:  # asked before the loop started (while the page was being built)
            self._trip()
        try:
            return await self._task
        except asyncio.CancelledError:
            if self.by is None or not self._task.cancelled():
                raise
            return None

    async def sleep(self, seconds: float) -> None:
        """A retry's or a pacing wait, cut short by a stop (the next attempt then does not start)."""
        if self._event is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
