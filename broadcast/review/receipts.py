"""After the send: ask each list platform what became of every message (delivered, failed, still on its way).

Each answer goes into the chain as one snapshot per alert, channel and language (`receipts_collected`), with its
counts and the platforms' reasons, so the review shows how delivery grew; nothing about a person but the masked
form already logged. The kill switch, secrets and timeouts are as for sending.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import ChannelError
from broadcast.errors import BroadcastError

if TYPE_CHECKING:
    from broadcast.channels.base import Channel
    from broadcast.channels.lists import ListChannel
    from broadcast.store import Store
    from broadcast.workspace import Workspace

CONCURRENCY = 20  # status look-ups in flight at once per run: well under every platform's read limit


@dataclass
class Receipts:
    """One alert's messages on one list channel in one language, as the platform reports them now."""

    alert: str
    channel: str
    language: str
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    unknown: int = 0  # the platform could not be asked, or reports nothing (SMTP)
    reasons: Counter[str] = field(default_factory=Counter)  # failure reasons, as the platform names them
    note: str | None = None

    @property
    def total(self) -> int:
        return self.delivered + self.failed + self.pending + self.unknown

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "channel": self.channel, "language": self.language, "delivered": self.delivered,
                "failed": self.failed, "pending": self.pending, "unknown": self.unknown,
                "reasons": dict(self.reasons.most_common()), "note": self.note}


@dataclass
class Reach:
    """One post's public counts and replies, as its platform reports them now (None: not reported)."""

    alert: str
    channel: str
    language: str
    url: str | None
    replies: int | None = None
    reposts: int | None = None
    likes: int | None = None
    views: int | None = None
    said: list[dict[str, str]] = field(default_factory=list)  # text, link, time: never who wrote it
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "channel": self.channel, "language": self.language, "url": self.url,
                "replies": self.replies, "reposts": self.reposts, "likes": self.likes, "views": self.views,
                "said": self.said, "note": self.note}


def collect_reach(workspace: Workspace, store: Store, incident: str, *, actor: str) -> list[Reach]:
    """Ask each social platform about every post of the incident still up; log one snapshot per post."""
    from broadcast.send.audience import is_list_channel
    from broadcast.send.sending import usable_channels

    found: list[Reach] = []
    for alert in store.alerts(incident):
        usable, skipped = usable_channels(workspace, store, (), alert.status)
        channels = {c.name: c for _, c in usable if not is_list_channel(c)}
        posts = store.conn.execute(
            "SELECT channel, language, remote_id, remote_url FROM deliveries WHERE alert = ? AND recipient = '' "
            "AND state = 'sent' ORDER BY id", [alert.identifier]).fetchall()

        for reach in asyncio.run(_reach_all(posts, alert.identifier, channels, dict(skipped))) if posts else []:
            found.append(reach)
            store.append_event("engagement_collected", phase="review", actor=actor, incident=incident,
                               alert=alert.identifier, channel=reach.channel,
                               description=f"{reach.channel} ({reach.language}): " + (reach.note or (
                                   f"{reach.replies} replies, {reach.reposts} reposts, {reach.likes} likes")),
                               details=reach.to_dict())
    return found


async def _reach_all(rows: list[tuple[str, str, str | None, str | None]], alert: str, channels: dict[str, Channel],
                     reasons: dict[str, str]) -> list[Reach]:
    import httpx

    from broadcast.channels.base import Receipt

    async def one(row: tuple[str, str, str | None, str | None], client: httpx.AsyncClient) -> Reach:
        name, language, remote_id, url = row
        reach = Reach(alert, name, language, url)
        channel = channels.get(name)
        if channel is None:
            reach.note = f"not asked: {reasons.get(name, 'the channel is not configured')}"
            return reach
        try:
            got = await channel.engagement(Receipt(remote_id, url), client)
        except (BroadcastError, httpx.HTTPError, ValueError) as exc:
            reach.note = exc.message if isinstance(exc, BroadcastError) else type(exc).__name__
            return reach
        if got is None:
            reach.note = f"{channel.kind}: not available (its API reports nothing about a post)"
            return reach
        reach.replies, reach.reposts, reach.likes, reach.views = got.replies, got.reposts, got.likes, got.views
        reach.said = [{"text": text, "link": link, "at": at} for text, link, at in got.said]
        return reach

    async with httpx.AsyncClient(timeout=20) as client:
        return list(await asyncio.gather(*(one(row, client) for row in rows)))


