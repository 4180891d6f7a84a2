"""Check templates before anyone relies on them: syntax, variables, variants, the message checklist."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from broadcast.errors import BroadcastError
from broadcast.prepare.templates import (
    BUILTINS,
    CHECKLIST,
    CHECKLIST_WORDS,
    VARIANTS,
    Template,
    compile_section,
    example_values,
    find_template,
    render,
    used_variables,
)

if TYPE_CHECKING:
    from broadcast.workspace import Workspace

HEADLINE_LIMIT = 160
EVENT_LIMIT = 35


@dataclass(frozen=True)
class Finding:
    template: str
    level: str  # "error" or "warning"
    message: str
    blocks_approval: bool = False  # `templates approve` refuses it without --force --reason (every error does)

    @property
    def blocking(self) -> bool:
        return self.level == "error" or self.blocks_approval

    def __str__(self) -> str:
        settle = " (settle this before approving it)" if self.blocks_approval and self.level != "error" else ""
        return f"{self.level.upper():7} {self.template}: {self.message}{settle}"


def lint_workspace(workspace: Workspace) -> list[Finding]:
    """Lint every template in the workspace."""
    findings: list[Finding] = []
    for name in workspace.template_names():
        try:
            template = find_template(workspace, name)
        except BroadcastError as exc:
            findings.append(Finding(name, "error", exc.message))
            continue
        findings.extend(lint_template(template, workspace))
    return findings


def lint_template(template: Template, workspace: Workspace) -> list[Finding]:
    """Every problem with one template that can be found without sending it."""
    found: list[Finding] = []

    def error(message: str) -> None:
        found.append(Finding(template.name, "error", message))

    def warning(message: str, blocks_approval: bool = False) -> None:
        found.append(Finding(template.name, "warning", message, blocks_approval))

    used: set[str] = set()
    for language in template.languages:
        for variant in VARIANTS:
            if (variant, language) not in template.sections:
                item = next((CHECKLIST_WORDS[i] for i, where in template.checklist.items() if variant in where), "")
                error(f"no '{variant}' section in {language}" + (f" ({item})" if item else ""))
                continue
            if not template.source(variant, language).strip():
                error(f"the '{variant}' section in {language} is empty")
                continue
            try:
                compile_section(template, variant, language)
            except BroadcastError as exc:
                error(exc.message)
                continue
            used |= used_variables(template, variant, language)
    for name in sorted(used - set(template.variables) - BUILTINS):
        error(f"uses '{{{{ {name} }}}}' but declares no variable '{name}'")
    for name in sorted(set(template.variables) - used):
        warning(f"declares variable '{name}' but no section uses it")
    _checklist(template, found)
    if len(template.cap.event) >= EVENT_LIMIT:
        error(f"cap.event is {len(template.cap.event)} characters; keep it under {EVENT_LIMIT}")
    if template.translation_review:  # drafting may go on; approving (and so sending) waits for the translator
        warning(f"text in {', '.join(template.translation_review)} awaits a translator's review"
                + (f": {template.translation_note}" if template.translation_note else ""), blocks_approval=True)
    if not any(f.level == "error" for f in found):
        _render_examples(template, workspace, found)
    return found


def _checklist(template: Template, found: list[Finding]) -> None:
    for item in CHECKLIST:
        words = CHECKLIST_WORDS[item]
        where = template.checklist.get(item)
        if not where:
            found.append(Finding(template.name, "error", f"checklist: nothing answers '{words}' ({item})"))
            continue
        if where[0].startswith("n/a"):
            found.append(Finding(template.name, "warning", f"checklist: '{words}' marked {where[0]}"))
            continue
        for language in template.languages:
            sources = [template.sections.get((variant, language), "") for variant in where]
            if not any(s.strip() for s in sources):
                found.append(Finding(template.name, "error",
                                     f"checklist: '{words}' points at {' and '.join(where)}, missing in {language}"))
                continue
            text = "\n".join(sources)
            if item == "more_info" and not re.search(r"org\.(web|phone)|https?://|\b\d{3,5} ?\d{3} ?\d{3,4}\b", text):
                found.append(Finding(template.name, "error", f"checklist: '{words}' ({' and '.join(where)}, "
                                     f"{language}) has no link or phone number; add {{{{ org.web }}}}"))
            if item == "next_update" and not _mentions_time(template, text):
                found.append(Finding(template.name, "error", f"checklist: '{words}' ({' and '.join(where)}, "
                                     f"{language}) names no time; use a time variable such as {{{{ next_update }}}}"))


def _mentions_time(template: Template, text: str) -> bool:
    timed = [n for n, v in template.variables.items() if v.type in ("time", "date")]
    return any(re.search(r"\b" + re.escape(n) + r"\b", text) for n in timed)


def _render_examples(template: Template, workspace: Workspace, found: list[Finding]) -> None:
    try:
        rendering = render(template, workspace, example_values(template), today=date(2026, 11, 23))
    except BroadcastError as exc:
        found.append(Finding(template.name, "error", f"does not render with its examples: {exc.message}"))
        return
    for language, texts in rendering.texts.items():
        headline = texts["headline"].full()
        if "\n" in headline:
            found.append(Finding(template.name, "error", f"headline ({language}) runs over more than one line"))
        if len(headline) > HEADLINE_LIMIT:
            found.append(Finding(template.name, "error", f"headline ({language}) is {len(headline)} characters "
                                 f"with the examples; keep it under {HEADLINE_LIMIT}"))
        if "<" in "".join(t.full() for t in texts.values()) and re.search(r"<[a-zA-Z/]", texts["body"].full()):
            found.append(Finding(template.name, "warning", f"body ({language}) looks like it contains HTML; "
                                 "write plain text"))
