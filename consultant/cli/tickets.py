"""``consultant tickets``: list, show, claim, assign, answer and solve cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel import Session

from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.db import session_scope
from consultant.models import utcnow

tickets_app = typer.Typer(
    help="Work on cases: list, show, claim, assign, answer, solve.", no_args_is_help=True
)

ByOption = Annotated[str, typer.Option("--by", help="Who does it: a coder's email address.")]
Result = TypeVar("Result")


@tickets_app.command("list")
def tickets_list(
    as_json: JsonOption = False,
    status: Annotated[str | None, typer.Option(help="Only tickets in this status.")] = None,
    coder: Annotated[str | None, typer.Option(help="Only tickets this coder owns.")] = None,
    unassigned: Annotated[
        bool, typer.Option("--unassigned", help="Only unfinished tickets nobody owns.")
    ] = False,
    sla: Annotated[
        str | None, typer.Option("--sla", help="Only tickets at-risk or breached.")
    ] = None,
) -> None:
    """List tickets, most urgent first: the nearest SLA due time, then the oldest."""
    from consultant.sla import ClockState
    from consultant.tickets import list_tickets

    if sla is not None and sla not in (ClockState.AT_RISK, ClockState.BREACHED):
        fail(f"--sla takes {ClockState.AT_RISK} or {ClockState.BREACHED}, not {sla!r}")
    ready()
    with session_scope() as session:
        rows = list_tickets(
            session, now=utcnow(), status=status, coder=coder, unassigned=unassigned, sla=sla
        )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        owner = row["owner"] or "-"
        due = (row["due_at"] or "-")[:16].replace("T", " ")
        state = "paused" if row["sla_paused"] else (row["sla"] or "-")
        typer.echo(
            f"{row['reference']:>8}  {row['status']:<9} {state:<9} {due:<16}  {owner:<24} "
            f"{row['subject']}"
        )


@tickets_app.command("show")
def tickets_show(number: int, as_json: JsonOption = False) -> None:
    """Show one ticket: owner, claim, SLA clocks, codes found, thread, mail and events."""
    from consultant.tickets import ticket_detail

    ready()
    with session_scope() as session:
        detail = ticket_detail(session, number, now=utcnow())
    if detail is None:
        fail(f"no ticket CC-{number}")
    if as_json:
        print_json(detail)
        return
    _print_detail(detail)


@tickets_app.command("search")
def tickets_search(
    query: Annotated[
        str, typer.Argument(help="A case number (CC-123), an address, a name, codes or words.")
    ],
    as_json: JsonOption = False,
    after: Annotated[
        str | None, typer.Option(help="Continue after this cursor (printed after a full page).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Results per page.")] = 20,
) -> None:
    """Find cases, best match first: by number, code, requester, subject or message text."""
    from consultant.search import SearchQueryError, search_cases

    ready()
    try:
        with session_scope() as session:
            page = search_cases(session, query, after=after, limit=limit)
    except SearchQueryError as exc:
        fail(str(exc))
    if as_json:
        print_json({"results": [r.as_dict() for r in page.results], "next": page.next_after})
        return
    for result in page.results:
        found = "".join(f"[{part}]" if marked else part for part, marked in result.snippet)
        typer.echo(
            f"{result.reference:>8}  {result.status:<9} {result.owner or '-':<24} "
            f"{result.subject}\n          {result.requester}: {found}"
        )
    if not page.results:
        typer.echo(f"no case matches {query!r}")
    if page.next_after:
        typer.echo(f"more: --after '{page.next_after}'")


def _print_detail(detail: dict[str, Any]) -> None:
    typer.echo(f"{detail['reference']} [{detail['status']}] {detail['subject']}")
    typer.echo(f"from {detail['requester']}")
    typer.echo(f"owner: {detail['owner'] or 'nobody yet'}   specialty: {detail['specialty']}")
    if detail["claim"]:
        claim = detail["claim"]
        state = "expired" if claim["expired"] else "until"
        typer.echo(f"claimed by {claim['by']} {state} {claim['until'][:16].replace('T', ' ')}")
    for clock in detail["clocks"]:
        typer.echo(_clock_line(clock))
    if detail["codes"]:
        typer.echo("codes:")
    for code in detail["codes"]:
        modifiers = f"-{code['modifiers'].replace(',', '-')}" if code["modifiers"] else ""
        typer.echo(
            f"  {code['system']:<8} {code['code']}{modifiers:<8} {code['status']:<10} "
            f"{code['description'] or ''}"
        )
    for message in detail["messages"]:
        typer.echo(f"\n--- {message['direction']} {message['sender']} {message['created_at']}")
        typer.echo(message["body_text"])
    for email in detail["outbox"]:
        typer.echo(f"\n>>> {email['kind']} to {email['recipient']}: {email['status']}")
    if detail["events"]:
        typer.echo("\nevents:")
    for event in detail["events"]:
        note = f": {event['detail']}" if event["detail"] else ""
        typer.echo(
            f"  {event['at'][:19].replace('T', ' ')}  {event['actor']}  {event['kind']}{note}"
        )


def _clock_line(clock: dict[str, Any]) -> str:
    name = clock["target"].replace("_", " ")
    if clock["stopped"]:
        used = f"{clock['used_hours']:.1f} of {clock['target_hours']:g} business hours"
        return f"SLA {name}: done, {used} used ({clock['state']})"
    due = (clock["due_at"] or "")[:16].replace("T", " ")
    when = "paused (waiting on the customer)" if clock["paused"] else f"due {due} UTC"
    return (
        f"SLA {name}: {clock['state']}, {when}, {clock['left_hours']:.1f} business hours left "
        f"of {clock['target_hours']:g}"
    )


@tickets_app.command("claim")
def tickets_claim(number: int, by: ByOption) -> None:
    """Take the case and hold it while you work on it (CONSULTANT_CLAIM_MINUTES)."""
    from consultant.routing import claim

    ticket = _act(lambda session: claim(session, number, by=by, now=utcnow()))
    typer.echo(f"CC-{number} is yours until {ticket['until']}")


@tickets_app.command("release")
def tickets_release(number: int, by: ByOption) -> None:
    """Let go of your claim; the case stays yours."""
    from consultant.routing import release

    _act(lambda session: release(session, number, by=by, now=utcnow()))
    typer.echo(f"CC-{number} released")


@tickets_app.command("assign")
def tickets_assign(
    number: int,
    to: Annotated[str, typer.Option("--to", help="The coder to give the case to.")],
    by: Annotated[str, typer.Option("--by", help="The lead assigning it.")],
) -> None:
    """Give a case to a coder (leads and admins), ending any claim on it."""
    from consultant.routing import reassign

    _act(lambda session: reassign(session, number, to=to, by=by, now=utcnow()))
    typer.echo(f"CC-{number} assigned to {to}")


@tickets_app.command("status")
def tickets_status(
    number: int,
    to: Annotated[
        str,
        typer.Argument(
            help="pending (waiting on the customer), open (taken up again), new (an unowned "
            "case back to routing) or closed (a solved case); solving is 'tickets solve'."
        ),
    ],
    by: ByOption,
) -> None:
    """Move a case without writing to the customer."""
    from consultant.casework import set_status

    _act(lambda session: set_status(session, number, to=to, by=by, now=utcnow()))
    typer.echo(f"CC-{number} is {to}")


@tickets_app.command("answer")
def tickets_answer(
    number: int,
    by: ByOption,
    text: Annotated[str | None, typer.Option(help="The answer; or use --file.")] = None,
    file: Annotated[
        typer.FileText | None, typer.Option(help="Read the answer from a file (- for stdin).")
    ] = None,
    then: Annotated[
        str, typer.Option(help="The case afterwards: pending (waiting on them), solved, open.")
    ] = "pending",
) -> None:
    """Send a coder's answer to the customer, in the ticket's thread."""
    from consultant import dispatch
    from consultant.casework import answer

    reply = text if text is not None else (file.read() if file else "")
    if not reply.strip():
        fail("give the answer with --text or --file")
    outgoing = _act(
        lambda session: answer(session, number, by=by, text=reply, then=then, now=utcnow())
    )
    dispatch.outbox_queued([outgoing["id"]] if outgoing["id"] else [])
    typer.echo(f"answer to CC-{number} queued as {outgoing['message_id']}")


@tickets_app.command("note")
def tickets_note(
    number: int,
    by: ByOption,
    text: Annotated[str, typer.Option("--text", help="The note, for coders only.")],
) -> None:
    """Add an internal note to a case: on its timeline for coders, never emailed."""
    from consultant.casework import add_note

    _act(lambda session: add_note(session, number, by=by, text=text, now=utcnow()))
    typer.echo(f"note added to CC-{number}")


@tickets_app.command("solve")
def tickets_solve(number: int, by: ByOption) -> None:
    """Mark a ticket solved and tell the customer that a reply reopens it."""
    from consultant import dispatch
    from consultant.casework import solve

    outgoing = _act(lambda session: solve(session, number, by=by, now=utcnow()))
    dispatch.outbox_queued([outgoing["id"]] if outgoing["id"] else [])
    typer.echo(f"CC-{number} solved")


def _act(action: Callable[[Session], Result]) -> dict[str, Any]:
    """Run a case action in its transaction; a refusal is one line on stderr, exit 1.

    What the command prints is read inside the transaction, while the rows are loaded.
    """
    from consultant.casework import CaseError
    from consultant.routing import ClaimError

    ready()
    try:
        with session_scope() as session:
            result = action(session)
            session.flush()
            return _facts(result)
    except (CaseError, ClaimError) as exc:
        fail(str(exc))


def _facts(result: object) -> dict[str, Any]:
    until = getattr(result, "claim_expires_at", None)
    return {
        "id": getattr(result, "id", None),
        "message_id": getattr(result, "message_id", None),
        "until": f"{until:%Y-%m-%d %H:%M} UTC" if until else None,
    }
