"""What became of the messages, in one vocabulary that every view shares (metrics, exports, the HTML review, the
after-action report, status and the annual summary).

Each figure counts messages: one per alert, channel and language, and one per person for texts and emails. A message
is counted once, by its last result, and a receipt counts only the messages the platform accepted. So, in every row:

    reached + failed + unknown == attempted

where reached is delivered where the platform reports receipts, and accepted where it reports none (a post).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broadcast.store import Store

WORDS = {
    "attempted": "messages we tried to send: one per alert, channel and language, and per person for texts and emails",
    "accepted": "the platform took it (a post deleted later by a correction or cancellation still counts)",
    "delivered": "a receipt says it reached the phone or inbox (texts and emails through Notify or Twilio; "
                 "'-' where the platform reports no receipts)",
    "failed": "it did not reach people: refused by the platform after every retry, or a receipt says it failed",
    "unknown": "it may have reached people: the send was cut off, or no final receipt has come (or none will)",
}


@dataclass
class Tally:
    """One channel (and language, or every language when empty): what became of its messages."""

    channel: str
    language: str = ""
    attempted: int = 0
    accepted: int = 0
    delivered: int | None = None  # None: no receipts reported (a post, an SMTP email, or not collected yet)
    failed: int = 0
    unknown: int = 0
    refused: int = 0  # of failed: refused by the platform
    undelivered: int = 0  # of failed: accepted, then a receipt said it failed
    pending: int = 0  # of unknown: accepted, the receipt says it is on its way
    deleted: int = 0  # of accepted: posts deleted since (by a correction or a cancellation)
    needed_retry: int = 0  # messages whose last result took more than one attempt
    reached: int = 0  # delivered where receipts are reported, else accepted
    reasons: Counter[str] = field(default_factory=Counter)  # failures by reason (HTTP status or receipt status)
    receipt_reasons: Counter[str] = field(default_factory=Counter)  # of reasons: the receipts' own

    def add(self, other: Tally) -> None:
        self.attempted += other.attempted
        self.accepted += other.accepted
        self.failed += other.failed
        self.unknown += other.unknown
        self.refused += other.refused
        self.undelivered += other.undelivered
        self.pending += other.pending
        self.deleted += other.deleted
        self.reached += other.reached
        self.needed_retry += other.needed_retry
        if other.delivered is not None:
            self.delivered = (self.delivered or 0) + other.delivered
        if other.reasons:  # most messages have none: an empty update still costs a call into Counter
            self.reasons.update(other.reasons)
        if other.receipt_reasons:
            self.receipt_reasons.update(other.receipt_reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "language": self.language or None, "attempted": self.attempted,
                "accepted": self.accepted, "delivered": self.delivered, "failed": self.failed, "unknown": self.unknown,
                "refused": self.refused, "undelivered": self.undelivered, "pending": self.pending,
                "deleted": self.deleted, "reached": self.reached, "needed_retry": self.needed_retry,
                "reasons": dict(self.reasons.most_common())}


def final_results(store: Store, slugs: list[str]) -> Iterator[tuple[Any, ...]]:
    """Each message's last result, grouped: (alert, channel, language, outcome, http_status, error, messages,
    messages that took more than one attempt), in the order of (alert, channel or '-', language) as Python sorts
    them, so one message's rows come together."""
    j, marks, binary = store.sql.json, ", ".join("?" for _ in slugs), store.sql.binary
    order = ", ".join([*map(binary, ("alert", "COALESCE(channel, '-')", "language", "outcome")), "status",
                       binary("error")])
    # A resend adds results to the same delivery, and a post deleted later ends as retracted; older logs name no
    # delivery, so the alert, channel, language and (masked) recipient stand in for it.
    yield from store.conn.execute(
        "SELECT alert, channel, language, outcome, status, error, COUNT(*), "
        "SUM(CASE WHEN attempt > 1 THEN 1 ELSE 0 END) FROM (SELECT alert, channel, "
        f"COALESCE({j('details', 'language')}, '') AS language, "
        f"COALESCE({j('details', 'outcome')}, {j('details', 'state')}) AS outcome, "
        f"{store.sql.json_int('details', 'http_status')} AS status, {j('details', 'error')} AS error, "
        f"COALESCE({store.sql.json_int('details', 'attempt')}, 0) AS attempt, "
        f"ROW_NUMBER() OVER (PARTITION BY {delivery_of(store)} ORDER BY id DESC) AS n "
        f"FROM events WHERE incident IN ({marks}) AND type IN ('delivery_result', 'retracted')) AS last WHERE n = 1 "
        f"GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY {order}", slugs)


