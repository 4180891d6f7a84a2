"""Second-person rules that hold on one machine: the OS account is the identity, not a name anyone can set."""

import json
import subprocess
import sys

import pytest
from conftest import invoke

from broadcast.prepare.approvals import os_account
from broadcast.store import Store

WELSH_UNCHECKED = "[translation]\nreview = [\"cy-GB\"]\nnote = \"Welsh drafted by the comms team.\"\n+++\n"


@pytest.mark.real_clock  # broadcast runs in its own process, as the duty officer runs it
def test_naming_someone_else_in_the_environment_does_not_make_a_second_person(live, sandbox, sandbox_env):
    import os

    drafted = invoke(live, "warn", "--text", "Pont-y-Lliw bridge is closed.", "--yes")
    assert drafted.exit_code == 2 and "saved as draft 1" in drafted.stderr
    env = {**os.environ, "BROADCAST_OPERATOR": "sam", "USER": "sam", "LOGNAME": "sam"}  # all of them faked
    faked = subprocess.run([sys.executable, "-m", "broadcast", "--workspace", str(live), "approve", "1", "--yes"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert faked.returncode == 2, faked.stdout + faked.stderr
    assert f"sam (BROADCAST_OPERATOR) is on the same OS account as the drafter ({os_account()})" in faked.stderr
    assert "approves from their own OS account" in faked.stderr
    assert sandbox.received(accepted=True) == [] and "1  waiting" in invoke(live, "drafts").output
    store = Store.open(live / "broadcast.db")
    assert [e for e in store.events() if e["type"] == "draft_approved"] == []
    store.close()


def test_a_template_awaiting_its_welsh_review_is_not_approved_without_force_and_reason(live):
    path = live / "templates" / "school-closure.md"
    text = path.read_text(encoding="utf-8")
    front_end = text.index("\n+++\n", 3)
    path.write_text(text[:front_end + 1] + WELSH_UNCHECKED + text[front_end + 5:], encoding="utf-8")
    lint = invoke(live, "templates", "lint", "school-closure")
    assert "cy-GB awaits a translator's review" in lint.output
    by = "Alex Morgan, Head of Communications"
    refused = invoke(live, "templates", "approve", "school-closure", "--by", by)
    assert refused.exit_code == 2 and "--force --reason" in refused.stderr
    assert "school-closure has 1 lint finding to settle before approval; the first: text in cy-GB awaits" \
        in refused.stderr
    assert invoke(live, "templates", "approve", "school-closure", "--by", by, "--force").exit_code == 2
    forced = invoke(live, "templates", "approve", "school-closure", "--by", by, "--force", "--reason",
                    "Welsh checked by phone with the translation unit")
    assert forced.exit_code == 0, forced.output
    store = Store.open(live / "broadcast.db")
    [event] = [e for e in store.events() if e["type"] == "template_approved"][-1:]
    details = json.loads(event["details"])
    assert event["pinned"] == 1 and details["forced"] == "Welsh checked by phone with the translation unit"
    assert details["os_account"] == os_account() and details["flag"] == "review"
    store.close()
