"""Every command that reports something takes --json: one object whose schema key names its shape."""

from __future__ import annotations

import json

from conftest import SETS, invoke

COMMANDS = [
    (["status"], "status"), (["drafts", "--all"], "drafts"), (["channels", "list"], "channels"),
    (["channels", "check", "hook-a"], "channel-checks"), (["templates", "list"], "templates"),
    (["templates", "lint", "school-closure"], "lint"), (["page", "build"], "page-build"),
    (["page", "publish"], "page-publish"), (["review", "verify"], "verify"), (["review", "list"], "incidents"),
    (["review", "summary", "--since", "2026-01-01"], "summary"), (["resend", "A-2026-0001", "--yes"], "resend"),
    (["runbook", "show"], "runbook"),
]


def test_each_reporting_command_prints_one_versioned_object(live, sandbox):
    (live / "runbooks").mkdir(exist_ok=True)
    (live / "runbooks" / "drill.md").write_text(
        "# Drill\n\nFor: the duty officer.\n\n## Warn\n- [ ] W1. Send it: `broadcast warn school-closure`.\n",
        encoding="utf-8")
    sent = invoke(live, "warn", "school-closure", *SETS, "--json", "--yes")
    assert sent.exit_code == 0, sent.output
    report = json.loads(sent.stdout)
    assert report["schema"] == "broadcast.send" and report["version"] == 1 and report["alert"] == "A-2026-0001"
    incident = report["incident"]
    assert invoke(live, "runbook", "start", "drill", "--incident", incident).exit_code == 0
    checked = []
    for args, schema in [*COMMANDS, (["review", "metrics", incident], "metrics")]:
        result = invoke(live, *args, "--json")
        assert result.exit_code in (0, 1), (args, result.output)
        data = json.loads(result.stdout)  # nothing else on stdout
        # metrics and summary moved to one vocabulary (attempted, accepted, delivered, failed, unknown) in version 2
        version = 2 if schema in ("metrics", "summary") else 1
        assert data["schema"] == f"broadcast.{schema}" and data["version"] == version, (args, data)
        checked.append(schema)
    assert len(checked) == len(COMMANDS) + 1
    lists = invoke(live, "lists", "check", "--json")
    assert json.loads(lists.stdout)["schema"] == "broadcast.lists-check"
