"""The incident lifecycle after the first warning: update, correct, cancel, recover, close."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from broadcast.alert import Alert
from broadcast.channels.base import ChannelError, Receipt
from broadcast.errors import BroadcastError, PolicyError
from broadcast.prepare.approvals import APPROVED, ApprovalState
from broadcast.prepare.templates import find_template
from broadcast.send.sending import Issue, Plan, plan_rendering, plan_warning, usable_channels
from broadcast.store import isoformat, utcnow
from broadcast.workspace import Localized

if TYPE_CHECKING:
    from broadcast.prepare.templates import Rendering
    from broadcast.store import Store
    from broadcast.workspace import Workspace

CORRECTION = Localized({"en": "CORRECTION", "cy": "CYWIRIAD"})
CORRECTS = Localized({"en": "This corrects our message of {time}: {changes}.",
                      "cy": "Mae hyn yn cywiro ein neges am {time}: {changes}."})
CANCELLED = Localized({"en": "CANCELLED", "cy": "WEDI'I GANSLO"})
CANCELS = Localized({"en": "Our message of {time} is cancelled: {reason}. Ignore it.",
                     "cy": "Mae ein neges am {time} wedi'i chanslo: {reason}. Anwybyddwch hi."})
FINAL = ("Cancel",)  # an alert cancelled is no longer live


@dataclass
class Retraction:
    channel: str
    language: str
    done: bool
    detail: str


def incident_row(store: Store, slug: str) -> dict[str, Any]:
    rows = list(store.db.table("incidents").rows_where("slug = ?", [slug]))
    if not rows:
        known = ", ".join(r["slug"] for r in store.incidents("open")[:5]) or "none open"
        raise BroadcastError(f"no incident '{slug}'", hint=f"open incidents: {known} (see: broadcast status)")
    return rows[0]


def live_alerts(store: Store, incident: str) -> list[Alert]:
    """The incident's alerts that nothing later has updated or cancelled: what an update supersedes."""
    alerts = store.alerts(incident)
    superseded = {ref.split(",")[1] if "," in ref else ref for a in alerts for ref in a.references}
    return [a for a in alerts if a.identifier not in superseded and a.msg_type not in FINAL]


def resolve_alert(store: Store, reference: str) -> Alert:
    """An alert by identifier, or the one live alert of an incident; an ambiguous reference lists the candidates."""
    exact = [a for a in store.alerts() if a.identifier == reference]
    if exact:
        return exact[0]
    candidates = [a for a in store.alerts() if a.identifier.startswith(reference)]
    if not candidates and store.conn.execute("SELECT 1 FROM incidents WHERE slug = ?", [reference]).fetchone():
        candidates = live_alerts(store, reference)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise BroadcastError(f"no alert '{reference}'", hint="give an identifier such as A-2026-0007 "
                             "(see: broadcast status)")
    listing = "; ".join(f"{a.identifier} ({a.msg_type}, {a.sent}: {a.infos[0].headline[:50]})"
                        for a in candidates[:10] if a.infos)
    raise PolicyError(f"'{reference}' matches {len(candidates)} alerts: {listing}",
                      hint="name exactly one alert identifier")


def audience_of(store: Store, alerts: list[Alert]) -> tuple[str, ...]:
    """The --to tags the alerts were sent to, so what follows them reaches the same people ('' = everyone)."""
    tags: set[str] = set()
    for alert in alerts:
        rows = store.conn.execute("SELECT details FROM events WHERE type = 'recipients_selected' AND alert = ?",
                                  [alert.identifier]).fetchall()
        for (details,) in rows:
            chosen = json.loads(details).get("to") or []
            if not chosen:
                return ()  # one of them went to everyone on the lists: so does this
            tags.update(chosen)
    return tuple(sorted(tags))


def triple(alert: Alert) -> str:
    return f"{alert.sender},{alert.identifier},{alert.sent}"


