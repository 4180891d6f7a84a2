"""The kill switch and partial sends show where the duty officer looks: the send's own report and `status`."""

import json

from conftest import SETS, VALUES, invoke

from broadcast.store import Store

UPDATE = [f"--set={k}={v}" for k, v in {**VALUES, "reason": "heating", "next_update": "17:00"}.items()]


def slug(live) -> str:
    store = Store.open(live / "broadcast.db")
    try:
        return store.incidents()[0]["slug"]
    finally:
        store.close()


def test_update_with_only_says_which_channels_are_left_behind_and_status_exits_1(live, sandbox):
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    assert invoke(live, "status").exit_code == 0  # all delivered, nothing due yet: nothing needs the duty officer
    incident = slug(live)
    updated = invoke(live, "update", incident, "school-closure", *UPDATE, "--only", "hook-a", "--yes")
    assert updated.exit_code == 0, updated.output
    assert "BEHIND hook-b" in updated.output and "still shows A-2026-0001" in updated.output
    assert "BEHIND mastodon-council" in updated.output
    assert ("to send it there too: broadcast resend A-2026-0002 --only hook-b --only mastodon-council"
            in updated.output)

    shown = invoke(live, "status")
    assert shown.exit_code == 1
    assert "2 channels behind the latest message" in shown.output
    assert f"hook-b               {incident}: still shows A-2026-0001, not A-2026-0002" in shown.output
    assert "fix: send the latest to it: broadcast resend A-2026-0002 --only hook-b" in shown.output
    data = json.loads(invoke(live, "status", "--json").stdout)
    assert data["needs_attention"] is True and {s["channel"] for s in data["stale"]} == {"hook-b", "mastodon-council"}

    # The fix it names works: the update goes to the channels it missed, and status is clear again.
    fixed = invoke(live, "resend", "A-2026-0002", "--only", "hook-b", "--only", "mastodon-council", "--yes")
    assert fixed.exit_code == 0, fixed.output
    assert "the post not sent to it before" in fixed.output
    bodies = [r.body for r in sandbox.received("webhook", accepted=True) if r.target == "hook-b"]
    assert [b["identifier"] for b in bodies] == ["A-2026-0001"] * 2 + ["A-2026-0002"] * 2  # en and cy of each
    mastodon = [r.body["status"] for r in sandbox.received("mastodon", accepted=True)]
    assert len(mastodon) == 2 and "heating" in mastodon[-1]
    assert invoke(live, "status").exit_code == 0


def test_a_switched_off_channel_and_its_live_post_show_in_status_and_cancel(live, sandbox):
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    invoke(live, "channels", "disable", "mastodon-council", "--reason", "account hacked")
    [post] = sandbox.received("mastodon", accepted=True)
    url = json.loads(invoke(live, "status", "--json").stdout)["channels"]["mastodon-council"]["url"]

    shown = invoke(live, "status")
    assert shown.exit_code == 1
    assert "1 channel off" in shown.output and "mastodon-council" in shown.output
    assert "switched off by duty-officer" in shown.output and "account hacked" in shown.output
    assert f"still shows A-2026-0001 at {url}" in shown.output

    cancelled = invoke(live, "cancel", "A-2026-0001", "--reason", "wrong school", "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert "KEEP  mastodon-council (en-GB)" in cancelled.output
    assert f"its post stays up at {url}, and nothing follows it there" in cancelled.output
    assert "delete it by hand" in cancelled.output
    assert "BEHIND mastodon-council" in cancelled.output
    assert len(sandbox.received("mastodon", accepted=True)) == 1  # the original only: nothing reaches it

    after = invoke(live, "status")
    assert after.exit_code == 1 and "mastodon-council" in after.output
    assert "still shows A-2026-0001, not A-2026-0002" in after.output
    assert "delete the post by hand, or switch it on (broadcast channels enable mastodon-council)" in after.output
