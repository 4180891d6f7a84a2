"""The after-action report skeleton: facts from the log, sections for the reviewer, never overwritten by accident."""

from reviewkit import SLUG

pytest_plugins = ("reviewkit",)  # its `known` fixture


def test_aar_fills_in_the_facts_and_heads_the_reviewers_sections(run, known, tmp_path):
    known[0].append_event("policy_override", phase="warn", actor="duty-officer", incident=SLUG,
                          description="Sent without a second approver: no second officer reachable",
                          details={"reason": "no second officer reachable", "flag": "review"}, pinned=True)
    path = tmp_path / "aar.md"
    result = run("review", "aar", SLUG, "-o", str(path))
    assert result.exit_code == 0, result.output
    assert f"Wrote {path}: complete the Strengths" in result.stdout
    text = path.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## The incident", "## Timeline summary", "## Metrics", "## What reached people",
                        "## What people asked", "## What failed", "## Strengths",
                        "## Areas for improvement", "## Corrective actions", "## Evidence"]
    assert "- 2026-10-25 01:20:00 BST: Incident opened: Snow closes schools (duty-officer)" in text
    assert ("- 2026-10-25 01:32:00 BST: **A-2026-0001** Alert (Actual): Schools closed in the north. "
            "2 attempted: 2 accepted, 0 failed, 0 unknown.") in text
    assert ("- 2026-10-25 01:10:00 GMT: **A-2026-0002** Update (Actual): CORRECTION: Schools stay closed. "
            "2 attempted: 1 accepted, 1 failed, 0 unknown.") in text
    assert ("- 2026-10-25 01:31:00 BST: Draft 1 approved (Sam Rees, Emergency Planning Manager)") in text
    assert ("- 2026-10-25 01:40:00 BST: **Decision** (Sam Rees, Emergency Planning Manager): Keep schools closed all "
            "day. Reason: Gritting not finished before 08:00") in text
    assert ("- 2026-10-25 01:50:00 GMT: **A-2026-0003** Update (Actual): All clear: schools open tomorrow. "
            "nothing sent.") in text
    assert "| Time to all-clear | 1h 30m |" in text
    assert "- hook-c: 1 failed, 0 unknown of 1 attempted (HTTP 403 x1)" in text
    assert "- 1 message(s) went out without a second approver (--override)" in text
    assert ": Sent without a second approver: no second officer reachable (duty-officer)" in text
    assert ("| # | Issue | Action | Owner | Due date | Status |\n|---|---|---|---|---|---|\n"
            "| 1 |  |  |  |  | open |") in text
    assert f"`broadcast review verify {SLUG}`" in text and known[0].head()[1] in text


def test_aar_never_overwrites_a_reviewers_draft_by_accident(run, known, tmp_path):
    path = tmp_path / "aar.md"
    path.write_text("# My edits\n", encoding="utf-8")
    refused = run("review", "aar", SLUG, "-o", str(path))
    assert refused.exit_code == 2
    assert "may hold a reviewer's work: it was not overwritten" in refused.stderr
    assert path.read_text(encoding="utf-8") == "# My edits\n"
    assert run("review", "aar", SLUG, "-o", str(path), "--force").exit_code == 0
    assert path.read_text(encoding="utf-8").startswith("# After-action report: Snow closes schools")
