"""``consultant mailboxes``: the IMAP mailboxes and the outgoing relay set up in the
database, the same ones the dashboard's mailboxes page shows (consultant/mailbox_settings.py).

Passwords are asked for at a prompt (or read from standard input), never taken as an
argument, where ``ps`` and the shell's history would show them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from sqlmodel import Session

from consultant import mailbox_settings as settings_of
from consultant.cli.support import JsonOption, fail, in_session, print_json, ready
from consultant.config import get_settings
from consultant.mail.probe import ProbeFailed

mailboxes_app = typer.Typer(
    help="Mailboxes the desk reads and the relay it sends through, set up in the database.",
    no_args_is_help=True,
)

HostOption = Annotated[str, typer.Option("--host", help="The server, e.g. imap.example.com.")]
PortOption = Annotated[
    str, typer.Option("--port", help="Empty: 993 for tls, 143 otherwise (relay: 465/587/25).")
]
SecurityOption = Annotated[
    str,
    typer.Option(
        "--security", help="tls (from the first byte), starttls (upgraded) or none (plain)."
    ),
]
UserOption = Annotated[str, typer.Option("--user", help="The user to log in as.")]
FolderOption = Annotated[str, typer.Option("--folder", help="The folder to read.")]


@mailboxes_app.command("add")
def mailboxes_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. support.")],
    host: HostOption,
    user: UserOption,
    password: Annotated[
        str, typer.Option("--password", prompt=True, hide_input=True, help="Asked for.")
    ],
    port: PortOption = "",
    security: SecurityOption = "tls",
    folder: FolderOption = "INBOX",
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it without polling.")] = False,
) -> None:
    """Add a mailbox; a running desk polls it from its next look at the mailboxes on."""

    def add(session: Session) -> dict[str, Any]:
        mailbox = settings_of.add_mailbox(
            session,
            name=name,
            host=host,
            port=port,
            security=security,
            username=user,
            password=password,
            folder=folder,
            enabled=not disabled,
            settings=get_settings(),
        )
        return settings_of.describe_mailbox(mailbox)

    added = _run(add)
    typer.echo(f"mailbox {added['name']} added: {_where(added)}")


@mailboxes_app.command("set")
def mailboxes_set(
    name: Annotated[str, typer.Argument(help="The mailbox's name.")],
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[str | None, typer.Option("--port")] = None,
    security: Annotated[str | None, typer.Option("--security")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    folder: Annotated[str | None, typer.Option("--folder")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    new_password: Annotated[
        bool, typer.Option("--new-password", help="Ask for a new password.")
    ] = False,
) -> None:
    """Change what is given and keep the rest."""
    password = typer.prompt("Password", hide_input=True) if new_password else ""

    def change(session: Session) -> dict[str, Any]:
        now = settings_of.describe_mailbox(settings_of.mailbox_named(session, name))
        mailbox = settings_of.change_mailbox(
            session,
            name=name,
            host=now["host"] if host is None else host,
            port=now["port"] if port is None else port,
            security=now["security"] if security is None else security,
            username=now["username"] if user is None else user,
            password=password,
            folder=now["folder"] if folder is None else folder,
            enabled=now["enabled"] if enabled is None else enabled,
            settings=get_settings(),
        )
        return settings_of.describe_mailbox(mailbox)

    changed = _run(change)
    typer.echo(f"mailbox {changed['name']}: {_where(changed)}")


@mailboxes_app.command("remove")
def mailboxes_remove(name: Annotated[str, typer.Argument(help="The mailbox's name.")]) -> None:
    """Stop polling a mailbox and forget its settings (the emails it brought stay)."""
    _run(lambda session: settings_of.remove_mailbox(session, name=name))
    typer.echo(f"mailbox {name} removed")


@mailboxes_app.command("list")
def mailboxes_list(as_json: JsonOption = False) -> None:
    """Every mailbox, set up here or in CONSULTANT_IMAP_URL, with its last poll and error."""
    rows = _run(lambda session: settings_of.list_mailboxes(session, settings=get_settings()))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "" if row["enabled"] else " (disabled)"
        origin = " (set in the environment)" if row["source"] == settings_of.ENVIRONMENT else ""
        typer.echo(f"{row['name']}{state}{origin}: {_where(row)}")
        typer.echo(f"  last poll {row['last_poll_at'] or 'never'}")
        if row["connection"]:
            typer.echo(f"  OAuth 2.0: {row['connection']}")
        if row["last_error"]:
            typer.echo(f"  last error: {row['last_error']} ({row['failures']} failed polls)")
    if not rows:
        typer.echo("no mailboxes (add one, or set CONSULTANT_IMAP_URL)")


@mailboxes_app.command("test")
def mailboxes_test(
    name: Annotated[str, typer.Argument(help="The mailbox's name.")] = "",
    relay: Annotated[bool, typer.Option("--relay", help="Test the outgoing relay.")] = False,
) -> None:
    """Try the settings step by step (resolve, connect, TLS, log in, open the folder)
    and say which step failed, in the server's words. Exits 1 on a failure."""
    if bool(name) == relay:
        fail("name a mailbox, or give --relay")
    ready()
    what = "relay" if relay else name
    try:
        if relay:
            passed = settings_of.check_relay(settings=get_settings())
        else:
            passed = settings_of.check_mailbox(name, settings=get_settings())
    except (settings_of.MailboxError, ProbeFailed) as exc:
        fail(f"{what}: {exc}")
    typer.echo(f"{what}: works ({', '.join(passed)})")


