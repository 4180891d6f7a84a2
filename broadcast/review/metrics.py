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
    import sqlite3

    from broadcast.store import Store

NOT_PUBLIC = ("Test", "Draft")  # CAP statuses that never reach the public: not updates, not warnings
FINAL_OUTCOMES = ("sent", "failed", "uncertain", "retracted")


@dataclass
class ChannelStats:
    """One channel's deliveries for the incident. A delivery's outcome is its last result (after any resend)."""

    channel: str
    deliveries: int = 0
    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    retracted: int = 0
    needed_retry: int = 0  # deliveries whose last result took more than one attempt
    retries: int = 0  # attempts after the first (automatic retries and resends)
    first_delivery_s: float | None = None  # first successful delivery after the first alert was issued
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    failures: dict[str, int] = field(default_factory=dict)  # final failures by error class

    @property
    def success_rate(self) -> float | None:
        """Delivered (sent, or sent and later deleted) over deliveries with a result: an upper bound on reach,
        since delivered is not read."""
        return (self.sent + self.retracted) / self.deliveries if self.deliveries else None


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
    deliveries: int = 0
    sent: int = 0
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

    @property
    def success_rate(self) -> float | None:
        return (self.sent + sum(c.retracted for c in self.channels)) / self.deliveries if self.deliveries else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived rates included."""
        data = asdict(self)
        data["success_rate"] = _round(self.success_rate)
        for stats, out in zip(self.channels, data["channels"], strict=True):
            out["success_rate"] = _round(stats.success_rate)
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


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


def alert_facts(conn: sqlite3.Connection, slug: str) -> dict[str, AlertFacts]:
    """The incident's alerts: which correct an earlier one (CAP note "Correction of ...") and which are all-clears
    (an info whose responseType holds AllClear). A few dozen at most."""
    rows = conn.execute(
        "SELECT identifier, json_extract(alert, '$.note') LIKE 'Correction of %', EXISTS (SELECT 1 FROM "
        "json_each(alert, '$.infos') AS info, json_each(info.value, '$.response_type') AS rt WHERE rt.value = "
        "'AllClear') FROM alerts WHERE incident = ?", [slug])
    return {identifier: AlertFacts(bool(correction), bool(all_clear)) for identifier, correction, all_clear in rows}


def approval_times(conn: sqlite3.Connection, slug: str) -> list[tuple[str | None, str | None, str | None]]:
    """(drafted, approved, issued) for each draft a second person approved into one of the incident's alerts."""
    return list(conn.execute(
        "SELECT (SELECT MIN(occurred_at) FROM events WHERE type = 'message_drafted' "
        "         AND json_extract(details, '$.draft') = d.id), "
        "       (SELECT MIN(occurred_at) FROM events WHERE type = 'draft_approved' "
        "         AND json_extract(details, '$.draft') = d.id), "
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

    @classmethod
    def of(cls, store: Store, incident: dict[str, Any]) -> MetricsBuilder:
        return cls(incident, alert_facts(store.conn, incident["slug"]))

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

    def finish(self, outcomes: Iterable[tuple[str, str, int | None, Any, str | None]],
               approvals: Iterable[tuple[str | None, str | None, str | None]] = ()) -> Metrics:
        """Close the pass with each delivery's final (channel, outcome, attempt, http_status, error), and each
        approved draft's (drafted, approved, issued) times."""
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
        stats = channel_stats(outcomes)
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
        m.deliveries = sum(c.deliveries for c in m.channels)
        m.sent = sum(c.sent for c in m.channels)
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


def channel_stats(outcomes: Iterable[tuple[str, str, int | None, Any, str | None]]) -> dict[str, ChannelStats]:
    """Per-channel counts from each delivery's final (channel, outcome, attempt, http_status, error)."""
    stats: dict[str, ChannelStats] = {}
    failures: dict[str, Counter[str]] = {}
    for channel, outcome, attempt, status, error in outcomes:
        s = stats.setdefault(channel or "-", ChannelStats(channel or "-"))
        s.deliveries += 1
        if outcome in FINAL_OUTCOMES:
            setattr(s, outcome, getattr(s, outcome) + 1)
        s.needed_retry += (attempt or 0) > 1
        if outcome in ("failed", "uncertain"):
            failures.setdefault(s.channel, Counter())[error_class(outcome, status, error)] += 1
    for name, counter in failures.items():
        stats[name].failures = dict(counter.most_common(5))
    return stats


def error_class(outcome: str, status: Any, error: str | None) -> str:
    """How a failure is grouped in the review: the HTTP status, else the start of the error."""
    if outcome == "uncertain":
        return "outcome unknown"
    if status:
        return f"HTTP {status}"
    return (error or "no error recorded").split(":", 1)[-1].strip()[:60] or "no error recorded"


def final_outcomes(conn: sqlite3.Connection, incidents: list[str]
                   ) -> Iterator[tuple[str, str, int | None, Any, str | None]]:
    """Each delivery's last result, (channel, outcome, attempt, http_status, error), streamed by SQLite."""
    marks = ", ".join("?" for _ in incidents)
    # A delivery is an alert x channel x language (x recipient for lists); a resend adds results to the same one,
    # and a post deleted by a cancellation ends as retracted.
    yield from conn.execute(
        "SELECT channel, COALESCE(json_extract(details, '$.outcome'), json_extract(details, '$.state')), "
        "json_extract(details, '$.attempt'), json_extract(details, '$.http_status'), json_extract(details, '$.error') "
        "FROM (SELECT channel, details, ROW_NUMBER() OVER (PARTITION BY alert, channel, "
        "  json_extract(details, '$.language'), json_extract(details, '$.recipient') ORDER BY id DESC) AS n"
        f"  FROM events WHERE incident IN ({marks}) AND type IN ('delivery_result', 'retracted')) WHERE n = 1",
        incidents)


def measure(store: Store, slug: str) -> Metrics:
    """Every review metric for one incident, in one pass over its events."""
    from broadcast.review.timeline import find_incident, snapshot, timeline

    incident = find_incident(store, slug)
    with snapshot(store):
        builder = MetricsBuilder.of(store, incident)
        for row in timeline(store, slug):
            builder.add(row)
        return builder.finish(final_outcomes(store.conn, [slug]), approval_times(store.conn, slug))


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


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def summary_lines(m: Metrics) -> Iterator[tuple[str, str]]:
    """(label, value) pairs for the text, Markdown and HTML renderings, in the order a reviewer asks."""
    median = (sorted(m.approval_latency_s)[(len(m.approval_latency_s) - 1) // 2] if m.approval_latency_s else None)
    yield "Time to first warning", duration(m.time_to_first_warning_s)
    yield "Approval latency (median, max)", (f"{duration(median)}, {duration(max(m.approval_latency_s))} "
                                             f"({len(m.approval_latency_s)} drafts)" if m.approval_latency_s else "-")
    yield "Approval to dispatch (max)", (duration(max(m.approval_to_dispatch_s)) if m.approval_to_dispatch_s
                                         else "-")
    yield "Deliveries sent", f"{m.sent} of {m.deliveries} ({percent(m.success_rate)})"
    yield "Latency p50 / p95", (f"{m.latency_p50_ms} ms / {m.latency_p95_ms} ms" if m.latency_p50_ms is not None
                                else "-")
    yield "Retries", f"{m.retries} (deliveries needing one: {m.needed_retry})"
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
        data = asdict(self)
        for stats, out in zip(self.channels, data["channels"], strict=True):
            out["success_rate"] = _round(stats.success_rate)
        return data


def summarise(store: Store, since: datetime, until: datetime | None = None) -> Summary:
    """Incidents opened from `since` (up to `until`), for the annual report; exercises are flagged, not dropped."""
    from broadcast.store import isoformat

    start, end = isoformat(since), isoformat(until) if until else "9999"
    cursor = store.conn.execute(
        "SELECT i.slug, i.title, i.status, i.exercise, i.opened_at, i.closed_at, "
        "(SELECT COUNT(*) FROM alerts a WHERE a.incident = i.slug), "
        "(SELECT MIN(occurred_at) FROM events e WHERE e.incident = i.slug AND e.type = 'incident_declared'), "
        "(SELECT MIN(occurred_at) FROM events e WHERE e.incident = i.slug AND e.type = 'delivery_result' "
        " AND json_extract(e.details, '$.outcome') = 'sent') "
        "FROM incidents i WHERE i.opened_at >= ? AND i.opened_at < ? ORDER BY i.opened_at", [start, end])
    incidents = []
    for slug, title, status, exercise, opened, closed, issued, declared, first in cursor:
        incidents.append({"slug": slug, "title": title, "status": status, "exercise": bool(exercise),
                          "opened_at": opened, "closed_at": closed, "alerts": issued,
                          "time_to_first_warning_s": _seconds(declared or opened, first)})
    slugs = [i["slug"] for i in incidents]
    alerts: Counter[str] = Counter()
    channels: dict[str, ChannelStats] = {}
    if slugs:
        marks = ", ".join("?" for _ in slugs)
        for msg_type, status, count in store.conn.execute(
                f"SELECT msg_type, status, COUNT(*) FROM alerts WHERE incident IN ({marks}) GROUP BY 1, 2", slugs):
            alerts[f"{msg_type} ({status})"] += count
        channels = channel_stats(final_outcomes(store.conn, slugs))
    return Summary(start, isoformat(until) if until else None, incidents, dict(alerts),
                   [channels[name] for name in sorted(channels)])
