"""What helps a coder answer: saved answers filled in from the case, a preview of the
email the customer will get, precedents (solved cases sharing its codes, with their
answers), the account beside the case; and a lead's refund and release of a held case."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from consultant import casework, quota
from consultant.db import session_scope
from consultant.models import Account, SavedAnswer, Ticket, utcnow
from consultant.saved_answers import add_saved_answer
from consultant.worker import drain
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import make_coder, new_case, sign_in
from tests.web.test_case_page import answers, seen_on
from tests.web.test_signing_in import audit_actions

INFUSION = "Home infusion 3.5 hours: 99601 and 99602?"
GREETING = "Hi {{ first_name }},\n\nFor {{ code_list }}:\n{{ codes }}\n\n{{ coder_name }}\n"


def save_answer(title: str, body: str) -> int:
    with session_scope() as session:
        saved = add_saved_answer(session, title=title, body=body, by="test", now=utcnow())
        assert saved.id is not None
        return saved.id


def solve_with_answer(number: int, text: str, *, by: str = "alice@desk.example") -> None:
    with session_scope() as session:
        casework.answer(session, number, by=by, text=text, then="solved", now=utcnow())
    drain()


def test_a_saved_answer_is_filled_in_from_the_case_previewed_and_sent(
    client: TestClient, smtp_sink: SmtpSink
) -> None:
    make_coder("alice@desk.example")
    saved = save_answer("Infusion add-on hours", GREETING)
    number = new_case("Dana Whitfield <dana@clinic.example>", subject=INFUSION)
    [ack] = smtp_sink.wait_for(1, timeout=10)
    csrf = sign_in(client, "alice@desk.example")
    page = client.get(f"/tickets/{number}")
    assert "Infusion add-on hours" in page.text

    filled = client.post(
        f"/tickets/{number}/saved-answer",
        data={"csrf": csrf, "saved": saved, "text": "", "seen": seen_on(page.text)},
    )
    draft = filled.text.split('id="answer-text"', 1)[1].split("</textarea>", 1)[0]
    assert "Hi Dana," in draft and "For 99601, 99602:" in draft and "Alice" in draft
    assert answers() == 0  # filling in sends nothing

    text = "Hi Dana,\n\nReport 99601 once and 99602 for each extra hour.\n\nAlice"
    preview = client.post(
        f"/tickets/{number}/answer/preview",
        data={"csrf": csrf, "text": text, "seen": seen_on(filled.text)},
    )
    assert "Preview: as dana@clinic.example will get it" in preview.text
    assert f"Re: {INFUSION} [#CC-{number}]" in preview.text
    assert "Reply to this email to ask a follow-up question" in preview.text
    assert answers() == 0 and seen_on(preview.text) == seen_on(page.text)

    sent = client.post(
        f"/tickets/{number}/answer",
        data={"csrf": csrf, "text": text, "then": "pending", "seen": seen_on(preview.text)},
    )
    assert "Done: sent." in sent.text
    drain()
    answer = next(m for m in smtp_sink.wait_for(2, timeout=10) if m is not ack)
    body = message_from_bytes(answer.raw, policy=policy.default).get_body(("plain",))
    assert body is not None and "99602 for each extra hour" in body.get_content()
    assert "case.saved_answer_used" in audit_actions("alice@desk.example")


def test_a_draft_keeps_its_text_when_a_saved_answer_is_added_to_it(client: TestClient) -> None:
    make_coder("alice@desk.example")
    saved = save_answer("Sign-off", "Kind regards,\n{{ coder_name }}")
    number = new_case()
    csrf = sign_in(client, "alice@desk.example")

    filled = client.post(
        f"/tickets/{number}/saved-answer",
        data={"csrf": csrf, "saved": saved, "text": "Modifier 25 applies here.", "seen": 0},
    )

    draft = filled.text.split('id="answer-text"', 1)[1].split("</textarea>", 1)[0]
    assert "Modifier 25 applies here.\n\nKind regards,\nAlice" in draft


def test_a_saved_answer_that_would_not_render_is_refused_when_saved(
    desk: Desk, tmp_path: Path
) -> None:
    broken = {
        "typo.txt": ("Hi {{ frist_name }},", "'frist_name' is undefined; the variables are"),
        "open.txt": ("Hi {{ first_name }\nthere", "line 1: unexpected '}'"),
        "escape.txt": ("{{ ''.__class__.__mro__ }}", "'__class__' of 'str' object is unsafe"),
    }
    for name, (body, message) in broken.items():
        (tmp_path / name).write_text(body)
        refused = desk.consultant("answers", "add", name, "--file", str(tmp_path / name))
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr

    (tmp_path / "good.txt").write_text(GREETING)
    assert desk.consultant("answers", "add", "Greeting", "--file", str(tmp_path / "good.txt"))
    listed = desk.consultant("answers", "list")
    assert listed.stdout.count("\n") == 1 and "Greeting" in listed.stdout
    shown = desk.consultant("answers", "show", "Greeting")
    assert shown.stdout == GREETING
    assert "{{ first_name }}" in desk.consultant("answers", "variables").stdout
    desk.consultant("answers", "remove", "Greeting")
    with session_scope() as session:
        assert session.exec(select(SavedAnswer)).all() == []


def test_precedents_show_solved_cases_sharing_the_most_codes_first_with_their_answer(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    both = new_case("a@one.example", subject="Infusion: 99601 with 99602 twice?")
    solve_with_answer(both, "Bill 99602 for each additional hour beyond the first two.")
    one = new_case("b@two.example", subject="Can 99601 go with 96365?")
    solve_with_answer(one, "No: 99601 is home infusion; 96365 is facility infusion.")
    unanswered = new_case("c@three.example", subject="99601 question")
    new_case("d@four.example", subject="Is 99213 payable with G0438?")  # shares nothing
    asking = new_case("e@five.example", subject=INFUSION)
    sign_in(client, "alice@desk.example")

    page = client.get(f"/tickets/{asking}").text
    shown = page.split('aria-label="Precedents"', 1)[1].split("</section>", 1)[0]

    assert shown.index(f"CC-{both}") < shown.index(f"CC-{one}")
    assert "shares 99601, 99602" in shown and "each additional hour" in shown
    assert f"CC-{unanswered}<" not in shown  # not solved: nothing to learn from yet
    assert "99213" not in shown


def test_the_account_is_shown_and_a_lead_refunds_one_case_and_releases_a_held_one(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    make_coder("lead@desk.example", role="lead")
    with session_scope() as session:
        guest = quota.plan_named(session, "guest")  # one case a month
        session.add(Account(address="@clinic.example", plan_id=guest.id))
    charged = new_case("a@clinic.example")
    held = new_case("b@clinic.example")
    coder_csrf = sign_in(client, "alice@desk.example")
    page = client.get(f"/tickets/{held}").text
    assert "@clinic.example</strong> · plan guest · 1 case used this month, 0 left of 1" in page
    assert f'href="/tickets/{charged}"' in page  # the account's earlier case
    assert "Release from hold" not in page and "Refund this case" not in page
    refused = client.post(f"/tickets/{charged}/refund", data={"csrf": coder_csrf, "reason": "x"})
    assert refused.status_code == 403

    lead = TestClient(client.app)
    csrf = sign_in(lead, "lead@desk.example")
    over = lead.post(f"/tickets/{held}/release-held", data={"csrf": csrf, "override": ""})
    assert over.status_code == 409 and "give a reason to override" in over.text
    lead.post(f"/tickets/{charged}/refund", data={"csrf": csrf, "reason": "duplicate"})
    twice = lead.post(f"/tickets/{charged}/refund", data={"csrf": csrf, "reason": "again"})
    assert "was already refunded" in twice.text
    released = lead.post(f"/tickets/{held}/release-held", data={"csrf": csrf, "override": ""})

    assert "Done: hold released." in released.text
    with session_scope() as session:
        ticket = session.get(Ticket, held)
        assert ticket is not None and ticket.status == "open"  # charged and routed to Alice
    assert "1 case used this month, 0 left of 1" in released.text
    actions = audit_actions("lead@desk.example")
    assert actions.count("case.refunded") == 1 and "case.hold_released" in actions


def test_any_text_in_a_note_or_a_saved_answer_form_is_kept_or_refused_never_an_error(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    number = new_case()
    csrf = sign_in(client, "alice@desk.example")

    @settings(max_examples=25, deadline=None)
    @given(text=st.text(max_size=300), saved=st.text(max_size=20))
    def any_text(text: str, saved: str) -> None:
        note = client.post(f"/tickets/{number}/note", data={"csrf": csrf, "text": text})
        assert note.status_code in (200, 409), note.text
        preview = client.post(
            f"/tickets/{number}/answer/preview", data={"csrf": csrf, "text": text}
        )
        assert preview.status_code == 200, preview.text
        filled = client.post(
            f"/tickets/{number}/saved-answer", data={"csrf": csrf, "saved": saved, "text": text}
        )
        assert filled.status_code in (200, 422), filled.text

    any_text()
