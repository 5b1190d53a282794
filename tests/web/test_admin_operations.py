"""The admin's quarantine, outbox and catalog pages over HTTP: a suspect email read without
anything in it running or being fetched, released into a case or deleted with a reason
(its bytes kept); a failed reply sent again to the relay or cancelled; a code release
imported by upload, a bad file refused with its line. Each action audited with before
and after; coders and leads refused; garbage in a form answered with a message."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import AuditEntry, Event, InboundEmail, OutboxEmail, Ticket
from consultant.worker import drain
from tests.cases import case_email, store
from tests.codes.test_releases import FY2025_ROWS, order_file
from tests.conftest import DESK_ADDRESS, Desk
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import make_coder, new_case, sign_in

ADMIN = "root@desk.example"


def audited(action: str) -> list[str]:
    with session_scope() as session:
        query = select(AuditEntry.detail).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def inbound(inbound_id: int) -> InboundEmail:
    with session_scope() as session:
        found = session.get(InboundEmail, inbound_id)
        assert found is not None
        return found


def hostile_email() -> bytes:
    """A case whose HTML would run a script, call a tracker and link away, with an
    attachment, and markup in its subject."""
    message = EmailMessage()
    message["From"] = "dana@clinic.example"
    message["To"] = DESK_ADDRESS
    message["Subject"] = "<b>99213</b> with 20610?"
    message["Message-ID"] = "<hostile-1@clinic.example>"
    message.set_content("Knee injection and a separate E/M visit.")
    message.add_alternative(
        '<p onclick="steal()">Knee <script>alert(1)</script>'
        '<img src="https://tracker.example/p.gif"><a href="https://evil.example/">here</a></p>',
        subtype="html",
    )
    message.add_attachment(
        b"%PDF-1.4 not really", maintype="application", subtype="pdf", filename="notes.pdf"
    )
    return message.as_bytes()


@pytest.fixture
def failing_replies(desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An acknowledgement template that names a variable that does not exist: intake
    fails at its reply stage, and after one attempt the email is quarantined."""
    overrides = tmp_path / "overrides"
    (overrides / "email").mkdir(parents=True)
    broken = overrides / "email" / "ack.txt.j2"
    broken.write_text("Your case {{ reference }} is due {{ due_date_typo }}.\n")
    monkeypatch.setenv("CONSULTANT_TEMPLATE_OVERRIDES", str(overrides))
    monkeypatch.setenv("CONSULTANT_MAX_PROCESS_ATTEMPTS", "1")
    get_settings.cache_clear()
    return broken


def test_a_quarantined_email_is_read_safely_downloaded_and_released_into_a_case(
    client: TestClient, smtp_sink: SmtpSink, failing_replies: Path
) -> None:
    raw = hostile_email()
    inbound_id = store(raw)
    drain()
    assert inbound(inbound_id).status == "quarantined"  # type: ignore[arg-type]
    make_coder(ADMIN, role="admin")
    csrf = sign_in(client, ADMIN)

    listed = client.get("/admin/quarantine")
    assert f"#{inbound_id}" in listed.text and "dana@clinic.example" in listed.text
    assert "due_date_typo" in listed.text and "&lt;b&gt;99213&lt;/b&gt;" in listed.text

    shown = client.get(f"/admin/quarantine/{inbound_id}")
    assert shown.status_code == 200
    assert "&lt;b&gt;99213&lt;/b&gt;" in shown.text and "<b>99213" not in shown.text
    assert "notes.pdf · application/pdf" in shown.text
    assert "<script>alert" not in shown.text and 'tracker.example/p.gif"' not in shown.text
    frame = client.get(f"/admin/quarantine/{inbound_id}/html")
    assert "sandbox" in frame.headers["content-security-policy"]
    assert "Knee" in frame.text
    for inert in ("script", "onclick", "tracker.example", "evil.example", "href", "src="):
        assert inert not in frame.text
    source = client.get(f"/admin/quarantine/{inbound_id}/source")
    assert source.headers["content-type"] == "message/rfc822"
    assert source.headers["content-disposition"].startswith("attachment;")
    assert source.content == raw

    failing_replies.unlink()  # the admin fixed the template
    released = client.post(
        f"/admin/quarantine/{inbound_id}/release", data={"csrf": csrf}, follow_redirects=False
    )
    assert released.status_code == 303
    drain()
    email = inbound(inbound_id)  # type: ignore[arg-type]
    assert email.status == "processed" and email.ticket_id is not None
    assert len(smtp_sink.wait_for(1, timeout=10)) == 1  # the acknowledgement went out
    again = client.post(f"/admin/quarantine/{inbound_id}/release", data={"csrf": csrf})
    assert again.status_code == 404  # a processed email is a case's now, not set aside

    assert audited("admin.quarantine_email_viewed") == [f"email {inbound_id}"]
    assert audited("admin.quarantine_downloaded") == [f"email {inbound_id}"]
    assert audited("admin.quarantine_released") == [
        f"email {inbound_id}: status: 'quarantined' → 'received'"
    ]


