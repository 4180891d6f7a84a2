"""Limits platforms publish (a Mastodon instance's max_characters), kept off the send's critical line.

Most channels publish none and cost nothing here: no request, no HTTP client. Those that do are asked at most once a
day, all at once, and what they said is kept in the workspace's git-ignored .broadcast/limits.json; a warning sent
within the day uses it without asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broadcast.channels.base import Channel
    from broadcast.workspace import Workspace

CACHE = Path(".broadcast") / "limits.json"
FRESH_FOR = 24 * 3600.0  # instances change their limits rarely, and a stale one only shortens a post by rule
ASK_TIMEOUT = 5.0


def learn_limits(workspace: Workspace, channels: list[Channel], *, ask: bool = True, now: float | None = None) -> None:
    """Give each channel the limit its platform publishes: from the cache while it is fresh, else asked (every
    channel at once) and cached. Without `ask` (a dry run) only the cache is used. Whatever goes wrong, a channel
    keeps the last limit it was known to have, else its documented default; the send reports the platform's
    problems."""
    sources = {channel: source for channel in channels if (source := channel.limit_source())}
    if not sources:
        return
    now = time.time() if now is None else now
    path = workspace.root / CACHE
    cache = _read(path)
    to_ask = []
    for channel, source in sources.items():
        entry = cache.get(source)
        if entry:
            channel.limit = int(entry["limit"])  # a stale one is still better than the default if asking fails
        if not entry or now - float(entry["learned_at"]) >= FRESH_FOR:
            to_ask.append(channel)
    if not ask or not to_ask:
        return
    learned = asyncio.run(_ask(to_ask))
    if learned:
        cache.update({sources[channel]: {"limit": channel.limit, "learned_at": now} for channel in learned})
        _write(path, cache)


async def _ask(channels: list[Channel]) -> list[Channel]:
    """Ask every platform at once; the channels whose limit was learnt."""
    from broadcast.send.client import http_client

    async def one(channel: Channel) -> Channel | None:
        with contextlib.suppress(Exception):
            await channel.configure(client)
            return channel
        return None

    async with http_client(len(channels), timeout=ASK_TIMEOUT) as client:
        results = await asyncio.gather(*(one(channel) for channel in channels))
    return [channel for channel in results if channel is not None]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: ask again
    if not isinstance(data, dict):
        return {}
    return {source: entry for source, entry in data.items() if isinstance(entry, dict)
            and isinstance(entry.get("limit"), int) and isinstance(entry.get("learned_at"), int | float)}


def _write(path: Path, cache: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a read-only workspace: asked again next time, nothing worse
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, path)
