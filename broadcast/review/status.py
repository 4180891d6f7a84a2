"""Where things stand: open incidents, the last message on each channel, what failed and what is due."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from broadcast.store import Store
    from broadcast.workspace import Workspace


@dataclass
class Problem:
    alert: str
    channel: str
    language: str
    state: str
    error: str | None
    fix: str


@dataclass
class IncidentStatus:
    slug: str
    title: str
    status: str
    exercise: bool
    opened_at: str
    alerts: int
    last_alert: str | None
    last_sent: str | None
    last_headline: str | None
    next_update_due: str | None = None
    overdue_minutes: int | None = None
    messages: str | None = None  # what became of its messages, in the review's words (broadcast.review.tally)


@dataclass
class Undelivered:
    """Texts or emails a platform accepted and then reported not delivered (per `broadcast review collect`)."""

    incident: str
    channel: str
    language: str
    count: int
    reasons: dict[str, int]
    fix: str


@dataclass
class Off:
    """A channel that sends nothing now (switched off, off in its file, or a broken file), and what it still shows."""

    channel: str
    why: str
    live_posts: list[dict[str, Any]] = field(default_factory=list)  # alert, url: posts of open incidents left up


@dataclass
class StaleCopy:
    """A channel still showing an earlier message of an open incident than its latest."""

    incident: str
    channel: str
    shows: str
    latest: str
    url: str | None
    fix: str


@dataclass
class Status:
    incidents: list[IncidentStatus]
    channels: dict[str, dict[str, Any]]  # channel -> last delivered message
    problems: list[Problem]
    events: int
    head: str
    generated_at: str
    drafts_waiting: int = 0
    notes: list[str] = field(default_factory=list)
    off: list[Off] = field(default_factory=list)
    stale: list[StaleCopy] = field(default_factory=list)
    undelivered: list[Undelivered] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        """Something the duty officer must act on: `broadcast status` then exits 1."""
        return bool(self.problems or self.stale or any(i.overdue_minutes for i in self.incidents)
                    or any(o.live_posts for o in self.off))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "needs_attention": self.needs_attention}


def next_update_due(alert_sent: str, promised: str | None, zone: str) -> datetime | None:
    """The instant a template's promised next update (a time such as 15:00) falls due, after the alert was sent."""
    if not promised:
        return None
    from broadcast.prepare.variables import TIME_RE

    match = TIME_RE.match(promised.strip())
    if not match:
        return None
    hour, minute, half = int(match[1]), int(match[2] or 0), (match[3] or "").lower()
    if half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    sent = datetime.fromisoformat(alert_sent).astimezone(ZoneInfo(zone))
    due = datetime.combine(sent.date(), time(hour, minute), tzinfo=ZoneInfo(zone))
    if due <= sent:
        due += timedelta(days=1)
    return due


