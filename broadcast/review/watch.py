"""During an incident: collect receipts every few minutes, and ping the staff before a promised update is due, when it
is overdue, and when texts or emails fail.

Staff pings are not public alerts: no CAP file, no page, no delivery rows. What the watch noticed is a
`watch_reminder` event and each ping a `staff_pinged` event (channel, outcome), so the review shows who was told
what and when, and a restarted watch reads from the log what it has already said.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from broadcast.errors import BroadcastError, PolicyError
from broadcast.send.staff import Ping, Staff, targets, tell
from broadcast.words import counted

if TYPE_CHECKING:
    from broadcast.review.receipts import Reach, Receipts
    from broadcast.send.fanout import Limits
    from broadcast.store import Store
    from broadcast.workspace import Workspace

LABEL = {"due-soon": "DUE SOON", "overdue": "OVERDUE", "failures": "FAILED"}

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
Say = Callable[[str], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Reminder:
    """One thing the staff should hear about, once."""

    incident: str
    what: str  # due-soon, overdue, failures
    key: str  # what makes it the same thing again (the due time, the failed count)
    headline: str
    text: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class WatchResult:
    incidents: list[str]
    cycles: int = 0
    reminders: list[Reminder] = field(default_factory=list)
    pings: list[Ping] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def watched(store: Store, incidents: Sequence[str]) -> list[str]:
    """The incidents named (an unknown one refused, naming the open ones), else every one not closed."""
    from broadcast.send.lifecycle import incident_row

    if not incidents:
        slugs = [row["slug"] for row in store.incidents() if row["status"] != "closed"]
        if not slugs:
            raise PolicyError("no open incident to watch", hint="the watch starts once a warning has gone out "
                              "(broadcast warn), or name one: broadcast watch INCIDENT")
        return slugs
    for slug in incidents:
        if incident_row(store, slug)["status"] == "closed":
            raise PolicyError(f"incident {slug} is closed: there is nothing to watch",
                              hint="see the open ones with: broadcast status")
    return list(dict.fromkeys(incidents))


def until_closed(store: Store, slugs: list[str], cycle: Callable[[list[str]], datetime | None], *, every: float,
                 now: Clock, sleep: Sleep, say: Say, zone: str) -> int:
    """Run `cycle` on the incidents still open every `every` minutes (sooner when it asks), until all are closed;
    return how many cycles ran."""
    from broadcast.alert import shown_time

    cycles, closed = 0, set()
    marks = ", ".join("?" for _ in slugs)
    while True:
        states = dict(store.conn.execute(f"SELECT slug, status FROM incidents WHERE slug IN ({marks})", slugs))
        for slug in slugs:
            if states.get(slug) == "closed" and slug not in closed:
                closed.add(slug)
                say(f"{shown_time(now(), zone)}  {slug} is closed")
        if len(closed) == len(slugs):
            say(f"{shown_time(now(), zone)}  {'Every incident' if len(slugs) > 1 else 'The incident'} watched is "
                "closed: the watch stops.")
            return cycles
        soonest = cycle([s for s in slugs if s not in closed])
        cycles += 1
        wake = now() + timedelta(minutes=every)
        sleep(max(0.0, ((min(wake, soonest) if soonest else wake) - now()).total_seconds()))


def watch(workspace: Workspace, store: Store, incidents: Sequence[str] = (), *, actor: str, every: float = 5.0,
          remind: float = 15.0, now: Clock = utcnow, sleep: Sleep = time.sleep, say: Say = print) -> WatchResult:
    """Collect every `every` minutes and ping the staff `remind` minutes before a promised update is due, when it is
    overdue, and when receipts show new failures, until every watched incident is closed. Ctrl-C is logged and
    raised again (KeyboardInterrupt)."""
    from broadcast.send.fanout import Limits

    staff = Staff.from_workspace(workspace)
    watcher = Watcher(workspace, store, staff, staff.number(), Limits.from_workspace(workspace), actor=actor,
                      remind=remind, now=now, say=say)
    slugs = watched(store, incidents)
    watcher.start(slugs, every)
    try:
        watcher.result.cycles = until_closed(store, slugs, watcher.cycle, every=every, now=now, sleep=sleep, say=say,
                                             zone=workspace.timezone)
    except KeyboardInterrupt:
        watcher.stopped(slugs, "interrupted (Ctrl-C)")
        raise
    watcher.stopped(slugs, "every incident watched is closed")
    return watcher.result


def follow(workspace: Workspace, store: Store, incidents: Sequence[str] = (), *, actor: str, every: float,
           show: Callable[[datetime, list[Receipts], list[Reach]], None], now: Clock = utcnow,
           sleep: Sleep = time.sleep, say: Say = print) -> int:
    """Collect receipts and engagement every `every` minutes until every incident is closed (no pings); `show` gets
    each snapshot. Return how many snapshots were taken."""
    from broadcast.alert import shown_time
    from broadcast.review.receipts import collect, collect_reach

    def cycle(slugs: list[str]) -> None:
        for slug in slugs:
            try:
                found = collect(workspace, store, slug, actor=actor)
                show(now(), found, collect_reach(workspace, store, slug, actor=actor))
            except Exception as exc:  # noqa: BLE001  a platform failing never stops the watch
                say(f"{shown_time(now(), workspace.timezone)}  {slug}: collecting failed: {_said(exc)}")

    return until_closed(store, watched(store, incidents), cycle, every=every, now=now, sleep=sleep, say=say,
                        zone=workspace.timezone)


class Watcher:
    """One watch: what it has said (read back from the log each cycle) and how it reaches the staff."""

    def __init__(self, workspace: Workspace, store: Store, staff: Staff, number: str | None, limits: Limits, *,
                 actor: str, remind: float, now: Clock, say: Say):
        self.workspace, self.store, self.staff, self.number, self.limits = workspace, store, staff, number, limits
        self.actor, self.now, self.say = actor, now, say
        self.remind_minutes, self.remind = remind, timedelta(minutes=remind)
        self.result = WatchResult([])
        self.notes: dict[tuple[str, str, str], str | None] = {}  # the last note printed per alert, channel, language

    def stamp(self, at: datetime | None = None) -> str:
        from broadcast.alert import shown_time

        return shown_time(at or self.now(), self.workspace.timezone)

    def masked(self) -> str | None:
        from broadcast.prepare.recipients import mask_phone

        return mask_phone(self.number) if self.number else None

    def start(self, slugs: list[str], every: float) -> None:
        self.result.incidents = slugs
        names = ", ".join(self.staff.channels) or "none"
        if not self.staff.configured:
            self.say(f"No staff list in broadcast.toml ([watch] staff): pinging every enabled Slack and Teams channel "
                     f"({names}).")
        for target in targets(self.workspace, self.store, self.staff, self.number):
            if target.why:
                self.say(f"{target.name} will not be pinged: {target.why}")
        phone = f"; the duty phone {self.masked()} by {self.staff.sms_channel}" if self.number else ""
        self.say(f"Watching {', '.join(slugs)} every {_minutes(every)}: a reminder {_minutes(self.remind_minutes)} "
                 f"before a promised update, again when it is overdue, and when texts or emails fail. Staff: "
                 f"{names}{phone}." + ("" if self.staff.channels or self.number else " (printed here only)")
                 + " Ctrl-C stops it.")
        for slug in slugs:
            self.store.append_event("watch_started", phase="inform", actor=self.actor, incident=slug,
                                    description=f"watch started: every {_minutes(every)}, staff {names}{phone}",
                                    details={"every_minutes": every, "remind_minutes": self.remind_minutes,
                                             "staff": list(self.staff.channels), "duty_phone": self.masked()},
                                    occurred_at=self.now())

    def stopped(self, slugs: list[str], why: str) -> None:
        for slug in slugs:
            self.store.append_event("watch_stopped", phase="inform", actor=self.actor, incident=slug,
                                    description=f"watch stopped: {why}", details={"why": why}, occurred_at=self.now())

    def cycle(self, slugs: list[str]) -> datetime | None:
        """Collect, then remind; return the next instant a reminder falls due, if sooner than the next cycle."""
        from broadcast.review.status import status

        found = {slug: self.collect(slug) for slug in slugs}
        at = self.now()
        items = {item.slug: item for item in status(self.workspace, self.store, now=at).incidents}
        noticed, done = self.memory(slugs)
        soonest: datetime | None = None
        for slug in slugs:
            item = items.get(slug)
            due = datetime.fromisoformat(item.next_update_due) if item and item.next_update_due else None
            self.say(f"{self.stamp(at)}  {slug}  {_summary(found[slug], due, at, self.workspace.timezone)}")
            for r in found[slug] or []:  # what a platform could not tell (it failed, or it has no receipts): once
                if r.note and self.notes.get((r.alert, r.channel, r.language)) != r.note:
                    self.say(f"{self.stamp(at)}  {slug}  {r.alert} {r.channel} ({r.language}): {r.note}")
                self.notes[r.alert, r.channel, r.language] = r.note
            reminders = self.due(slug, due, at) + self.failures(slug, found[slug] or [], noticed)
            for reminder in reminders:
                self.remind_staff(reminder, at, noticed, done)
            for moment in (due - self.remind, due) if due else ():
                if moment > at and (soonest is None or moment < soonest):
                    soonest = moment
        return soonest

    def collect(self, slug: str) -> list[Receipts] | None:
        from broadcast.review.receipts import collect, collect_reach

        try:
            found = collect(self.workspace, self.store, slug, actor=self.actor)
            collect_reach(self.workspace, self.store, slug, actor=self.actor)
            return found
        except Exception as exc:  # noqa: BLE001  a platform failing, whatever the way, never stops the watch
            error = f"{slug}: collecting failed: {_said(exc)}"
            self.say(f"{self.stamp()}  {error}")
            self.result.errors.append(error)
            self.store.append_event("watch_error", phase="inform", actor=self.actor, incident=slug,
                                    description=error, details={"error": _said(exc)}, occurred_at=self.now())
            return None

    def memory(self, slugs: list[str]) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
        """What the log says was noticed (key -> details) and which (key, channel) pings need no other try."""
        import json

        noticed: dict[str, dict[str, Any]] = {}
        done: set[tuple[str, str]] = set()
        marks = ", ".join("?" for _ in slugs)
        for kind, channel, details in self.store.conn.execute(
                f"SELECT type, channel, details FROM events WHERE type IN ('watch_reminder', 'staff_pinged') AND "
                f"incident IN ({marks}) ORDER BY id", slugs):
            data = json.loads(details)
            if kind == "watch_reminder":
                noticed[data["key"]] = data
            elif not data.get("retry"):
                done.add((data["key"], channel))
        return noticed, done

    def due(self, slug: str, due: datetime | None, at: datetime) -> list[Reminder]:
        from broadcast.alert import shown_time

        if due is None or at < due - self.remind:
            return []
        zone = self.workspace.timezone
        when = shown_time(due, zone, date=due.astimezone(UTC).date() != at.astimezone(UTC).date())
        alerts = self.store.alerts(slug)
        command = f"broadcast update {slug} {alerts[-1].template or 'TEMPLATE'} --set ..." if alerts else ""
        details = {"due": due.astimezone(UTC).isoformat()}
        if at >= due:
            late = int((at - due).total_seconds() // 60)
            ago = f"{counted(late, 'minute')} ago" if late else "just now"
            return [Reminder(slug, "overdue", f"overdue:{slug}:{due.isoformat()}", f"Next update overdue: {slug}",
                             f"{slug}: the next update was promised for {when} ({ago}) and has not gone out. Send it "
                             f"now: {command}", details)]
        left = math.ceil((due - at).total_seconds() / 60)
        return [Reminder(slug, "due-soon", f"due-soon:{slug}:{due.isoformat()}",
                         f"Next update due in {counted(left, 'minute')}: {slug}",
                         f"{slug}: the next update was promised for {when}, in {counted(left, 'minute')}. Send it "
                         f"with: {command}", details)]

    def failures(self, slug: str, found: list[Receipts], noticed: dict[str, dict[str, Any]]) -> list[Reminder]:
        """A reminder per alert, channel and language whose failed count rose since the last one; one already said
        comes back as it was, for the staff it has not reached yet."""
        reminders, nothing = [], {"failed": 0, "reasons": {}}
        for r in found:
            key = f"failures:{r.alert}:{r.channel}:{r.language}:{r.failed}"
            if key in noticed:
                said = noticed[key]
                reminders.append(Reminder(slug, "failures", key, said["headline"], said["text"], said))
                continue
            same = [d for d in noticed.values() if d.get("what") == "failures"
                    and (d["alert"], d["channel"], d["language"]) == (r.alert, r.channel, r.language)]
            last: dict[str, Any] = max(same, key=lambda d: int(d["failed"]), default=nothing)
            if r.failed <= last["failed"]:
                continue
            new = r.failed - last["failed"]
            why = ", ".join(f"{reason} {n:,}" for reason, n in
                            ((Counter(r.reasons) - Counter(last["reasons"])) or r.reasons).most_common())
            some = counted(new, "more message") if last["failed"] else counted(new, "message")
            total = f" ({r.failed:,} in all)" if last["failed"] else ""
            reminders.append(Reminder(
                slug, "failures", key, f"{some} not delivered: {slug}",
                f"{slug}: {some} on {r.channel} ({r.language}) not delivered{total}, alert {r.alert}: {why}. "
                f"Details: broadcast review metrics {slug}",
                {"alert": r.alert, "channel": r.channel, "language": r.language, "failed": r.failed, "new": new,
                 "reasons": dict(r.reasons)}))
        return reminders

    def remind_staff(self, reminder: Reminder, at: datetime, noticed: dict[str, Any],
                     done: set[tuple[str, str]]) -> None:
        """Say it once, log it, and ping every staff channel that has not had it yet."""
        if reminder.key not in noticed:
            self.say(f"{self.stamp(at)}  {LABEL[reminder.what]:8}  {reminder.text}")
            self.result.reminders.append(reminder)
            noticed[reminder.key] = {**reminder.details, "key": reminder.key, "what": reminder.what,
                                     "headline": reminder.headline, "text": reminder.text}
            self.store.append_event("watch_reminder", phase="inform", actor=self.actor, incident=reminder.incident,
                                    description=reminder.text, details=noticed[reminder.key], occurred_at=at)
        to = [t for t in targets(self.workspace, self.store, self.staff, self.number)
              if (reminder.key, t.name) not in done]
        if not to:
            return
        for ping in asyncio.run(tell(self.workspace, to, reminder.headline, reminder.text, reminder.key, self.limits,
                                     self.now)):
            self.record(reminder, ping)

    def record(self, reminder: Reminder, ping: Ping) -> None:
        self.result.pings.append(ping)
        where = f"{ping.channel} to the duty phone {ping.to}" if ping.to else ping.channel
        word = {"sent": "OK", "failed": "FAIL", "uncertain": "CHECK", "skipped": "SKIP"}[ping.outcome]
        tries = f"  {counted(ping.attempts, 'attempt')}" if ping.attempts else ""
        again = "; tried again at the next check" if ping.retry else ""
        self.say(f"{self.stamp(ping.at)}  {word:5} {where}{tries}" + (f"  {ping.error}{again}" if ping.error else ""))
        self.store.append_event(
            "staff_pinged", phase="inform", actor=self.actor, incident=reminder.incident, channel=ping.channel,
            description=f"{where}: {reminder.what} {ping.outcome}" + (f": {ping.error}" if ping.error else ""),
            details={"key": reminder.key, "what": reminder.what, "outcome": ping.outcome, "attempts": ping.attempts,
                     "error": ping.error, "to": ping.to, "retry": ping.retry, "text": reminder.text},
            occurred_at=ping.at)


def _summary(found: list[Receipts] | None, due: datetime | None, at: datetime, zone: str) -> str:
    from broadcast.alert import shown_time

    if found is None:
        parts = "receipts not collected this time"
    elif not found:
        parts = "no texts or emails to ask about"
    else:
        counts = {key: sum(getattr(r, key) for r in found) for key in ("delivered", "failed", "pending", "unknown")}
        parts = (f"texts and emails: {counts['delivered']:,} delivered, {counts['failed']:,} failed, "
                 f"{counts['pending']:,} on their way" + (f", {counts['unknown']:,} unknown" if counts["unknown"]
                                                          else ""))
    if due is None:
        return f"{parts}; no next update promised"
    if at >= due:
        return f"{parts}; the next update was due at {shown_time(due, zone)}: OVERDUE"
    return f"{parts}; next update due at {shown_time(due, zone)}"


def _minutes(value: float) -> str:
    return counted(int(value), "minute") if value == int(value) else f"{value:g} minutes"


def _said(exc: BaseException) -> str:
    from broadcast.secrets import mask

    return mask(exc.message if isinstance(exc, BroadcastError) else f"{type(exc).__name__}: {exc}")[:300]
