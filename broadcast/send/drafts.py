"""Drafts: messages that need a second person before they go out (free text, unapproved templates)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from broadcast.errors import BroadcastError, PolicyError
from broadcast.prepare.approvals import UNAPPROVED, ApprovalState
from broadcast.store import isoformat, utcnow

if TYPE_CHECKING:
    from broadcast.prepare.templates import Rendering
    from broadcast.send.sending import Issue, Plan
    from broadcast.store import Store
    from broadcast.workspace import Workspace

FREE_TEXT = "free-text"


def save_draft(store: Store, *, drafted_by: str, template: str | None, values: dict[str, str],
               texts: dict[str, str], issue: Issue, only: tuple[str, ...], why: str,
               to: tuple[str, ...] = (), one_segment: bool = False, account: str | None = None) -> int:
    """Keep a message for a second person to approve; nothing is sent. `account`: the drafter's OS account."""
    from broadcast.prepare.approvals import os_account

    with store.transaction():
        cursor = store.conn.execute(
            'INSERT INTO drafts (created_at, drafted_by, drafted_account, template, variables, text, issue, "only", '
            "state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'waiting') RETURNING id",
            [isoformat(utcnow()), drafted_by, account or os_account(), template or FREE_TEXT,
             json.dumps(values, ensure_ascii=False), json.dumps(texts, ensure_ascii=False), json.dumps(asdict(issue)),
             json.dumps({"only": list(only), "to": list(to), "one_segment": one_segment})],
        )
        number = int(cursor.fetchone()[0])
        store.append_event("message_drafted", phase="warn", actor=drafted_by, incident=issue.incident,
                           description=f"Draft {number} ({template or FREE_TEXT}) waits for a second person: {why}",
                           details={"draft": number, "template": template, "why": why, "msg_type": issue.msg_type})
    return number


def drafts(store: Store, state: str | None = "waiting") -> list[dict[str, Any]]:
    where, params = ("state = ?", [state]) if state else (None, [])
    return store.rows("drafts", where, params, order_by="id")


def draft(store: Store, number: int) -> dict[str, Any]:
    in_range = 0 < number < 2**63  # the stores' integers: a larger number cannot even be looked up
    rows = store.rows("drafts", "id = ?", [number]) if in_range else []
    if not rows:
        raise BroadcastError(f"no draft {number}", hint="see the waiting drafts: broadcast drafts")
    if rows[0]["state"] != "waiting":
        raise PolicyError(f"draft {number} is already {rows[0]['state']}", hint="see: broadcast drafts --all")
    return rows[0]


def plan_draft(workspace: Workspace, store: Store, row: dict[str, Any]) -> Plan:
    """Rebuild the draft's message from what was drafted, for the approver to see and send."""
    from broadcast.send.sending import Issue, plan_rendering, plan_warning

    issue = Issue(**{**json.loads(row["issue"]), "references": tuple(json.loads(row["issue"])["references"])})
    audience = json.loads(row["only"])  # which channels, and which recipients (--to) the drafter chose
    only, to = tuple(audience["only"]), tuple(audience["to"])
    if row["template"] == FREE_TEXT:
        rendering = free_text(workspace, json.loads(row["text"]))
        return plan_rendering(workspace, rendering, ApprovalState(UNAPPROVED, None), store=store, only=only,
                              learn_limits=True, issue=issue, to=to, one_segment=audience["one_segment"])
    return plan_warning(workspace, row["template"], json.loads(row["variables"]), store=store, only=only,
                        learn_limits=True, issue=issue, to=to, one_segment=audience["one_segment"])


def decide(store: Store, number: int, *, state: str, by: str, reason: str | None = None,
           alert: str | None = None) -> None:
    with store.transaction():
        store.conn.execute("UPDATE drafts SET state = ?, decided_by = ?, decided_at = ?, reason = ?, alert = ? "
                           "WHERE id = ?", [state, by, isoformat(utcnow()), reason, alert, number])
        store.append_event(f"draft_{state}", phase="warn", actor=by, alert=alert,
                           description=f"Draft {number} {state}" + (f": {reason}" if reason else ""),
                           details={"draft": number, "reason": reason})


def free_text(workspace: Workspace, texts: dict[str, str]) -> Rendering:
    """A Rendering of free text: the same words in every variant; a language not given gets the first one's."""
    from broadcast.prepare.templates import CapDefaults, Rendering, Template, Text
    from broadcast.workspace import primary_tag

    if not texts:
        raise PolicyError("no text given", hint='e.g. --text "The A4069 is closed at Pont-y-Lliw." '
                          '--text cy="Mae’r A4069 ar gau ym Mhont-y-Lliw."')
    from broadcast.prepare.variables import check_typed

    for tag, text in texts.items():
        check_typed(text, "--text" if tag == primary_tag(workspace.languages[0]) else f"--text {tag}=",
                    workspace.languages)
    first = texts.get(primary_tag(workspace.languages[0])) or next(iter(texts.values()))
    template = Template(
        name=FREE_TEXT, path=workspace.root / "(free text)", sha256="", title="Free text", summary="",
        tags=(), variables={}, checklist={}, translation_review=(), translation_note="", sections={},
        section_lines={}, languages=tuple(workspace.languages),
        cap=CapDefaults(event="Public information", category=("Safety",), urgency="Expected", severity="Minor",
                        certainty="Observed", response_type=("Monitor",),
                        expires_minutes=int(timedelta(hours=12).total_seconds() // 60)),
    )
    rendered = {}
    for language in workspace.languages:
        text = " ".join((texts.get(primary_tag(language)) or first).split())
        headline = text if len(text) <= 140 else text[:text.rfind(" ", 0, 137)] + "…"
        more = f" {workspace.organisation.web}"
        rendered[language] = {"headline": Text(((headline, False),)), "short": Text(((text + more, False),)),
                              "body": Text(((text + more, False),)), "instruction": Text(((text, False),))}
    return Rendering(template, {}, {}, rendered)