def status(workspace: Workspace, store: Store, *, now: datetime | None = None) -> Status:
    """Everything a duty officer needs to see at a glance."""
    from broadcast.public.summary import kind_of
    from broadcast.send.lifecycle import stale_channels

    now = now or datetime.now(UTC)
    incidents = []
    for row in store.incidents():
        if row["status"] == "closed":
            continue
        alerts = store.alerts(row["slug"])
        last = alerts[-1] if alerts else None
        item = IncidentStatus(row["slug"], row["title"], row["status"], bool(row["exercise"]), row["opened_at"],
                              len(alerts), last.identifier if last else None, last.sent if last else None,
                              last.infos[0].headline if last and last.infos else None)
        due = None
        # A withdrawal or an all-clear promises no further update, whatever the message before it said.
        if last is not None and kind_of(last) not in ("cancel", "all-clear"):
            due = next_update_due(last.sent, last.variables.get("next_update"), workspace.timezone)
        if due and row["status"] == "open":
            item.next_update_due = due.isoformat()
            late = (now - due).total_seconds() / 60
            item.overdue_minutes = int(late) if late > 0 else None
        incidents.append(item)
    undelivered = _receipts(store, incidents)
    channels: dict[str, dict[str, Any]] = {}
    for channel, alert, language, url, updated in store.conn.execute(
            "SELECT channel, alert, language, remote_url, updated_at FROM deliveries WHERE state = 'sent' "
            "AND recipient = '' ORDER BY updated_at"):
        channels[channel] = {"alert": alert, "language": language, "url": url, "at": updated}
    problems = []
    for alert, channel, language, state, error in store.conn.execute(
            "SELECT alert, channel, language, state, last_error FROM deliveries "
            "WHERE state IN ('failed', 'uncertain', 'pending', 'sending') AND recipient = '' ORDER BY id"):
        fix = f"broadcast resend {alert} --only {channel}"
        if state == "uncertain":
            fix = f"check {channel} by hand; if nothing was posted: {fix} --include-uncertain"
        problems.append(Problem(alert, channel, language, state, error, fix))
    for alert, channel, state, number in store.conn.execute(
            "SELECT alert, channel, state, count(*) FROM deliveries WHERE recipient != '' AND state IN "
            "('failed', 'uncertain', 'pending', 'sending') GROUP BY alert, channel, state ORDER BY alert"):
        fix = f"broadcast resend {alert} --only {channel}"
        if state == "uncertain":  # a plain resend leaves these alone: say the command that sends them
            fix = (f"check {channel}'s message log for them; those not there: {fix} --include-uncertain (it sends "
                   "every uncertain one, so any that did arrive are sent twice)")
        problems.append(Problem(alert, channel, "", state, f"{number:,} recipients {state}", fix))
    count, head = store.head()
    waiting = store.conn.execute("SELECT count(*) FROM drafts WHERE state = 'waiting'").fetchone()[0]
    off = channels_off(workspace, store, [i.slug for i in incidents])
    stale = [StaleCopy(item.slug, copy.channel, copy.shows, copy.latest, copy.url,
                       _stale_fix(copy.channel, copy.latest, {o.channel: o.why for o in off}))
             for item in incidents for copy in stale_channels(store, item.slug)]
    return Status(incidents, channels, problems, count, head, now.isoformat(), waiting, off=off, stale=stale,
                  undelivered=undelivered)


def _receipts(store: Store, incidents: list[IncidentStatus]) -> list[Undelivered]:
    """Fill each incident's figures; return what the receipts say did not arrive. A resend cannot mend these (the
    platform took them), so they are shown, not counted as something status waits on."""
    from broadcast.review.tally import figures, tally, total

    found = []
    for item in incidents:
        rows = tally(store, [item.slug])
        item.messages = figures(total(rows)) if rows else None
        for row in rows:
            if row.undelivered:
                found.append(Undelivered(item.slug, row.channel, row.language, row.undelivered,
                                         dict(row.receipt_reasons.most_common()), UNDELIVERED_FIX))
    return found


UNDELIVERED_FIX = ("a permanent failure is a wrong or dead number or address: correct the list and run broadcast "
                   "lists check; a temporary one is a phone off or a full inbox; either way, these people have not "
                   "had the message: reach them another way (the page, radio, a call)")


def channels_off(workspace: Workspace, store: Store, incidents: list[str]) -> list[Off]:
    """Every channel that sends nothing now, with why, and the posts of open incidents it still shows."""
    from broadcast.send.lifecycle import live_alerts
    from broadcast.send.sending import switched_off

    why = {name: f"broken file: {b.error.message}" for name, b in workspace.broken_channels.items()}
    why.update({name: "off in its file (enabled = false)" for name, c in workspace.channels.items() if not c.enabled})
    why.update(switched_off(store))
    live = [a.identifier for slug in incidents for a in live_alerts(store, slug)]
    found = []
    for name in sorted(why):
        posts = [{"alert": alert, "url": url} for alert, url in store.conn.execute(
            f"SELECT alert, remote_url FROM deliveries WHERE channel = ? AND recipient = '' AND state = 'sent' AND "
            f"alert IN ({', '.join('?' for _ in live)}) ORDER BY id", [name, *live])] if live else []
        found.append(Off(name, why[name], posts))
    return found


def _stale_fix(channel: str, latest: str, off: dict[str, str]) -> str:
    if channel in off:
        return (f"it is off, so nothing follows its post there: delete the post by hand, or switch it on "
                f"(broadcast channels enable {channel}) and send the latest to it: broadcast resend {latest} --only "
                f"{channel}")
    return f"send the latest to it: broadcast resend {latest} --only {channel}"
