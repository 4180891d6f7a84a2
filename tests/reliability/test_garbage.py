"""Every platform answering garbage (an HTML error page, truncated JSON, the wrong content type) with HTTP 200:
each adapter says what it got and whether a resend is safe, nothing crashes, and a resend never posts twice."""

from __future__ import annotations

import pytest
from conftest import invoke
from faultkit import environment, full_workspace, warn_args

from broadcast.sandbox.server import PLATFORMS
from broadcast.store import Store

# What the duty officer must see for each adapter. A platform that dedupes (or that we can ask: Notify by
# reference, Twilio by its message list) fails and says resend; one that cannot tell us whether the post landed
# is CHECK: a blind resend could post it twice.
# Webhooks and Teams workflows acknowledge with any 2xx and no body we rely on, so for them a 200 is delivered.
EXPECTED = {
    "mastodon-council": "FAIL", "bluesky-council": "FAIL", "sms-residents": "FAIL", "sms-twilio": "FAIL",
    "facebook-page": "CHECK", "slack-duty": "CHECK", "telegram-alerts": "CHECK", "x-council": "CHECK",
    "teams-lrf": "OK", "hook-00": "OK", "hook-01": "OK",
}
SAID = ("could not be read", "answered HTTP 200")


def outcome_lines(output: str) -> dict[str, list[tuple[str, str]]]:
    """The report after the live lines: each channel's label and the hint under it."""
    lines = output.split("\n\n")[-1].splitlines() if "\n\n" in output else output.splitlines()
    found: dict[str, list[tuple[str, str]]] = {}
    for line, following in zip(lines, lines[1:] + [""], strict=True):
        label, _, rest = line.partition(" ")
        if label in ("FAIL", "CHECK"):
            found.setdefault(rest.split()[0], []).append((label + " " + rest, following.strip()))
    return found


@pytest.mark.parametrize("garbage", ["html", "truncated", "content-type"])
def test_garbage_answers_give_a_clear_error_per_adapter_and_a_safe_resend(tmp_path, sandbox, monkeypatch, garbage):
    root = full_workspace(tmp_path / "ws", sandbox.url, channels=9, recipients=3, twilio=True)
    for name, value in environment(sandbox.url).items():
        if name.startswith(("TEST_", "BROADCAST_")):
            monkeypatch.setenv(name, value)
    sandbox.store("twilio")["rate_limit"] = None
    for platform in (*PLATFORMS, "notify", "twilio"):
        sandbox.fault(platform, garbage=garbage)

    result = invoke(root, *warn_args("Garbage School"))
    assert result.exit_code == 1, result.output  # some channels failed, none crashed the run
    report = outcome_lines(result.output)
    assert set(report) == {name for name, label in EXPECTED.items() if label != "OK"}, result.output
    for name, lines in report.items():
        for line, hint in lines:
            assert line.startswith(EXPECTED[name]), line
            assert any(words in line for words in SAID), line  # says what the platform answered
            if line.startswith("FAIL"):
                assert f"--only {name}" in hint and "--include-uncertain" not in hint, hint
            else:  # never a plain resend: it could post a second time
                assert "--include-uncertain" in hint and ("by hand" in hint or "check" in hint), hint

    sandbox.clear()
    again = invoke(root, "resend", "A-2026-0001", "--yes")
    assert again.exit_code == 1, again.output  # only the posts nobody can vouch for are left, for a person to check
    after = outcome_lines(again.output)
    assert {name for name, label in EXPECTED.items() if label == "CHECK"} == set(after), again.output
    accepted = sandbox.received(accepted=True)
    assert sorted(r.platform for r in accepted) == ["bluesky", "mastodon", "notify", "notify", "notify", "twilio",
                                                     "twilio", "twilio"]  # Twilio asked first: none there yet
    store = Store.open(root / "broadcast.db")
    assert {d["state"] for d in store.deliveries("A-2026-0001") if d["channel"] in ("sms-residents",
            "sms-twilio", "mastodon-council", "bluesky-council")} == {"sent"}
    assert store.verify().ok
    store.close()
