"""Message templates: TOML front matter, one section per variant and language, rendered in a Jinja2 sandbox."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcast.errors import ConfigError, TemplateError, VariableError
from broadcast.prepare.variables import OPTIONAL_END, OPTIONAL_START, Context, Variable, and_list, display, quote
from broadcast.workspace import check_keys, check_name, primary_tag, within

if TYPE_CHECKING:
    from jinja2 import Template as JinjaTemplate
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from broadcast.workspace import Area, Workspace

VARIANTS = ("headline", "short", "body", "instruction")
CHECKLIST = ("who", "what", "where", "when", "what_to_do", "why", "more_info", "next_update")
CHECKLIST_WORDS = {
    "who": "who is issuing it", "what": "what is happening", "where": "where", "when": "when",
    "what_to_do": "what to do", "why": "why it matters", "more_info": "where to find more",
    "next_update": "when the next update is due",
}
FRONT_KEYS = {"title", "summary", "tags", "cap", "variables", "checklist", "translation"}
CAP_KEYS = {"event", "category", "urgency", "severity", "certainty", "response_type", "expires"}
CAP_ENUMS = {
    "category": ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
                 "CBRNE", "Other"),
    "urgency": ("Immediate", "Expected", "Future", "Past", "Unknown"),
    "severity": ("Extreme", "Severe", "Moderate", "Minor", "Unknown"),
    "certainty": ("Observed", "Likely", "Possible", "Unlikely", "Unknown"),
    "response_type": ("Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"),
}
BUILTINS = {"org"}
SECTION_RE = re.compile(r"^## +([a-z_]+)(?:\.([a-z]{2,3}))? *$", re.MULTILINE)
DURATION_RE = re.compile(r"^(\d+)([mhd])$")


def content_hash(data: bytes) -> str:
    """SHA-256 of a template file, line endings normalised so a checkout on Windows keeps its approval."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


@dataclass(frozen=True)
class CapDefaults:
    event: str
    category: tuple[str, ...]
    urgency: str
    severity: str
    certainty: str
    response_type: tuple[str, ...]
    expires_minutes: int


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    sha256: str
    title: str
    summary: str
    tags: tuple[str, ...]
    cap: CapDefaults
    variables: dict[str, Variable]
    checklist: dict[str, tuple[str, ...]]
    translation_review: tuple[str, ...]
    translation_note: str
    sections: dict[tuple[str, str], str]  # (variant, language) -> source, optional markers as sentinels
    section_lines: dict[tuple[str, str], int]
    languages: tuple[str, ...]

    def source(self, variant: str, language: str) -> str:
        return self.sections[(variant, language)]


@dataclass(frozen=True)
class Text:
    """Rendered text as parts; an optional part may be dropped by a channel with a tight limit."""

    parts: tuple[tuple[str, bool], ...]

    def full(self) -> str:
        return tidy("".join(text for text, _ in self.parts))

    def essential(self) -> str:
        return tidy("".join(text for text, optional in self.parts if not optional))

    def marked(self) -> str:
        return tidy("".join(f"(({text}))" if optional else text for text, optional in self.parts))

    @classmethod
    def split(cls, rendered: str) -> Text:
        parts: list[tuple[str, bool]] = []
        for piece in re.split(f"({OPTIONAL_START}.*?{OPTIONAL_END})", rendered, flags=re.DOTALL):
            if piece.startswith(OPTIONAL_START):
                parts.append((piece[1:-1], True))
            elif piece:
                parts.append((piece, False))
        return cls(tuple(parts))


@lru_cache(maxsize=256)
def tidy(text: str) -> str:
    """Spaces and blank lines evened out. Remembered: a warning fits the same text to every channel of a kind
    (200 webhooks, 400 calls, two texts)."""
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@dataclass(frozen=True)
class Rendering:
    template: Template
    raw: dict[str, str]
    values: dict[str, Any]
    texts: dict[str, dict[str, Text]]  # language -> variant -> Text

    @property
    def areas(self) -> list[Area]:
        from broadcast.workspace import Area

        return [v for v in self.values.values() if isinstance(v, Area)]


def find_template(workspace: Workspace, name: str) -> Template:
    """Load the workspace's template `name`; the error lists the names there are."""
    path = within(workspace.root, workspace.templates_dir / f"{check_name('template', name)}.md")
    if not path.is_file():
        from difflib import get_close_matches  # only for a mistake

        names = workspace.template_names()
        near = get_close_matches(name, names, n=1)
        raise ConfigError(path, None, f"no template named '{name}'",
                          f"did you mean '{near[0]}'?" if near else "see: broadcast templates list")
    return load_template(path, workspace.languages)


