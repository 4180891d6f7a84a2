"""Helpers for the review tests: a constructed incident across the October clock change, and a live send."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcast.prepare.templates import find_template
from broadcast.store import Store, canonical_json, isoformat

SLUG = "snow-2026-10-25"
# The clocks go back at 01:00 UTC on 25 October 2026: 01:59:59 BST is followed by 01:00:00 GMT.
DECLARED = datetime(2026, 10, 25, 0, 20, tzinfo=UTC)  # 01:20 BST
ALERT_1 = "A-2026-0001"
ALERT_2 = "A-2026-0002"  # corrects the first
ALERT_3 = "A-2026-0003"  # the all-clear
RESPONSES = {ALERT_1: ("Alert", None, ["Prepare"]),
             ALERT_2: ("Update", "Correction of A-2026-0001: school is Ysgol Bro Lliw, not Ysgol Y Bont", ["Prepare"]),
             ALERT_3: ("Update", None, ["AllClear"])}
STORED = {identifier: canonical_json({"identifier": identifier, "msg_type": kind, "status": "Actual", "note": note,
                                      "infos": [{"language": "en-GB", "response_type": response}]})
          for identifier, (kind, note, response) in RESPONSES.items()}
CONTENT = {identifier: hashlib.sha256(text.encode("utf-8")).hexdigest() for identifier, text in STORED.items()}
SHA = {"template": "1" * 64, "content": CONTENT[ALERT_1]}  # content: what verify checks the stored alert against


def at(minutes: float) -> datetime:
    return DECLARED + timedelta(minutes=minutes)


def known_incident(path: Path) -> tuple[Store, dict[str, dict[str, Any]]]:
    """An incident written through the store with fixed times, returning the store and its events by name.

    Declared 01:20 BST; a draft approved by a second person goes out at 01:32 BST, first delivered 12m01s after the
    declaration; a correction at 01:10 GMT (38 minutes after the first alert, though the wall clock says 22 minutes
    earlier); the all-clear at 01:50 GMT, 90 minutes after the declaration.
    """
    store = Store.open(path)
    store.append_event("template_approved", phase="prepare", actor="Alex Morgan, Head of Communications",
                       occurred_at=at(-600), details={"template": "school-closure", "sha256": SHA["template"]})
    store.db.table("incidents").insert({"slug": SLUG, "title": "Snow closes schools", "status": "closed",
                                        "exercise": 0, "opened_at": isoformat(DECLARED),
                                        "closed_at": isoformat(at(100))})
    for identifier, minutes in ((ALERT_1, 12), (ALERT_2, 50), (ALERT_3, 90)):
        msg_type = RESPONSES[identifier][0]
        store.db.table("alerts").insert({
            "identifier": identifier, "incident": SLUG, "msg_type": msg_type, "status": "Actual", "references": "[]",
            "template": "school-closure", "template_sha256": SHA["template"], "variables": "{}",
            "alert": STORED[identifier], "sent_at": isoformat(at(minutes)), "sent_by": "duty-officer",
            "approved_by": "Sam Rees, Emergency Planning Manager" if identifier == ALERT_1 else None})
    store.db.table("drafts").insert({"id": 1, "created_at": isoformat(at(5)), "drafted_by": "duty-officer",
                                     "template": "school-closure", "state": "sent", "alert": ALERT_1,
                                     "decided_by": "Sam Rees, Emergency Planning Manager",
                                     "decided_at": isoformat(at(11))})
    e: dict[str, dict[str, Any]] = {}

    def log(name: str, kind: str, minutes: float, **fields: Any) -> None:
        fields.setdefault("incident", SLUG)
        e[name] = store.append_event(kind, phase=fields.pop("phase", "warn"), actor=fields.pop("actor", "duty-officer"),
                                     occurred_at=at(minutes), **fields)

    log("declared", "incident_declared", 0, description="Incident opened: Snow closes schools",
        details={"exercise": False})
    log("drafted", "message_drafted", 5, description="Draft 1 (school-closure) waits for a second person",
        details={"draft": 1, "template": "school-closure", "msg_type": "Alert"})
    log("approved", "draft_approved", 11, incident=None, actor="Sam Rees, Emergency Planning Manager",
        description="Draft 1 approved", details={"draft": 1, "reason": None})
    log("issued", "alert_issued", 12, alert=ALERT_1, description="Schools closed in the north",
        details={"msg_type": "Alert", "status": "Actual", "template": "school-closure",
                 "template_sha256": SHA["template"], "content_sha256": SHA["content"]})
    log("published", "fallback_published", 12.05, incident=None, channel="page", description="Fallback page published",
        details={"target": "site"})
    log("verified", "fallback_verified", 12.5, incident=None, channel="page", description="Fallback page read back",
        details={"target": "site", "verified": 10})
    for channel, language in (("mastodon-council", "en-GB"), ("hook-b", "en-GB")):
        log(f"queued {channel}", "delivery_queued", 12, alert=ALERT_1, channel=channel,
            details={"language": language, "key": f"key-{channel}"})
    log("attempt mastodon", "delivery_attempt", 12.01, alert=ALERT_1, channel="mastodon-council",
        details={"attempt": 1, "key": "key-mastodon-council", "language": "en-GB", "state": "sending"})
    log("sent mastodon", "delivery_result", 12 + 1 / 60, alert=ALERT_1, channel="mastodon-council",
        description="mastodon-council: delivered https://social.example/@council/1",
        details={"outcome": "sent", "attempt": 1, "latency_ms": 400, "provider_ref": "1001",
                 "url": "https://social.example/@council/1", "language": "en-GB", "state": "sent"})
    log("attempt hook-b", "delivery_attempt", 12.02, alert=ALERT_1, channel="hook-b",
        details={"attempt": 1, "key": "key-hook-b", "language": "en-GB", "state": "sending"})
    log("retry hook-b", "retry_scheduled", 12.03, alert=ALERT_1, channel="hook-b",
        description="hook-b: retry in 0.5s",
        details={"wait_s": 0.5, "error": "HTTP 500", "http_status": 500, "language": "en-GB", "state": "pending"})
    log("attempt 2 hook-b", "delivery_attempt", 12.04, alert=ALERT_1, channel="hook-b",
        details={"attempt": 2, "key": "key-hook-b", "language": "en-GB", "state": "sending"})
    log("failed hook-b", "delivery_result", 12 + 10 / 60, alert=ALERT_1, channel="hook-b",
        description="=hook-b: the webhook receiver answered HTTP 500",
        details={"outcome": "failed", "attempt": 2, "http_status": 500, "error": "hook-b: answered HTTP 500",
                 "language": "en-GB", "state": "failed"})
    log("decision", "decision", 20, actor="Sam Rees, Emergency Planning Manager",
        description="Keep schools closed all day", details={"rationale": "Gritting not finished before 08:00"},
        pinned=True)
    log("issued 2", "alert_issued", 50, alert=ALERT_2, description="CORRECTION: Schools stay closed",
        details={"msg_type": "Update", "status": "Actual", "template": "school-closure",
                 "template_sha256": SHA["template"], "content_sha256": CONTENT[ALERT_2]})
    log("sent mastodon 2", "delivery_result", 50 + 2 / 60, alert=ALERT_2, channel="mastodon-council",
        details={"outcome": "sent", "attempt": 1, "latency_ms": 600, "provider_ref": "1002", "language": "en-GB",
                 "state": "sent"})
    log("failed hook-c", "delivery_result", 50.1, alert=ALERT_2, channel="hook-c",
        description="hook-c: HTTP 403 token expired",
        details={"outcome": "failed", "attempt": 1, "http_status": 403, "error": "hook-c: HTTP 403 token expired",
                 "language": "en-GB", "state": "failed"})
    log("attempt 3 hook-b", "delivery_attempt", 51.9, alert=ALERT_1, channel="hook-b",
        details={"attempt": 3, "key": "key-hook-b", "language": "en-GB", "state": "sending"})
    log("resent hook-b", "delivery_result", 52, alert=ALERT_1, channel="hook-b",
        details={"outcome": "sent", "attempt": 3, "latency_ms": 900, "provider_ref": "h-1", "language": "en-GB",
                 "state": "sent"})
    log("all clear", "alert_issued", 90, alert=ALERT_3, description="All clear: schools open tomorrow",
        details={"msg_type": "Update", "status": "Actual", "template": "all-clear", "template_sha256": "4" * 64,
                 "content_sha256": CONTENT[ALERT_3]})
    log("closed", "incident_closed", 100, phase="recover", description="Incident closed")
    return store, e


@pytest.fixture
def known(workspace_dir: Path) -> Iterator[tuple[Store, dict[str, dict[str, Any]]]]:
    """The known incident in the fixture workspace's log."""
    store, events = known_incident(workspace_dir / "broadcast.db")
    yield store, events
    store.close()


def live_workspace(workspace_dir: Path, sandbox: Any) -> Path:
    """The fixture workspace with Mastodon and a webhook on the sandbox, quick retries, its template approved."""
    from broadcast.prepare.approvals import approve
    from broadcast.workspace import Workspace

    channels = workspace_dir / "channels"
    (channels / "mastodon-council.toml").write_text(
        f'kind = "mastodon"\n[settings]\ninstance = "{sandbox.url}/mastodon"\n'
        '[secrets]\naccess_token = "env:TEST_MASTODON_TOKEN"\n', encoding="utf-8")
    (channels / "hook-b.toml").write_text(
        f'kind = "webhook"\n[settings]\nurl = "{sandbox.url}/hooks/hook-b"\n'
        '[secrets]\nsigning_secret = "env:TEST_WEBHOOK_SECRET"\n', encoding="utf-8")
    config = workspace_dir / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[fanout]\nfirst_backoff = 0.01\nmax_backoff = 0.02\n"
                      "max_attempts = 2\n", encoding="utf-8")
    workspace = Workspace(workspace_dir)
    store = Store.open(workspace.db_path)
    approve(workspace, find_template(workspace, "school-closure"), "Alex Morgan, Head of Communications", store)
    store.close()
    return workspace_dir
