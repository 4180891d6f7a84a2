import re
from datetime import date

import pytest
from conftest import TEMPLATE, VALUES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcast.errors import ConfigError, TemplateError, VariableError
from broadcast.prepare.templates import find_template, render
from broadcast.workspace import Workspace


def test_renders_every_variant_in_english_and_welsh(workspace):
    rendering = render(find_template(workspace, "school-closure"), workspace, VALUES)
    en, cy = rendering.texts["en-GB"], rendering.texts["cy-GB"]
    assert en["headline"].full() == "Hillside Primary School is closed on Monday 23 November 2026"
    assert cy["headline"].full() == "Mae Hillside Primary School ar gau ar Dydd Llun 23 Tachwedd 2026"
    assert "because of snow and ice" in en["short"].full()
    assert "oherwydd eira a rhew" in cy["short"].full()
    assert en["body"].full().startswith("Testshire Council: Hillside Primary School in Testshire town")
    assert cy["body"].full().startswith("Cyngor Testshire: mae Hillside Primary School yn Tref Testshire")
    assert en["instruction"].full() == "Keep children at home. Next update at 10am."
    assert cy["instruction"].full() == "Cadwch blant gartref. Y diweddariad nesaf am 10:00."


def test_optional_sentences_are_kept_apart(workspace):
    short = render(find_template(workspace, "school-closure"), workspace, VALUES).texts["en-GB"]["short"]
    assert "Pupils should not travel." in short.full()
    assert "Pupils should not travel." not in short.essential()
    assert "((Pupils should not travel.))" in short.marked()
    assert "((" not in short.full() and "  " not in short.essential()


def test_dates_today_and_tomorrow_use_the_given_day(workspace):
    values = {**VALUES, "date": "tomorrow"}
    rendering = render(find_template(workspace, "school-closure"), workspace, values, today=date(2026, 12, 31))
    assert rendering.texts["en-GB"]["headline"].full().endswith("Friday 1 January 2027")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"date": "Monday"}, "--set date: it is not a date; expected a date like 2026-11-23"),
        ({"next_update": "25:00"}, "--set next_update: the hour or minute is out of range"),
        ({"next_update": "soon"}, "--set next_update: it is not a time"),
        ({"reason": "snw"}, "--set reason: it is not a choice (did you mean 'snow'?)"),
        ({"area": "nowhere"}, "--set area: no such area; areas: town"),
        ({"school": "x" * 61}, "--set school: it is 61 characters long"),
        ({"school": "Hillside\nPrimary"}, "--set school: it contains a line break"),
        ({"school": "   "}, "--set school: it is empty"),
    ],
)
def test_invalid_values_are_refused_with_name_expectation_and_example(workspace, change, expected):
    with pytest.raises(VariableError) as raised:
        render(find_template(workspace, "school-closure"), workspace, {**VALUES, **change})
    assert expected in raised.value.message
    name = next(iter(change))
    assert raised.value.hint.startswith(f"example: --set {name}=")


def test_missing_and_unknown_variables_are_all_reported(workspace):
    values = {k: v for k, v in VALUES.items() if k not in ("school", "date")} | {"shcool": "X"}
    with pytest.raises(VariableError) as raised:
        render(find_template(workspace, "school-closure"), workspace, values)
    message = raised.value.message
    assert "--set shcool: school-closure has no variable 'shcool' (did you mean 'school'?)" in message
    assert "--set school is missing: School name" in message
    assert "--set date is missing: Day of the closure" in message
    assert "example: --set school='Hillside Primary School'" in raised.value.hint


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ org.__class__ }}",
        "{{ school.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ school.format.__globals__ }}",
    ],
)
def test_sandbox_refuses_reaching_into_python(workspace_dir, expression):
    path = workspace_dir / "templates" / "school-closure.md"
    path.write_text(TEMPLATE.replace("Keep children at home.", expression), encoding="utf-8")
    workspace = Workspace(workspace_dir)
    with pytest.raises(TemplateError) as raised:
        render(find_template(workspace, "school-closure"), workspace, VALUES)
    assert "instruction (en-GB)" in raised.value.message
    # The refusal names the section; it never prints the internals it was asked for.
    assert "<class" not in raised.value.message and "<function" not in raised.value.message


def test_syntax_error_names_the_section_and_line(workspace_dir):
    path = workspace_dir / "templates" / "school-closure.md"
    path.write_text(TEMPLATE.replace("Keep children at home.", "Keep {{ children at home."), encoding="utf-8")
    workspace = Workspace(workspace_dir)
    with pytest.raises(TemplateError, match=r"instruction \(en-GB\), line 1 of the section"):
        render(find_template(workspace, "school-closure"), workspace, VALUES)


def test_template_names_cannot_traverse_paths(workspace):
    with pytest.raises(ConfigError, match="not a valid name"):
        find_template(workspace, "../../etc/passwd")


def test_unknown_template_suggests_the_nearest(workspace):
    with pytest.raises(ConfigError) as raised:
        find_template(workspace, "school-closur")
    assert raised.value.hint == "did you mean 'school-closure'?"


def test_unknown_front_matter_and_bad_cap_values_name_file_and_key(workspace_dir):
    path = workspace_dir / "templates" / "school-closure.md"
    path.write_text(TEMPLATE.replace('severity = "Minor"', 'severity = "Mild"'), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        find_template(Workspace(workspace_dir), "school-closure")
    assert "school-closure.md: cap.severity: 'Mild' is not a CAP value" in raised.value.message
    assert "Extreme" in raised.value.hint


def test_unknown_variable_type_is_refused(workspace_dir):
    path = workspace_dir / "templates" / "school-closure.md"
    path.write_text(TEMPLATE.replace('type = "text"', 'type = "txt"'), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        find_template(Workspace(workspace_dir), "school-closure")
    assert "variables.school.type: unknown type 'txt'" in raised.value.message
    assert raised.value.hint == "did you mean 'text'?"


hostile = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Co")), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(school=hostile.filter(lambda s: s.strip()))
def test_any_printable_school_name_renders_verbatim(workspace_dir, school):
    workspace = Workspace(workspace_dir)
    rendering = render(find_template(workspace, "school-closure"), workspace, {**VALUES, "school": school})
    headline = rendering.texts["en-GB"]["headline"].full()
    # The text is plain: whatever was typed comes out as typed (spaces folded), never evaluated.
    assert re.sub(r"[ \t]+", " ", school).strip() in headline
    assert "\ue000" not in headline and "\ue001" not in headline
