"""Review metrics, derived from the event log alone and computed on UTC instants (a clock change adds nothing)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from broadcast.review.timeline import parse_instant

if TYPE_CHECKING:

    from broadcast.review.tally import Tally
    from broadcast.store import Store

NOT_PUBLIC = ("Test", "Draft")  # CAP statuses that never reach the public: not updates, not warnings


@dataclass
class ChannelStats:
    """One channel's messages for the incident, in the words of broadcast.review.tally, and how fast they went."""

    channel: str
    attempted: int = 0
    accepted: int = 0
    delivered: int | None = None  # per receipt; None where the platform reports none
    failed: int = 0
    unknown: int = 0
    deleted: int = 0  # accepted posts deleted since
    needed_retry: int = 0  # messages whose last result took more than one attempt
    retries: int = 0  # attempts after the first (automatic retries and resends)
    first_delivery_s: float | None = None  # first accepted message after the first alert was issued
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    failures: dict[str, int] = field(default_factory=dict)  # failed messages by reason

    @classmethod
    def of(cls, t: Tally) -> ChannelStats:
        return cls(t.channel, t.attempted, t.accepted, t.delivered, t.failed, t.unknown, t.deleted, t.needed_retry,
                   failures=dict(t.reasons.most_common(5)))


@dataclass
class Metrics:
    declared_at: str | None = None
    first_warning_at: str | None = None
    all_clear_at: str | None = None
    closed_at: str | None = None
    events: int = 0
    public_updates: int = 0
    time_to_first_warning_s: float | None = None
    approval_latency_s: list[float] = field(default_factory=list)  # drafted -> approved, per draft
    approval_to_dispatch_s: list[float] = field(default_factory=list)  # approved -> the next alert issued
    channels: list[ChannelStats] = field(default_factory=list)
    reach: list[dict[str, Any]] = field(default_factory=list)  # per channel and language: Tally.to_dict()
    attempted: int = 0
    accepted: int = 0
    delivered: int | None = None  # texts and emails a receipt says arrived; None: no receipts reported
    failed: int = 0
    unknown: int = 0
    reached: int = 0  # delivered where receipts are reported, else accepted: reached + failed + unknown = attempted
    receipts: list[dict[str, Any]] = field(default_factory=list)  # per list channel and language (review collect)
    engagement: list[dict[str, Any]] = field(default_factory=list)  # per post, its last snapshot (review collect)
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    retries: int = 0
    needed_retry: int = 0
    page_publish_lag_s: float | None = None  # first alert issued -> the page verified after it
    page_publish_lag_max_s: float | None = None
    page_failures: int = 0
    update_interval_median_s: float | None = None
    longest_silence_s: float | None = None
    longest_silence_from: str | None = None
    longest_silence_to: str | None = None
    time_to_all_clear_s: float | None = None
    duration_s: float | None = None
    corrections: int = 0  # Updates that correct an earlier message (`broadcast correct`)
    retractions: int = 0  # Cancels (`broadcast cancel`)
    retracted_posts: int = 0  # posts deleted from a platform
    overrides: int = 0  # sent without a second approver: flagged for the review
    log_corrections: int = 0  # notes and decisions superseded by a later entry
    decisions: int = 0
    notes: int = 0
    channel_switches: list[str] = field(default_factory=list)  # "disabled mastodon-council: reason"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((parse_instant(end) - parse_instant(start)).total_seconds(), 3)