def plan_update(workspace: Workspace, store: Store, incident: str, template: str, values: dict[str, str], *,
                only: tuple[str, ...] = (), status: str | None = None, all_clear: bool = False) -> Plan:
    """A CAP Update that supersedes the incident's live alerts (an all-clear is an Update with AllClear)."""
    row = incident_row(store, incident)
    if row["status"] == "closed":
        raise PolicyError(f"incident {incident} is closed", hint="open a new one with broadcast warn")
    live = live_alerts(store, incident)
    if not live:
        raise PolicyError(f"incident {incident} has no live alert to update",
                          hint=f"send a new warning: broadcast warn TEMPLATE --incident {incident}")
    status = status or ("Exercise" if row["exercise"] else live[-1].status)
    plan = plan_warning(workspace, template, values, store=store, only=only, learn_limits=True,
                        issue=Issue("Update", status, tuple(triple(a) for a in live), incident=incident),
                        to=audience_of(store, live))
    if all_clear and "AllClear" not in plan.rendering.template.cap.response_type:
        raise PolicyError(f"template {template} is not an all-clear (its cap.response_type has no AllClear)",
                          hint="use an all-clear template, such as all-clear")
    return plan


def plan_correction(workspace: Workspace, store: Store, reference: str, changes: dict[str, str], *,
                    only: tuple[str, ...] = ()) -> tuple[Alert, Plan]:
    """The original alert's template with the corrected values, marked as a correction that says what changed."""
    from broadcast.prepare.approvals import approval_state, read_approvals
    from broadcast.prepare.templates import render

    original = resolve_alert(store, reference)
    if not original.template or original.template == "free-text":
        raise PolicyError(f"{original.identifier} was not made from a template",
                          hint="cancel it (broadcast cancel) and send a new message")
    if not changes:
        raise PolicyError("nothing to correct", hint="give the corrected values with --set name=value")
    values = {**original.variables, **changes}
    said = "; ".join(f"{name} is {value}, not {original.variables.get(name, '(not given)')}"
                     for name, value in changes.items() if original.variables.get(name) != value)
    if not said:
        raise PolicyError("the corrected values are the same as the original ones")
    template = find_template(workspace, original.template)
    rendering = render(template, workspace, values)
    time_said = original.sent[11:16]
    rendering = mark(rendering, CORRECTION, CORRECTS, time=time_said, changes=said)
    approval = approval_state(template, read_approvals(workspace))
    issue = Issue("Update", original.status, (triple(original),), note=f"Correction of {original.identifier}: {said}",
                  incident=original.incidents)
    return original, plan_rendering(workspace, rendering, approval, store=store, only=only, learn_limits=True,
                                    issue=issue, to=audience_of(store, [original]))


def plan_cancel(workspace: Workspace, store: Store, reference: str, reason: str, *,
                only: tuple[str, ...] = ()) -> tuple[Alert, Plan]:
    """A CAP Cancel of one alert: its headline marked CANCELLED, and why, in every language."""
    from broadcast.prepare.templates import Text

    if not reason.strip():
        raise PolicyError("a cancellation needs a reason", hint='e.g. --reason "sent for the wrong school"')
    original = resolve_alert(store, reference)
    if original.msg_type == "Cancel":
        raise PolicyError(f"{original.identifier} is itself a cancellation")
    rendering = rendering_of(workspace, original)
    texts = {}
    for language in rendering.texts:
        said = CANCELS.get(language).format(time=original.sent[11:16], reason=reason.strip().rstrip("."))
        headline = f"{CANCELLED.get(language)}: {original.info(language).headline}"
        link = f" {original.info(language).web}"
        texts[language] = {"headline": Text(((headline, False),)), "short": Text(((f"{headline}. {said}{link}",
                                                                                   False),)),
                           "body": Text(((f"{headline}. {said}{link}", False),)),
                           "instruction": Text(((said, False),))}
    rendering = replace(rendering, texts=texts)
    issue = Issue("Cancel", original.status, (triple(original),), note=f"Cancelled: {reason}",
                  incident=original.incidents)
    # Withdrawing a message is never held for a second person: it only ever reduces what the public is told.
    approval = ApprovalState(APPROVED, None)
    return original, plan_rendering(workspace, rendering, approval, store=store, only=only, learn_limits=True,
                                    issue=issue, to=audience_of(store, [original]))


