"""The mailboxes page: a mailbox added there is polled without a restart, a connection
test names the step that failed in the server's words, garbage is refused beside its
field, and every change is audited with before and after but never a password."""

from __future__ import annotations

import re
import time

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import AuditEntry, InboundEmail, OutboxEmail, Ticket
from consultant.pollers import Pollers
from consultant.worker import drain
from tests.cases import case_email
from tests.conftest import MAIL_PASSWORD, MAIL_USER, CaseMailbox
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import PASSWORD, make_coder, new_case, sign_in, unused_code


def mailbox_form(csrf: str, mailbox: CaseMailbox, **changes: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "name": "support",
        "host": mailbox.server.host,
        "port": str(mailbox.server.port),
        "security": "none",
        "username": MAIL_USER,
        "password": MAIL_PASSWORD,
        "folder": mailbox.folder,
        "enabled": "yes",
        **changes,
    }


def audited(action: str) -> list[str]:
    with session_scope() as session:
        query = select(AuditEntry.detail).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def signed_in_admin(client: TestClient) -> str:
    make_coder("root@desk.example", role="admin")
    return sign_in(client, "root@desk.example")


def wait_for(condition: object, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def stored_emails() -> int:
    with session_scope() as session:
        return len(session.exec(select(InboundEmail.id)).all())


def test_a_mailbox_added_on_the_page_is_polled_and_stops_when_disabled(
    client: TestClient, mailbox: CaseMailbox
) -> None:
    csrf = signed_in_admin(client)
    pollers = Pollers(settings=get_settings())
    pollers.refresh()
    assert pollers.names() == []  # nothing to follow yet
    mailbox.append(case_email("dana@clinic.example", subject="99213 with modifier 25?"))

    added = client.post("/admin/mailboxes", data=mailbox_form(csrf, mailbox))
    assert "Done: added mailbox support." in added.text
    assert MAIL_PASSWORD not in added.text
    try:
        pollers.refresh()  # what the running desk does every poll interval
        assert pollers.names() == ["support"]
        wait_for(lambda: stored_emails() == 1)
        drain()
        with session_scope() as session:
            assert "99213 with modifier 25?" in session.exec(select(Ticket.subject)).one()

        page = client.get("/admin/mailboxes")
        assert "Last error</dt><dd>none" in page.text and "UID 1" in page.text
        client.post(
            "/admin/mailboxes/support/change",
            data=mailbox_form(csrf, mailbox, enabled="", password=""),
        )
        pollers.refresh()
        assert pollers.names() == []
    finally:
        pollers.stop_all()
    [added_detail] = audited("admin.mailbox_added")
    assert f"folder: None → '{mailbox.folder}'" in added_detail
    assert "password: None → 'set'" in added_detail
    [changed] = audited("admin.mailbox_changed")
    assert changed == "support: enabled: True → False"


def test_a_connection_test_names_the_step_that_failed_in_the_server_s_words(
    client: TestClient, mailbox: CaseMailbox
) -> None:
    csrf = signed_in_admin(client)
    client.post("/admin/mailboxes", data=mailbox_form(csrf, mailbox))

    works = client.post("/admin/mailboxes/support/test", data={"csrf": csrf})
    assert "Connection works: resolve host" in works.text
    assert f"log in → open folder {mailbox.folder}" in works.text

    def tested_after(**changes: str) -> str:
        client.post("/admin/mailboxes/support/change", data=mailbox_form(csrf, mailbox, **changes))
        return client.post("/admin/mailboxes/support/test", data={"csrf": csrf}).text

    wrong_password = tested_after(password="not-the-password")
    assert "failed at <strong>log in</strong>" in wrong_password
    assert "AUTHENTICATIONFAILED" in wrong_password  # Dovecot's own words
    missing = tested_after(password=MAIL_PASSWORD, folder="NoSuchFolder")
    assert "failed at <strong>open folder</strong>" in missing and "exist" in missing
    closed = tested_after(folder=mailbox.folder, port=str(free_port()))
    assert "failed at <strong>connect</strong>: Connection refused" in closed
    no_tls = tested_after(port=str(mailbox.server.port), security="tls")
    assert "failed at <strong>TLS handshake</strong>" in no_tls

    outcomes = audited("admin.mailbox_tested")
    assert outcomes[0] == "support: works"
    assert outcomes[1].startswith("support: log in failed: ")
    assert all("not-the-password" not in row for row in audited("admin.mailbox_changed"))
    assert "support: password replaced" in audited("admin.mailbox_changed")[0]


def test_the_relay_set_on_the_page_is_tested_and_used_for_the_next_email(
    client: TestClient, smtp_sink: SmtpSink
) -> None:
    csrf = signed_in_admin(client)
    host, port = smtp_sink.url.removeprefix("smtp://").rsplit(":", 1)
    relay = {"csrf": csrf, "host": host, "port": str(free_port()), "security": "none"}

    client.post("/admin/relay", data=relay)
    refused = client.post("/admin/relay/test", data={"csrf": csrf})
    assert "failed at <strong>connect</strong>" in refused.text
    client.post("/admin/relay", data={**relay, "port": port})
    works = client.post("/admin/relay/test", data={"csrf": csrf})
    assert "Connection works: resolve host" in works.text and "EHLO" in works.text
    starttls = client.post("/admin/relay", data={**relay, "port": port, "security": "starttls"})
    assert starttls.status_code == 200
    no_starttls = client.post("/admin/relay/test", data={"csrf": csrf})
    assert "failed at <strong>STARTTLS</strong>" in no_starttls.text
    assert "source: 'environment' → 'database'" in audited("admin.relay_set")[0]

    client.post("/admin/relay", data={**relay, "port": str(free_port())})
    new_case()  # its acknowledgement goes to the relay set here, not CONSULTANT_SMTP_URL's
    with session_scope() as session:
        [error] = session.exec(select(OutboxEmail.last_error)).all()
    assert "relay unreachable" in (error or "") and smtp_sink.messages == []
    removed = client.post("/admin/relay/remove", data={"csrf": csrf}, follow_redirects=True)
    assert "(CONSULTANT_SMTP_URL; a relay set here replaces it)" in removed.text


def test_garbage_is_refused_beside_its_field_and_kept_as_typed(
    client: TestClient, mailbox: CaseMailbox
) -> None:
    csrf = signed_in_admin(client)
    garbage = mailbox_form(
        csrf, mailbox, name="Support\x00", host="", port="99999999999999999999",
        username="x" * 5000, security="ssl", folder="In\x00box",
    )  # fmt: skip
    refused = client.post("/admin/mailboxes", data=garbage)
    assert refused.status_code == 400
    for message in (
        "Name: must not hold control characters",
        "Host: a host name or IP address",
        "Port: a whole number from 1 to 65535",
        "User: is longer than 320 characters",
        "Security: one of tls, starttls, none",
        "Folder: must not hold control characters",
    ):
        assert 'class="field-error" id="new-' in refused.text
        assert message in refused.text, message
    assert 'value="99999999999999999999"' in refused.text  # kept as typed
    assert MAIL_PASSWORD not in refused.text  # a password is never echoed back
    negative = client.post("/admin/mailboxes", data=mailbox_form(csrf, mailbox, port="-5"))
    assert negative.status_code == 400 and 'id="new-port-problem"' in negative.text
    unknown = client.post("/admin/mailboxes/nobody/change", data=mailbox_form(csrf, mailbox))
    assert unknown.status_code == 400 and "no mailbox named" in unknown.text
    assert client.post("/admin/mailboxes/nobody/test", data={"csrf": csrf}).status_code == 200
    assert audited("admin.mailbox_added") == []


def test_the_mailboxes_page_is_for_admins_only(client: TestClient, mailbox: CaseMailbox) -> None:
    make_coder("lead@desk.example", role="lead")
    csrf = sign_in(client, "lead@desk.example")
    assert client.get("/admin/mailboxes").status_code == 403
    assert client.post("/admin/mailboxes", data=mailbox_form(csrf, mailbox)).status_code == 403
    assert client.post("/admin/relay/test", data={"csrf": csrf}).status_code == 403


def test_an_admin_adds_a_mailbox_in_the_browser_tests_it_and_finds_it_audited(
    page: Page, dashboard: str, mailbox: CaseMailbox
) -> None:
    make_coder("root@desk.example", role="admin")
    page.goto(f"{dashboard}/queue")
    page.get_by_label("Email address").fill("root@desk.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    key = page.locator("code.secret").inner_text()
    page.get_by_label("Code").fill(unused_code("root@desk.example", key))
    page.get_by_role("button", name="Set up and sign in").click()
    page.get_by_role("link", name="Mailboxes").click()

    add = page.get_by_role("region", name="Add a mailbox")
    add.get_by_label("Name").fill("support")
    add.get_by_label("Port").fill(str(mailbox.server.port))
    add.get_by_label("Security").select_option("none")
    add.get_by_label("User").fill(MAIL_USER)
    add.get_by_label("Password").fill(MAIL_PASSWORD)
    add.get_by_label("Folder").fill(mailbox.folder)
    add.get_by_role("button", name="Add mailbox").click()  # no host: refused beside it
    add = page.get_by_role("region", name="Add a mailbox")
    expect(add.locator("#new-host-problem")).to_have_text(
        "Host: a host name or IP address, e.g. imap.example.com"
    )
    expect(add.get_by_label("Folder")).to_have_value(mailbox.folder)  # kept as typed
    add.get_by_label("Host").fill(mailbox.server.host)
    add.get_by_label("Password").fill(MAIL_PASSWORD)  # never shown again, so typed again
    add.get_by_role("button", name="Add mailbox").click()
    expect(page.get_by_role("status").first).to_have_text("Done: added mailbox support.")

    support = page.get_by_role("article", name="Mailbox support")
    expect(support).to_contain_text(re.compile(r"Last poll\s*never"))
    support.get_by_role("button", name="Test connection").click()
    support = page.get_by_role("article", name="Mailbox support")
    expect(support.get_by_role("status")).to_contain_text(
        f"Connection works: resolve host (127.0.0.1) → connect to port {mailbox.server.port}"
    )

    page.goto(f"{dashboard}/audit?action=admin")
    expect(page.get_by_role("row").filter(has_text="admin.mailbox_added")).to_contain_text(
        f"folder: None → '{mailbox.folder}'"
    )
    expect(page.get_by_role("row").filter(has_text="admin.mailbox_tested")).to_contain_text(
        "support: works"
    )
