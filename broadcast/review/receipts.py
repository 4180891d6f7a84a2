"""After the send: ask each list platform what became of every message (delivered, failed, still on its way).

Each answer goes into the chain as one snapshot per alert, channel and language (`receipts_collected`), with its
counts and the platforms' reasons, so the review shows how delivery grew; nothing about a person but the masked
form already logged. The kill switch, secrets and timeouts are as for sending.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import ChannelError, Receipt

if TYPE_CHECKING:
    import httpx

    from broadcast.channels.base import Channel, Engagement
    from broadcast.channels.lists import ListChannel
    from broadcast.send.fanout import Limits
    from broadcast.store import Store
    from broadcast.workspace import Workspace

CONCURRENCY = 20  # status look-ups in flight at once per run: well under every platform's read limit

Sleep = Callable[[float], Awaitable[None]]


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
    reported: bool = True  # False: the platform was not asked, or gives no receipts (SMTP)

    @property
    def total(self) -> int:
        return self.delivered + self.failed + self.pending + self.unknown

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "channel": self.channel, "language": self.language, "delivered": self.delivered,
                "failed": self.failed, "pending": self.pending, "unknown": self.unknown,
                "reasons": dict(self.reasons.most_common()), "note": self.note, "receipts": self.reported}


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

    def figures(self) -> str:
        """'1 reply, 12 reposts, 40 likes' (a count the platform does not report is left out)."""
        from broadcast.words import counted

        return ", ".join(counted(n, word) for n, word in (
            (self.replies, "reply"), (self.reposts, "repost"), (self.likes, "like"), (self.views, "view"))
            if n is not None)

    def summary(self) -> str:
        """The counts, then what is missing or went wrong ('removed since', 'not available (...)')."""
        return "; ".join(part for part in (self.figures(), self.note) if part)

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "channel": self.channel, "language": self.language, "url": self.url,
                "replies": self.replies, "reposts": self.reposts, "likes": self.likes, "views": self.views,
                "said": self.said, "note": self.note}


Row = tuple[str, str, str, str | None, str | None]  # alert, channel, language, remote id, remote url


def collect_reach(workspace: Workspace, store: Store, incident: str, *, actor: str,
                  sleep: Sleep = asyncio.sleep) -> list[Reach]:
    """Ask each social platform about every post of the incident still up; log one snapshot per post."""
    from broadcast.send.fanout import Limits
    from broadcast.send.sending import usable_channels

    rows: list[Row] = []
    asked: dict[str, tuple[dict[str, Channel], dict[str, str]]] = {}
    by_status: dict[str, tuple[dict[str, Channel], dict[str, str]]] = {}  # one adapter per channel and status
    for alert in store.alerts(incident):  # (a Bluesky session is made once for the whole run)
        if alert.status not in by_status:
            usable, skipped = usable_channels(workspace, store, (), alert.status)
            by_status[alert.status] = ({c.name: c for _, c in usable if not c.per_person}, dict(skipped))
        asked[alert.identifier] = by_status[alert.status]
        rows += [(alert.identifier, *row) for row in store.conn.execute(
            "SELECT channel, language, remote_id, remote_url FROM deliveries WHERE alert = ? AND recipient = '' "
            "AND state = 'sent' ORDER BY id", [alert.identifier]).fetchall()]
    if not rows:
        return []
    found = asyncio.run(_reach_all(rows, asked, Limits.from_workspace(workspace), sleep))
    for reach in found:
        store.append_event("engagement_collected", phase="review", actor=actor, incident=incident,
                           alert=reach.alert, channel=reach.channel,
                           description=f"{reach.channel} ({reach.language}): {reach.summary()}",
                           details=reach.to_dict())
    return found


async def _reach_all(rows: list[Row], asked: dict[str, tuple[dict[str, Channel], dict[str, str]]],
                     limits: Limits, sleep: Sleep) -> list[Reach]:
    """Ask about every post at once, within the channels' own concurrency and one overall deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limits.overall_deadline
    slots: dict[str, asyncio.Semaphore] = {}

    async def one(row: Row, client: httpx.AsyncClient) -> Reach:
        alert, name, language, remote_id, url = row
        reach = Reach(alert, name, language, url)
        channels, reasons = asked[alert]
        channel = channels.get(name)
        if channel is None:
            reach.note = f"not asked: {reasons.get(name, 'the channel is not configured')}"
            return reach
        slot = slots.setdefault(name, asyncio.Semaphore(channel.concurrency))
        try:
            got = await _read(channel, Receipt(remote_id, url), client, limits=limits, sleep=sleep, slot=slot,
                              deadline=min(loop.time() + limits.channel_deadline, end))
        except ChannelError as exc:
            reach.note = exc.message
            return reach
        if got is None:
            reach.note = f"{channel.kind}: not available ({channel.engagement_note})"
            return reach
        reach.replies, reach.reposts, reach.likes, reach.views = got.replies, got.reposts, got.likes, got.views
        reach.said = [{"text": text, "link": link, "at": at} for text, link, at in got.said]
        reach.note = got.note  # counts, but not everything (X without search: no replies' text)
        return reach

    from broadcast.send.client import http_client

    async with http_client(limits.concurrency, timeout=limits.read_timeout, connect=limits.connect_timeout) as client:
        return list(await asyncio.gather(*(one(row, client) for row in rows)))


