"""What every ``consultant`` subcommand shares: start-up checks and ``--json`` output."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from consultant.config import Settings, get_settings
from consultant.db import check_database, init_schema

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def ready() -> Settings:
    """Settings checked, database reachable, schema in place: what every command needs."""
    settings = get_settings()
    check_database()
    init_schema()
    return settings


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))
