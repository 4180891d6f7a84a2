"""The incident lifecycle and the safety rules, end to end against the sandbox."""

import json

import pytest
from conftest import SETS, VALUES, invoke

from broadcast.prepare import approvals
from broadcast.prepare.approvals import os_account
from broadcast.prepare.templates import find_template
from broadcast.send.sending import Issue, plan_warning
from broadcast.store import Store
from broadcast.workspace import Workspace

ALL_CLEAR = """\
+++
title = "All clear"
summary = "The danger has passed"

[cap]
event = "All clear"
category = ["Safety"]
urgency = "Past"
severity = "Minor"
certainty = "Observed"
response_type = ["AllClear"]
expires = "6h"

[variables.area]
type = "area"
label = "Area"
example = "town"

[checklist]
who = "body"
what = "headline"
where = "headline"
when = "body"
what_to_do = "instruction"
why = "body"
more_info = "body"
next_update = "n/a: the last message"
+++

## headline
All clear in {{ area }}

## headline.cy
Popeth yn glir yn {{ area }}

## short
All clear in {{ area }}. {{ org.web }}

## short.cy
Popeth yn glir yn {{ area }}. {{ org.web }}

## body
{{ org.name }}: the danger has passed in {{ area }}. More: {{ org.web }}

## body.cy
{{ org.name }}: mae'r perygl wedi mynd heibio yn {{ area }}. Mwy: {{ org.web }}

## instruction
You do not need to do anything.

## instruction.cy
Does dim angen i chi wneud dim.
"""