async def _read(channel: Channel, receipt: Receipt, client: httpx.AsyncClient, *, limits: Limits, sleep: Sleep,
                slot: asyncio.Semaphore, deadline: float) -> Engagement | None:
    """One post's engagement, retried as a send is (broadcast.send.retry); a read never posts, so every transient
    failure is worth another try."""
    from broadcast.send.retry import Retry, guarded

    retry = Retry(limits, idempotent=True, sleep=sleep)

    async def attempt() -> Engagement | None:
        async with slot:  # held for the request only: a wait never holds a slot
            return await guarded(channel.name, channel.engagement(receipt, client))

    try:
        async with asyncio.timeout_at(deadline):
            return await retry.run(attempt)
    except ChannelError as exc:
        if retry.attempts < 2:
            raise
        raise ChannelError(f"{exc.message} ({retry.attempts} tries)", transient=exc.transient, status=exc.status,
                           hint=exc.hint) from None
    except TimeoutError:
        said = f": {retry.last_error.message}" if retry.last_error else ""
        raise ChannelError(f"{channel.name}: no answer before the deadline{said}", transient=True,
                           hint="collect again later") from None


def collect(workspace: Workspace, store: Store, incident: str, *, actor: str,
            sleep: Sleep = asyncio.sleep) -> list[Receipts]:
    """Ask the platforms about every message of the incident's alerts sent to lists; log one snapshot each."""
    from broadcast.send.fanout import Limits
    from broadcast.send.lifecycle import incident_row
    from broadcast.send.sending import usable_channels

    incident_row(store, incident)  # an unknown incident is refused with the open ones named
    results: list[Receipts] = []
    limits = Limits.from_workspace(workspace)
    by_status: dict[str, tuple[dict[str, ListChannel], dict[str, str]]] = {}
    for alert in store.alerts(incident):
        if alert.status not in by_status:  # the channels an alert of this status may use: read once
            usable, skipped = usable_channels(workspace, store, (), alert.status)
            by_status[alert.status] = ({c.name: c for _, c in usable if c.per_person},  # type: ignore[misc]
                                       dict(skipped))
        channels, reasons = by_status[alert.status]
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
                found.unknown, found.reported = len(ids), False
                found.note = f"not asked: {reasons.get(name, 'the channel is not configured')}"
            elif not channel.receipts:
                found.unknown, found.reported = len(ids), False
                found.note = f"{channel.kind} reports no delivery receipts"
            else:
                asyncio.run(_ask(channel, ids, found, limits, sleep))
            results.append(found)
            store.append_event("receipts_collected", phase="review", actor=actor, incident=incident,
                               alert=alert.identifier, channel=name,
                               description=f"{name} ({language}): {found.delivered:,} delivered, {found.failed:,} "
                               f"failed, {found.pending:,} on their way, {found.unknown:,} unknown",
                               details={**found.to_dict(), "language": language})
    return results


async def _ask(channel: ListChannel, ids: list[str | None], found: Receipts, limits: Limits, sleep: Sleep) -> None:
    """Each message's status, CONCURRENCY at a time, each read retried as a send is (a 429, a 5xx, a dropped
    connection); one that still fails counts as unknown, with the platform's words in the note."""
    from broadcast.send.client import list_client
    from broadcast.send.retry import Retry, guarded

    slots = asyncio.Semaphore(CONCURRENCY)
    errors: Counter[str] = Counter()
    async with list_client(CONCURRENCY, connect=limits.connect_timeout, read=limits.read_timeout) as client:
        await channel.open(client)
        try:
            async def read(remote_id: str) -> tuple[str, str | None]:
                async with slots:  # held for the request only: a wait never holds a slot
                    return await guarded(channel.name, channel.receipt(remote_id, client))

            async def one(remote_id: str | None) -> None:
                if not remote_id:
                    found.unknown += 1
                    return
                try:
                    async with asyncio.timeout(limits.channel_deadline):
                        state, reason = await Retry(limits, idempotent=True, sleep=sleep).run(
                            lambda: read(remote_id))
                except (ChannelError, TimeoutError) as exc:
                    found.unknown += 1
                    errors[exc.message if isinstance(exc, ChannelError) else "no answer before the deadline"] += 1
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
        # Nothing came back at all: this snapshot says nothing of delivery, so the last answer stands in the review.
        found.reported = bool(found.delivered or found.failed or found.pending)