@mailboxes_app.command("set-relay")
def relay_set(
    host: Annotated[str, typer.Option("--host", help="The relay, e.g. smtp.example.com.")],
    port: PortOption = "",
    security: SecurityOption = "starttls",
    user: Annotated[str, typer.Option("--user", help="Empty: send without logging in.")] = "",
    new_password: Annotated[
        bool, typer.Option("--new-password", help="Ask for a (new) password.")
    ] = False,
    login_mailbox: Annotated[
        str,
        typer.Option(
            "--login-mailbox",
            help="Log in with XOAUTH2 as this mailbox connected with OAuth (Microsoft 365, "
            "Google) instead of --user and a password.",
        ),
    ] = "",
) -> None:
    """Send through this relay instead of CONSULTANT_SMTP_URL, from the next email on."""
    password = typer.prompt("Password", hide_input=True) if new_password else ""

    def change(session: Session) -> dict[str, Any]:
        relay = settings_of.set_relay(
            session,
            host=host,
            port=port,
            security=security,
            username=user,
            password=password,
            login_mailbox=login_mailbox,
            settings=get_settings(),
        )
        return settings_of.describe_relay(relay, settings=get_settings())

    relay = _run(change)
    typer.echo(f"outgoing relay: {_where(relay)}")


@mailboxes_app.command("remove-relay")
def relay_remove() -> None:
    """Go back to CONSULTANT_SMTP_URL (or to .eml files when that is unset)."""
    _run(settings_of.remove_relay)
    typer.echo("outgoing relay removed")


@mailboxes_app.command("reseal")
def mailboxes_reseal() -> None:
    """Re-encrypt every stored password with CONSULTANT_SECRET_KEY, after a key rotation
    (the old key in CONSULTANT_SECRET_KEY_PREVIOUS until this has run)."""
    done, problems = _run(
        lambda session: settings_of.reseal_secrets(session, settings=get_settings())
    )
    typer.echo(f"{done} secret(s) sealed with the current key")
    if problems:
        fail("\n".join(problems))


def _where(row: dict[str, Any]) -> str:
    login = f"{row['username']}@" if row.get("username") else ""
    folder = f"/{row['folder']}" if row.get("folder") else ""
    oauth = f", logging in as mailbox {row['login_mailbox']}" if row.get("login_mailbox") else ""
    return f"{login}{row['host']}:{row['port']}{folder} ({row['security']}{oauth})"


def _run(action: Callable[[Session], Any]) -> Any:
    return in_session(action, refusals=(settings_of.MailboxError,))