def test_deleting_a_set_aside_email_needs_a_reason_and_keeps_its_bytes(
    client: TestClient,
) -> None:
    raw = b"this is not an email at all\x00\r\n"
    inbound_id = store(raw)
    drain()
    assert inbound(inbound_id).status == "failed"  # type: ignore[arg-type]
    make_coder(ADMIN, role="admin")
    csrf = sign_in(client, ADMIN)

    unreadable = client.get(f"/admin/quarantine/{inbound_id}")
    assert "cannot be read as an email" in unreadable.text
    assert "this is not an email at all" in unreadable.text  # its source, as text
    url = f"/admin/quarantine/{inbound_id}/delete"
    for reason, says in [
        ("", "say why the email is deleted"),
        ("\x00 \x00", "say why the email is deleted"),
        ("spam " * 2000, "at most 500"),
    ]:
        refused = client.post(url, data={"csrf": csrf, "reason": reason})
        assert refused.status_code == 400 and says in refused.text
        assert 'id="reason-error"' in refused.text  # beside the field
    assert inbound(inbound_id).status == "failed"  # type: ignore[arg-type]

    deleted = client.post(url, data={"csrf": csrf, "reason": "a scanner's test probe"})
    assert deleted.status_code == 200 and "deleted; its bytes are kept" in deleted.text
    email = inbound(inbound_id)  # type: ignore[arg-type]
    assert (email.status, email.deleted_by, email.raw) == ("deleted", ADMIN, raw)
    assert email.deleted_reason == "a scanner's test probe"
    assert f"#{inbound_id}" not in client.get("/admin/quarantine").text
    kept = client.get("/admin/quarantine?status=deleted")
    assert f"#{inbound_id}" in kept.text and "a scanner&#39;s test probe" in kept.text
    relapse = client.post(f"/admin/quarantine/{inbound_id}/release", data={"csrf": csrf})
    assert relapse.status_code == 400 and "deleted, nothing to retry" in relapse.text
    drain()
    assert inbound(inbound_id).status == "deleted"  # type: ignore[arg-type]

    assert audited("admin.quarantine_deleted") == [
        f"email {inbound_id}: status: 'failed' → 'deleted'; deleted_by: None → '{ADMIN}'; "
        "reason: a scanner's test probe"
    ]
    assert client.get("/admin/quarantine?after=9" + "9" * 40).status_code == 200
    assert client.get("/admin/quarantine/999999").status_code == 404


