"""One broken channel or template file fails only itself: the rest still go out, and the error says where and how."""

import re

from conftest import SETS, invoke

from broadcast.store import Store


def test_a_typo_in_one_channel_file_fails_that_channel_alone(live, sandbox):
    (live / "channels" / "x-council.toml").write_text('kind = "mastadon"\n[settings]\ninstance = "x"\n',
                                                      encoding="utf-8")
    dry = invoke(live, "warn", "school-closure", *SETS, "--dry-run")
    assert dry.exit_code == 0
    assert re.search(r"x-council +FAIL: ", dry.output) and "kind: unknown kind 'mastadon'" in dry.output
    assert "did you mean 'mastodon'? (the other channels still go)" in dry.output

    sent = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert sent.exit_code == 1, sent.output  # some failed
    assert {r.target for r in sandbox.received(accepted=True)} == {"mastodon", "hook-a", "hook-b"}
    assert "FAIL  x-council (en-GB)" in sent.output and "x-council.toml: kind: unknown kind 'mastadon'" in sent.output
    assert "hint: did you mean 'mastodon'?; then: broadcast resend A-2026-0001 --only x-council" in sent.output
    assert "3 of 4 channels delivered. Alert A-2026-0001" in sent.output
    listed = invoke(live, "channels", "list")
    assert "x-council" in listed.output and "BROKEN" in listed.output and "mastodon-council" in listed.output
    checked = invoke(live, "channels", "check", "x-council")
    assert checked.exit_code == 1 and "FAIL  x-council" in checked.output

    # Fixed, the resend it named sends it, and nothing else again.
    (live / "channels" / "x-council.toml").write_text(
        (live / "channels" / "hook-a.toml").read_text(encoding="utf-8").replace("hook-a", "x-council"),
        encoding="utf-8")
    resent = invoke(live, "resend", "A-2026-0001", "--only", "x-council", "--yes")
    assert resent.exit_code == 0, resent.output
    assert [r.target for r in sandbox.received(accepted=True)].count("x-council") == 1
    assert [r.target for r in sandbox.received(accepted=True)].count("hook-a") == 2  # en and cy, once each
    store = Store.open(live / "broadcast.db")
    assert {(d["channel"], d["state"]) for d in store.deliveries("A-2026-0001")} >= {("x-council", "sent")}
    store.close()


def test_only_broken_channels_issue_nothing(live, sandbox):
    for name in ("mastodon-council", "hook-a", "hook-b"):
        (live / "channels" / f"{name}.toml").write_text('kind = "webhok"\n', encoding="utf-8")
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 3 and "nothing was issued" in result.stderr
    assert "unknown kind 'webhok'" in result.stderr
    assert sandbox.received() == [] and not (live / "site" / "cap").exists()


BROKEN_FRONT = """\
+++
title = "Road closed"
summary = "A road is closed"
[cap
event = "Road closure"
+++

## headline
Road closed
"""


def test_one_broken_template_is_listed_with_its_line_and_the_rest_still_list(live):
    (live / "templates" / "road-closure.md").write_text(BROKEN_FRONT, encoding="utf-8")
    listed = invoke(live, "templates", "list")
    assert listed.exit_code == 1
    assert "school-closure" in listed.output and "approved" in listed.output
    assert re.search(r"road-closure +BROKEN: .*road-closure.md: front matter is not valid TOML", listed.output)
    # [cap is on the file's fourth line (the +++ is the first; TOML alone would say 3)
    assert "(at line 4, column" in listed.output, listed.output
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0  # the others still send


def test_invisible_reordering_characters_are_refused_before_anything_is_sent(live, sandbox):
    cases = [
        ["warn", "school-closure", *[s for s in SETS if not s.startswith("--set=school=")],
         "--set=school=Hillside\u202e loohcS", "--yes"],
        ["warn", "school-closure", *[s for s in SETS if not s.startswith("--set=school=")],
         "--set=school=Hill\u200bside", "--yes"],
        ["warn", "school-closure", *[s for s in SETS if not s.startswith("--set=school=")],
         "--set=school=Hillside\u2066x\u2069", "--yes"],
        ["warn", "--text", "Bridge \u200fclosed.", "--yes"],
    ]
    for args in cases:
        result = invoke(live, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "invisible character that can reorder or hide text (U+" in result.stderr
        assert "\u202e" not in result.stderr and "\u200b" not in result.stderr  # shown escaped, never raw
    assert sandbox.received(accepted=True) == []
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    cancel = invoke(live, "cancel", "A-2026-0001", "--reason", "wrong \u202eschool", "--yes")
    assert cancel.exit_code == 2 and "U+202E RIGHT-TO-LEFT OVERRIDE" in cancel.stderr
    # Welsh needs none of them, but its letters (and emoji) pass.
    ok = [s for s in SETS if not s.startswith("--set=school=")] + ["--set=school=Ysgol Llwyn-yr-Eos \u00e2\u0175"]
    assert invoke(live, "warn", "school-closure", *ok, "--dry-run").exit_code == 0
