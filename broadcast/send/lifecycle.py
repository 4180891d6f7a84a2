"""The incident lifecycle after the first warning: update, correct, cancel, recover, close."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import date
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

CORRECTION = Localized({"en": "Correction", "cy": "Cywiriad"})
# One change, said plainly: the variable's name in English; in Welsh the values alone ("X, nid Y") read clearly.
CHANGE = Localized({"en": "the {name} is {new}, not {old}", "cy": "{new}, nid {old}"})
CHANGE_LIST = Localized({"en": "the {name} are {new}, not {old}", "cy": "{new}, nid {old}"})
CANCELLED = Localized({"en": "Cancelled: ignore our earlier message", "cy": "Wedi'i ganslo: anwybyddwch ein neges "
                       "gynharach"})
REASON = Localized({"en": "Reason: {reason}.", "cy": "Rheswm: {reason}."})
FINAL = ("Cancel",)  # an alert cancelled is no longer live


@dataclass
class Retraction:
    channel: str
    language: str
    done: bool
    detail: str


def incident_row(store: Store, slug: str) -> dict[str, Any]:
    rows = store.rows("incidents", "slug = ?", [slug])
    if not rows:
        known = ", ".join(r["slug"] for r in store.incidents("open")[:5]) or "none open"
        raise BroadcastError(f"no incident '{slug}'", hint=f"open incidents: {known} (see: broadcast status)")
    return rows[0]


def live_alerts(store: Store, incident: str) -> list[Alert]:
    """The incident's alerts that nothing later has updated or cancelled: what an update supersedes."""
    alerts = store.alerts(incident)
    superseded = {identifier for a in alerts for identifier in a.referenced}
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


def chain(store: Store, alert: Alert) -> list[Alert]:
    """The alert and every later alert of its incident that updates it, directly or through another."""
    found, members = [alert], {alert.identifier}
    for later in store.alerts(alert.incidents) if alert.incidents else []:
        if later.identifier not in members and members.intersection(later.referenced):
            found.append(later)
            members.add(later.identifier)
    return found


def current_messages(store: Store, alert: Alert) -> list[Alert]:
    """What the public sees now of this alert: the live alerts of its chain (itself, or the updates since)."""
    if alert.incidents:
        live = {a.identifier for a in live_alerts(store, alert.incidents)}
    else:
        live = set() if alert.msg_type in FINAL else {alert.identifier}
    current = [a for a in chain(store, alert) if a.identifier in live]
    if not current:
        raise PolicyError(f"{alert.identifier} has nothing live to follow up: it was cancelled",
                          hint="send a new warning: broadcast warn TEMPLATE")
    return current


@dataclass(frozen=True)
class Stale:
    """A channel still showing an earlier message of an incident than its latest (the latest did not reach it)."""

    channel: str
    shows: str  # the alert whose post is up there
    url: str | None
    latest: str


def stale_channels(store: Store, incident: str) -> list[Stale]:
    """Channels whose newest post for the incident is older than the incident's latest message: after `--only`, a
    channel switched off, or a broken file. Deleted posts do not count; a list's texts cannot be recalled."""
    alerts = store.alerts(incident)
    if not alerts:
        return []
    order = {a.identifier: n for n, a in enumerate(alerts)}
    latest = alerts[-1].identifier
    reached = {row[0] for row in store.conn.execute(
        "SELECT DISTINCT channel FROM deliveries WHERE alert = ? AND recipient = '' AND state = 'sent'", [latest])}
    newest: dict[str, tuple[str, str | None]] = {}
    marks = ", ".join("?" for _ in order)
    for channel, alert, url in store.conn.execute(
            f"SELECT channel, alert, remote_url FROM deliveries WHERE alert IN ({marks}) AND recipient = '' AND state "
            "= 'sent' ORDER BY id", list(order)):
        if channel not in newest or order[alert] > order[newest[channel][0]]:
            newest[channel] = (alert, url)
    return [Stale(channel, alert, url, latest) for channel, (alert, url) in sorted(newest.items())
            if channel not in reached and alert != latest]