def test_a_refused_reply_is_sent_again_to_the_relay_or_cancelled(
    client: TestClient, smtp_sink: SmtpSink
) -> None:
    make_coder(ADMIN, role="admin")
    smtp_sink.fail_next(2, "550 5.1.1 mailbox unavailable")
    first, second = new_case("dana@clinic.example"), new_case("eve@clinic.example")
    with session_scope() as session:
        failed = session.exec(select(OutboxEmail).order_by(col(OutboxEmail.id))).all()
    assert [row.status for row in failed] == ["failed", "failed"]
    retry_id, cancel_id = failed[0].id, failed[1].id
    csrf = sign_in(client, ADMIN)

    page = client.get("/admin/outbox")
    assert "550 5.1.1 mailbox unavailable" in page.text and "eve@clinic.example" in page.text
    retried = client.post(f"/admin/outbox/{retry_id}/retry", data={"csrf": csrf})
    assert "Done: email" in retried.text and "queued again" in retried.text
    drain()
    [delivered] = smtp_sink.wait_for(1, timeout=10)
    assert failed[0].message_id in delivered.raw.decode()  # the same email, sent again
    cancelled = client.post(f"/admin/outbox/{cancel_id}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 200
    drain()
    assert len(smtp_sink.messages) == 1
    assert "Nothing failed or held." in client.get("/admin/outbox").text

    refused = client.post(f"/admin/outbox/{retry_id}/cancel", data={"csrf": csrf})
    assert refused.status_code == 400 and f"outgoing email {retry_id}: sent" in refused.text
    missing = client.post("/admin/outbox/424242/retry", data={"csrf": csrf})
    assert missing.status_code == 400 and "no such email" in missing.text

    with session_scope() as session:
        events = session.exec(
            select(Event.ticket_id, Event.kind).where(
                col(Event.kind).in_(["mail.retried", "mail.cancelled"])
            )
        ).all()
    assert sorted(events) == [(first, "mail.retried"), (second, "mail.cancelled")]
    [retry_detail] = audited("admin.outbox_retried")
    assert retry_detail.startswith(
        f"outbox {retry_id}: status: 'failed' → 'pending'; attempts: 1 → 0; next_attempt_at: "
    )
    assert audited("admin.outbox_cancelled") == [
        f"outbox {cancel_id}: status: 'failed' → 'cancelled'"
    ]


def test_an_icd10cm_release_is_imported_by_upload_and_a_bad_file_refused_by_its_line(
    client: TestClient,
) -> None:
    make_coder(ADMIN, role="admin")
    csrf = sign_in(client, ADMIN)
    good = order_file(FY2025_ROWS)
    bad = good.replace(b"00003 E1165   1", b"00003 E1165   7")
    upload = "/admin/catalogs/icd10cm"

    refused = client.post(
        upload,
        data={"csrf": csrf, "effective": "2024-10-01"},
        files={"file": ("icd10cm_order_2025.txt", bad)},
    )
    assert refused.status_code == 400 and "line 3" in refused.text
    assert 'id="file-error"' in refused.text and "nothing was loaded" in refused.text
    garbage = client.post(
        upload,
        data={"csrf": csrf, "effective": "next \x00 year" * 500, "release": "x" * 5000},
        files={"file": ("icd10cm_order_2025.txt", good)},
    )
    assert garbage.status_code == 400 and 'id="effective-error"' in garbage.text
    assert "at most 40 characters" in garbage.text
    nothing = client.post(upload, data={"csrf": csrf, "effective": "2024-10-01"})
    assert nothing.status_code == 400 and "choose the file" in nothing.text

    imported = client.post(
        upload,
        data={"csrf": csrf, "effective": "2024-10-01"},
        files={"file": ("icd10cm_order_2025.txt", good)},
    )
    assert imported.status_code == 200 and "Done: imported icd10cm." in imported.text
    assert "2025: from 2024-10-01 onwards, 5 codes (icd10cm_order_2025.txt" in imported.text
    [detail] = audited("admin.catalog_imported")
    assert detail.startswith("icd10cm 2025 (effective 2024-10-01): 5 codes")
    assert "codes: None → 5" in detail and "releases: None → ['2025']" in detail

    cpt = client.post(
        "/admin/catalogs/cpt",
        data={"csrf": csrf},
        files={"file": ("cpt.csv", b"code,descriptor\n99213,Office visit\nnot-a-code,x\n")},
    )
    assert cpt.status_code == 400 and "line 3" in cpt.text and "not a CPT code" in cpt.text


@pytest.mark.parametrize("role", ["coder", "lead"])
def test_the_operations_pages_are_for_admins_only(client: TestClient, role: str) -> None:
    inbound_id = store(case_email("dana@clinic.example"))
    make_coder(f"{role}@desk.example", role=role)
    csrf = sign_in(client, f"{role}@desk.example")

    email = f"quarantine/{inbound_id}"
    for page in ("quarantine", email, f"{email}/source", f"{email}/html", "outbox", "catalogs"):
        assert client.get(f"/admin/{page}").status_code == 403, page
    for action in (f"{email}/release", f"{email}/delete", "outbox/1/retry", "outbox/1/cancel",
                   "catalogs/icd10cm", "catalogs/cpt"):  # fmt: skip
        posted = client.post(f"/admin/{action}", data={"csrf": csrf, "reason": "x"})
        assert posted.status_code == 403, action
    with session_scope() as session:
        assert session.exec(select(Ticket)).all() == []
        assert session.get(InboundEmail, inbound_id).status == "received"  # type: ignore[union-attr]


def test_a_mangled_address_gets_a_page_saying_so_never_a_server_error(client: TestClient) -> None:
    make_coder(ADMIN, role="admin")
    csrf = sign_in(client, ADMIN)
    past_any_row = "9" * 30

    for url in (f"/admin/quarantine/{past_any_row}", "/admin/quarantine/abc",
                f"/tickets/{past_any_row}", f"/attachments/{past_any_row}"):  # fmt: skip
        shown = client.get(url)
        assert shown.status_code == 422 and "not one the desk makes" in shown.text, url
    for url in (f"/admin/outbox/{past_any_row}/retry", f"/tickets/{past_any_row}/claim",
                f"/admin/quarantine/{past_any_row}/delete"):  # fmt: skip
        posted = client.post(url, data={"csrf": csrf, "reason": "x"})
        assert posted.status_code == 422 and "not one the desk makes" in posted.text, url
    assert client.get("/admin/quarantine/2147483647").status_code == 404
