"""``consultant tickets``: list, show, answer and solve cases."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import Session

from consultant.cli.support import JsonOption, print_json, ready
from consultant.db import session_scope
from consultant.models import Ticket

tickets_app = typer.Typer(help="List and show tickets.", no_args_is_help=True)


@tickets_app.command("list")
def tickets_list(
    as_json: JsonOption = False,
    status: Annotated[str | None, typer.Option(help="Only tickets in this status.")] = None,
) -> None:
    """List tickets, oldest first."""
    from consultant.tickets import list_tickets

    ready()
    with session_scope() as session:
        rows = list_tickets(session, status=status)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(
            f"{row['reference']:>8}  {row['status']:<10} {row['requester']:<30} {row['subject']}"
        )


@tickets_app.command("show")
def tickets_show(number: int, as_json: JsonOption = False) -> None:
    """Show one ticket: its thread, its outgoing mail and the codes found."""
    from consultant.tickets import ticket_detail

    ready()
    with session_scope() as session:
        detail = ticket_detail(session, number)
    if detail is None:
        typer.echo(f"no ticket CC-{number}", err=True)
        raise typer.Exit(1)
    if as_json:
        print_json(detail)
        return
    typer.echo(f"{detail['reference']} [{detail['status']}] {detail['subject']}")
    typer.echo(f"from {detail['requester']}")
    for message in detail["messages"]:
        typer.echo(f"\n--- {message['direction']} {message['sender']} {message['created_at']}")
        typer.echo(message["body_text"])
    for email in detail["outbox"]:
        typer.echo(f"\n>>> {email['kind']} to {email['recipient']}: {email['status']}")


@tickets_app.command("answer")
def tickets_answer(
    number: int,
    by: Annotated[str, typer.Option("--by", help="The coder answering (an email address).")],
    text: Annotated[str | None, typer.Option(help="The answer; or use --file.")] = None,
    file: Annotated[
        typer.FileText | None, typer.Option(help="Read the answer from a file (- for stdin).")
    ] = None,
) -> None:
    """Send a coder's answer to the customer, in the ticket's thread."""
    from consultant import dispatch
    from consultant.replies import queue_answer

    answer = text if text is not None else (file.read() if file else "")
    if not answer.strip():
        typer.echo("give the answer with --text or --file", err=True)
        raise typer.Exit(1)
    ready()
    with session_scope() as session:
        ticket = _ticket_or_exit(session, number)
        outgoing = queue_answer(session, ticket=ticket, text=answer, coder=by)
    dispatch.outbox_queued([outgoing.id] if outgoing.id else [])
    typer.echo(f"answer to CC-{number} queued as {outgoing.message_id}")


@tickets_app.command("solve")
def tickets_solve(
    number: int,
    by: Annotated[str, typer.Option("--by", help="Who closes the case.")],
) -> None:
    """Mark a ticket solved and tell the customer that a reply reopens it."""
    from consultant import dispatch
    from consultant.replies import queue_solved

    ready()
    with session_scope() as session:
        ticket = _ticket_or_exit(session, number)
        outgoing = queue_solved(session, ticket=ticket, actor=by)
    dispatch.outbox_queued([outgoing.id] if outgoing.id else [])
    typer.echo(f"CC-{number} solved")


def _ticket_or_exit(session: Session, number: int) -> Ticket:
    ticket = session.get(Ticket, number)
    if ticket is None:
        typer.echo(f"no ticket CC-{number}", err=True)
        raise typer.Exit(1)
    return ticket
