"""The IMAP poller: copy new emails from a mailbox into the database, and nothing more.

The cursor is RFC 9051's: (mailbox, UIDVALIDITY, UID) names one email forever. Each batch
of emails is stored in the same transaction that advances the cursor, so a crash
anywhere repeats at most one batch, and a repeated email is refused by its fingerprint.
Emails are fetched with ``BODY.PEEK[]`` (their ``\\Seen`` flag stays as it was) and, once
committed, flagged with the keyword ``$CaseConsultant``; the poller moves and deletes
nothing.

Connections are TLS from the first byte (``imaps://``, RFC 8314) or upgraded with
STARTTLS before any credential is sent (``imap://…?starttls=true``), with verified
certificates either way. The login is the URL's password, or an XOAUTH2 access token
read afresh at every connect (``auth=xoauth2``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError
from sqlmodel import Session, select

from consultant import dispatch
from consultant.config import MailboxURL, Settings
from consultant.db import session_scope
from consultant.inbound import Arrival, store_arrivals
from consultant.locks import TTL_SECONDS as LOCK_TTL
from consultant.locks import MailboxLock
from consultant.mail.oauth_access import ConsentRevoked, access_token_for
from consultant.mail.tls import tls_context
from consultant.mail.tokens import TokenError, access_token
from consultant.models import Mailbox, utcnow
from consultant.retry import backoff

log = logging.getLogger(__name__)

BODY = b"BODY[]"
STORED_KEYWORD = b"$CaseConsultant"  # an IMAP keyword (RFC 9051 2.3.2) on stored emails
DELETED = b"\\Deleted"
IDLE_CHECK_SECONDS = 1.0  # how often an idling poller looks at its stop flag
LOCK_RETRY_SECONDS = 5.0  # how often a waiting poller tries the mailbox's lock
BODY_PEEK = b"BODY.PEEK[]"  # answered as BODY[]; PEEK leaves \Seen alone (RFC 9051 6.4.5)
MAX_BACKOFF_SECONDS = 300.0
RECONNECT_CHECK_SECONDS = 30.0  # how often a revoked mailbox's poller looks for a reconnect


class ImapError(Exception):
    """The mailbox could not be read this time; the next poll tries again."""


class ImapAuthError(ImapError):
    """The server refused the credentials: retrying will not help until someone fixes them."""


class ImapConsentRevoked(ImapAuthError):
    """The mailbox's OAuth consent is gone: nothing is tried until an admin reconnects it."""


@dataclass
class PollReport:
    mailbox: str
    seen: int = 0  # emails fetched
    stored: list[int] = field(default_factory=list)  # ids of newly stored emails
    rescanned: bool = False  # UIDVALIDITY changed, so the whole folder was read again


def poll_once(mailbox: MailboxURL, *, settings: Settings) -> PollReport:
    """Fetch every email past the cursor, store it, and announce it to the engine."""
    with _errors_reported(mailbox), _connect(mailbox, settings=settings) as client:
        report = catch_up(client, mailbox, settings=settings)
    _record_success(mailbox.name)
    return report


