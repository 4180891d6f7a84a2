"""Runbooks: Markdown checklists per incident type; every step ticked is an event with its time and actor."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broadcast.errors import BroadcastError, ConfigError, PolicyError
from broadcast.workspace import check_name, within

if TYPE_CHECKING:
    from broadcast.store import Store
    from broadcast.workspace import Workspace

STEP_RE = re.compile(r"^- \[[ xX]\] ([PWIRV]\d+)\. (.+)$")
PHASE_OF = {"P": "prepare", "W": "warn", "I": "inform", "R": "recover", "V": "review"}


@dataclass(frozen=True)
class Step:
    id: str
    phase: str
    text: str


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    steps: tuple[Step, ...]

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id.upper():
                return step
        raise PolicyError(f"runbook {self.name} has no step {step_id}",
                          hint=f"steps: {', '.join(s.id for s in self.steps)} (see: broadcast runbook show)")


@dataclass(frozen=True)
class Tick:
    step: Step
    at: str | None = None
    actor: str | None = None
    note: str | None = None


def load_runbook(workspace: Workspace, name: str) -> Runbook:
    """Read runbooks/NAME.md: a title, then `- [ ] P1. text` steps (P, W, I, R, V: the phases)."""
    path = within(workspace.root, workspace.runbooks_dir / f"{check_name('runbook', name)}.md")
    if not path.is_file():
        names = sorted(p.stem for p in workspace.runbooks_dir.glob("*.md") if p.name != "README.md")
        raise ConfigError(path, None, f"no runbook named '{name}'", f"runbooks: {', '.join(names) or 'none'}")
    title, steps = name, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# ") and title == name:
            title = line[2:].strip()
        match = STEP_RE.match(line.strip())
        if match:
            steps.append(Step(match[1], PHASE_OF[match[1][0]], match[2].strip()))
    if not steps:
        raise ConfigError(path, None, "no steps found", "write steps as: - [ ] W1. Send the warning")
    return Runbook(name, title, tuple(steps))


def start(workspace: Workspace, store: Store, name: str, incident: str, *, actor: str) -> Runbook:
    """Begin working through a runbook for an incident."""
    runbook = load_runbook(workspace, name)
    if not store.conn.execute("SELECT 1 FROM incidents WHERE slug = ?", [incident]).fetchone():
        raise BroadcastError(f"no incident '{incident}'", hint="see the open incidents: broadcast status")
    if name in started(store, incident):
        raise PolicyError(f"runbook {name} is already started for {incident}",
                          hint=f"see it with: broadcast runbook show --incident {incident}")
    store.append_event("runbook_started", phase="prepare", actor=actor, incident=incident,
                       description=f"Runbook started: {runbook.title}",
                       details={"runbook": name, "steps": [s.id for s in runbook.steps]})
    return runbook


def started(store: Store, incident: str) -> list[str]:
    rows = store.conn.execute("SELECT details FROM events WHERE type = 'runbook_started' AND incident = ? "
                              "ORDER BY id", [incident])
    return [json.loads(row[0])["runbook"] for row in rows]


def current(workspace: Workspace, store: Store, incident: str | None, name: str | None) -> tuple[str, Runbook]:
    """The runbook in use: the one named, else the latest started for the incident (or the only open one)."""
    if incident is None:
        rows = store.conn.execute("SELECT DISTINCT e.incident FROM events e JOIN incidents i ON i.slug = e.incident "
                                  "WHERE e.type = 'runbook_started' AND i.status != 'closed'").fetchall()
        if len(rows) != 1:
            raise PolicyError("say which incident: " + (", ".join(r[0] for r in rows) or "no runbook is started"),
                              hint="add --incident SLUG (or start one: broadcast runbook start NAME --incident SLUG)")
        incident = rows[0][0]
    names = started(store, incident)
    if name is None:
        if not names:
            raise PolicyError(f"no runbook started for {incident}",
                              hint=f"start one: broadcast runbook start NAME --incident {incident}")
        name = names[-1]
    elif name not in names:
        raise PolicyError(f"runbook {name} is not started for {incident}",
                          hint=f"start it: broadcast runbook start {name} --incident {incident}")
    return incident, load_runbook(workspace, name)


def tick(workspace: Workspace, store: Store, step_id: str, *, actor: str, incident: str | None = None,
         runbook: str | None = None, note: str | None = None) -> Tick:
    """Record that a step was done, by whom, now."""
    incident, book = current(workspace, store, incident, runbook)
    step = book.step(step_id)
    done = {t.step.id: t for t in ticks(store, incident, book) if t.at}
    if step.id in done:
        raise PolicyError(f"{step.id} was ticked at {done[step.id].at} by {done[step.id].actor}",
                          hint="add a note about it instead: broadcast review note INCIDENT \"...\"")
    row = store.append_event("runbook_step", phase=step.phase, actor=actor, incident=incident,
                             description=f"{book.name} {step.id}: {step.text}" + (f" ({note})" if note else ""),
                             details={"runbook": book.name, "step": step.id, "note": note})
    return Tick(step, row["occurred_at"], actor, note)


def ticks(store: Store, incident: str, runbook: Runbook) -> list[Tick]:
    """Every step of the runbook, with when and by whom it was ticked (if it was)."""
    done: dict[str, Tick] = {}
    for occurred, actor, details in store.conn.execute(
            "SELECT occurred_at, actor, details FROM events WHERE type = 'runbook_step' AND incident = ? "
            "ORDER BY id", [incident]):
        data = json.loads(details)
        if data.get("runbook") == runbook.name:
            done[data["step"]] = Tick(runbook.step(data["step"]), occurred, actor, data.get("note"))
    return [done.get(step.id, Tick(step)) for step in runbook.steps]
