"""The IMAP poller against a real Dovecot: cursor, UIDVALIDITY, IDLE, flags."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from sqlmodel import func, select

from consultant.config import get_settings, parse_mailbox_url
from consultant.db import session_scope
from consultant.locks import MailboxLock
from consultant.mail.imap import STORED_KEYWORD, ImapAuthError, poll_once, watch
from consultant.models import InboundEmail, Mailbox, Ticket
from consultant.worker import LocalWorker, drain
from tests.conftest import MAIL_USER, CaseMailbox, Desk, read_email
from tests.servers.redis_server import RedisServer

CASES = ("case-home-infusion.eml", "case-with-pdf-attachment.eml")


def tickets() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(Ticket)).one()


@pytest.fixture
def watching(desk: Desk, mailbox: CaseMailbox) -> Iterator[CaseMailbox]:
    """The poller following the test's folder and the in-process worker, as `consultant run`."""
    stop = threading.Event()
    worker = LocalWorker(interval=30)
    poller = threading.Thread(
        target=watch,
        kwargs={
            "mailbox": parse_mailbox_url(mailbox.url),
            "settings": get_settings(),
            "stop": stop,
        },
    )
    worker.start()
    poller.start()
    yield mailbox
    stop.set()
    worker.stop()
    poller.join(timeout=10)
    worker.join(timeout=10)


def test_an_email_arriving_while_the_poller_idles_is_a_ticket_within_two_seconds(
    watching: CaseMailbox,
) -> None:
    time.sleep(1)  # let the poller catch up and enter IDLE
    watching.append(read_email("case-home-infusion.eml"))
    arrived = time.monotonic()

    while tickets() == 0 and time.monotonic() - arrived < 2:
        time.sleep(0.05)

    assert tickets() == 1, "no ticket two seconds after the email arrived"


def test_a_new_uidvalidity_rescans_the_folder_without_duplicates(
    desk: Desk, mailbox: CaseMailbox
) -> None:
    mailbox.append(*(read_email(name) for name in CASES))
    target = parse_mailbox_url(mailbox.url)
    poll_once(target, settings=get_settings())

    mailbox.server.recreate_folder(MAIL_USER, mailbox.folder)
    mailbox.append(*(read_email(name) for name in CASES))
    again = poll_once(target, settings=get_settings())
    drain()

    assert (again.rescanned, again.seen, again.stored) == (True, 2, [])
    assert tickets() == 2


def test_the_same_email_twice_in_one_fetched_batch_is_stored_once(
    desk: Desk, mailbox: CaseMailbox
) -> None:
    case = read_email("case-home-infusion.eml")
    mailbox.append(case, read_email("case-with-pdf-attachment.eml"), case)

    report = poll_once(parse_mailbox_url(mailbox.url), settings=get_settings())
    drain()

    assert (report.seen, len(report.stored)) == (3, 2)
    assert tickets() == 2


def test_stored_emails_are_flagged_but_stay_unread(desk: Desk, mailbox: CaseMailbox) -> None:
    mailbox.append(read_email("case-home-infusion.eml"))
    poll_once(parse_mailbox_url(mailbox.url), settings=get_settings())

    with mailbox.server.client(MAIL_USER) as client:
        client.select_folder(mailbox.folder, readonly=True)
        [flags] = client.get_flags(client.search("ALL")).values()
    assert STORED_KEYWORD in flags
    assert b"\\Seen" not in flags
    with session_scope() as session:
        [email] = session.exec(select(InboundEmail)).all()
    assert email.uid is not None and email.uidvalidity is not None


def test_a_refused_login_is_recorded_on_the_mailbox(desk: Desk, mailbox: CaseMailbox) -> None:
    wrong = parse_mailbox_url(mailbox.url.replace(":test-only-password@", ":wrong@"))
    with pytest.raises(ImapAuthError):
        poll_once(wrong, settings=get_settings())

    with session_scope() as session:
        [row] = session.exec(select(Mailbox)).all()
    assert row.last_error is not None and "login refused" in row.last_error


def test_status_shows_each_mailboxs_lag_and_a_bad_login(desk: Desk, mailbox: CaseMailbox) -> None:
    mailbox.append(*(read_email(name) for name in CASES))
    desk.env["CONSULTANT_IMAP_URL"] = ",".join(
        [
            mailbox.url,
            mailbox.url.replace(":test-only-password@", ":wrong@").replace("/Case", "/Other"),
        ]
    )
    before = json.loads(desk.consultant("status", "--json").stdout)
    desk.consultant("run", "--once")
    after = json.loads(desk.consultant("status", "--json").stdout)

    good, bad = before["mailboxes"]
    assert (good["reachable"], good["waiting"], good["last_poll_at"]) == (True, 2, None)
    assert bad["reachable"] is False and "login refused" in bad["last_error"]
    good, bad = after["mailboxes"]
    assert (good["waiting"], good["last_uid"]) == (0, 2) and good["last_poll_at"]
    assert after["inbound"] == {"processed": 2}
    assert after["outbox"] == {"sent": 2}
    checked = desk.consultant("status")
    assert checked.returncode == 1  # a mailbox is unreachable: monitoring should notice
    shown = checked.stdout.splitlines()
    assert shown[0].startswith(f"mailbox {parse_mailbox_url(mailbox.url).name}: 0 waiting;")
    assert f"cursor UIDVALIDITY {good['uidvalidity']}, UID 2;" in shown[0]
    assert "UNREACHABLE" in shown[1] and "login refused" in shown[2]
    # One failed poll (run --once); asking the server for `status` is not a poll.
    assert (good["failures"], bad["failures"]) == (0, 1)
    assert shown[3] == "  failed polls since the last good one: 1"
    desk.env["CONSULTANT_IMAP_URL"] = mailbox.url
    assert desk.consultant("status").returncode == 0


def test_an_admin_can_have_stored_emails_moved_to_a_processed_folder(
    desk: Desk, mailbox: CaseMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = f"{mailbox.folder}-done"
    monkeypatch.setenv("CONSULTANT_IMAP_PROCESSED_FOLDER", done)
    get_settings.cache_clear()
    mailbox.append(*(read_email(name) for name in CASES))
    target = parse_mailbox_url(mailbox.url)

    first = poll_once(target, settings=get_settings())
    mailbox.append(read_email("out-of-office-auto-submitted.eml"))
    second = poll_once(target, settings=get_settings())

    assert (len(first.stored), len(second.stored)) == (2, 1)
    with mailbox.server.client(MAIL_USER) as client:
        assert client.select_folder(mailbox.folder)[b"EXISTS"] == 0
        assert client.select_folder(done)[b"EXISTS"] == 3


def test_a_poller_leaves_a_mailbox_alone_while_another_holds_its_lock(
    celery_desk: Desk, mailbox: CaseMailbox, redis_server: RedisServer
) -> None:
    target = parse_mailbox_url(mailbox.url)
    other_poller = MailboxLock(target.name, broker_url=redis_server.url)
    assert other_poller.acquire()
    stop = threading.Event()
    poller = threading.Thread(
        target=watch, kwargs={"mailbox": target, "settings": get_settings(), "stop": stop}
    )
    poller.start()
    try:
        mailbox.append(read_email("case-home-infusion.eml"))
        time.sleep(2)
        assert stored_count() == 0  # not this poller's mailbox while the lock is held

        other_poller.release()
        deadline = time.monotonic() + 15
        while stored_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stored_count() == 1
    finally:
        stop.set()
        poller.join(timeout=10)


def stored_count() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(InboundEmail)).one()