def watch(mailbox: MailboxURL, *, settings: Settings, stop: threading.Event) -> None:
    """Follow a mailbox until ``stop`` is set: one connection, IDLE where the server has it.

    After every (re)connect it catches up by UID SEARCH from the stored cursor, never
    trusting IDLE alone (RFC 2177 lets a server drop notifications). Without IDLE it
    polls every ``poll_interval`` seconds. Failures reconnect with capped, jittered backoff;
    a refused login is logged as critical and recorded on the mailbox for ``consultant
    status``, and retried only slowly. A mailbox whose OAuth consent was revoked is not
    tried again until an admin connects it anew.
    """
    lock = MailboxLock(mailbox.name, broker_url=settings.broker_url)
    failures = 0
    while not stop.is_set():
        revoked = False
        if not lock.acquire():
            log.info("%s: another poller follows this mailbox; waiting", mailbox.name)
            stop.wait(LOCK_RETRY_SECONDS)
            continue
        try:
            with _errors_reported(mailbox), _connect(mailbox, settings=settings) as client:
                failures = 0
                _follow(client, mailbox, settings=settings, stop=stop, lock=lock)
        except ImapConsentRevoked as exc:
            log.critical("%s", exc)
            revoked = True
        except ImapAuthError as exc:
            log.critical(
                "%s — fix its password or access token (CONSULTANT_IMAP_URL or the "
                "dashboard's mailboxes page)",
                exc,
            )
            failures += 1
        except ImapError:
            failures += 1
        except Exception:  # the database may be down; the mailbox keeps the email meanwhile
            log.exception("%s: poll failed", mailbox.name)
            failures += 1
        finally:
            lock.release()
        if revoked and mailbox.xoauth2 and mailbox.xoauth2.connection is not None:
            _until_reconnected(mailbox.xoauth2.connection, stop=stop)
            failures = 0
        elif failures:
            stop.wait(backoff(failures, base=1.0, cap=MAX_BACKOFF_SECONDS).total_seconds())


def _until_reconnected(mailbox_id: int, *, stop: threading.Event) -> None:
    """Wait, asking only the database, until an admin has connected the mailbox again."""
    while not stop.wait(RECONNECT_CHECK_SECONDS):
        with session_scope() as session:
            row = session.get(Mailbox, mailbox_id)
            if row is None or row.oauth_revoked_at is None:
                return


def _follow(
    client: IMAPClient,
    mailbox: MailboxURL,
    *,
    settings: Settings,
    stop: threading.Event,
    lock: MailboxLock,
) -> None:
    """Catch up, wait for news, repeat — while this process still holds the mailbox."""
    can_idle = client.has_capability("IDLE")
    # Come back often enough to renew the lock before it expires.
    wait = min(settings.imap_idle_seconds if can_idle else settings.poll_interval, LOCK_TTL / 3)
    while not stop.is_set() and lock.keep():
        catch_up(client, mailbox, settings=settings)
        _record_success(mailbox.name)
        if can_idle:
            _idle_until_news(client, stop=stop, renew_after=wait)
        else:
            stop.wait(wait)


def _idle_until_news(client: IMAPClient, *, stop: threading.Event, renew_after: float) -> None:
    """IDLE until the server reports new mail, ``stop`` is set, or it is time to renew.

    Servers may end an IDLE after 30 minutes (RFC 2177); renewing well before keeps the
    connection known to be alive.
    """
    deadline = time.monotonic() + renew_after
    client.idle()
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            responses = client.idle_check(timeout=IDLE_CHECK_SECONDS)
            if any(_announces_mail(response) for response in responses):
                return
    finally:
        client.idle_done()


def _announces_mail(response: tuple[object, ...]) -> bool:
    return len(response) > 1 and response[1] in (b"EXISTS", b"RECENT")


def catch_up(client: IMAPClient, mailbox: MailboxURL, *, settings: Settings) -> PollReport:
    """Store every email past the cursor, batch by batch, marking each batch once stored."""
    report = PollReport(mailbox=mailbox.name)
    status = client.select_folder(mailbox.folder)
    uidvalidity = int(status[b"UIDVALIDITY"])
    mailbox_id, last_uid, report.rescanned = _cursor(mailbox.name, uidvalidity)
    processed_folder = settings.imap_processed_folder
    left_behind = _stored_not_set_aside(client, last_uid, moving=bool(processed_folder))
    if left_behind:
        _set_aside(client, mailbox, left_behind, processed_folder=processed_folder)
    for batch in _batches(_new_uids(client, last_uid), settings.imap_batch_size):
        fetched = client.fetch(batch, [BODY_PEEK])
        arrivals = [
            Arrival(
                raw=fetched[uid][BODY],
                source="imap",
                mailbox_id=mailbox_id,
                uidvalidity=uidvalidity,
                uid=uid,
            )
            for uid in batch
            if uid in fetched and BODY in fetched[uid]  # expunged meanwhile: skip
        ]
        report.seen += len(arrivals)
        stored = _store_batch(mailbox_id, arrivals, last_uid=max(batch))
        report.stored.extend(stored)
        dispatch.inbound_stored(stored)
        _set_aside(client, mailbox, batch, processed_folder=processed_folder)
    return report


