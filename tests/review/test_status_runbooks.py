"""broadcast status and runbooks."""

import json
from datetime import UTC, timedelta

from conftest import SETS, invoke

from broadcast.review.status import next_update_due, status
from broadcast.store import Store
from broadcast.workspace import Workspace

RUNBOOK = """# Snow: schools

For: the duty officer.

## Prepare
- [ ] P1. Check the forecast.
## Warn
- [ ] W1. Send the closures: `broadcast warn school-closures ...`
- [ ] W2. Check the page on a phone.
## Review
- [ ] V1. Verify the log: `broadcast review verify`
"""


def test_next_update_due_crosses_midnight_and_clock_changes():
    assert next_update_due("2026-11-23T06:05:00-00:00", "15:00", "Europe/London").isoformat() == \
        "2026-11-23T15:00:00+00:00"
    assert next_update_due("2026-11-23T22:30:00-00:00", "6:30am", "Europe/London").isoformat() == \
        "2026-11-24T06:30:00+00:00"
    assert next_update_due("2026-06-10T09:00:00+01:00", "10:00", "Europe/London").isoformat() == \
        "2026-06-10T10:00:00+01:00"
    assert next_update_due("2026-06-10T09:00:00+01:00", None, "Europe/London") is None


def test_status_shows_incident_problems_and_an_overdue_update(live, sandbox):
    sandbox.fault("hook-b", fail_next=99, status=400)
    invoke(live, "warn", "school-closure", *SETS, "--yes")
    workspace = Workspace(live)
    store = Store.open(workspace.db_path)
    alert = store.alerts()[0]
    due = next_update_due(alert.sent, "10:00", workspace.timezone)
    late = status(workspace, store, now=due.astimezone(UTC).replace(minute=25))
    [incident] = late.incidents
    assert incident.overdue_minutes == 25 and incident.last_alert == "A-2026-0001"
    assert {p.channel for p in late.problems} == {"hook-b"}
    assert late.problems[0].fix == "broadcast resend A-2026-0001 --only hook-b"
    assert set(late.channels) == {"mastodon-council", "hook-a"}
    early = status(workspace, store, now=due - timedelta(minutes=30))
    assert early.incidents[0].overdue_minutes is None and early.incidents[0].next_update_due == due.isoformat()


def test_status_cli_text_and_json(live, sandbox):
    invoke(live, "warn", "school-closure", *SETS, "--yes")
    result = invoke(live, "status")
    assert result.exit_code == 0
    assert "1 open incident\n" in result.output and "last A-2026-0001" in result.output
    assert "mastodon-council" in result.output and "Log: " in result.output
    data = json.loads(invoke(live, "status", "--json").stdout)
    assert data["incidents"][0]["last_alert"] == "A-2026-0001" and data["events"] > 5


def test_runbook_ticks_are_events_with_time_and_actor(live, sandbox):
    (live / "runbooks").mkdir(exist_ok=True)
    (live / "runbooks" / "snow-schools.md").write_text(RUNBOOK, encoding="utf-8")
    incident = json.loads(invoke(live, "warn", "school-closure", *SETS, "--json", "--yes").stdout)["incident"]
    result = invoke(live, "runbook", "start", "snow-schools", "--incident", incident)
    assert result.exit_code == 0 and "4 steps. First: P1. Check the forecast." in result.output
    assert invoke(live, "runbook", "tick", "W1", "--note", "sent at 06:05").exit_code == 0
    again = invoke(live, "runbook", "tick", "W1")
    assert again.exit_code == 2 and "W1 was ticked at" in again.stderr
    missing = invoke(live, "runbook", "tick", "W9")
    assert missing.exit_code == 2 and "has no step W9" in missing.stderr and "P1, W1, W2, V1" in missing.stderr
    shown = invoke(live, "runbook", "show").output
    assert "[x] W1. Send the closures" in shown and "duty-officer" in shown
    assert "[ ] W2. Check the page on a phone." in shown and "1 of 4 done. Next: P1." in shown
    store = Store.open(Workspace(live).db_path)
    [event] = [e for e in store.events() if e["type"] == "runbook_step"]
    assert event["phase"] == "warn" and event["actor"] == "duty-officer" and event["incident"] == incident
    assert json.loads(event["details"]) == {"runbook": "snow-schools", "step": "W1", "note": "sent at 06:05"}
