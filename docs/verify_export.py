#!/usr/bin/env python3
"""Re-verify a broadcast timeline export (JSON Lines) with nothing but Python 3.11+: see docs/evidence.md.

    python3 verify_export.py EXPORT.jsonl [--expect-digest HEX] [--expect-head HEX]

Checks every event line: its hash recomputed from its own fields, the columns copied from its details, its local
time, its place in the sequence and, where two events are neighbours in the log, the link between them; then the
count and digest against the header, and against values anchored elsewhere if given.
Exit status: 0 all checks pass, 1 a check fails, 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from datetime import datetime

GENESIS = "0" * 64
# The stored columns an entry's hash covers, in the log's order (broadcast.store.EVENT_COLUMNS); "id" is chain_id.
HASHED = ("id", "event_id", "occurred_at", "recorded_at", "type", "phase", "actor", "incident", "alert", "channel",
          "description", "details", "pinned", "supersedes", "prev_hash")
# Columns copied from the details key of the same name (broadcast.review.timeline.DERIVED).
DERIVED = ("template", "template_sha256", "content_sha256", "attempt", "outcome", "provider_ref", "http_status",
           "error", "latency_ms", "rationale")
FIELDS = {"seq", "chain_id", "occurred_at_local", "hash", *HASHED, *DERIVED} - {"id"}


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(row: dict) -> str:
    body = {name: row.get(name) for name in HASHED}
    body["id"] = row["chain_id"]
    body["details"] = canonical(row["details"])
    body["pinned"] = int(bool(row["pinned"]))
    return hashlib.sha256((row["prev_hash"] + canonical(body)).encode("utf-8")).hexdigest()


def display_zone(name: str | None):
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name) if name else None
    except Exception:  # no tz database here: the local column is then checked as an instant only
        return None


def check_event(row: dict, zone) -> list[str]:
    """What is wrong with one event line on its own."""
    keys = set(row)
    if keys != FIELDS:
        return [f"fields differ from the export schema: missing {sorted(FIELDS - keys)}, extra {sorted(keys - FIELDS)}"]
    problems = []
    if entry_hash(row) != row["hash"]:
        problems.append("content does not match its hash")
    details = row["details"] if isinstance(row["details"], dict) else {}
    problems += [f"{name} does not match details.{name}" for name in DERIVED if row[name] != details.get(name)]
    moment = datetime.fromisoformat(row["occurred_at"])
    if zone is not None:
        if moment.astimezone(zone).isoformat(timespec="milliseconds") != row["occurred_at_local"]:
            problems.append("occurred_at_local is not occurred_at in the display time zone")
    elif datetime.fromisoformat(row["occurred_at_local"]) != moment:
        problems.append("occurred_at_local is not the same instant as occurred_at")
    return problems


def verify(lines: Iterable[str], expect_digest: str | None = None, expect_head: str | None = None) -> list[str]:
    """Every problem found in an export's lines, read one at a time (an empty list: it verifies)."""
    lines = iter(lines)
    try:
        header = json.loads(next(lines))
        assert header.get("record") == "header"
    except (StopIteration, ValueError, AssertionError, AttributeError):
        return ["line 1: not an export header"]
    zone = display_zone(header.get("display_timezone"))
    filtered = any((header.get("filters") or {}).values())
    problems: list[str] = []
    digest, count, last = hashlib.sha256(), 0, None
    for number, text in enumerate(lines, start=2):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
            found = check_event(row, zone)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"line {number}: cannot be read ({type(exc).__name__}: {exc})")
            continue
        problems += [f"line {number} (seq {row.get('seq')}): {p}" for p in found]
        if set(row) != FIELDS:
            continue
        if last is None and row["chain_id"] == 1 and row["prev_hash"] != GENESIS:
            problems.append(f"line {number}: the first event in the log does not start from the genesis hash")
        if last is not None:
            if row["seq"] <= last["seq"] or (not filtered and row["seq"] != last["seq"] + 1):
                problems.append(f"line {number}: seq {row['seq']} follows {last['seq']}: an entry is missing or moved")
            if row["chain_id"] <= last["chain_id"]:
                problems.append(f"line {number}: chain_id {row['chain_id']} is out of order")
            elif row["chain_id"] == last["chain_id"] + 1 and row["prev_hash"] != last["hash"]:
                problems.append(f"line {number}: prev_hash does not link to the event before it")
        elif not filtered and row["seq"] != 1:
            problems.append(f"line {number}: the first entry is seq {row['seq']}, not 1")
        digest.update((row["hash"] + "\n").encode("ascii"))
        count, last = count + 1, row
    if count != header.get("event_count"):
        problems.append(f"the header says {header.get('event_count')} events; the file holds {count}")
    if digest.hexdigest() != header.get("events_digest"):
        problems.append("the events digest does not match the header's")
    if expect_digest and digest.hexdigest() != expect_digest.lower():
        problems.append("the events digest does not match the anchored digest")
    chain = header.get("chain") or {}
    if last is not None and last["chain_id"] == chain.get("events") and last["hash"] != chain.get("head"):
        problems.append("the last event was the log's head, but its hash is not the header's head")
    if expect_head and chain.get("head") != expect_head.lower():
        problems.append("the header's chain head does not match the anchored head")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-verify a broadcast JSON Lines timeline export.")
    parser.add_argument("export")
    parser.add_argument("--expect-digest", help="the events digest anchored elsewhere (e.g. emailed at export time)")
    parser.add_argument("--expect-head", help="the chain head hash anchored elsewhere")
    args = parser.parse_args(argv)
    # Bytes that are not UTF-8 survive decoding as surrogates, and then fail the checks like any other change.
    try:
        with open(args.export, encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            problems = verify(handle, args.expect_digest, args.expect_head)
        with open(args.export, encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            header = json.loads(handle.readline()) if not problems else {}
    except OSError as exc:
        print(f"FAIL  cannot read {args.export}: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"FAIL  {problem}")
    if problems:
        return 1
    print(f"OK    {header['event_count']} events of incident {header['incident']['slug']} verify; "
          f"digest {header['events_digest']}; chain head {header['chain']['head']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
