"""The ``consultant`` command: run the desk, and look at it from scripts (``--json``)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Annotated, Any

import typer

from consultant.cli import backup as _backup  # noqa: F401  (registers db backup/restore)
from consultant.cli.answers import answers_app
from consultant.cli.audit import audit_app
from consultant.cli.coders import coders_app
from consultant.cli.codes import app as codes_app
from consultant.cli.db import db_app
from consultant.cli.hours import hours_app
from consultant.cli.inbound import inbound_app
from consultant.cli.mailboxes import mailboxes_app
from consultant.cli.outbox import outbox_app
from consultant.cli.quota import accounts_app, plans_app, quota_app
from consultant.cli.report import report_app
from consultant.cli.routing import routing_app
from consultant.cli.support import JsonOption, print_json, ready
from consultant.cli.tickets import tickets_app
from consultant.cli.tokens import tokens_app
from consultant.cli.webhooks import webhooks_app
from consultant.config import ConfigError, Settings, get_settings
from consultant.migrate import MigrationError

log = logging.getLogger(__name__)

VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="More detail: the desk's DEBUG lines and the libraries' INFO."
    ),
]

app = typer.Typer(
    help="CaseConsultant: an email consulting desk for medical coding.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(tickets_app, name="tickets")
app.add_typer(plans_app, name="plans")
app.add_typer(accounts_app, name="accounts")
app.add_typer(quota_app, name="quota")
app.add_typer(inbound_app, name="inbound")
app.add_typer(outbox_app, name="outbox")
app.add_typer(codes_app, name="codes")
app.add_typer(coders_app, name="coders")
app.add_typer(routing_app, name="routing")
app.add_typer(hours_app, name="hours")
app.add_typer(report_app, name="report")
app.add_typer(audit_app, name="audit")
app.add_typer(answers_app, name="answers")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(mailboxes_app, name="mailboxes")


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    except MigrationError as exc:
        typer.echo(f"database schema: {exc}", err=True)
        sys.exit(3)


def _configure_logging(*, verbose: bool) -> None:
    """Before the command does anything: the desk's lines at CONSULTANT_LOG_LEVEL, in
    CONSULTANT_LOG_FORMAT, libraries at WARNING (consultant/logs.py says what each shows).
    A bad value of either stops here with the setting's name (:class:`ConfigError`)."""
    from consultant import logs

    settings = get_settings()
    logs.configure(level=settings.log_level, fmt=settings.log_format, verbose=verbose)


def _announce(settings: Settings, text: str, **fields: object) -> None:
    """Tell the person at the terminal; with CONSULTANT_LOG_FORMAT=json, a log line with
    the same facts as fields instead, so that every line a shipper reads is JSON."""
    if settings.log_format == "json":
        log.info(text.splitlines()[0], extra=fields)
    else:
        typer.echo(text)