def rendering_of(workspace: Workspace, alert: Alert) -> Rendering:
    """Rebuild a Rendering from a stored alert, so a correction or cancellation derives from what was sent."""
    from broadcast.prepare.templates import Text
    from broadcast.send.drafts import free_text

    base = free_text(workspace, {"en": alert.infos[0].headline})
    if alert.template and alert.template != "free-text":
        base = replace(base, template=find_template(workspace, alert.template))
    texts = {info.language: {v: Text(tuple((str(t), bool(o)) for t, o in parts)) for v, parts in info.texts.items()}
             for info in alert.infos}
    return replace(base, raw=dict(alert.variables), texts=texts)


def mark(rendering: Rendering, word: Localized, sentence: Localized, **fields: str) -> Rendering:
    """Prefix every text with the word (CORRECTION) and end the longer ones with the sentence saying why."""
    from broadcast.prepare.templates import Text

    texts = {}
    for language, variants in rendering.texts.items():
        prefix = (f"{word.get(language)}: ", False)
        tail = (f" {sentence.get(language).format(**fields)}", False)
        texts[language] = {v: Text((prefix, *t.parts) if v in ("headline", "short") else (prefix, *t.parts, tail))
                           for v, t in variants.items()}
    return replace(rendering, texts=texts)


def retract(workspace: Workspace, store: Store, alert: Alert, *, actor: str,
            only: tuple[str, ...] = ()) -> list[Retraction]:
    """Delete the alert's posts wherever the platform allows; the kill switch is honoured."""
    usable, skipped = usable_channels(workspace, store, only, alert.status)
    channels = {channel.name: channel for _, channel in usable}
    posted = store.deliveries(alert.identifier, ("sent",), recipients=False)
    reasons = dict(skipped)
    results = [Retraction(d["channel"], d["language"], False, f"skipped: {reasons[d['channel']]}")
               for d in posted if d["channel"] in reasons]
    for channel, count in store.conn.execute(
            "SELECT channel, count(*) FROM deliveries WHERE alert = ? AND recipient != '' AND state = 'sent' "
            "GROUP BY channel", [alert.identifier]):
        results.append(Retraction(channel, "", False, f"{count:,} texts or emails cannot be recalled: what follows "
                                  "goes to the same people"))
    sent = [d for d in posted if d["channel"] in channels]

    async def run() -> list[Retraction]:
        import httpx

        async with httpx.AsyncClient(timeout=15) as client:
            return list(await asyncio.gather(*(one(d, client) for d in sent)))

    async def one(delivery: dict[str, Any], client: Any) -> Retraction:
        channel = channels[delivery["channel"]]
        language = delivery["language"]
        if not channel.can_retract:
            return Retraction(channel.name, language, False, f"{channel.kind} cannot delete posts: the "
                              "cancellation or correction is posted instead")
        try:
            await channel.retract(Receipt(delivery["remote_id"], delivery["remote_url"]), client)
        except (ChannelError, BroadcastError) as exc:
            store.append_event("retraction_failed", phase="recover", actor=actor, incident=alert.incidents,
                               alert=alert.identifier, channel=channel.name, description=exc.message,
                               details={"language": language})
            return Retraction(channel.name, language, False, exc.message)
        store.transition(delivery, "retracted", "retracted", actor=actor,
                         description=f"{channel.name}: post deleted", details={"remote_id": delivery["remote_id"]})
        return Retraction(channel.name, language, True, "deleted")

    return results + asyncio.run(run())


def close_incident(store: Store, incident: str, *, actor: str, state: str = "closed") -> None:
    """Close (or mark recovering) an incident; the record stays."""
    row = incident_row(store, incident)
    if row["status"] == "closed":
        raise PolicyError(f"incident {incident} is already closed")
    with store.transaction():
        store.conn.execute("UPDATE incidents SET status = ?, closed_at = ? WHERE slug = ?",
                           [state, isoformat(utcnow()) if state == "closed" else None, incident])
        store.append_event("incident_closed" if state == "closed" else "status_changed",
                           phase="recover", actor=actor, incident=incident,
                           description=f"Incident {incident} {state}", details={"status": state})