def collect(workspace: Workspace, store: Store, incident: str, *, actor: str) -> list[Receipts]:
    """Ask the platforms about every message of the incident's alerts sent to lists; log one snapshot each."""
    from broadcast.send.audience import is_list_channel
    from broadcast.send.lifecycle import incident_row
    from broadcast.send.sending import usable_channels

    incident_row(store, incident)  # an unknown incident is refused with the open ones named
    results: list[Receipts] = []
    for alert in store.alerts(incident):
        usable, skipped = usable_channels(workspace, store, (), alert.status)
        channels = {c.name: c for _, c in usable if is_list_channel(c)}
        reasons = dict(skipped)
        rows = store.conn.execute(
            "SELECT channel, language, remote_id FROM deliveries WHERE alert = ? AND recipient != '' AND state = "
            "'sent' ORDER BY id", [alert.identifier]).fetchall()
        groups: dict[tuple[str, str], list[str | None]] = {}
        for channel, language, remote_id in rows:
            groups.setdefault((channel, language), []).append(remote_id)
        for (name, language), ids in groups.items():
            found = Receipts(alert.identifier, name, language)
            channel = channels.get(name)
            if channel is None:
                found.unknown, found.note = len(ids), f"not asked: {reasons.get(name, 'the channel is not configured')}"
            elif not channel.receipts:  # type: ignore[attr-defined]
                found.unknown, found.note = len(ids), f"{channel.kind} reports no delivery receipts"
            else:
                asyncio.run(_ask(channel, ids, found))  # type: ignore[arg-type]
            results.append(found)
            store.append_event("receipts_collected", phase="review", actor=actor, incident=incident,
                               alert=alert.identifier, channel=name,
                               description=f"{name} ({language}): {found.delivered:,} delivered, {found.failed:,} "
                               f"failed, {found.pending:,} on their way, {found.unknown:,} unknown",
                               details={**found.to_dict(), "language": language})
    return results


async def _ask(channel: ListChannel, ids: list[str | None], found: Receipts) -> None:
    import aiohttp

    slots = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=20)
    errors: Counter[str] = Counter()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await channel.open(session)
        try:
            async def one(remote_id: str | None) -> None:
                if not remote_id:
                    found.unknown += 1
                    return
                async with slots:
                    try:
                        state, reason = await channel.receipt(remote_id, session)
                    except (ChannelError, BroadcastError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                        found.unknown += 1
                        errors[exc.message if isinstance(exc, BroadcastError) else type(exc).__name__] += 1
                        return
                if state == "delivered":
                    found.delivered += 1
                elif state == "failed":
                    found.failed += 1
                    found.reasons[reason or "failed"] += 1
                else:
                    found.pending += 1

            await asyncio.gather(*(one(remote_id) for remote_id in ids))
        finally:
            await channel.close()
    if errors:
        message, times = errors.most_common(1)[0]
        found.note = f"{times:,} could not be asked: {message}"


def latest_reach(store: Store, incident: str) -> list[dict[str, Any]]:
    """The last snapshot of each post (alert, channel, language): what the metrics report as engagement."""
    import json

    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for details in store.conn.execute(
            "SELECT details FROM events WHERE incident = ? AND type = 'engagement_collected' ORDER BY id", [incident]):
        data = json.loads(details[0])
        last[(data["alert"], data["channel"], data["language"])] = data
    return list(last.values())


def latest(store: Store, incident: str) -> list[dict[str, Any]]:
    """The last snapshot of each alert, channel and language, summed per channel and language (for the metrics)."""
    import json

    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for alert, channel, details in store.conn.execute(
            "SELECT alert, channel, details FROM events WHERE incident = ? AND type = 'receipts_collected' ORDER BY id",
            [incident]):
        data = json.loads(details)
        last[(alert, channel, data.get("language", ""))] = data
    summed: dict[tuple[str, str], dict[str, Any]] = {}
    for (_, channel, language), data in last.items():
        row = summed.setdefault((channel, language), {"channel": channel, "language": language, "delivered": 0,
                                                       "failed": 0, "pending": 0, "unknown": 0, "reasons": Counter()})
        for key in ("delivered", "failed", "pending", "unknown"):
            row[key] += int(data.get(key) or 0)
        row["reasons"].update(data.get("reasons") or {})
    return [{**row, "reasons": dict(row["reasons"].most_common())} for row in summed.values()]
