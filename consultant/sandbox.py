"""Templates people type into the dashboard (saved answers, the desk's emails), rendered
in Jinja2's sandbox: no attribute or method reaches Python's internals, an undefined
variable is an error rather than an empty string, and every problem comes back as one
:class:`TemplateProblem` naming the line, for the person who typed the template.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

_TEXT = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)
_SOURCE_NAME = "<template>"  # what Jinja2 calls a template made from a string


class TemplateProblem(ValueError):
    """A template that does not render; ``line`` is where, when Jinja2 can tell."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.problem = message


def render(body: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
    """``body`` filled from ``variables`` (HTML-escaped when ``html``), or
    :class:`TemplateProblem`."""
    environment = _HTML if html else _TEXT
    try:
        return environment.from_string(body).render(variables)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", line=exc.lineno) from None
    except TemplateError as exc:
        problem = (exc.message or "it does not render").rstrip(".")
        raise TemplateProblem(problem, line=_line_of(exc)) from None
    except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        raise TemplateProblem(f"it does not render: {exc}", line=_line_of(exc)) from None


def refuse_unknown(body: str, known: Iterable[str]) -> None:
    """:class:`TemplateProblem` for the first variable ``body`` uses that is not one of
    ``known``, even inside an ``{% if %}`` the sample would not enter."""
    try:
        tree = _TEXT.parse(body)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", line=exc.lineno) from None
    unknown = meta.find_undeclared_variables(tree) - set(known) - set(_TEXT.globals)
    if not unknown:
        return
    name = min(unknown)
    line = next((node.lineno for node in tree.find_all(nodes.Name) if node.name == name), None)
    raise TemplateProblem(f"'{name}' is undefined", line=line)


def _line_of(exc: BaseException) -> int | None:
    """The template's line in the traceback Jinja2 rewrote to point at the template."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == _SOURCE_NAME
    ]
    return lines[-1] if lines else None