def delivery_of(store: Store) -> str:
    """SQL naming the delivery an event is about; older logs name none, so the alert, channel, language and (masked)
    recipient stand in for it."""
    j = store.sql.json
    return (f"COALESCE({j('details', 'delivery')}, alert || channel || COALESCE({j('details', 'language')}, '') || "
            f"COALESCE({j('details', 'recipient')}, ''))")


def error_class(outcome: str, status: Any, error: str | None) -> str:
    """How a failure is grouped in the review: the HTTP status, else the start of the error."""
    if outcome == "uncertain":
        return "outcome unknown"
    if status:
        return f"HTTP {status}"
    return (error or "no error recorded").split(":", 1)[-1].strip()[:60] or "no error recorded"


def latest_receipts(store: Store, slugs: list[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The last receipts snapshot of each (alert, channel, language) that holds the platform's answer, from
    `broadcast review collect`."""
    marks = ", ".join("?" for _ in slugs)
    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for alert, channel, details in store.conn.execute(
            f"SELECT alert, channel, details FROM events WHERE incident IN ({marks}) AND type = 'receipts_collected' "
            "ORDER BY id", slugs):
        data = json.loads(details)
        key = (alert, channel, data.get("language") or "")
        if key not in last or reports_receipts(data) or not reports_receipts(last[key]):
            last[key] = data  # a later snapshot that could ask nothing leaves the last answer standing
    return last


def reports_receipts(snapshot: dict[str, Any]) -> bool:
    """Whether a snapshot holds the platform's receipts (SMTP reports none; a channel switched off was not asked)."""
    if "receipts" in snapshot:
        return bool(snapshot["receipts"])
    note = snapshot.get("note") or ""  # snapshots logged before the flag existed
    return not ("reports no delivery receipts" in note or note.startswith("not asked"))


Message = list[Any]  # attempted, needed_retry, accepted, deleted, refused, unknown, reasons (a Counter, or None)


def _each_message(store: Store, slugs: list[str]) -> Iterator[tuple[tuple[str, str, str], Message]]:
    """(alert, channel, language) and that message's results summed, one message at a time, in key order: only the
    message being summed is held, however long the incident."""
    key: tuple[str, str, str] | None = None
    found: Message = []
    for alert, channel, language, outcome, status, error, count, retried in final_results(store, slugs):
        here = (alert, channel or "-", language)
        if here != key:
            if key is not None:
                yield key, found
            key, found = here, [0, 0, 0, 0, 0, 0, None]
        found[0] += count
        found[1] += retried or 0
        if outcome in ("sent", "retracted"):
            found[2] += count
            found[3] += count if outcome == "retracted" else 0
        elif outcome == "failed":
            found[4] += count
            found[6] = found[6] or Counter()
            found[6][error_class(outcome, status, error)] += count
        else:  # uncertain: the request may have landed
            found[5] += count
    if key is not None:
        yield key, found


def _receipts(store: Store, slugs: list[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The receipts snapshot of each message that has one."""
    return {key: snapshot for key, snapshot in latest_receipts(store, slugs).items() if reports_receipts(snapshot)}


def _message_tally(key: tuple[str, str, str], message: Message, snapshot: dict[str, Any] | None) -> Tally:
    attempted, retried, accepted, deleted, refused, unknown, reasons = message
    row = Tally(key[1], key[2], attempted=attempted, accepted=accepted, refused=refused, unknown=unknown,
                deleted=deleted, needed_retry=retried, reasons=reasons or Counter())
    if snapshot is not None:
        _apply_receipts(row, snapshot)
    row.failed = row.refused + row.undelivered
    row.reached = row.accepted if row.delivered is None else row.delivered
    return row


def by_message(store: Store, slugs: list[str]) -> dict[tuple[str, str, str], Tally]:
    """(alert, channel, language) -> what became of those messages, receipts included."""
    receipts = _receipts(store, slugs)
    return {key: _message_tally(key, message, receipts.get(key)) for key, message in _each_message(store, slugs)}


def tally(store: Store, slugs: list[str]) -> list[Tally]:
    """Every (channel, language) of the incidents, sorted by channel and language.

    The same figures as merging by_message's rows, in the same order, without a Tally for each message: a long
    incident has tens of thousands of messages (one per person on a list), and a Tally with its two Counters for
    each was a fifth of an export. Only a message with receipts gets one, to take them as by_message does. The
    messages are summed as they are read, so its memory is one Tally per channel and language, not one entry per
    message (13.8 MiB at 100,000 events, when they were all kept to be sorted)."""
    receipts = _receipts(store, slugs)
    merged: dict[tuple[str, str], Tally] = {}
    for key, message in _each_message(store, slugs):
        into = merged.get(key[1:])
        if into is None:
            into = merged[key[1:]] = Tally(key[1], key[2])
        snapshot = receipts.get(key)
        if snapshot is not None:
            into.add(_message_tally(key, message, snapshot))
            continue
        attempted, retried, accepted, deleted, refused, unknown, reasons = message
        into.attempted += attempted
        into.needed_retry += retried
        into.accepted += accepted
        into.deleted += deleted
        into.refused += refused
        into.failed += refused
        into.unknown += unknown
        into.reached += accepted  # no receipts: reached is accepted
        if reasons:
            into.reasons.update(reasons)
    return [merged[key] for key in sorted(merged)]


def by_alert(store: Store, slug: str) -> dict[str, Tally]:
    """alert -> what became of its messages on every channel."""
    merged: dict[str, Tally] = {}
    for (alert, _, _), row in by_message(store, [slug]).items():
        into = merged.get(alert)
        if into is None:
            into = merged[alert] = Tally(alert)
        into.add(row)
    return merged


def _apply_receipts(row: Tally, snapshot: dict[str, Any]) -> None:
    # A receipt only speaks of messages the platform accepted; a resend after the snapshot can only add to them.
    delivered = min(int(snapshot.get("delivered") or 0), row.accepted)
    undelivered = min(int(snapshot.get("failed") or 0), row.accepted - delivered)
    row.delivered, row.undelivered = delivered, undelivered
    row.pending = min(int(snapshot.get("pending") or 0), row.accepted - delivered - undelivered)
    row.unknown += row.accepted - delivered - undelivered
    row.receipt_reasons.update({str(k): int(v) for k, v in (snapshot.get("reasons") or {}).items()})
    row.reasons.update(row.receipt_reasons)


def per_channel(rows: list[Tally]) -> list[Tally]:
    """The rows summed over languages, one per channel."""
    merged: dict[str, Tally] = {}
    for row in rows:
        merged.setdefault(row.channel, Tally(row.channel)).add(row)
    return [merged[name] for name in sorted(merged)]


def total(rows: list[Tally]) -> Tally:
    """Every row summed: the incident's figures."""
    whole = Tally("all channels")
    for row in rows:
        whole.add(row)
    return whole


def figures(t: Tally) -> str:
    """'120 attempted = 28 delivered per receipt + 84 accepted (no receipts reported) + 8 failed + 0 unknown; 120
    accepted by the platforms': the sum shown, in the words of every view."""
    parts = [] if t.delivered is None else [f"{t.delivered:,} delivered per receipt"]
    if t.reached - (t.delivered or 0) or t.delivered is None:
        parts.append(f"{t.reached - (t.delivered or 0):,} accepted (no receipts reported)")
    parts += [f"{t.failed:,} failed", f"{t.unknown:,} unknown"]
    return f"{t.attempted:,} attempted = {' + '.join(parts)}; {t.accepted:,} accepted by the platforms"


def brief(t: Tally) -> str:
    """'2 attempted: 1 accepted, 1 failed, 0 unknown' (with 'N delivered per receipt' where reported)."""
    delivered = "" if t.delivered is None else f", {t.delivered:,} delivered per receipt"
    return f"{t.attempted:,} attempted: {t.accepted:,} accepted{delivered}, {t.failed:,} failed, {t.unknown:,} unknown"