def public_now(store: Store, plan: Plan) -> dict[tuple[str, str], str]:
    """What each channel of the plan shows now, per language: the post of the newest alert the plan supersedes that
    reached it (its text fitted again by the same adapter). A channel it never reached is left out."""
    superseded = {ref.split(",")[1] if "," in ref else ref for ref in plan.issue.references}
    if not superseded:
        return {}
    alerts = {a.identifier: a for a in store.alerts(plan.issue.incident) if a.identifier in superseded}
    marks = ", ".join("?" for _ in alerts)
    shown: dict[tuple[str, str], str] = {}
    for channel, post in plan.posts if alerts else []:
        row = store.conn.execute(
            f"SELECT alert FROM deliveries WHERE channel = ? AND language = ? AND state = 'sent' AND alert IN "
            f"({marks}) ORDER BY id DESC LIMIT 1", [channel.name, post.language, *alerts]).fetchone()
        if row:
            shown[(channel.name, post.language)] = channel.prepare(alerts[row[0]], post.language).text
    return shown


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
                    only: tuple[str, ...] = ()) -> tuple[list[Alert], Plan]:
    """Correct what the public sees now: the current message's values with the changes, saying what changed.

    Returns the live alerts the correction supersedes (the current message first) and the plan."""
    from broadcast.prepare.approvals import approval_state, read_approvals
    from broadcast.prepare.templates import render
    from broadcast.prepare.variables import display

    named = resolve_alert(store, reference)
    superseded = current_messages(store, named)[::-1]
    current = superseded[0]
    if not current.template or current.template == "free-text":
        raise PolicyError(f"{current.identifier} was not made from a template",
                          hint=f"cancel it (broadcast cancel {current.identifier} --reason ...) and send a new "
                          "message")
    if not changes:
        raise PolicyError("nothing to correct", hint="give the corrected values with --set name=value")
    template = find_template(workspace, current.template)
    before = render(template, workspace, current.variables, today=sent_day(workspace, current))
    rendering = render(template, workspace, {**pinned(before), **changes})
    changed = [name for name in changes if name in before.values
               and display(rendering.values[name], "en") != display(before.values[name], "en")]
    if not changed:
        raise PolicyError(f"the corrected values are what {current.identifier} already says",
                          hint="see what it says: broadcast status")
    said = {language: "; ".join(
        (CHANGE_LIST if isinstance(rendering.values[name], list) else CHANGE).get(language).format(
            name=name.replace("_", " "), new=spoken(rendering.values[name], language),
            old=spoken(before.values[name], language)) for name in changed) for language in rendering.texts}
    rendering = correction_texts(rendering, said)
    approval = approval_state(template, read_approvals(workspace))
    issue = Issue("Update", current.status, references(named, superseded),
                  note=f"Correction of {current.identifier}: {said.get('en-GB', next(iter(said.values())))}",
                  incident=current.incidents)
    return superseded, plan_rendering(workspace, rendering, approval, store=store, only=only, learn_limits=True,
                                      issue=issue, to=audience_of(store, superseded))


def spoken(value: Any, language: str) -> str:
    """A value as a sentence says it: a list as 'A, B and C'."""
    from broadcast.prepare.variables import and_list, display

    if isinstance(value, list):
        return and_list([str(display(item, language)) for item in value], language)
    return str(display(value, language))


