"""Helpers for the page, feed, CAP and publish tests (and bench/page.py): alerts, realistic incidents, hostile text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broadcast.alert import Alert, AlertArea, Info
from broadcast.prepare.templates import example_values, find_template, render
from broadcast.send.compose import build_alert
from broadcast.workspace import Workspace

T0 = datetime(2026, 11, 23, 6, 42, tzinfo=UTC)
SQUARE = "52,-3.4 52,-3.3 52.1,-3.3 52.1,-3.4 52,-3.4"
# Templates of the example workspace, in the order a busy winter day would use them.
REALISTIC = ("flood-warning", "school-closures", "road-closure", "severe-weather", "power-outage", "water-supply",
             "road-conditions", "rest-centre", "school-closure", "holding-statement")


def make_alert(workspace: Workspace, identifier: str, *, minutes: float = 0, template: str = "school-closure",
               values: dict[str, str] | None = None, **kwargs: Any) -> Alert:
    """An Alert from a template of the workspace, sent `minutes` after T0."""
    chosen = find_template(workspace, template)
    rendering = render(chosen, workspace, example_values(chosen) if values is None else values, today=T0.date())
    return build_alert(workspace, rendering, identifier=identifier, sent=T0 + timedelta(minutes=minutes), **kwargs)


def save(store: Any, alert: Alert, title: str | None = None, *, exercise: bool = False) -> Alert:
    """Save an alert, opening its incident first if the store does not have it yet."""
    if alert.incidents and not any(row["slug"] == alert.incidents for row in store.incidents()):
        store.open_incident(alert.incidents, title or alert.infos[0].headline, exercise=exercise)
    store.save_alert(alert, sent_by="duty officer")
    return alert


def populate(workspace: Workspace, store: Any, incidents: int, updates: int) -> datetime:
    """Open `incidents` incidents from the realistic templates, each with `updates` alerts (an Alert, then Updates
    that reference the one before). Returns a moment just after the last one, when all are still current."""
    number, last = 0, T0
    for i in range(incidents):
        template = REALISTIC[i % len(REALISTIC)]
        slug, previous = f"{template}-{i:02d}", None
        for j in range(updates):
            number += 1
            minutes = i * 2 + j * 3
            alert = make_alert(workspace, f"A-2026-{number:04d}", minutes=minutes, template=template, incident=slug,
                               msg_type="Update" if previous else "Alert",
                               references=(previous,) if previous else ())
            save(store, alert)
            previous, last = alert.identifier, max(last, T0 + timedelta(minutes=minutes))
    return last + timedelta(minutes=1)


def hostile_alert(text: str, identifier: str = "A-2026-0001", incident: str = "hostile") -> Alert:
    """An alert with `text` in every free-text field and variable, in both languages."""
    area = AlertArea(text, (SQUARE,), (("GSS", text),))
    infos = tuple(
        Info(language=language, category=("Safety",), event=text, response_type=("Prepare",), urgency="Expected",
             severity="Minor", certainty="Observed", expires="2026-11-24T06:42:00-00:00", sender_name=text,
             headline=text, description=text, instruction=text, web="https://alerts.testshire.example",
             contact=text, areas=(area,))
        for language in ("en-GB", "cy-GB")
    )
    return Alert(identifier=identifier, sender="alerts@testshire.example", sent="2026-11-23T06:42:00-00:00",
                 status="Actual", msg_type="Alert", scope="Public", infos=infos, incidents=incident,
                 variables={"school": text})


class MemoryStore:
    """The two reads the site needs, without SQLite: keeps property tests fast."""

    def __init__(self, alerts: list[Alert], incidents: list[dict[str, Any]] | None = None):
        self._alerts = alerts
        self._incidents = incidents or []

    def alerts(self, incident: str | None = None) -> list[Alert]:
        return [a for a in self._alerts if incident is None or a.incidents == incident]

    def stored_alerts(self, incident: str | None = None) -> list[tuple[Alert, str]]:
        from broadcast.store import canonical_json

        return [(a, canonical_json(a.to_dict())) for a in self.alerts(incident)]

    def alert_texts(self, incident: str | None = None) -> list[str]:
        return [text for _, text in self.stored_alerts(incident)]

    def alerts_version(self) -> None:
        return None  # it cannot say: every build reads the alerts

    def incidents(self, status: str | None = None) -> list[dict[str, Any]]:
        return [row for row in self._incidents if status is None or row["status"] == status]

    def anchor(self) -> tuple[int, str, str | None]:
        return 0, "", None  # no log: the page carries no head


def incident_row(slug: str, title: str, *, exercise: bool = False, status: str = "open") -> dict[str, Any]:
    return {"slug": slug, "title": title, "status": status, "exercise": int(exercise),
            "opened_at": "2026-11-23T06:40:00.000Z", "closed_at": None}


def with_page(root: Path, section: str) -> Workspace:
    """The workspace at `root` with a [page] section appended to its broadcast.toml."""
    config = root / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[page]\n" + section, encoding="utf-8")
    return Workspace(root)
