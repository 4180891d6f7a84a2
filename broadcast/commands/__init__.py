"""Command modules, one per phase. Each command parses options, calls the library once and prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from broadcast.errors import VariableError

if TYPE_CHECKING:
    from broadcast.prepare.templates import Rendering, Template
    from broadcast.workspace import Workspace

def counted(number: int, word: str, plural: str | None = None) -> str:
    """'1 error', '2 errors', '1,204 templates': a count as people write it."""
    return f"{number:,} {word if number == 1 else plural or word + 's'}"


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