def sent_day(workspace: Workspace, alert: Alert) -> date:
    """The local date the alert was sent, against which its 'today' and 'tomorrow' were read."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(alert.sent).astimezone(ZoneInfo(workspace.timezone)).date()


def pinned(rendering: Rendering) -> dict[str, str]:
    """The values as given, with 'today' and 'tomorrow' fixed to the dates they meant, so they do not move."""
    raw = dict(rendering.raw)
    for name, value in rendering.values.items():
        if isinstance(value, date) and name in raw:
            raw[name] = value.isoformat()
    return raw


def references(named: Alert, superseded: list[Alert]) -> tuple[str, ...]:
    """The named alert and every live alert superseded, each once, oldest first (by instant: the offsets differ
    across a clock change, so the text of `sent` does not sort)."""
    from datetime import datetime

    alerts = {a.identifier: a for a in [named, *superseded]}
    return tuple(triple(a) for a in sorted(alerts.values(), key=lambda a: datetime.fromisoformat(a.sent)))


def correction_texts(rendering: Rendering, said: dict[str, str]) -> Rendering:
    """'Correction: the date is …, not ….' before the short and long texts; 'Correction:' before the headline."""
    from broadcast.prepare.templates import Text

    texts = {}
    for language, variants in rendering.texts.items():
        word = CORRECTION.get(language)
        sentence = (f"{word}: {said[language]}. ", False)
        texts[language] = {v: Text(((f"{word}: ", False), *t.parts)) if v == "headline" else
                           Text((sentence, *t.parts)) if v in ("short", "body") else t for v, t in variants.items()}
    return replace(rendering, texts=texts)


def plan_cancel(workspace: Workspace, store: Store, reference: str, reason: str, *,
                only: tuple[str, ...] = ()) -> tuple[list[Alert], Plan]:
    """A CAP Cancel of an alert and every update since: a withdrawal ("ignore our earlier message"), and why.

    Returns every alert of the chain, whose posts are deleted where the platform allows, and the plan."""
    from broadcast.prepare.templates import Text
    from broadcast.prepare.variables import check_typed

    if not reason.strip():
        raise PolicyError("a cancellation needs a reason", hint='e.g. --reason "sent for the wrong school"')
    check_typed(reason, "--reason", workspace.languages)
    named = resolve_alert(store, reference)
    if named.msg_type == "Cancel":
        raise PolicyError(f"{named.identifier} is itself a cancellation")
    live = current_messages(store, named)
    current = live[-1]
    rendering = rendering_of(workspace, current)
    texts = {}
    for language in rendering.texts:
        info = current.info(language)
        quoted = f' "{_plain_headline(info.headline, language)}"'  # optional: dropped first if a post is too long
        why = REASON.get(language).format(reason=reason.strip().rstrip("."))
        withdrawn = (CANCELLED.get(language), False)
        headline = Text((withdrawn, (quoted, True)))
        whole = Text((withdrawn, (f"{quoted}.", True), (f" {why} {info.web}", False)))
        texts[language] = {"headline": headline, "short": whole, "body": whole, "instruction": Text(((why, False),))}
    rendering = replace(rendering, texts=texts)
    everything = chain(store, named)
    issue = Issue("Cancel", current.status, references(named, live), note=f"Cancelled: {reason}",
                  incident=current.incidents)
    # Withdrawing a message is never held for a second person: it only ever reduces what the public is told.
    approval = ApprovalState(APPROVED, None)
    return everything, plan_rendering(workspace, rendering, approval, store=store, only=only, learn_limits=True,
                                      issue=issue, to=audience_of(store, everything))


def _plain_headline(headline: str, language: str) -> str:
    """The headline as the public read it, without a correction's marker."""
    return headline.removeprefix(f"{CORRECTION.get(language)}: ")


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


def retract(workspace: Workspace, store: Store, alerts: list[Alert], *, actor: str,
            only: tuple[str, ...] = ()) -> list[Retraction]:
    """Delete the alerts' posts wherever the platform allows; the kill switch is honoured."""
    if not alerts:
        return []
    # The alerts of one chain share their CAP status, so one set of adapters (and one client) serves them all.
    usable, skipped = usable_channels(workspace, store, only, alerts[0].status)
    channels = {channel.name: channel for _, channel in usable}
    reasons = dict(skipped)
    results: list[Retraction] = []
    sent: list[tuple[Alert, dict[str, Any]]] = []
    for alert in alerts:
        posted = store.deliveries(alert.identifier, ("sent",), recipients=False)
        results += [Retraction(d["channel"], d["language"], False,
                               f"its post stays up{' at ' + d['remote_url'] if d['remote_url'] else ''}, and nothing "
                               f"follows it there ({reasons[d['channel']]}): delete it by hand")
                    for d in posted if d["channel"] in reasons]
        for channel, count in store.conn.execute(
                "SELECT channel, count(*) FROM deliveries WHERE alert = ? AND recipient != '' AND state = 'sent' "
                "GROUP BY channel", [alert.identifier]):
            results.append(Retraction(channel, "", False, f"{count:,} texts or emails cannot be recalled: what "
                                      "follows goes to the same people"))
        sent += [(alert, d) for d in posted if d["channel"] in channels]

    async def run() -> list[Retraction]:
        from broadcast.send.client import http_client

        async with http_client(timeout=15) as client:
            return list(await asyncio.gather(*(one(alert, d, client) for alert, d in sent)))

    async def one(alert: Alert, delivery: dict[str, Any], client: Any) -> Retraction:
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
