"""Command modules, one per phase. Each command parses options, calls the library once and prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from broadcast.errors import VariableError
from broadcast.words import counted  # noqa: F401  (re-exported: the commands say counts with it)


def to_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """An option's value as a Path, made when the command runs: `broadcast --help` imports no pathlib (its import,
    with urllib.parse, is a tenth of the start-up)."""
    from pathlib import Path

    return None if value is None else Path(value)

if TYPE_CHECKING:
    from pathlib import Path

    from broadcast.prepare.templates import Rendering, Template
    from broadcast.workspace import Workspace

JSON_VERSION = 1  # every --json output: {"schema": "broadcast.<name>", "version": 1, ...}; fields are only added


def emit(schema: str, data: dict[str, Any], *, version: int = JSON_VERSION) -> None:
    """Print a --json result: one object, its schema named and versioned (docs/json.md lists each)."""
    import json

    click.echo(json.dumps({"schema": f"broadcast.{schema}", "version": version, **data}, ensure_ascii=False,
                          indent=2))


JSON_HELP = "Print the result as JSON (its schema key names the shape; see docs/json.md)."


def phase(name: str) -> Any:
    """Mark a command with the phase it is listed under in --help."""

    def mark(command: click.Command) -> click.Command:
        command.phase = name  # type: ignore[attr-defined]
        return command

    return mark


SET_HELP = "A template variable, as name=value (repeat for each; repeat a list variable for each item)."


def open_workspace(ctx: click.Context) -> Workspace:
    from broadcast.workspace import load

    return load(ctx.find_root().obj.get("workspace"))


def collect_sets(template: Template, pairs: tuple[str, ...]) -> dict[str, str]:
    """Turn --set name=value pairs into the values render() takes."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise VariableError(f"--set {pair!r} is not name=value", hint="example: --set school='Hillside Primary'")
        if name in values:
            variable = template.variables.get(name)
            if variable is None or variable.type != "list":
                raise VariableError(f"--set {name} is given more than once", hint="give each variable once")
            values[name] += f"; {value}"
        else:
            values[name] = value
    return values


def echo_rendering(rendering: Rendering, indent: str = "") -> None:
    """Every variant in every language, with character counts; optional sentences shown in (( ))."""
    for language, texts in rendering.texts.items():
        click.secho(f"{indent}{language}", bold=True)
        for variant, text in texts.items():
            full, essential = text.full(), text.essential()
            counts = f"{len(full)} characters"
            if essential != full:
                counts += f", {len(essential)} without the optional sentences"
            click.echo(f"{indent}  {variant} ({counts})")
            for line in text.marked().splitlines() or [""]:
                click.echo(f"{indent}    {line}")
        click.echo()


def word_diff(old: str, new: str) -> str:
    """What changed, word by word, as [-removed-]{+added+} with the unchanged words between (git's plain word diff).

    Changes separated only by spaces read as one ("[-snow and ice-]{+a heating failure+}")."""
    import difflib
    import re

    before, after = re.findall(r"\S+|\s+", old), re.findall(r"\S+|\s+", new)
    runs: list[list[str]] = []  # [kind, old text, new text]: kind "same" or "change"
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        was, now = "".join(before[a1:a2]), "".join(after[b1:b2])
        if op == "equal":
            runs.append(["same", was, now])
        elif runs and runs[-1][0] == "change":
            runs[-1][1] += was
            runs[-1][2] += now
        elif len(runs) >= 2 and runs[-1][0] == "same" and not runs[-1][1].strip() and runs[-2][0] == "change":
            space = runs.pop()[1]  # only spaces since the last change: fold them in
            runs[-1][1] += space + was
            runs[-1][2] += space + now
        else:
            runs.append(["change", was, now])
    parts = []
    for kind, was, now in runs:
        if kind == "same":
            parts.append(was)
            continue
        text = was or now
        lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        if was.strip():
            parts.append(lead + click.style(f"[-{was.strip()}-]", fg="red"))
            lead = ""
        if now.strip():
            parts.append(lead + click.style(f"{{+{now.strip()}+}}", fg="green"))
        parts.append(trail)
    return "".join(parts)
