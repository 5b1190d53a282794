"""Mailboxes and the outgoing relay as an admin sets them up: from the dashboard's
mailboxes page or ``consultant mailboxes``, both through these functions.

A mailbox set up here is a row of ``mailboxes`` with its connection settings beside its
sync cursor; its password is sealed (consultant/sealed.py) and never comes back out of
this module except to log in. Mailboxes named in ``CONSULTANT_IMAP_URL`` keep working
and are listed beside these, read-only. A relay set up here replaces
``CONSULTANT_SMTP_URL``. The pollers and the sender read these rows as they run
(consultant/pollers.py, consultant/outbox.py), so a change needs no restart.

Every refusal is a :class:`MailboxError`; one about the form names its fields, so the
page can put each message beside its field.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import object_session
from sqlmodel import Session, col, select

from consultant import audit
from consultant.config import MailboxURL, RelayURL, Settings, TokenSource
from consultant.db import session_scope
from consultant.mail.oauth_access import connection_state
from consultant.mail.oauth_connect import forget_connection, reseal_tokens
from consultant.mail.probe import probe_mailbox, probe_relay
from consultant.models import Mailbox, MailRelay, utcnow
from consultant.sealed import SealedError, reseal, seal, unseal

SECURITIES = ("tls", "starttls", "none")  # TLS from the first byte, upgraded, or plain
IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}
RELAY_PORTS = {"tls": 465, "starttls": 587, "none": 25}
# How a mailbox logs in: its password, or the tokens of an OAuth 2.0 connect
# (consultant/mail/oauth_connect.py) with Microsoft 365 or Google.
AUTH_KINDS = ("password", "oauth")
RELAY_ID = 1  # the one relay row
ENVIRONMENT = "environment"
DATABASE = "database"

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LONGEST = {"username": 320, "password": 1024, "folder": 255}
# What changes which mail the cursor counts: a change of any starts the folder afresh.
_WHERE = ("host", "port", "username", "folder")


class MailboxError(ValueError):
    """A mailbox or relay cannot be set up or found as asked; ``fields`` maps each form
    field at fault to its message (empty when the fault is not one field's)."""

    def __init__(self, message: str, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = dict(fields or {})


# --- mailboxes ----------------------------------------------------------------------------


def add_mailbox(
    session: Session,
    *,
    name: str,
    host: str,
    port: str | int | None,
    security: str,
    username: str,
    password: str,
    folder: str = "INBOX",
    enabled: bool = True,
    auth: str = "password",
    settings: Settings,
) -> Mailbox:
    """A new mailbox, polled from the next look at the mailboxes on (no restart). One
    whose ``auth`` is ``oauth`` has no password: it is read once it is connected."""
    if auth not in AUTH_KINDS:
        raise MailboxError(f"auth is one of {', '.join(AUTH_KINDS)}", fields={"auth": "unknown"})
    typed = {"name": name, "host": host, "port": port, "security": security,
             "username": username, "password": password, "folder": folder}  # fmt: skip
    clean = _checked(typed, ports=IMAP_PORTS, password_required=auth == "password")
    existing = _row(session, clean["name"])
    if existing is not None and existing.host is not None:
        raise MailboxError(
            f"there is a mailbox named {clean['name']} already",
            fields={"name": "taken; choose another name"},
        )
    mailbox = existing or Mailbox(name=clean["name"])
    _restart_cursor(mailbox)  # a name used before starts afresh where it now points
    _apply(mailbox, clean, enabled=enabled, settings=settings)
    mailbox.auth = auth
    if auth == "oauth":
        mailbox.password_sealed = None
    session.add(mailbox)
    session.flush()
    return mailbox


def change_mailbox(
    session: Session,
    *,
    name: str,
    host: str,
    port: str | int | None,
    security: str,
    username: str,
    password: str = "",
    folder: str,
    enabled: bool,
    settings: Settings,
) -> Mailbox:
    """Change a mailbox as given; an empty ``password`` keeps the stored one. Pointing it
    at another server, user or folder starts its cursor afresh (the desk refuses an
    email it already has, so nothing is stored twice)."""
    mailbox = mailbox_named(session, name)
    typed = {"name": mailbox.name, "host": host, "port": port, "security": security,
             "username": username, "password": password, "folder": folder}  # fmt: skip
    clean = _checked(typed, ports=IMAP_PORTS, password_required=False)
    if any(clean[key] != getattr(mailbox, key) for key in _WHERE):
        _restart_cursor(mailbox)
    _apply(mailbox, clean, enabled=enabled, settings=settings)
    session.add(mailbox)
    session.flush()
    return mailbox


def remove_mailbox(session: Session, *, name: str) -> Mailbox:
    """Stop polling a mailbox and forget how to reach it. The row stays, as the emails
    it brought in name it."""
    mailbox = mailbox_named(session, name)
    for key in ("host", "port", "security", "username", "auth", "password_sealed", "folder"):
        setattr(mailbox, key, None)
    forget_connection(mailbox)
    session.add(mailbox)
    session.flush()
    return mailbox


def mailbox_named(session: Session, name: str) -> Mailbox:
    """The mailbox set up here under ``name`` (those of the environment change there)."""
    mailbox = _row(session, name.strip().lower())
    if mailbox is None or mailbox.host is None:
        raise MailboxError(
            f"no mailbox named {name!r} is set up here "
            "(those in CONSULTANT_IMAP_URL are changed there)"
        )
    return mailbox


def describe_mailbox(mailbox: Mailbox) -> dict[str, Any]:
    """Its settings as shown and audited: whether there is a password, never which."""
    return {
        "name": mailbox.name,
        "host": mailbox.host,
        "port": mailbox.port,
        "security": mailbox.security,
        "username": mailbox.username,
        "auth": mailbox.auth,
        "password": "set" if mailbox.password_sealed else "none",
        "folder": mailbox.folder,
        "enabled": mailbox.enabled,
    }


def change_detail(before: dict[str, Any], after: dict[str, Any], *, password: str) -> str:
    """What a change did, for the audit log: field by field, and that a password typed
    replaced the stored one (never what either was)."""
    parts = [audit.changes(before, after)] if before != after else []
    if password:
        parts.append("password replaced")
    return "; ".join(parts) or "no change"


def list_mailboxes(session: Session, *, settings: Settings) -> list[dict[str, Any]]:
    """Every mailbox the desk reads, with its state: those set up here, then those of
    ``CONSULTANT_IMAP_URL`` (``source`` says which, as the latter are read-only)."""
    rows = session.exec(
        select(Mailbox).where(col(Mailbox.host).is_not(None)).order_by(col(Mailbox.name))
    ).all()
    here = [
        {"id": row.id, **describe_mailbox(row), **_state(row), "source": DATABASE} for row in rows
    ]
    from_environment = [
        {**_describe_url(url), **_state(_row(session, url.name)), "source": ENVIRONMENT}
        for url in settings.imap_url
    ]
    return here + from_environment


def mailbox_url(mailbox: Mailbox, *, settings: Settings) -> MailboxURL:
    """How to log in to a mailbox set up here, its password unsealed
    (:class:`consultant.sealed.SealedError` when no key the desk has opens it)."""
    assert mailbox.host is not None and mailbox.port is not None
    password = (
        unseal(mailbox.password_sealed, settings=settings, whose=_whose(mailbox))
        if mailbox.password_sealed
        else ""
    )
    return MailboxURL(
        tls=mailbox.security == "tls",
        starttls=mailbox.security == "starttls",
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username or "",
        password=password,
        folder=mailbox.folder or "INBOX",
        label=mailbox.name,
        # Connected with OAuth 2.0: XOAUTH2 with the access token the desk keeps for it.
        xoauth2=TokenSource(connection=mailbox.id) if mailbox.auth == "oauth" else None,
    )


def mailboxes_to_poll(*, settings: Settings) -> list[MailboxURL]:
    """Every mailbox to follow now: the environment's and the enabled ones set up here.

    One whose password no key opens is left out, with the reason recorded on it for
    the mailboxes page and ``consultant status``; the others are polled as ever.
    """
    urls = list(settings.imap_url)
    with session_scope() as session:
        rows = session.exec(
            select(Mailbox)
            .where(col(Mailbox.host).is_not(None), col(Mailbox.enabled))
            .order_by(col(Mailbox.name))
        ).all()
        for row in rows:
            try:
                urls.append(mailbox_url(row, settings=settings))
            except SealedError as exc:
                if row.last_error != str(exc):
                    row.last_error = str(exc)
                    session.add(row)
    return urls


def find_mailbox(session: Session, name: str, *, settings: Settings) -> MailboxURL:
    """Any mailbox the desk knows by name, from here or the environment, ready to log in."""
    for url in settings.imap_url:
        if url.name == name:
            return url
    try:
        return mailbox_url(mailbox_named(session, name), settings=settings)
    except SealedError as exc:
        raise MailboxError(str(exc)) from None


def check_mailbox(name: str, *, settings: Settings) -> list[str]:
    """Test a mailbox's settings step by step: the steps that passed, or
    :class:`consultant.mail.probe.ProbeFailed` naming the one that did not. No session
    is held while the server is asked (SQLite's write lock is the poller's too)."""
    with session_scope() as session:
        url = find_mailbox(session, name, settings=settings)
    return probe_mailbox(url, settings=settings)


# --- the outgoing relay -------------------------------------------------------------------


def set_relay(
    session: Session,
    *,
    host: str,
    port: str | int | None,
    security: str,
    username: str = "",
    password: str = "",
    login_mailbox: str = "",
    settings: Settings,
) -> MailRelay:
    """Send through this relay from the next email on, instead of CONSULTANT_SMTP_URL.
    An empty ``password`` keeps the stored one; no user means no login.

    ``login_mailbox`` names a mailbox connected with OAuth 2.0: the relay then logs in
    with XOAUTH2 as that mailbox (its user, its access token), and keeps no password,
    as Microsoft 365 and Google take no password for SMTP any more.
    """
    typed = {"host": host, "port": port, "security": security, "username": username,
             "password": password}  # fmt: skip
    login_as, problem = _login_mailbox(session, login_mailbox)
    try:
        clean = _checked(typed, ports=RELAY_PORTS, password_required=False, user_required=False)
    except MailboxError as exc:
        if problem is None:
            raise
        fields = {**exc.fields, "login_mailbox": problem}
        raise MailboxError(f"{exc}; login_mailbox: {problem}", fields=fields) from None
    if problem is not None:
        raise MailboxError(
            f"not saved: login_mailbox: {problem}", fields={"login_mailbox": problem}
        )
    relay = session.get(MailRelay, RELAY_ID) or MailRelay(id=RELAY_ID, host="", port=0, security="")
    relay.host, relay.port, relay.security = clean["host"], clean["port"], clean["security"]
    if login_as is not None:
        relay.auth, relay.login_mailbox_id = "oauth", login_as.id
        relay.username, relay.password_sealed = login_as.username or "", None
    else:
        relay.auth, relay.login_mailbox_id = "password", None
        relay.username = clean["username"]
    if not relay.username:
        relay.password_sealed = None
    elif clean["password"] and login_as is None:
        relay.password_sealed = seal(clean["password"], settings=settings)
    session.add(relay)
    session.flush()
    return relay


def relay_login_mailboxes(session: Session) -> list[str]:
    """The mailboxes a relay may log in as: those set up to be connected with OAuth 2.0."""
    query = select(Mailbox.name).where(col(Mailbox.host).is_not(None), Mailbox.auth == "oauth")
    return list(session.exec(query.order_by(col(Mailbox.name))))


def _login_as(relay: MailRelay) -> Mailbox | None:
    """The mailbox whose token the relay logs in with, from the relay's own session."""
    session = object_session(relay)
    if relay.login_mailbox_id is None or session is None:
        return None
    return session.get(Mailbox, relay.login_mailbox_id)


def _login_mailbox(session: Session, name: str) -> tuple[Mailbox | None, str | None]:
    """The connected mailbox the relay is to log in as (``None`` for none named), or
    why the name given is none."""
    name = name.strip().lower()
    if not name:
        return None, None
    mailbox = _row(session, name) if _NAME.fullmatch(name) else None
    if mailbox is None or mailbox.host is None or mailbox.auth != "oauth":
        return None, "choose a mailbox connected with Microsoft 365 or Google"
    return mailbox, None


def remove_relay(session: Session) -> MailRelay:
    """Go back to CONSULTANT_SMTP_URL (or to ``.eml`` files when that is unset)."""
    relay = session.get(MailRelay, RELAY_ID)
    if relay is None:
        raise MailboxError("no relay is set up here")
    session.delete(relay)
    session.flush()
    return relay


def describe_relay(relay: MailRelay | None, *, settings: Settings) -> dict[str, Any]:
    """The relay in use and where its settings come from; never its password."""
    if relay is not None:
        return {
            "source": DATABASE,
            "host": relay.host,
            "port": relay.port,
            "security": relay.security,
            "username": relay.username,
            "password": "set" if relay.password_sealed else "none",
            "login_mailbox": login_as.name if (login_as := _login_as(relay)) else None,
        }
    env = settings.smtp_url
    if env is None:
        return {"source": "none", "folder": str(settings.outbox_dir)}
    return {
        "source": ENVIRONMENT,
        "host": env.host,
        "port": env.port,
        "security": "tls" if env.tls else ("starttls" if env.starttls else "none"),
        "username": env.username,
        "password": "set" if env.password else "none",
        "login_mailbox": None,
    }


def relay_in_use(*, settings: Settings) -> dict[str, Any]:
    """:func:`describe_relay` of the relay the sender uses now."""
    with session_scope() as session:
        return describe_relay(session.get(MailRelay, RELAY_ID), settings=settings)


def current_relay(*, settings: Settings) -> RelayURL | None:
    """The relay to send through now: the one set up here, else CONSULTANT_SMTP_URL,
    else ``None`` (the outbox folder). :class:`consultant.sealed.SealedError` when the
    stored password opens with no key the desk has."""
    with session_scope() as session:
        relay = session.get(MailRelay, RELAY_ID)
        if relay is None:
            return settings.smtp_url
        return relay_url(relay, settings=settings)


def check_relay(*, settings: Settings) -> list[str]:
    """Test the relay in use step by step, as :func:`check_mailbox` does a mailbox."""
    try:
        relay = current_relay(settings=settings)
    except SealedError as exc:
        raise MailboxError(str(exc)) from None
    if relay is None:
        raise MailboxError(f"no relay: outgoing mail is written to {settings.outbox_dir}/")
    return probe_relay(relay, settings=settings)


def relay_url(relay: MailRelay, *, settings: Settings) -> RelayURL:
    password = (
        unseal(relay.password_sealed, settings=settings, whose=_whose(relay))
        if relay.password_sealed
        else ""
    )
    login_as = _login_as(relay)
    return RelayURL(
        tls=relay.security == "tls",
        starttls=relay.security == "starttls",
        host=relay.host,
        port=relay.port,
        # Logging in as a connected mailbox: its user now, should it have changed since.
        username=(login_as.username or relay.username) if login_as else relay.username,
        password=password,
        xoauth2=TokenSource(connection=login_as.id) if login_as else None,
    )


# --- sealed secrets -----------------------------------------------------------------------


def reseal_secrets(session: Session, *, settings: Settings) -> tuple[int, list[str]]:
    """Re-encrypt every stored secret with the current key, after a key rotation: how
    many were, and the errors of those no key opens (left as they are, to be typed
    again)."""
    rows: list[Mailbox | MailRelay] = [
        *session.exec(select(Mailbox).where(col(Mailbox.password_sealed).is_not(None))),
        *session.exec(select(MailRelay).where(col(MailRelay.password_sealed).is_not(None))),
    ]
    done, problems = 0, []
    for row in rows:
        assert row.password_sealed is not None
        try:
            row.password_sealed = reseal(row.password_sealed, settings=settings, whose=_whose(row))
        except SealedError as exc:
            problems.append(str(exc))
            continue
        session.add(row)
        done += 1
    connected = session.exec(select(Mailbox).where(col(Mailbox.oauth_refresh_sealed).is_not(None)))
    for mailbox in connected:
        try:
            reseal_tokens(mailbox, settings=settings)
        except SealedError as exc:
            problems.append(str(exc))
            continue
        session.add(mailbox)
        done += 1
    return done, problems


def _whose(row: Mailbox | MailRelay) -> str:
    if isinstance(row, Mailbox):
        return f"mailbox {row.name}'s password"
    return "the outgoing relay's password"


# --- shared -------------------------------------------------------------------------------


def _checked(
    typed: Mapping[str, str | int | None],
    *,
    ports: Mapping[str, int],
    password_required: bool,
    user_required: bool = True,
) -> dict[str, Any]:
    """What was typed, cleaned, or a :class:`MailboxError` naming every field at fault."""
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in typed.items():
        text = "" if value is None else str(value)
        if _CONTROL.search(text):
            problems[key] = "must not hold control characters (such as NUL or a line break)"
        elif len(text) > _LONGEST.get(key, 253):
            problems[key] = f"is longer than {_LONGEST.get(key, 253)} characters"
        clean[key] = text if key == "password" else text.strip()
    if "name" in typed and "name" not in problems:
        clean["name"] = clean["name"].lower()
        if not _NAME.fullmatch(clean["name"]):
            problems["name"] = (
                "letters, digits, dot, dash or underscore, starting with a letter or digit"
            )
    if "host" not in problems and not _is_host(clean["host"]):
        problems["host"] = "a host name or IP address, e.g. imap.example.com"
    if clean["security"] not in SECURITIES:
        problems["security"] = f"one of {', '.join(SECURITIES)}"
    clean["port"] = _port(clean["port"], default=ports.get(clean["security"]), problems=problems)
    if user_required and not clean["username"] and "username" not in problems:
        problems["username"] = "the user to log in as"
    if password_required and not clean["password"] and "password" not in problems:
        problems["password"] = "the password to log in with"
    if "folder" in typed and not clean["folder"] and "folder" not in problems:
        clean["folder"] = "INBOX"
    if problems:
        summary = "; ".join(f"{key}: {message}" for key, message in problems.items())
        raise MailboxError(f"not saved: {summary}", fields=problems)
    return clean


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return bool(_HOST_NAME.fullmatch(host))


def _port(text: str, *, default: int | None, problems: dict[str, str]) -> int | None:
    """The port typed, or the usual one for the security chosen when left empty."""
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        problems["port"] = "a whole number from 1 to 65535 (or empty for the usual one)"
        return None
    return int(text)


def _apply(
    mailbox: Mailbox, clean: Mapping[str, Any], *, enabled: bool, settings: Settings
) -> None:
    for key in ("host", "port", "security", "username", "folder"):
        setattr(mailbox, key, clean[key])
    mailbox.enabled = enabled
    if clean["password"]:
        mailbox.password_sealed = seal(clean["password"], settings=settings)


def _restart_cursor(mailbox: Mailbox) -> None:
    mailbox.uidvalidity, mailbox.last_uid = None, 0
    mailbox.last_error, mailbox.failures = None, 0


def _row(session: Session, name: str) -> Mailbox | None:
    return session.exec(select(Mailbox).where(Mailbox.name == name)).first()


def _state(row: Mailbox | None) -> dict[str, Any]:
    """What ``consultant status`` shows of a mailbox without asking its server."""
    return {
        "uidvalidity": row.uidvalidity if row else None,
        "last_uid": row.last_uid if row else 0,
        "last_poll_at": row.last_poll_at.isoformat() if row and row.last_poll_at else None,
        "last_error": row.last_error if row else None,
        "failures": row.failures if row else 0,
        # Connected with OAuth 2.0: connected, token expiring or consent revoked.
        "connection": connection_state(row, now=utcnow()) if row else None,
        "provider": row.oauth_provider if row else None,
    }


def _describe_url(url: MailboxURL) -> dict[str, Any]:
    return {
        "name": url.name,
        "host": url.host,
        "port": url.port,
        "security": "tls" if url.tls else ("starttls" if url.starttls else "none"),
        "username": url.username,
        "auth": "xoauth2" if url.xoauth2 else "password",
        "password": "set" if url.password else "none",
        "folder": url.folder,
        "enabled": True,
    }
