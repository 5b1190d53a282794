"""``consultant answers``: saved answers coders put into a case's answer box."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from consultant import saved_answers
from consultant.cli.support import JsonOption, fail, in_session, print_json
from consultant.models import utcnow

answers_app = typer.Typer(
    help="Saved answers: texts coders reuse, filled in from the case "
    "(see consultant answers variables).",
    no_args_is_help=True,
)

TitleArgument = Annotated[str, typer.Argument(help='Its title, e.g. "Modifier 25 basics".')]
BodyOption = Annotated[
    Path | None,
    typer.Option("--file", help="Read the text from this file (default: standard input)."),
]
ByOption = Annotated[str, typer.Option("--by", help="Who makes the change (for the record).")]


@answers_app.command("list")
def answers_list(as_json: JsonOption = False) -> None:
    """Every saved answer, by title."""
    rows = _run(lambda s: [saved_answers.describe(a) for a in saved_answers.list_saved_answers(s)])
    if as_json:
        print_json(rows)
        return
    for row in rows:
        first_line = row["body"].strip().splitlines()[0]
        typer.echo(f"{row['title']:<40}  {first_line[:60]}")


@answers_app.command("show")
def answers_show(title: TitleArgument, as_json: JsonOption = False) -> None:
    """One saved answer's text, variables and all."""
    row = _run(lambda s: saved_answers.describe(saved_answers.existing(s, title)))
    if as_json:
        print_json(row)
    else:
        typer.echo(row["body"], nl=not row["body"].endswith("\n"))


@answers_app.command("add")
def answers_add(title: TitleArgument, file: BodyOption = None, by: ByOption = "admin") -> None:
    """Save a new answer. The text is checked now: an unknown variable or a broken
    {{ … }} is refused with its line, not found in front of a customer."""
    body = _read(file)
    _run(lambda s: saved_answers.add_saved_answer(s, title=title, body=body, by=by, now=utcnow()))
    typer.echo(f"saved {title!r}")


@answers_app.command("set")
def answers_set(title: TitleArgument, file: BodyOption = None) -> None:
    """Replace a saved answer's text."""
    body = _read(file)
    _run(lambda s: saved_answers.update_saved_answer(s, title=title, body=body, now=utcnow()))
    typer.echo(f"changed {title!r}")


@answers_app.command("remove")
def answers_remove(title: TitleArgument) -> None:
    """Delete a saved answer (answers already sent are not touched)."""
    _run(lambda s: saved_answers.remove_saved_answer(s, title=title))
    typer.echo(f"removed {title!r}")


@answers_app.command("variables")
def answers_variables() -> None:
    """What a saved answer can use, written {{ first_name }} and so on."""
    for name, meaning in saved_answers.VARIABLES.items():
        typer.echo(f"{{{{ {name} }}}}".ljust(20) + meaning)


def _read(file: Path | None) -> str:
    try:
        return file.read_text(encoding="utf-8") if file else sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the answer's text: {exc}")


def _run(action: Callable[[Session], Any]) -> Any:
    return in_session(action, refusals=(saved_answers.SavedAnswerError,))