class Histogram:
    """Percentiles of milliseconds, exact below a second and to three significant figures above, so memory is
    bounded (a few thousand buckets at most) however many events there are."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    def add(self, value: int) -> None:
        value = int(value)
        if value >= 1000:
            step = 10 ** (len(str(value)) - 3)
            value = (value + step // 2) // step * step
        self.counts[value] += 1

    def merge(self, other: Histogram) -> None:
        self.counts.update(other.counts)

    def percentile(self, share: float) -> int | None:
        """Nearest rank: the smallest value with at least `share` of the values at or below it."""
        total = sum(self.counts.values())
        if not total:
            return None
        rank, seen = max(1, math.ceil(share * total)), 0
        for value in sorted(self.counts):
            seen += self.counts[value]
            if seen >= rank:
                return value
        return None  # not reached


@dataclass(frozen=True)
class AlertFacts:
    """What the alerts table says of one alert beyond its alert_issued event (its row's hash is in that event)."""

    correction: bool
    all_clear: bool


def alert_facts(store: Store, slug: str) -> dict[str, AlertFacts]:
    """The incident's alerts: which correct an earlier one (CAP note "Correction of ...") and which are all-clears
    (an info whose responseType holds AllClear). A few dozen at most."""
    facts = {}
    for identifier, text in store.conn.execute("SELECT identifier, alert FROM alerts WHERE incident = ?", [slug]):
        alert = json.loads(text)
        facts[identifier] = AlertFacts(str(alert.get("note") or "").startswith("Correction of "), any(
            "AllClear" in (info.get("response_type") or []) for info in alert.get("infos") or []))
    return facts


def approval_times(store: Store, slug: str) -> list[tuple[str | None, str | None, str | None]]:
    """(drafted, approved, issued) for each draft a second person approved into one of the incident's alerts."""
    draft = store.sql.json_int("details", "draft")
    return list(store.conn.execute(
        "SELECT (SELECT MIN(occurred_at) FROM events WHERE type = 'message_drafted' "
        f"         AND {draft} = d.id), "
        "       (SELECT MIN(occurred_at) FROM events WHERE type = 'draft_approved' "
        f"         AND {draft} = d.id), "
        "       (SELECT MIN(occurred_at) FROM events WHERE type = 'alert_issued' AND alert = d.alert) "
        "FROM drafts d JOIN alerts a ON a.identifier = d.alert WHERE a.incident = ? ORDER BY d.id", [slug]))


class MetricsBuilder:
    """Feed timeline rows in chain order with add(), then finish(); memory stays flat however long the incident."""

    def __init__(self, incident: dict[str, Any], alerts: dict[str, AlertFacts] | None = None):
        self.incident = incident
        self.alerts = alerts or {}
        self.m = Metrics(declared_at=None, closed_at=incident.get("closed_at"))
        self.first_sent: dict[str, str] = {}
        self.latency: dict[str, Histogram] = {}
        self.retries: Counter[str] = Counter()
        self.updates: list[str] = []  # public alert times: one per alert, a few dozen at most
        self.awaiting_page: list[str] = []
        self.lags: list[float] = []
        self.first_issued: str | None = None
        self.engagement: dict[tuple[str, str, str], dict[str, Any]] = {}

    @classmethod
    def of(cls, store: Store, incident: dict[str, Any]) -> MetricsBuilder:
        return cls(incident, alert_facts(store, incident["slug"]))

    def add(self, row: dict[str, Any]) -> None:
        m, kind, at = self.m, row["type"], row["occurred_at"]
        m.events += 1
        if kind == "incident_declared" and m.declared_at is None:
            m.declared_at = at
        elif kind == "alert_issued":
            self._issued(row)
        elif kind == "delivery_result" and row["outcome"] == "sent":
            if m.first_warning_at is None or at < m.first_warning_at:
                m.first_warning_at = at
            channel = row["channel"] or "-"
            if channel not in self.first_sent or at < self.first_sent[channel]:
                self.first_sent[channel] = at
            if row["latency_ms"] is not None:
                self.latency.setdefault(channel, Histogram()).add(row["latency_ms"])
        elif kind == "delivery_attempt" and (row["attempt"] or 0) > 1:
            # Attempts after the first, automatic or by resend; a retry_scheduled may precede an attempt never made.
            self.retries[row["channel"] or "-"] += 1
        elif kind == "engagement_collected":  # a later snapshot of the same post replaces the earlier
            details = row["details"]
            self.engagement[(row["alert"], row["channel"], details.get("language"))] = details
        elif kind == "fallback_verified":
            self.lags += [s for s in (_seconds(t, at) for t in self.awaiting_page) if s is not None]
            self.awaiting_page.clear()
        elif kind == "fallback_failed":
            m.page_failures += 1
        elif kind == "retracted":
            m.retracted_posts += 1
        elif kind == "policy_override":
            m.overrides += 1
        elif kind == "incident_closed":
            m.closed_at = at
        elif kind in ("decision", "note"):
            m.decisions += kind == "decision"
            m.notes += kind == "note"
        elif kind in ("channel_disabled", "channel_enabled"):
            m.channel_switches.append(f"{row['occurred_at']} {kind.removeprefix('channel_')} {row['channel']}: "
                                      f"{row['description'] or ''}".rstrip(": "))
        if row["supersedes"]:
            m.log_corrections += 1

    def _issued(self, row: dict[str, Any]) -> None:
        details, at, m = row["details"], row["occurred_at"], self.m
        if details.get("status") in NOT_PUBLIC:
            return
        self.first_issued = self.first_issued or at
        self.updates.append(at)
        self.awaiting_page.append(at)
        facts = self.alerts.get(row["alert"])
        m.retractions += details.get("msg_type") == "Cancel"
        m.corrections += bool(facts and facts.correction)
        if facts and facts.all_clear and m.all_clear_at is None:
            m.all_clear_at = at

    def finish(self, tallies: list[Tally], approvals: Iterable[tuple[str | None, str | None, str | None]] = ()
               ) -> Metrics:
        """Close the pass with what became of the messages (per channel and language) and each approved draft's
        (drafted, approved, issued) times."""
        from broadcast.review.tally import per_channel, total

        m = self.m
        for drafted, approved, issued in approvals:
            if drafted and approved:
                m.approval_latency_s.append(_seconds(drafted, approved) or 0.0)
            if approved and issued:
                m.approval_to_dispatch_s.append(_seconds(approved, issued) or 0.0)
        m.declared_at = m.declared_at or self.incident.get("opened_at")
        m.time_to_first_warning_s = _seconds(m.declared_at, m.first_warning_at)
        m.time_to_all_clear_s = _seconds(m.declared_at, m.all_clear_at)
        m.duration_s = _seconds(m.declared_at, m.closed_at)
        m.page_publish_lag_s = self.lags[0] if self.lags else None
        m.page_publish_lag_max_s = max(self.lags) if self.lags else None
        self._cadence()
        stats = {t.channel: ChannelStats.of(t) for t in per_channel(tallies)}
        overall = Histogram()
        for name, histogram in self.latency.items():
            overall.merge(histogram)
            stats.setdefault(name, ChannelStats(name))
        for name, channel in stats.items():
            channel.retries = self.retries[name]
            channel.first_delivery_s = _seconds(self.first_issued, self.first_sent.get(name))
            if name in self.latency:
                channel.latency_p50_ms = self.latency[name].percentile(0.5)
                channel.latency_p95_ms = self.latency[name].percentile(0.95)
        m.channels = [stats[name] for name in sorted(stats)]
        whole = total(tallies)
        m.attempted, m.accepted, m.delivered = whole.attempted, whole.accepted, whole.delivered
        m.failed, m.unknown, m.reached = whole.failed, whole.unknown, whole.reached
        m.reach = [t.to_dict() for t in tallies]
        m.receipts = [receipt_row(t) for t in tallies if t.delivered is not None]
        m.engagement = list(self.engagement.values())
        m.needed_retry = sum(c.needed_retry for c in m.channels)
        m.retries = sum(self.retries.values())
        m.latency_p50_ms, m.latency_p95_ms = overall.percentile(0.5), overall.percentile(0.95)
        return m

    def _cadence(self) -> None:
        m, times = self.m, sorted(self.updates)
        m.public_updates = len(times)
        gaps = [(_seconds(a, b) or 0.0, a, b) for a, b in zip(times, times[1:], strict=False)]
        if gaps:
            ordered = sorted(g[0] for g in gaps)
            m.update_interval_median_s = ordered[(len(ordered) - 1) // 2]
            m.longest_silence_s, m.longest_silence_from, m.longest_silence_to = max(gaps)


def receipt_row(t: Tally) -> dict[str, Any]:
    """A list channel's receipts in one language: delivered, failed, pending (with the platforms' reasons)."""
    return {"channel": t.channel, "language": t.language, "accepted": t.accepted, "delivered": t.delivered,
            "failed": t.undelivered, "pending": t.pending, "unknown": t.accepted - (t.delivered or 0) - t.undelivered
            - t.pending, "reasons": dict(t.receipt_reasons.most_common())}


def measure(store: Store, slug: str) -> Metrics:
    """Every review metric for one incident, in one pass over its events."""
    from broadcast.review.tally import tally
    from broadcast.review.timeline import find_incident, snapshot, timeline

    incident = find_incident(store, slug)
    with snapshot(store):
        builder = MetricsBuilder.of(store, incident)
        for row in timeline(store, slug):
            builder.add(row)
        return builder.finish(tally(store, [slug]), approval_times(store, slug))


def duration(seconds: float | None) -> str:
    """A duration for people: 26m 05s, 1h 02m, 2d 4h; '-' when unknown."""
    if seconds is None:
        return "-"
    sign, total = ("-" if seconds < 0 else ""), abs(seconds)
    if total < 60:
        return f"{sign}{total:.1f}s"
    minutes, secs = divmod(int(round(total)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{sign}{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m {secs:02d}s"


def messages_line(m: Metrics) -> str:
    """The incident's figures in the shared words (broadcast.review.tally.WORDS)."""
    from broadcast.review.tally import Tally, figures

    return figures(Tally("all channels", "", m.attempted, m.accepted, m.delivered, m.failed, m.unknown,
                         reached=m.reached))


def summary_lines(m: Metrics) -> Iterator[tuple[str, str]]:
    """(label, value) pairs for the text, Markdown and HTML renderings, in the order a reviewer asks."""
    median = (sorted(m.approval_latency_s)[(len(m.approval_latency_s) - 1) // 2] if m.approval_latency_s else None)
    yield "Time to first warning", duration(m.time_to_first_warning_s)
    yield "Approval latency (median, max)", (f"{duration(median)}, {duration(max(m.approval_latency_s))} "
                                             f"({len(m.approval_latency_s)} drafts)" if m.approval_latency_s else "-")
    yield "Approval to dispatch (max)", (duration(max(m.approval_to_dispatch_s)) if m.approval_to_dispatch_s
                                         else "-")
    yield "Messages", messages_line(m)
    yield "Latency p50 / p95", (f"{m.latency_p50_ms} ms / {m.latency_p95_ms} ms" if m.latency_p50_ms is not None
                                else "-")
    yield "Retries", f"{m.retries} (messages needing one: {m.needed_retry})"
    yield "Page publish lag (first, max)", (f"{duration(m.page_publish_lag_s)}, {duration(m.page_publish_lag_max_s)}"
                                            if m.page_publish_lag_s is not None else "-")
    yield "Page publish failures", str(m.page_failures)
    yield "Public updates", str(m.public_updates)
    yield "Update interval (median)", duration(m.update_interval_median_s)
    yield "Longest silence", duration(m.longest_silence_s)
    yield "Time to all-clear", duration(m.time_to_all_clear_s)
    yield "Duration (declared to closed)", duration(m.duration_s)
    yield "Corrections / cancellations", f"{m.corrections} / {m.retractions}"
    yield "Posts deleted from platforms", str(m.retracted_posts)
    yield "Sent without a second approver", str(m.overrides)
    yield "Log entries corrected", str(m.log_corrections)
    yield "Decisions / notes", f"{m.decisions} / {m.notes}"


def to_json(m: Metrics) -> str:
    return json.dumps(m.to_dict(), indent=2, ensure_ascii=False)


@dataclass
class Summary:
    """Across incidents (`review summary`): each incident, alerts by type, and each channel's record."""

    since: str
    until: str | None
    incidents: list[dict[str, Any]]
    alerts: dict[str, int]
    channels: list[ChannelStats]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(store: Store, since: datetime, until: datetime | None = None) -> Summary:
    """Incidents opened from `since` (up to `until`), for the annual report; exercises are flagged, not dropped."""
    from broadcast.review.tally import per_channel, tally
    from broadcast.store import isoformat

    start, end = isoformat(since), isoformat(until) if until else "9999"
    cursor = store.conn.execute(
        "SELECT i.slug, i.title, i.status, i.exercise, i.opened_at, i.closed_at, "
        "(SELECT COUNT(*) FROM alerts a WHERE a.incident = i.slug), "
        "(SELECT MIN(occurred_at) FROM events e WHERE e.incident = i.slug AND e.type = 'incident_declared'), "
        "(SELECT MIN(occurred_at) FROM events e WHERE e.incident = i.slug AND e.type = 'delivery_result' "
        f" AND {store.sql.json('e.details', 'outcome')} = 'sent') "
        "FROM incidents i WHERE i.opened_at >= ? AND i.opened_at < ? ORDER BY i.opened_at", [start, end])
    incidents = []
    for slug, title, status, exercise, opened, closed, issued, declared, first in cursor:
        incidents.append({"slug": slug, "title": title, "status": status, "exercise": bool(exercise),
                          "opened_at": opened, "closed_at": closed, "alerts": issued,
                          "time_to_first_warning_s": _seconds(declared or opened, first)})
    slugs = [i["slug"] for i in incidents]
    alerts: Counter[str] = Counter()
    channels: list[ChannelStats] = []
    if slugs:
        marks = ", ".join("?" for _ in slugs)
        for msg_type, status, count in store.conn.execute(
                f"SELECT msg_type, status, COUNT(*) FROM alerts WHERE incident IN ({marks}) GROUP BY 1, 2", slugs):
            alerts[f"{msg_type} ({status})"] += count
        channels = [ChannelStats.of(t) for t in per_channel(tally(store, slugs))]
    return Summary(start, isoformat(until) if until else None, incidents, dict(alerts), channels)