def load_template(path: Path, languages: list[str]) -> Template:
    """Read and check one template file."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    if not text.startswith("+++\n"):
        raise ConfigError(path, None, "does not start with +++ (TOML front matter)",
                          "see templates/README.md for the format")
    end = text.find("\n+++\n", 3)
    if end < 0:
        raise ConfigError(path, None, "front matter is not closed with a +++ line")
    try:
        front = tomllib.loads(text[4:end])
    except tomllib.TOMLDecodeError as exc:  # its lines count from the one after the opening +++
        where = re.sub(r"\(at line (\d+)", lambda m: f"(at line {int(m[1]) + 1}", str(exc))
        raise ConfigError(path, None, f"front matter is not valid TOML: {where}",
                          "see templates/README.md for the format") from None
    check_keys(path, front, FRONT_KEYS)
    body_start = end + 5
    first_line = text[:body_start].count("\n") + 1
    sections, lines = _sections(path, text[body_start:], first_line, languages)
    variables = {
        name: Variable.from_toml(path, name, raw, languages) for name, raw in (front.get("variables") or {}).items()
    }
    for name in variables:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in BUILTINS:
            raise ConfigError(path, f"variables.{name}", "not a usable variable name",
                              "use lower-case letters, digits and _ (and not 'org')")
    translation = front.get("translation") or {}
    check_keys(path, translation, {"review", "note"}, "translation.")
    for key in ("title", "summary"):
        if not isinstance(front.get(key), str) or not front[key].strip():
            raise ConfigError(path, key, "missing", f"give the template a {key} (text)")
    return Template(
        name=path.stem,
        path=path,
        sha256=content_hash(data),
        title=front["title"].strip(),
        summary=front["summary"].strip(),
        tags=tuple(front.get("tags") or ()),
        cap=_cap(path, front.get("cap")),
        variables=variables,
        checklist=_checklist(path, front.get("checklist") or {}),
        translation_review=tuple(translation.get("review") or ()),
        translation_note=str(translation.get("note") or ""),
        sections=sections,
        section_lines=lines,
        languages=tuple(languages),
    )


def _sections(
    path: Path, body: str, first_line: int, languages: list[str]
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], int]]:
    by_tag = {primary_tag(lang): lang for lang in languages}
    matches = list(SECTION_RE.finditer(body))
    if body[: matches[0].start() if matches else len(body)].strip():
        raise ConfigError(path, None, "text before the first ## section", "start each section with ## headline etc.")
    sections: dict[tuple[str, str], str] = {}
    lines: dict[tuple[str, str], int] = {}
    for i, match in enumerate(matches):
        variant, tag = match[1], match[2]
        line = first_line + body.count("\n", 0, match.start())
        if variant not in VARIANTS:
            from difflib import get_close_matches  # only for a mistake

            near = get_close_matches(variant, VARIANTS, n=1)
            raise ConfigError(path, f"line {line}", f"unknown section '## {variant}'",
                              f"did you mean '## {near[0]}'?" if near else f"sections: {', '.join(VARIANTS)}")
        language = by_tag.get(tag, "") if tag else languages[0]
        if not language:
            raise ConfigError(path, f"line {line}", f"'.{tag}' is not one of the workspace's languages",
                              f"broadcast.toml has: {', '.join(languages)}")
        if (variant, language) in sections:
            raise ConfigError(path, f"line {line}", f"a second '## {match[0][3:].strip()}' section")
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        source = body[match.end():end].strip("\n")
        sections[(variant, language)] = source.replace("((", OPTIONAL_START).replace("))", OPTIONAL_END)
        lines[(variant, language)] = line + 1
    return sections, lines


def _cap(path: Path, raw: Any) -> CapDefaults:
    if not isinstance(raw, dict):
        raise ConfigError(path, "cap", "missing", "add a [cap] table with event, category, urgency, severity, "
                          "certainty, response_type and expires")
    check_keys(path, raw, CAP_KEYS, "cap.")
    for key in sorted(CAP_KEYS):
        if key not in raw:
            raise ConfigError(path, f"cap.{key}", "missing")
    for key, allowed in CAP_ENUMS.items():
        values = raw[key] if isinstance(raw[key], list) else [raw[key]]
        for value in values:
            if value not in allowed:
                raise ConfigError(path, f"cap.{key}", f"{value!r} is not a CAP value", f"one of: {', '.join(allowed)}")
    match = DURATION_RE.match(str(raw["expires"]))
    if not match:
        raise ConfigError(path, "cap.expires", f"{raw['expires']!r} is not a duration", "e.g. 30m, 12h or 2d")
    minutes = int(match[1]) * {"m": 1, "h": 60, "d": 1440}[match[2]]
    listed = {k: tuple(raw[k]) if isinstance(raw[k], list) else (raw[k],) for k in ("category", "response_type")}
    return CapDefaults(str(raw["event"]), listed["category"], raw["urgency"], raw["severity"], raw["certainty"],
                       listed["response_type"], minutes)


def _checklist(path: Path, raw: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    check_keys(path, raw, set(CHECKLIST), "checklist.")
    checklist = {}
    for item, where in raw.items():
        names = tuple(where) if isinstance(where, list) else (where,)
        for name in names:
            if not isinstance(name, str) or (name not in VARIANTS and not name.startswith("n/a")):
                raise ConfigError(path, f"checklist.{item}", f"{name!r} is not a section",
                                  f"name one of {', '.join(VARIANTS)}, or write \"n/a: why\"")
        checklist[item] = names
    return checklist


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import FunctionLoader, StrictUndefined, pass_context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from broadcast.jinjacache import bytecode_cache

    # Sections are loaded by the digest of their text (_compiled), so Jinja's bytecode cache keeps them compiled
    # between processes.
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                                        loader=FunctionLoader(_SECTIONS.get), bytecode_cache=bytecode_cache("message"))

    @pass_context
    def _and_list(ctx: Any, items: Any) -> str:
        return and_list(list(items), ctx["_language"])

    env.filters["and_list"] = _and_list
    return env


_SECTIONS: dict[str, str] = {}  # each section's text by its digest, for the environment's loader


@cache
def _compiled(source: str) -> JinjaTemplate:
    # Keyed by the text alone: the same section read from another copy of the workspace (a rehearsal, a library
    # caller's fresh checkout) is not compiled again. A syntax error is not cached: it is raised each time.
    name = hashlib.sha256(source.encode("utf-8")).hexdigest()
    _SECTIONS[name] = source
    return _environment().get_template(name)


def compile_section(template: Template, variant: str, language: str) -> JinjaTemplate:
    """The section compiled, once per process for each distinct text."""
    from jinja2 import TemplateSyntaxError

    try:
        return _compiled(template.source(variant, language))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{template.path}: {variant} ({language}), line {exc.lineno} of the section: "
                            f"{exc.message}", hint="fix the {{ }} or {% %} shown; run: broadcast templates lint"
                            ) from None


def parse_values(template: Template, raw: dict[str, str], context: Context) -> dict[str, Any]:
    """Check every --set value against the template's variables; report every problem at once."""
    problems: list[VariableError] = []
    unknown = [name for name in raw if name not in template.variables]
    for name in unknown:
        from difflib import get_close_matches  # only for a mistake

        near = get_close_matches(name, template.variables, n=1)
        problems.append(VariableError(
            f"--set {name}: {template.name} has no variable '{name}'"
            + (f" (did you mean '{near[0]}'?)" if near else ""),
            hint=f"{template.name} takes: {', '.join(template.variables) or 'no variables'}",
        ))
    values: dict[str, Any] = {}
    for name, var in template.variables.items():
        if name not in raw:
            problems.append(VariableError(
                f"--set {name} is missing: {var.label} ({var.describe()})",
                hint=f"example: --set {name}={quote(var.example)}",
            ))
            continue
        try:
            values[name] = var.parse(raw[name], context)
        except VariableError as exc:
            problems.append(exc)
    if problems:
        message = "\n".join(p.message for p in problems)
        hints = "\n".join(p.hint for p in problems if p.hint)
        raise VariableError(message, hint=hints)
    return values