def _stored_not_set_aside(client: IMAPClient, last_uid: int, *, moving: bool) -> list[int]:
    """Emails at or below the cursor that a poller stored but died before flagging or
    moving: without this they would stay unmarked in the folder for ever."""
    if last_uid == 0:
        return []
    criteria: list[str | bytes] = ["UID", f"1:{last_uid}"]
    if not moving:
        criteria += ["UNKEYWORD", STORED_KEYWORD]
    return sorted(client.search(criteria))


def _set_aside(
    client: IMAPClient, mailbox: MailboxURL, uids: list[int], *, processed_folder: str
) -> None:
    """Show people reading the mailbox what the desk has taken: flag it, or move it.

    Only after the commit. The cursor, not the flag or the folder, is what the poller
    trusts, so a failure here loses nothing and is only logged. A move uses ``UID MOVE``
    (RFC 6851) where the server has it; otherwise COPY, ``\\Deleted`` and ``UID EXPUNGE``
    of exactly these UIDs (RFC 4315), never a plain EXPUNGE, which would also remove
    other clients' deleted mail.
    """
    try:
        client.add_flags(uids, [STORED_KEYWORD], silent=True)
        if not processed_folder:
            return
        if not client.folder_exists(processed_folder):
            client.create_folder(processed_folder)
        if client.has_capability("MOVE"):
            client.move(uids, processed_folder)
        elif client.has_capability("UIDPLUS"):
            client.copy(uids, processed_folder)
            client.add_flags(uids, [DELETED], silent=True)
            client.uid_expunge(uids)
        else:
            log.warning(
                "%s: the server can neither MOVE nor UID EXPUNGE; flagged only", mailbox.name
            )
    except IMAPClientError as exc:
        log.warning("%s: could not set %s stored emails aside: %s", mailbox.name, len(uids), exc)


@contextmanager
def _errors_reported(mailbox: MailboxURL, *, poll: bool = True) -> Iterator[None]:
    """Turn the protocol's failures into ours; a failed poll is also recorded on the
    mailbox row (``consultant status`` asking the server is not a poll)."""
    try:
        yield
    except LoginError as exc:
        if poll:
            _record_error(mailbox.name, f"login refused: {exc}")
        raise ImapAuthError(f"{mailbox.name}: login refused") from exc
    except ConsentRevoked as exc:  # its last_error is recorded already
        raise ImapConsentRevoked(str(exc)) from exc
    except (IMAPClientError, OSError, TokenError) as exc:  # OSError: also a bad certificate
        if poll:
            _record_error(mailbox.name, str(exc))
        raise ImapError(f"{mailbox.name}: {exc}") from exc


def _connect(mailbox: MailboxURL, *, settings: Settings) -> IMAPClient:
    """A logged-in connection, over verified TLS whenever the URL asks for TLS.

    The access token is fetched before connecting: a failing token source costs the
    server nothing, and never falls back to the password.
    """
    token = login_token(mailbox, settings=settings)
    client = IMAPClient(
        mailbox.host,
        port=mailbox.port,
        ssl=mailbox.tls,  # implicit TLS (RFC 8314); the context is used only then
        ssl_context=tls_context(),
        timeout=SocketTimeout(
            connect=settings.imap_connect_timeout, read=settings.imap_read_timeout
        ),
    )
    try:
        if mailbox.starttls:
            # Before any credential (RFC 9051 6.2.1). A server that does not offer
            # STARTTLS makes imapclient raise: the login is never sent in the clear.
            client.starttls(ssl_context=tls_context())
        log_in(client, mailbox, token=token)
    except BaseException:
        # A failed STARTTLS handshake has closed the socket already; shutting it down
        # again would raise EBADF and hide the certificate error.
        with contextlib.suppress(OSError):
            client.shutdown()
        raise
    return client


