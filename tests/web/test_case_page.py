"""Working a case in the dashboard: the queue finds it, the page shows it safely, and
claiming and answering go through the same functions as the command line — with the
collision guard, a double submit sent once, and every view and action audited."""

from __future__ import annotations

from email import message_from_bytes, policy

from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from consultant.db import session_scope
from consultant.inbound import Arrival, store_arrival
from consultant.models import AuditEntry, OutboxEmail, Ticket
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import DESK_ADDRESS, Desk, read_email
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import make_coder, new_case, sign_in
from tests.web.test_signing_in import audit_actions

ANSWER = "Report 99601 for the first two hours and 99602 once for the extra 1.5 hours."


def answers() -> int:
    with session_scope() as session:
        query = select(func.count()).select_from(OutboxEmail).where(OutboxEmail.kind == "answer")
        return session.exec(query).one()


def seen_on(page: str) -> str:
    marker = 'name="seen" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def test_the_queue_pages_through_cases_most_urgent_first_without_repeating_one(
    client: TestClient,
) -> None:
    make_coder("lead@desk.example", role="lead")
    for n in range(60):
        store(case_email(f"biller{n}@clinic{n}.example", subject=f"Question {n} on 99213"))
    drain()
    sign_in(client, "lead@desk.example")

    first = client.get("/queue?view=all")
    link = first.text.split('rel="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    second = client.get(link.replace("&amp;", "&"))

    shown = [line for page in (first, second) for line in page.text.split("<tr") if "CC-" in line]
    numbers = [line.split("CC-", 1)[1].split("<", 1)[0] for line in shown]
    assert len(numbers) == 60 and len(set(numbers)) == 60
    assert 'rel="next"' not in second.text
    assert '<span class="badge">99213</span>' in first.text


def test_claiming_and_answering_a_case_sends_the_answer_in_its_thread(
    client: TestClient, smtp_sink: SmtpSink
) -> None:
    make_coder("alice@desk.example")
    number = new_case(subject="Home infusion 3.5 hours: 99601 and 99602?")
    [ack] = smtp_sink.wait_for(1, timeout=10)
    csrf = sign_in(client, "alice@desk.example")

    page = client.get(f"/tickets/{number}")
    assert "Home infusion 3.5 hours" in page.text and "99601" in page.text
    claimed = client.post(f"/tickets/{number}/claim", data={"csrf": csrf})
    assert "Done: claimed." in claimed.text and "held by alice@desk.example" in claimed.text
    sent = client.post(
        f"/tickets/{number}/answer",
        data={"csrf": csrf, "text": ANSWER, "then": "pending", "seen": seen_on(page.text)},
    )
    assert "Done: sent." in sent.text
    drain()

    answer = next(m for m in smtp_sink.wait_for(2, timeout=10) if m is not ack)
    parsed = message_from_bytes(answer.raw, policy=policy.default)
    assert parsed["In-Reply-To"] and f"[#CC-{number}]" in str(parsed["Subject"])
    with session_scope() as session:
        ticket = session.get(Ticket, number)
    assert ticket is not None and ticket.status == "pending"
    assert audit_actions("alice@desk.example") == [
        "sign_in",
        "queue.viewed",
        "case.viewed",
        "case.claimed",
        "case.viewed",
        "case.answered",
        "case.viewed",
    ]


def test_an_answer_is_stopped_when_the_customer_wrote_since_the_page_was_opened(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    number = new_case()
    csrf = sign_in(client, "alice@desk.example")
    page = client.get(f"/tickets/{number}")
    with session_scope() as session:
        [reference] = session.exec(select(OutboxEmail.message_id)).all()
    store(
        case_email(
            "dana@clinic.example",
            subject=f"Re: [#CC-{number}] question",
            body="Also: the patient had a second visit that day.",
            headers={"In-Reply-To": reference},
        )
    )
    drain()

    stopped = client.post(
        f"/tickets/{number}/answer",
        data={"csrf": csrf, "text": ANSWER, "then": "pending", "seen": seen_on(page.text)},
    )

    assert stopped.status_code == 409
    assert "Not sent: the case has new messages" in stopped.text
    assert ANSWER in stopped.text  # the draft is kept
    assert "second visit that day" in stopped.text and "Send anyway" in stopped.text
    assert answers() == 0
    anyway = client.post(
        f"/tickets/{number}/answer",
        data={"csrf": csrf, "text": ANSWER, "then": "pending", "seen": seen_on(stopped.text)},
    )
    assert "Done: sent." in anyway.text and answers() == 1


def test_the_same_answer_form_submitted_twice_sends_once(client: TestClient) -> None:
    make_coder("alice@desk.example")
    number = new_case()
    csrf = sign_in(client, "alice@desk.example")
    form = {"csrf": csrf, "text": ANSWER, "then": "pending"}
    form["seen"] = seen_on(client.get(f"/tickets/{number}").text)

    first = client.post(f"/tickets/{number}/answer", data=form)
    second = client.post(f"/tickets/{number}/answer", data=form)

    assert "Done: sent." in first.text and "Done: sent." in second.text
    assert answers() == 1


def test_an_emails_html_is_served_inert_its_markup_escaped_and_attachments_downloads(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    for name in ("case-modifier-25-html-alternative.eml", "case-with-pdf-attachment.eml"):
        with session_scope() as session:
            store_arrival(
                session,
                Arrival(raw=read_email(name), source="smtp", envelope_to=DESK_ADDRESS),
            )
    markup = case_email(
        "eve@clinic.example",
        subject="<img src=x onerror=alert(1)> 99213?",
        body="<script>alert(2)</script> and 20610",
    )
    store(markup)
    drain()
    sign_in(client, "alice@desk.example")

    as_text = client.get("/tickets/3").text  # a subject's or body's markup is only text
    assert "&lt;img src=x onerror=alert(1)&gt;" in as_text and "<img src=x" not in as_text
    assert "&lt;script&gt;alert(2)" in as_text and "<script>alert(2)" not in as_text

    html_case = client.get("/tickets/1").text
    frame = html_case.split('<iframe sandbox="" ', 1)[1].split('src="', 1)[1].split('"', 1)[0]
    served = client.get(frame)
    assert served.status_code == 200
    assert "sandbox" in served.headers["content-security-policy"]
    assert "default-src 'none'" in served.headers["content-security-policy"]

    pdf_case = client.get("/tickets/2").text
    link = pdf_case.split('<ul class="attachments">', 1)[1].split('href="', 1)[1].split('"')[0]
    download = client.get(link)
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.content.startswith(b"%PDF")
    with session_scope() as session:
        rows = session.exec(
            select(AuditEntry.action, AuditEntry.ticket_id).order_by(col(AuditEntry.id))
        ).all()
    assert ("attachment.downloaded", 2) in rows and ("case.viewed", 1) in rows


def test_an_internal_note_is_shown_to_coders_and_never_emailed(
    client: TestClient, smtp_sink: SmtpSink, desk: Desk
) -> None:
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    number = new_case()
    smtp_sink.wait_for(1, timeout=10)  # the acknowledgement
    csrf = sign_in(client, "alice@desk.example")

    noted = client.post(
        f"/tickets/{number}/note",
        data={"csrf": csrf, "text": "Payer policy LCD L33252 applies here; check it."},
    )
    by_cli = desk.consultant(
        "tickets", "note", str(number), "--by", "bob@desk.example", "--text", "Agreed."
    )
    drain()

    assert "Done: noted." in noted.text and "LCD L33252" in noted.text
    assert by_cli.returncode == 0, by_cli.stderr
    page = client.get(f"/tickets/{number}").text
    assert page.index("LCD L33252") < page.index("Agreed.")
    assert len(smtp_sink.messages) == 1  # nothing but the acknowledgement left the desk
    assert "case.noted" in audit_actions("alice@desk.example")
    empty = client.post(f"/tickets/{number}/note", data={"csrf": csrf, "text": "  "})
    assert empty.status_code == 409 and "a note needs some text" in empty.text
