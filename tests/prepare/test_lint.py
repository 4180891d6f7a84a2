from conftest import TEMPLATE

from broadcast.prepare.lint import lint_template, lint_workspace
from broadcast.prepare.templates import find_template
from broadcast.workspace import Workspace


def errors(workspace_dir, text):
    (workspace_dir / "templates" / "school-closure.md").write_text(text, encoding="utf-8")
    workspace = Workspace(workspace_dir)
    findings = lint_template(find_template(workspace, "school-closure"), workspace)
    return [f.message for f in findings if f.level == "error"]


def test_the_fixture_template_is_clean(workspace):
    assert [f for f in lint_workspace(workspace) if f.level == "error"] == []


def test_missing_what_to_do_section_is_caught(workspace_dir):
    text = TEMPLATE.replace("## instruction\nKeep children at home. Next update at {{ next_update }}.\n", "")
    found = errors(workspace_dir, text)
    assert "no 'instruction' section in en-GB (what to do)" in found


def test_missing_welsh_variant_is_caught(workspace_dir):
    start = TEMPLATE.index("## short.cy\n")
    end = TEMPLATE.index("## body\n")
    found = errors(workspace_dir, TEMPLATE[:start] + TEMPLATE[end:])
    assert "no 'short' section in cy-GB" in found


def test_checklist_item_not_answered(workspace_dir):
    found = errors(workspace_dir, TEMPLATE.replace('why = "body"\n', ""))
    assert "checklist: nothing answers 'why it matters' (why)" in found


def test_more_info_without_a_link(workspace_dir):
    text = TEMPLATE.replace(" More: {{ org.web }}", "").replace(" Mwy: {{ org.web }}", "")
    found = errors(workspace_dir, text)
    assert any("'where to find more' (body, en-GB) has no link" in f for f in found)


def test_next_update_without_a_time(workspace_dir):
    text = TEMPLATE.replace(" Next update at {{ next_update }}.", " We will update you.")
    found = errors(workspace_dir, text)
    assert any("'when the next update is due' (instruction, en-GB) names no time" in f for f in found)


def test_undeclared_variable_and_syntax_error(workspace_dir):
    text = TEMPLATE.replace("Keep children at home.", "Keep {{ children }} at home {% if %}.")
    found = errors(workspace_dir, text)
    assert any("instruction (en-GB), line 1 of the section" in f for f in found)
    text = TEMPLATE.replace("Keep children at home.", "Keep {{ children }} at home.")
    assert "uses '{{ children }}' but declares no variable 'children'" in errors(workspace_dir, text)


def test_headline_too_long_with_examples(workspace_dir):
    text = TEMPLATE.replace("{{ school }} is closed on {{ date }}", "{{ school }} is closed " + "x" * 150)
    assert any("headline (en-GB) is" in f and "keep it under 160" in f for f in errors(workspace_dir, text))