def first_warning(live):
    result = invoke(live, "warn", "school-closure", *SETS, "--yes", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def alerts(live):
    return Store.open(live / "broadcast.db").alerts()


def test_update_references_the_alert_it_supersedes(live, sandbox):
    report = first_warning(live)
    changed = [s for s in SETS if not s.startswith("--set=date=")] + ["--set=date=2026-11-24"]
    result = invoke(live, "update", report["incident"], "school-closure", *changed, "--yes")
    assert result.exit_code == 0, result.output
    first, second = alerts(live)
    assert second.msg_type == "Update" and second.incidents == first.incidents
    assert second.references == (f"{first.sender},{first.identifier},{first.sent}",)
    assert len(sandbox.received("mastodon", accepted=True)) == 2


def test_correct_deletes_where_possible_and_says_what_changed(live, sandbox):
    first_warning(live)
    result = invoke(live, "correct", "A-2026-0001", "--set=date=2026-11-24", "--yes")
    assert result.exit_code == 0, result.output
    assert "DEL   mastodon-council (en-GB)" in result.output and "deleted" in result.output
    assert "KEEP  hook-a (en-GB)" in result.output and "webhook cannot delete posts" in result.output
    assert len(sandbox.store("mastodon")["statuses"]) == 1  # the original deleted, the correction posted
    correction = alerts(live)[-1]
    assert correction.msg_type == "Update" and correction.references[0].split(",")[1] == "A-2026-0001"
    said = "the date is Tuesday 24 November 2026, not Monday 23 November 2026"
    assert correction.note == f"Correction of A-2026-0001: {said}"
    short = [r.body["status"] for r in sandbox.received("mastodon", accepted=True)][-1]
    assert short.startswith(f"Correction: {said}. Hillside Primary School is closed on Tuesday 24 November 2026")
    assert correction.info("en-GB").headline == "Correction: Hillside Primary School is closed on Tuesday 24 " \
                                                 "November 2026"
    welsh = correction.info("cy-GB").description
    assert welsh.startswith("Cywiriad: Dydd Mawrth 24 Tachwedd 2026, nid Dydd Llun 23 Tachwedd 2026. Cyngor ")
    store = Store.open(live / "broadcast.db")
    assert {d["state"] for d in store.deliveries("A-2026-0001") if d["channel"] == "mastodon-council"} == {
        "retracted"}


def test_a_correction_after_an_update_starts_from_what_the_public_sees_now(live, sandbox):
    report = first_warning(live)  # snow, next update at 10am
    later = [s for s in SETS if not s.startswith(("--set=reason=", "--set=next_update="))]
    result = invoke(live, "update", report["incident"], "school-closure", *later, "--set=reason=heating",
                    "--set=next_update=17:00", "--yes")
    assert result.exit_code == 0, result.output
    result = invoke(live, "correct", "A-2026-0001", "--set=date=2026-11-24", "--yes")
    assert result.exit_code == 0, result.output
    posted = [r.body["status"] for r in sandbox.received("mastodon", accepted=True)]
    assert len(posted) == 3
    assert "because of a heating failure" in posted[-1] and "snow" not in posted[-1]  # the update is not undone
    correction = alerts(live)[-1]
    assert "Next update at 5pm" in correction.info("en-GB").instruction
    assert [r.split(",")[1] for r in correction.references] == ["A-2026-0001", "A-2026-0002"]
    assert correction.note == "Correction of A-2026-0002: the date is Tuesday 24 November 2026, not Monday 23 " \
                              "November 2026"
    store = Store.open(live / "broadcast.db")
    state = {(a, d["channel"]): d["state"] for a in ("A-2026-0001", "A-2026-0002") for d in store.deliveries(a)
             if d["language"] == "en-GB"}
    assert state["A-2026-0002", "mastodon-council"] == "retracted"  # the text being corrected is taken down
    assert state["A-2026-0001", "mastodon-council"] == "sent"  # already updated: it stays in the timeline
    refused = invoke(live, "correct", "A-2026-0003", "--set=date=2026-11-24", "--yes")
    assert refused.exit_code == 2 and "already says" in refused.stderr


def test_cancel_retracts_and_posts_the_cancellation(live, sandbox):
    first_warning(live)
    result = invoke(live, "cancel", "A-2026-0001", "--reason", "sent for the wrong school", "--yes")
    assert result.exit_code == 0, result.output
    cancel = alerts(live)[-1]
    assert cancel.msg_type == "Cancel" and cancel.note == "Cancelled: sent for the wrong school"
    assert [r.split(",")[1] for r in cancel.references] == ["A-2026-0001"]
    assert cancel.info("en-GB").headline == ('Cancelled: ignore our earlier message "Hillside Primary School is '
                                             'closed on Monday 23 November 2026"')
    assert cancel.info("en-GB").instruction == "Reason: sent for the wrong school."
    assert cancel.info("cy-GB").headline.startswith("Wedi'i ganslo: anwybyddwch ein neges gynharach \"Mae ")
    webhooks = [r.body for r in sandbox.received("webhook", accepted=True) if r.body["msg_type"] == "Cancel"]
    assert len(webhooks) == 4
    [left] = sandbox.store("mastodon")["statuses"].values()  # the original deleted; only the withdrawal stands
    assert left["content"].startswith("Cancelled: ignore our earlier message")


def test_a_cancel_after_an_update_withdraws_both_and_the_page_says_cancelled(live, sandbox):
    report = first_warning(live)
    later = [s for s in SETS if not s.startswith("--set=next_update=")]
    result = invoke(live, "update", report["incident"], "school-closure", *later, "--set=next_update=17:00", "--yes")
    assert result.exit_code == 0, result.output
    result = invoke(live, "cancel", "A-2026-0001", "--reason", "sent for the wrong school", "--yes")
    assert result.exit_code == 0, result.output
    cancel = alerts(live)[-1]
    assert [r.split(",")[1] for r in cancel.references] == ["A-2026-0001", "A-2026-0002"]  # nothing left live
    store = Store.open(live / "broadcast.db")
    gone = {a for a in ("A-2026-0001", "A-2026-0002") for d in store.deliveries(a)
            if d["channel"] == "mastodon-council" and d["state"] == "retracted"}
    assert gone == {"A-2026-0001", "A-2026-0002"}
    [post] = [s["content"] for s in sandbox.store("mastodon")["statuses"].values()]
    assert post.startswith("Cancelled: ignore our earlier message") and "Reason: sent for the wrong school." in post
    status = json.loads((live / "site" / "status.json").read_text(encoding="utf-8"))
    [incident] = status["incidents"]
    assert incident["broadcast_status"] == "cancelled"
    index = (live / "site" / "index.html").read_text(encoding="utf-8")
    assert '<strong class="tag cancelled">Cancelled</strong>' in index and "All clear" not in index
    welsh = (live / "site" / "cy" / "index.html").read_text(encoding="utf-8")
    assert '<strong class="tag cancelled">Wedi&#39;i ganslo</strong>' in welsh
    shown = invoke(live, "status", "--json")
    [due] = [i for i in json.loads(shown.stdout)["incidents"] if i["slug"] == report["incident"]]
    assert due["next_update_due"] is None  # a withdrawn message promises no update


def test_an_ambiguous_cancel_is_refused_with_the_candidates(live, sandbox):
    first_warning(live)
    first_warning(live)
    result = invoke(live, "cancel", "A-2026", "--reason", "test", "--yes")
    assert result.exit_code == 2
    assert "'A-2026' matches 2 alerts: A-2026-0001" in result.stderr and "A-2026-0002" in result.stderr
    assert "hint: name exactly one alert identifier" in result.stderr


def test_cancel_skips_a_switched_off_channel(live, sandbox):
    first_warning(live)
    invoke(live, "channels", "disable", "mastodon-council", "--reason", "account hacked")
    result = invoke(live, "cancel", "A-2026-0001", "--reason", "wrong school", "--yes")
    assert "skipped: switched off by" in result.output and "account hacked" in result.output
    assert [r.method for r in sandbox.received("mastodon") if r.method == "DELETE"] == []
    assert len(sandbox.received("mastodon", accepted=True)) == 1  # the original only


def test_recover_then_close(live, sandbox):
    (live / "templates" / "all-clear.md").write_text(ALL_CLEAR, encoding="utf-8")
    workspace = Workspace(live)
    from broadcast.prepare.approvals import approve

    approve(workspace, find_template(workspace, "all-clear"), "Alex Morgan, Head of Communications",
            Store.open(workspace.db_path))
    incident = first_warning(live)["incident"]
    refused = invoke(live, "recover", incident, "school-closure", *SETS, "--yes")
    assert refused.exit_code == 2 and "is not an all-clear" in refused.stderr
    result = invoke(live, "recover", incident, "all-clear", "--set=area=town", "--yes")
    assert result.exit_code == 0, result.output
    store = Store.open(live / "broadcast.db")
    assert store.incidents()[0]["status"] == "recovering"
    assert alerts(live)[-1].infos[0].response_type == ("AllClear",)
    assert invoke(live, "close", incident).exit_code == 0
    assert Store.open(live / "broadcast.db").incidents()[0]["status"] == "closed"
    late = invoke(live, "update", incident, "school-closure", *SETS, "--yes")
    assert late.exit_code == 2 and f"incident {incident} is closed" in late.stderr


def test_free_text_needs_a_second_person_and_self_approval_is_refused(live, sandbox, monkeypatch):
    result = invoke(live, "warn", "--text", "Pont-y-Lliw bridge is closed.", "--text", "cy=Mae pont ar gau.", "--yes")
    assert result.exit_code == 2 and "saved as draft 1 (free text)" in result.stderr
    assert "1  waiting" in invoke(live, "drafts").output
    own = invoke(live, "approve", "1", "--yes")
    assert own.exit_code == 2 and "cannot also approve it" in own.stderr
    monkeypatch.setenv("BROADCAST_OPERATOR", "second-officer")  # a name in the log, on the drafter's own account
    faked = invoke(live, "approve", "1", "--yes")
    assert faked.exit_code == 2, faked.output
    assert f"second-officer (BROADCAST_OPERATOR) is on the same OS account as the drafter ({os_account()})" \
           in faked.stderr and "sudo -u THEIR_ACCOUNT broadcast approve" in faked.stderr
    assert sandbox.received(accepted=True) == []
    monkeypatch.delenv("BROADCAST_OPERATOR")
    monkeypatch.setattr(approvals, "os_account", lambda: "second-officer")  # logged in as someone else
    result = invoke(live, "approve", "1", "--yes")
    assert result.exit_code == 0, result.output
    posted = sandbox.received("mastodon", accepted=True)[0].body["status"]
    assert posted.startswith("Pont-y-Lliw bridge is closed.")
    store = Store.open(live / "broadcast.db")
    assert store.db.table("alerts").get("A-2026-0001")["approved_by"] == "second-officer"
    assert "1  sent" in invoke(live, "drafts", "--all").output
    types = [e["type"] for e in store.events()]
    assert types.index("message_drafted") < types.index("draft_approved") < types.index("alert_issued")


def test_people_list_limits_who_approves(live, sandbox, monkeypatch):
    (live / "people.toml").write_text(
        '[[person]]\nname = "Sam Rees"\nrole = "Duty Manager"\nusers = ["sam"]\ncan_approve = true\n'
        '[[person]]\nname = "Kim Lee"\nrole = "Comms Officer"\nusers = ["kim"]\n', encoding="utf-8")
    invoke(live, "warn", "--text", "Bridge closed.", "--yes")
    monkeypatch.delenv("BROADCAST_OPERATOR")
    monkeypatch.setattr(approvals, "os_account", lambda: "kim")
    refused = invoke(live, "approve", "1", "--yes")
    assert refused.exit_code == 2 and "OS account kim is not listed as an approver" in refused.stderr
    monkeypatch.setattr(approvals, "os_account", lambda: "sam")
    assert invoke(live, "approve", "1", "--yes").exit_code == 0
    approved = Store.open(live / "broadcast.db").db.table("alerts").get("A-2026-0001")["approved_by"]
    assert approved == "Sam Rees, Duty Manager (sam)"


def test_override_is_logged_and_flagged(live, sandbox):
    without = invoke(live, "warn", "--text", "Bridge closed.", "--override", "--yes")
    assert without.exit_code == 2 and "--override needs --reason" in without.stderr
    result = invoke(live, "warn", "--text", "Bridge closed.", "--override", "--reason",
                    "no second officer reachable at 03:10", "--yes")
    assert result.exit_code == 0, result.output
    store = Store.open(live / "broadcast.db")
    [event] = [e for e in store.events() if e["type"] == "policy_override"]
    assert event["pinned"] == 1 and "no second officer reachable at 03:10" in event["description"]
    assert json.loads(event["details"])["flag"] == "review"


def test_exercise_is_stamped_and_kept_off_public_channels(live, sandbox):
    hook = live / "channels" / "hook-a.toml"
    hook.write_text("exercise = true\n" + hook.read_text(encoding="utf-8"), encoding="utf-8")
    result = invoke(live, "warn", "school-closure", *SETS, "--exercise", "--yes")
    assert result.exit_code == 0, result.output
    assert "SKIP  mastodon-council" in result.output and "not marked for exercises" in result.output
    assert sandbox.received("mastodon", accepted=True) == []
    bodies = [r.body for r in sandbox.received("webhook", accepted=True)]
    assert {r.target for r in sandbox.received("webhook", accepted=True)} == {"hook-a"}
    english = next(b for b in bodies if b["language"] == "en-GB")
    assert english["status"] == "Exercise"
    assert english["headline"].startswith("EXERCISE: ") and english["headline"].count("EXERCISE") == 1
    assert english["description"].startswith("EXERCISE: ") and english["description"].count("EXERCISE") == 1
    welsh = next(b for b in bodies if b["language"] == "cy-GB")
    assert welsh["headline"].startswith("YMARFER: ") and welsh["headline"].count("YMARFER") == 1
    assert Store.open(live / "broadcast.db").incidents()[0]["exercise"] == 1


@pytest.mark.parametrize("status", ["Test", "Draft"])
def test_test_and_draft_never_reach_a_public_channel(live, status):
    workspace = Workspace(live)
    plan = plan_warning(workspace, "school-closure", VALUES, issue=Issue(status=status))
    assert plan.posts == []
    assert {name for name, _ in plan.skipped} == {"mastodon-council", "hook-a", "hook-b"}
    assert all(f"{status} messages never go to a channel" in why for _, why in plan.skipped)


def test_declining_a_cancel_deletes_nothing(live, sandbox, monkeypatch):
    first_warning(live)
    monkeypatch.setattr("broadcast.commands.warn.interactive", lambda: True)
    from click.testing import CliRunner

    from broadcast.cli import cli

    result = CliRunner().invoke(cli, ["--workspace", str(live), "cancel", "A-2026-0001", "--reason", "wrong"],
                                input="n\n")
    assert result.exit_code == 1 and "Delete A-2026-0001's posts where possible and Send to" in result.output
    assert [r for r in sandbox.received("mastodon") if r.method == "DELETE"] == []
    assert len(alerts(live)) == 1


def test_every_follow_up_shows_each_channel_its_text_and_what_changes_and_takes_dry_run(live, sandbox):
    report = first_warning(live)
    later = [s for s in SETS if not s.startswith(("--set=reason=", "--set=next_update="))]
    update = ["update", report["incident"], "school-closure", *later, "--set=reason=heating",
              "--set=next_update=17:00"]
    dry = invoke(live, *update, "--dry-run")
    assert dry.exit_code == 0 and "Dry run: nothing was sent" in dry.output
    assert "  mastodon-council (en-GB):\n    | Hillside Primary School is closed on Monday 23 November 2026 because " \
           "of a heating failure." in dry.output
    assert "because of [-snow and ice.-]{+a heating failure.+} Pupils should not travel." in dry.output
    assert "  hook-a, hook-b (cy-GB):" in dry.output and "oherwydd [-eira a rhew.-]{+methiant gwres.+}" in dry.output
    assert invoke(live, *update, "--yes").exit_code == 0
    posts = len(sandbox.received(accepted=True))

    correct = invoke(live, "correct", "A-2026-0001", "--set=date=2026-11-24", "--dry-run")
    assert correct.exit_code == 0 and "Dry run: nothing was sent" in correct.output
    # Against what the public sees now (the update's heating, not the first warning's snow):
    assert ("changes: {+Correction: the date is Tuesday 24 November 2026, not Monday 23 November 2026.+} "
            "Hillside Primary School is closed on [-Monday 23-]{+Tuesday 24+} November 2026 because of a heating "
            "failure.") in correct.output
    cancel = invoke(live, "cancel", "A-2026-0001", "--reason", "sent in error", "--dry-run")
    assert cancel.exit_code == 0 and "Dry run: nothing was sent" in cancel.output
    assert '| Cancelled: ignore our earlier message "Hillside Primary School is closed on Monday 23 November ' \
           '2026". Reason: sent in error.' in cancel.output
    (live / "templates" / "all-clear.md").write_text(ALL_CLEAR, encoding="utf-8")
    recover = invoke(live, "recover", report["incident"], "all-clear", "--set=area=town", "--dry-run")
    assert recover.exit_code == 0 and "Dry run: nothing was sent" in recover.output, recover.output
    assert sandbox.received(accepted=True)[posts:] == [] and len(alerts(live)) == 2  # nothing sent, nothing logged
    assert [r for r in sandbox.received() if r.method == "DELETE"] == []

    # The confirmation a duty officer answers shows the same texts and changes before asking.
    asked = invoke(live, "correct", "A-2026-0001", "--set=date=2026-11-24")
    assert asked.exit_code == 2 and "add --yes to send from a script" in asked.stderr
    assert "What each channel will receive" in asked.output and "[-Monday 23-]{+Tuesday 24+}" in asked.output


def test_an_exercise_dry_run_says_what_the_real_run_will_do_and_its_cap_says_exercise(live, sandbox):
    from lxml import etree

    hook = live / "channels" / "hook-a.toml"
    hook.write_text("exercise = true\n" + hook.read_text(encoding="utf-8"), encoding="utf-8")
    template = live / "templates" / "school-closure.md"
    original = template.read_text(encoding="utf-8")
    template.write_text(original + "\n", encoding="utf-8")  # edited since its approval
    dry = invoke(live, "warn", "school-closure", *SETS, "--exercise", "--dry-run")
    assert dry.exit_code == 0
    assert "Without --dry-run it is NOT sent: the template is modified since approval, so it is saved as a draft " \
           "(an exercise too) for a second person" in dry.output, dry.output
    assert "would go out" not in dry.output
    real = invoke(live, "warn", "school-closure", *SETS, "--exercise", "--yes")
    assert real.exit_code == 2 and "saved as draft 1" in real.stderr  # what the dry run said
    template.write_text(original, encoding="utf-8")
    config = live / "broadcast.toml"  # an exercise page (a staging site) shows exercises, with their CAP files
    config.write_text(config.read_text(encoding="utf-8") + "\n[page]\nshow_exercises = true\n", encoding="utf-8")
    assert "would go out" in invoke(live, "warn", "school-closure", *SETS, "--exercise", "--dry-run").output
    assert invoke(live, "warn", "school-closure", *SETS, "--exercise", "--yes").exit_code == 0
    cap = etree.parse(str(live / "site" / "cap" / "A-2026-0001.xml"))
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    assert cap.findtext("cap:status", namespaces=ns) == "Exercise"
    assert cap.findtext("cap:note", namespaces=ns) == "Exercise: not a real warning."
    headline = cap.findtext("cap:info/cap:headline", namespaces=ns)
    assert headline.startswith("EXERCISE: ") and headline.count("EXERCISE") == 1
