"""``consultant plans``, ``accounts`` and ``quota``: the admin's side of the ledger."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlmodel import Session, col, select

from consultant import quota
from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.db import session_scope
from consultant.models import Account, Plan, Ticket, utcnow
from consultant.quota import QuotaError

plans_app = typer.Typer(help="Plans: cases per month and answer times.", no_args_is_help=True)
accounts_app = typer.Typer(
    help="Customer accounts (an address or a whole domain).", no_args_is_help=True
)
quota_app = typer.Typer(
    help="The quota ledger: what is used, refunds, held cases.", no_args_is_help=True
)

LimitOption = Annotated[
    str | None, typer.Option("--cases", help="Cases per month, or 'unlimited'.")
]
SlaOption = Annotated[
    int | None, typer.Option("--sla-hours", min=1, help="Business hours to the first answer.")
]
ResolutionOption = Annotated[
    int | None,
    typer.Option("--resolution-hours", min=0, help="Business hours to solve (0: no target)."),
]
FollowupsOption = Annotated[
    bool | None,
    typer.Option("--followups-count/--followups-free", help="Do follow-ups in an open case count?"),
]


def _admin(action: Any) -> Any:
    """Run ``action(session)`` in one transaction; a ``QuotaError`` becomes a clean exit 1."""
    ready()
    try:
        with session_scope() as session:
            quota.ensure_builtin_plans(session)
            return action(session)
    except QuotaError as exc:
        fail(str(exc))


# --- plans --------------------------------------------------------------------------


@plans_app.command("list")
def plans_list(as_json: JsonOption = False) -> None:
    """List every plan."""
    rows = _admin(
        lambda s: [
            quota.describe_plan(p) for p in s.exec(select(Plan).order_by(col(Plan.id))).all()
        ]
    )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        limit = "unlimited" if row["cases_per_period"] is None else row["cases_per_period"]
        solve = (
            f", solve within {row['resolution_hours']} business h"
            if row["resolution_hours"]
            else ""
        )
        typer.echo(
            f"{row['name']:<16} {limit!s:>9} cases/month   answer within "
            f"{row['sla_hours']} business h{solve}"
        )


@plans_app.command("add")
def plans_add(
    name: str,
    cases: Annotated[str, typer.Option("--cases", help="Cases per month, or 'unlimited'.")],
    sla_hours: Annotated[
        int, typer.Option("--sla-hours", min=1, help="Business hours to the first answer.")
    ] = 24,
    resolution_hours: ResolutionOption = None,
    followups_count: FollowupsOption = False,
) -> None:
    """Add a plan."""

    _admin(
        lambda s: quota.add_plan(
            s,
            name=name,
            cases=cases,
            sla_hours=sla_hours,
            resolution_hours=resolution_hours,
            followups_count=bool(followups_count),
        )
    )
    typer.echo(f"plan {name} added")


@plans_app.command("set")
def plans_set(
    name: str,
    cases: LimitOption = None,
    sla_hours: SlaOption = None,
    resolution_hours: ResolutionOption = None,
    followups_count: FollowupsOption = None,
) -> None:
    """Change a plan; accounts on it see the change at once, open cases' clocks too."""

    _admin(
        lambda s: quota.change_plan(
            s,
            quota.plan_named(s, name),
            now=utcnow(),
            cases=cases,
            sla_hours=sla_hours,
            resolution_hours=resolution_hours,
            followups_count=followups_count,
        )
    )
    typer.echo(f"plan {name} changed")


# --- accounts -----------------------------------------------------------------------


@accounts_app.command("list")
def accounts_list(as_json: JsonOption = False) -> None:
    """List every account with its plan and what is left this month."""
    rows = _admin(
        lambda s: [
            quota.describe_account(s, a)
            for a in s.exec(select(Account).order_by(col(Account.address)))
        ]
    )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        left = "unlimited" if row["remaining"] is None else f"{row['remaining']} left"
        typer.echo(f"{row['address']:<36} {row['plan']:<12} {row['timezone']:<20} {left}")


@accounts_app.command("add")
def accounts_add(
    address: Annotated[
        str, typer.Argument(help="jane@clinic.example, or @clinic.example for a domain.")
    ],
    plan: Annotated[str, typer.Option(help="The plan's name.")] = "free",
    timezone: Annotated[str, typer.Option(help="Months are counted in this zone.")] = "UTC",
) -> None:
    """Add an account for one address or a whole domain."""

    _admin(lambda s: quota.add_account(s, address=address, plan=plan, timezone=timezone))
    typer.echo(f"account {quota.normalise_address(address)} added on plan {plan}")


@accounts_app.command("set")
def accounts_set(
    address: str,
    plan: Annotated[str | None, typer.Option(help="Move to this plan.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Count months in this zone.")] = None,
) -> None:
    """Change an account's plan or time zone."""

    _admin(
        lambda s: quota.change_account(
            s, quota.account_named(s, address), now=utcnow(), plan=plan, timezone=timezone
        )
    )
    typer.echo(f"account {quota.normalise_address(address)} changed")


@accounts_app.command("show")
def accounts_show(address: str, as_json: JsonOption = False) -> None:
    """Show one account and its ledger for this month."""
    report = _admin(lambda s: quota.quota_report(s, quota.account_named(s, address)))
    _print_report(report, as_json)


# --- quota --------------------------------------------------------------------------


@quota_app.command("show")
def quota_show(
    address: Annotated[
        str, typer.Argument(help="A sender's address: their account, or their domain's.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Plan, period, used, remaining and this month's entries for a sender."""

    def report(session: Session) -> dict[str, object]:
        account = quota.account_for_sender(session, address)
        if account is None:
            raise QuotaError(f"no account covers {quota.normalise_address(address)}")
        return quota.quota_report(session, account)

    _print_report(_admin(report), as_json)


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    limit = "unlimited" if report["limit"] is None else report["limit"]
    typer.echo(f"{report['account']}: plan {report['plan']} ({limit} cases/month)")
    typer.echo(f"period {report['period']}: {report['used']} used, remaining {report['remaining']}")
    for entry in report["entries"]:
        detail = f" — {entry['reason']} ({entry['actor']})" if entry["reason"] else ""
        typer.echo(f"  {entry['created_at'][:16]}  {entry['kind']:<6} CC-{entry['ticket']}{detail}")


def _ticket(session: Session, number: int) -> Ticket:
    ticket = session.get(Ticket, number)
    if ticket is None:
        raise QuotaError(f"no ticket CC-{number}")
    return ticket


@quota_app.command("refund")
def quota_refund(
    number: Annotated[int, typer.Argument(help="The ticket number (7 for CC-7).")],
    reason: Annotated[str, typer.Option(help="Why the case is given back.")],
    by: Annotated[str, typer.Option("--by", help="Who gives it back.")],
) -> None:
    """Give a charged case back to its account."""
    _admin(lambda s: quota.refund_case(s, ticket=_ticket(s, number), reason=reason, actor=by))
    typer.echo(f"CC-{number} refunded")


@quota_app.command("release")
def quota_release(
    number: Annotated[int, typer.Argument(help="The held ticket's number.")],
    by: Annotated[str, typer.Option("--by", help="Who releases it.")],
    override: Annotated[
        str | None, typer.Option(help="Charge it even past the limit, for this reason.")
    ] = None,
) -> None:
    """Release a case held for quota: charge it now, or past the limit with --override."""
    _admin(
        lambda s: quota.release_held_case(
            s, ticket=_ticket(s, number), actor=by, override_reason=override
        )
    )
    typer.echo(f"CC-{number} released")