@app.command()
def run(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Poll every mailbox, process and send all pending work, run the SLA "
            "escalation sweep, then exit.",
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Run the whole desk in one process: gateway, pollers and a worker."""
    from consultant.worker import catch_up

    _configure_logging(verbose=verbose)
    settings = ready()
    if once:
        mailboxes_ok = _poll_all_once(settings)
        report = catch_up()
        typer.echo(
            f"processed {report.processed} email(s), {report.failed} failed; "
            f"sent {report.sent} email(s), {report.send_failures} not sent"
        )
        if not mailboxes_ok:
            raise typer.Exit(1)
        return
    _run_forever(settings)


def _poll_all_once(settings: Settings) -> bool:
    """Poll each mailbox once; ``False`` when any of them could not be read."""
    from consultant.mail.imap import ImapError, poll_once
    from consultant.mailbox_settings import mailboxes_to_poll

    all_read = True
    for mailbox in mailboxes_to_poll(settings=settings):
        try:
            report = poll_once(mailbox, settings=settings)
        except ImapError as exc:
            typer.echo(f"mailbox {mailbox.name}: {exc}", err=True)
            all_read = False
            continue
        typer.echo(f"mailbox {report.mailbox}: {report.seen} fetched, {len(report.stored)} new")
    return all_read


def _run_forever(settings: Settings) -> None:
    from consultant.mail.gateway import start_gateway
    from consultant.pollers import Pollers
    from consultant.web.server import WebServer
    from consultant.worker import LocalWorker

    stop = threading.Event()
    # Before anything starts: a service manager's SIGTERM during start-up (the gateway
    # already takes mail while the rest comes up) then stops the desk cleanly too.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    gateway = start_gateway(settings)
    web = WebServer(settings)
    web.start()
    worker = LocalWorker(interval=settings.poll_interval)
    worker.start()
    pollers = Pollers(settings=settings)
    pollers.refresh()
    threading.Thread(target=pollers.run, kwargs={"stop": stop}, daemon=True).start()
    _print_banner(settings, mailboxes=pollers.names())
    _wait_for_signal(stop)
    worker.stop()
    web.stop()
    gateway.stop()


def _print_banner(settings: Settings, *, mailboxes: list[str]) -> None:
    from consultant.mailbox_settings import relay_in_use

    relay = relay_in_use(settings=settings)
    outgoing = (
        f"relay {relay['host']}:{relay['port']}"
        if "host" in relay
        else f"saved as .eml files under {settings.outbox_dir}/"
    )
    polled = ", ".join(mailboxes) or "none yet (add one on the dashboard's mailboxes page)"
    _announce(
        settings,
        "CaseConsultant desk is running.\n"
        f"  dashboard:            {settings.web_url}/ (listening on {settings.web})\n"
        f"  inbound SMTP gateway: {settings.gateway}\n"
        f"  mailboxes polled:     {polled}\n"
        f"  outgoing mail:        {outgoing}\n"
        f"  database:             {settings.database.split('@')[-1]}\n"
        "Send a first case (from another terminal):\n"
        f"  curl smtp://{settings.gateway} --mail-from you@example.com "
        f"--mail-rcpt {settings.desk_address} --upload-file examples/first-case.eml\n"
        "  consultant tickets list\n"
        "Stop with Ctrl-C.",
        gateway=settings.gateway,
        web=settings.web,
        mailboxes=mailboxes,
        outgoing=outgoing,
        database=settings.database.split("@")[-1],
    )


def _wait_for_signal(stop: threading.Event) -> None:
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        stop.set()


@app.command()
def web(verbose: VerboseOption = False) -> None:
    """Serve the coders' dashboard on CONSULTANT_WEB (default 127.0.0.1:8000)."""
    from consultant.web.server import serve

    _configure_logging(verbose=verbose)
    settings = ready()
    typer.echo(f"dashboard on {settings.web_url}/ (listening on {settings.web}); Ctrl-C stops it")
    serve(settings)


@app.command()
def poll(
    once: Annotated[bool, typer.Option("--once", help="Poll every mailbox once and exit.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Copy new email from every IMAP mailbox into the desk: those of CONSULTANT_IMAP_URL
    and those set up in the dashboard (followed from the next look at them, every
    CONSULTANT_POLL_INTERVAL seconds)."""
    from consultant.pollers import Pollers

    _configure_logging(verbose=verbose)
    settings = ready()
    if once:
        if not _poll_all_once(settings):
            raise typer.Exit(1)
        return
    stop = threading.Event()
    pollers = threading.Thread(target=Pollers(settings=settings).run, kwargs={"stop": stop})
    pollers.start()
    _wait_for_signal(stop)
    pollers.join()


@app.command()
def gateway(
    lmtp: Annotated[
        bool, typer.Option("--lmtp", help="Speak LMTP (behind Postfix) instead of SMTP.")
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Receive email over SMTP or LMTP on CONSULTANT_GATEWAY."""
    from consultant.mail.gateway import start_gateway

    _configure_logging(verbose=verbose)
    settings = ready()
    controller = start_gateway(settings, lmtp=lmtp)
    protocol = "LMTP" if lmtp else "SMTP"
    _announce(
        settings,
        f"{protocol} gateway listening on {settings.gateway}",
        gateway=settings.gateway,
        protocol=protocol,
    )
    stop = threading.Event()
    _wait_for_signal(stop)
    controller.stop()


@app.command()
def status(as_json: JsonOption = False) -> None:
    """How the mailboxes and the queues are doing.

    Per mailbox: reachable or not, emails waiting, cursor, last poll, last error, failed
    polls. Exits 1 when a mailbox cannot be reached, for monitoring scripts.
    """
    from consultant.status import desk_status

    report = desk_status(ready())
    if as_json:
        print_json(report)
    else:
        _print_status(report)
    if not all(box["reachable"] for box in report["mailboxes"]):
        raise typer.Exit(1)


def _print_status(report: dict[str, Any]) -> None:
    for box in report["mailboxes"]:
        state = f"{box['waiting']} waiting" if box["reachable"] else "UNREACHABLE"
        cursor = f"UIDVALIDITY {box['uidvalidity']}, UID {box['last_uid']}"
        typer.echo(
            f"mailbox {box['mailbox']}: {state}; cursor {cursor}; "
            f"last poll {box['last_poll_at'] or 'never'}"
        )
        if box.get("connection"):
            typer.echo(f"  OAuth 2.0: {box['connection']}")
        if box["last_error"]:
            typer.echo(f"  last error: {box['last_error']}")
        if box["failures"]:
            typer.echo(f"  failed polls since the last good one: {box['failures']}")
    if not report["mailboxes"]:
        typer.echo("no mailboxes (CONSULTANT_IMAP_URL, or the dashboard's Mailboxes page)")
    typer.echo(f"inbound: {_counted(report['inbound'])}")
    typer.echo(f"outbox:  {_counted(report['outbox'])}")
    if report["outbox_failures"]:
        typer.echo("  latest emails not sent:")
    for failure in report["outbox_failures"]:
        about = f" of {failure['ticket']}" if failure["ticket"] else ""
        typer.echo(f"    {failure['kind']}{about}: {failure['reason']}")
    for name, setting in report["settings"].items():
        typer.echo(f"{name}: {setting['value'] or '(none)'}  [{setting['from']}]")


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty"