def login_token(mailbox: MailboxURL, *, settings: Settings) -> str | None:
    """The XOAUTH2 token: the desk's own for a connected mailbox, else the file's or the
    command's; ``None`` for a password login."""
    source = mailbox.xoauth2
    if source is None:
        return None
    if source.connection is not None:
        return access_token_for(source.connection, settings=settings)
    return access_token(source, timeout=settings.imap_token_command_timeout)


def log_in(client: IMAPClient, mailbox: MailboxURL, *, token: str | None) -> None:
    """Log in with the access token when there is one, else with the URL's password.

    XOAUTH2 is Google's and Microsoft's SASL mechanism (its standard sibling is RFC
    7628's OAUTHBEARER). The server refusing the token is a ``LoginError``, as a refused
    password is, so both end up as :class:`ImapAuthError`.
    """
    if token is None:
        client.login(mailbox.username, mailbox.password)
    else:
        client.oauth2_login(mailbox.username, token)


def _new_uids(client: IMAPClient, last_uid: int) -> list[int]:
    # "UID n:*" always matches the highest UID, even one below n (RFC 9051 6.4.8):
    # filter, or the last email would be fetched on every poll.
    uids = client.search(["UID", f"{last_uid + 1}:*"])
    return sorted(uid for uid in uids if uid > last_uid)


def _batches(uids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]


def _cursor(name: str, uidvalidity: int) -> tuple[int, int, bool]:
    """The mailbox row's id and last UID; a new UIDVALIDITY restarts from UID 0."""
    with session_scope() as session:
        mailbox = _mailbox_row(session, name)
        rescan = mailbox.uidvalidity is not None and mailbox.uidvalidity != uidvalidity
        if rescan:
            log.warning("%s: UIDVALIDITY changed, reading the folder again", name)
        if mailbox.uidvalidity != uidvalidity:
            mailbox.uidvalidity = uidvalidity
            mailbox.last_uid = 0
            session.add(mailbox)
            session.flush()
        assert mailbox.id is not None
        return mailbox.id, mailbox.last_uid, rescan


def _store_batch(mailbox_id: int, arrivals: list[Arrival], *, last_uid: int) -> list[int]:
    """Store a batch and move the cursor past it, in one transaction."""
    with session_scope() as session:
        stored = store_arrivals(session, arrivals)
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        mailbox.last_uid = max(mailbox.last_uid, last_uid)
        session.add(mailbox)
    return stored


def _mailbox_row(session: Session, name: str) -> Mailbox:
    mailbox = session.exec(select(Mailbox).where(Mailbox.name == name)).first()
    if mailbox is None:
        mailbox = Mailbox(name=name)
        session.add(mailbox)
        session.flush()
    return mailbox


def _record_success(name: str) -> None:
    with session_scope() as session:
        mailbox = _mailbox_row(session, name)
        mailbox.last_poll_at = utcnow()
        mailbox.last_error = None
        mailbox.failures = 0
        session.add(mailbox)


def _record_error(name: str, error: str) -> None:
    log.error("%s: %s", name, error)
    try:
        with session_scope() as session:
            mailbox = _mailbox_row(session, name)
            mailbox.last_error = error[:2000]
            mailbox.failures += 1
            session.add(mailbox)
    except Exception:  # the database may be what failed; the log line above remains
        log.exception("%s: could not record the error", name)


def count_waiting(mailbox: MailboxURL, *, settings: Settings) -> int:
    """How many emails in the folder are past the stored cursor: the poller's lag."""
    with session_scope() as session:
        row = session.exec(select(Mailbox).where(Mailbox.name == mailbox.name)).first()
        cursor = (row.uidvalidity, row.last_uid) if row else (None, 0)
    with _errors_reported(mailbox, poll=False), _connect(mailbox, settings=settings) as client:
        status = client.select_folder(mailbox.folder, readonly=True)
        if cursor[0] != int(status[b"UIDVALIDITY"]):
            return int(status[b"EXISTS"])  # a new UIDVALIDITY: everything is to be read
        return len(_new_uids(client, cursor[1]))
