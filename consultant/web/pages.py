"""Rendering the dashboard's pages: one Jinja2 environment over ``templates/web``,
autoescaped, with the few filters the pages share."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from consultant.config import get_settings


@cache
def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=get_settings().templates_dir / "web")
    # Every value is escaped: Jinja2's default chooses by the file's extension, and
    # ``.html.j2`` is not one it recognises, which left a subject's markup live.
    templates.env.autoescape = True
    templates.env.filters["when"] = _when
    templates.env.filters["size"] = _size
    return templates


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    return _templates().TemplateResponse(
        request, template, {"desk_name": get_settings().desk_name, **context}, status_code
    )


def _when(value: str | datetime | None) -> str:
    """``2026-12-07 14:05 UTC``: times on the pages, to the minute."""
    if not value:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _size(value: int) -> str:
    from consultant.acknowledgements import human_size

    return human_size(value)
