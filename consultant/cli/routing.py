"""``consultant routing show|set|unset``: the routing policy in force, and who would get
what; changing it for every process at once."""

from __future__ import annotations

from typing import Annotated

import typer

from consultant.cli.hours import ByOption
from consultant.cli.support import (
    JsonOption,
    print_json,
    ready,
    set_desk_settings,
    unset_desk_settings,
)
from consultant.db import session_scope
from consultant.models import utcnow

routing_app = typer.Typer(help="How cases find their coder.", no_args_is_help=True)


@routing_app.command("show")
def routing_show(as_json: JsonOption = False) -> None:
    """The routing policy in force, and who would get each specialty now.

    Prints the policy, the business hours, the claim lease, and per specialty the
    eligible coders, best first."""
    from consultant.routing.overview import overview

    ready()
    with session_scope() as session:
        shown = overview(session, now=utcnow())
    if as_json:
        print_json(shown)
        return
    for line in shown["policy"]:
        typer.echo(line)
    sources = shown["sources"]
    typer.echo(f"tiers {','.join(shown['tiers'])}  [{sources['tiers']}]")
    typer.echo(f"prefer {','.join(shown['prefer'])}  [{sources['prefer']}]")
    typer.echo(f"business hours: {shown['business_hours']}")
    typer.echo(f"a claim holds a case for {shown['claim_minutes']} minutes")
    typer.echo("\nwho gets a case now, by specialty:")
    for row in shown["specialties"]:
        first = row["eligible"][0] if row["eligible"] else None
        who = f"{first['email']} ({first['tier']})" if first else "nobody: it would wait"
        more = f" +{len(row['eligible']) - 1} more" if len(row["eligible"]) > 1 else ""
        typer.echo(f"  {row['specialty']:<36} {who}{more}")


@routing_app.command("set")
def routing_set(
    tiers: Annotated[
        str | None, typer.Option("--tiers", help="e.g. specialty,generalist,family,anyone")
    ] = None,
    prefer: Annotated[
        str | None, typer.Option("--prefer", help="e.g. on_shift,load,last_assigned")
    ] = None,
    by: ByOption = "admin",
) -> None:
    """Set the routing tiers or preferences for every process at once (instead of the
    environment's); the next case routed follows them."""
    changes = {"routing_tiers": tiers, "routing_prefer": prefer}
    set_desk_settings({name: value for name, value in changes.items() if value is not None}, by)


@routing_app.command("unset")
def routing_unset(by: ByOption = "admin") -> None:
    """Go back to CONSULTANT_ROUTING_TIERS and CONSULTANT_ROUTING_PREFER."""
    unset_desk_settings(("routing_tiers", "routing_prefer"), by)
