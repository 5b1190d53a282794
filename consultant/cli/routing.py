"""``consultant routing show``: the routing policy in force, and who would get what."""

from __future__ import annotations

import typer

from consultant.cli.support import JsonOption, print_json, ready
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
    typer.echo(
        f"(CONSULTANT_ROUTING_TIERS={','.join(shown['tiers'])}, "
        f"CONSULTANT_ROUTING_PREFER={','.join(shown['prefer'])})"
    )
    typer.echo(f"business hours: {shown['business_hours']}")
    typer.echo(f"a claim holds a case for {shown['claim_minutes']} minutes")
    typer.echo("\nwho gets a case now, by specialty:")
    for row in shown["specialties"]:
        first = row["eligible"][0] if row["eligible"] else None
        who = f"{first['email']} ({first['tier']})" if first else "nobody: it would wait"
        more = f" +{len(row['eligible']) - 1} more" if len(row["eligible"]) > 1 else ""
        typer.echo(f"  {row['specialty']:<36} {who}{more}")