def render(template: Template, workspace: Workspace, raw: dict[str, str], today: date | None = None) -> Rendering:
    """Render every variant in every language from the --set values."""
    context = Context(areas=workspace.areas, today=today or local_today(workspace.timezone),
                      languages=tuple(workspace.languages))
    values = parse_values(template, raw, context)
    texts: dict[str, dict[str, Text]] = {}
    for language in template.languages:
        scope = {name: display(value, language) for name, value in values.items()}
        scope["org"] = {"name": workspace.organisation.name.get(language), "phone": workspace.organisation.phone,
                        "web": workspace.organisation.web}
        scope["_language"] = language
        texts[language] = {}
        for variant in VARIANTS:
            if (variant, language) not in template.sections:
                raise TemplateError(f"{template.path}: no '{variant}' section for {language}",
                                    hint="add it, then run: broadcast templates lint")
            texts[language][variant] = Text.split(_run(template, variant, language, scope))
    return Rendering(template, dict(raw), values, texts)


def _run(template: Template, variant: str, language: str, scope: dict[str, Any]) -> str:
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError

    compiled = compile_section(template, variant, language)
    try:
        return compiled.render(scope)
    except SecurityError as exc:
        raise TemplateError(f"{template.path}: {variant} ({language}) reaches into Python internals: {exc}",
                            hint="templates may only use {{ variable }}, filters, {% if %} and {% for %}") from None
    except UndefinedError as exc:
        raise TemplateError(f"{template.path}: {variant} ({language}) uses something undefined: {exc.message}",
                            hint="declare the variable under [variables]; run: broadcast templates lint") from None


def local_today(zone: str) -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(zone)).date()


def example_values(template: Template) -> dict[str, str]:
    return {name: var.example for name, var in template.variables.items()}


def used_variables(template: Template, variant: str, language: str) -> set[str]:
    from jinja2 import meta

    ast = _environment().parse(template.source(variant, language))
    return set(meta.find_undeclared_variables(ast)) - {"_language"}
