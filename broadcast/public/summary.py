"""What the public sees, worked out once from the store: the page, the feeds and status.json are all built from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from broadcast.public.cap import cap_filename, safe_stem

if TYPE_CHECKING:
    from broadcast.alert import Alert
    from broadcast.public.pageconfig import PageSettings
    from broadcast.store import Store
    from broadcast.workspace import Workspace

PUBLIC_MSG_TYPES = ("Alert", "Update", "Cancel", "Error")
SEVERITY_ORDER = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")


@dataclass(frozen=True)
class Update:
    """One public alert as the page shows it."""

    alert: Alert
    incident: str
    sent: datetime
    expires: datetime | None
    kind: str  # alert, update, all-clear, cancel, error
    marker: str | None  # "Exercise" or "Test" when such alerts are shown, else None

    @property
    def page(self) -> str:
        return incident_page(self.incident)

    @property
    def cap_path(self) -> str:
        return f"cap/{cap_filename(self.alert.identifier)}"

    @property
    def anchor(self) -> str:
        return safe_stem(self.alert.identifier)

    @property
    def severity(self) -> str:
        return self.alert.infos[0].severity if self.alert.infos else "Unknown"


@dataclass(frozen=True)
class Incident:
    slug: str
    title: str
    state: str  # as stored: open, recovering, closed
    status: str  # as shown: current, all-clear, cancelled, ended
    marker: str | None
    updates: tuple[Update, ...]  # newest first

    @property
    def latest(self) -> Update:
        return self.updates[0]

    @property
    def page(self) -> str:
        return incident_page(self.slug)

    def title_in(self, language: str, default: str) -> tuple[str, str]:
        """The title in a language, and the language it is really in: an incident named after its first alert's
        headline (as `warn` names them) takes that headline's translation; any other title is as it was typed."""
        first = self.updates[-1].alert
        if first.infos and self.title == first.infos[0].headline:
            info = first.info(language)
            return info.headline, info.language
        return self.title, default


@dataclass(frozen=True)
class School:
    name: str
    status: str  # closed, open, late-start (or what the template's school_status variable said)
    updated: datetime
    incident: str


@dataclass(frozen=True)
class Summary:
    generated: datetime
    workspace: Workspace
    settings: PageSettings
    incidents: tuple[Incident, ...]  # every public incident: each gets a page
    current: tuple[Incident, ...]  # most severe, then newest, first
    ended: tuple[Incident, ...]  # ended within keep_ended_hours, newest first
    schools: tuple[School, ...]
    log: tuple[int, str, str | None] = (0, "", None)  # the log's chain head this page anchors: count, hash, when

    @property
    def updates(self) -> list[Update]:
        """Every public alert, newest first."""
        return sorted((u for i in self.incidents for u in i.updates), key=lambda u: u.sent, reverse=True)


def incident_page(slug: str) -> str:
    return f"incidents/{safe_stem(slug)}.html"


def parse_cap_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def is_public(alert: Alert, show_exercises: bool) -> bool:
    """Actual, public alerts; Exercise and Test only when the workspace shows them. Never System or Draft."""
    allowed = ("Actual", "Exercise", "Test") if show_exercises else ("Actual",)
    return alert.scope == "Public" and alert.status in allowed and alert.msg_type in PUBLIC_MSG_TYPES


def kind_of(alert: Alert) -> str:
    if alert.msg_type == "Cancel":
        return "cancel"
    if alert.msg_type == "Error":
        return "error"
    if any("AllClear" in info.response_type for info in alert.infos):
        return "all-clear"
    return "update" if alert.msg_type == "Update" else "alert"


def summarise(
    workspace: Workspace, store: Store, settings: PageSettings, now: datetime, alerts: list[Alert] | None = None
) -> Summary:
    """Group the public alerts by incident and decide what is current (pass `alerts` if already loaded)."""
    rows = {row["slug"]: row for row in store.incidents()}
    groups: dict[str, list[Alert]] = {}
    group_of: dict[str, str] = {}
    for alert in store.alerts() if alerts is None else alerts:
        if not is_public(alert, settings.show_exercises):
            continue
        slug = alert.incidents or _group_by_references(alert, group_of)
        if rows.get(slug, {}).get("exercise") and not settings.show_exercises:
            continue
        groups.setdefault(slug, []).append(alert)
        group_of[alert.identifier] = slug
    incidents = [_incident(slug, alerts, rows.get(slug), now) for slug, alerts in groups.items()]
    current = sorted((i for i in incidents if i.status == "current"),
                     key=lambda i: (SEVERITY_ORDER.index(_severity(i)), -i.latest.sent.timestamp()))
    since = now - timedelta(hours=settings.keep_ended_hours)
    ended = sorted((i for i in incidents if i.status != "current" and i.latest.sent >= since),
                   key=lambda i: i.latest.sent, reverse=True)
    return Summary(now, workspace, settings, tuple(incidents), tuple(current), tuple(ended), _schools(current),
                   store.anchor())


def _group_by_references(alert: Alert, group_of: dict[str, str]) -> str:
    """An alert with no incident joins the group of an alert it references, or starts its own."""
    for identifier in alert.referenced:
        if identifier in group_of:
            return group_of[identifier]
    return alert.identifier


def _incident(slug: str, alerts: list[Alert], row: dict[str, Any] | None, now: datetime) -> Incident:
    # Newest first; alerts sent in the same second keep the order they were recorded in.
    order = sorted(enumerate(_update(a, slug) for a in alerts), key=lambda pair: (pair[1].sent, pair[0]), reverse=True)
    updates = [update for _, update in order]
    latest = updates[0]
    state = row["status"] if row else "open"
    ended = (state == "closed" or latest.kind in ("all-clear", "cancel")
             or (latest.expires is not None and latest.expires <= now))
    status = {"all-clear": "all-clear", "cancel": "cancelled"}.get(latest.kind, "ended") if ended else "current"
    markers = {u.marker for u in updates if u.marker} | ({"Exercise"} if row and row.get("exercise") else set())
    title = row["title"] if row else updates[-1].alert.infos[0].headline if updates[-1].alert.infos else slug
    return Incident(slug, title, state, status, sorted(markers)[0] if markers else None, tuple(updates))


def _update(alert: Alert, slug: str) -> Update:
    expires = [parse_cap_time(i.expires) for i in alert.infos if i.expires]
    return Update(alert, slug, parse_cap_time(alert.sent), min(expires) if expires else None, kind_of(alert),
                  alert.status if alert.status in ("Exercise", "Test") else None)


def _severity(incident: Incident) -> str:
    severity = incident.latest.severity
    return severity if severity in SEVERITY_ORDER else "Unknown"


def _schools(current: list[Incident] | tuple[Incident, ...]) -> tuple[School, ...]:
    """The plain list for a snow day. Alerts from templates with a `school` or `schools` variable feed it: a list
    replaces the incident's earlier list, a single school sets that school; `school_status` gives the word."""
    latest: dict[str, School] = {}
    for incident in current:
        listed: dict[str, School] = {}
        for update in reversed(incident.updates):
            values = update.alert.variables
            status = values.get("school_status", "closed").strip() or "closed"
            if "schools" in values:
                listed = {}
                names = [n.strip() for n in re.split(r"[;\n]", values["schools"]) if n.strip()]
            else:
                names = [values["school"].strip()] if values.get("school", "").strip() else []
            for name in names:
                listed[name.casefold()] = School(name, status, update.sent, incident.slug)
        for key, school in listed.items():
            if key not in latest or latest[key].updated < school.updated:
                latest[key] = school
    return tuple(sorted(latest.values(), key=lambda s: s.name.casefold()))
