"""The admin's pages for how the desk works: business hours, holidays and closed dates,
the routing policy, and the desk's emails — each change refused beside its field when
wrong, in force at once (clocks re-timed, the next case routed by it, the next email
worded by it), and audited with before and after."""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from fastapi.testclient import TestClient
from httpx import Response
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from consultant import quota
from consultant.db import session_scope
from consultant.models import AuditEntry, Coder, EmailTemplate, Ticket
from tests.cases import add_coder
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import make_coder, new_case, sign_in, unused_code
from tests.web.test_admin_pages import admin_audit

HOME_INFUSION = "We did a home infusion visit; how do we bill 99601 and 99602 for the second hour?"
WEEK = {f"day_{day}": "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def signed_in_admin(client: TestClient) -> str:
    """An admin signed in, and the clinic the test's cases come from on an unlimited plan."""
    make_coder("root@desk.example", role="admin", specialties=("radiology",))
    with session_scope() as session:
        quota.add_account(session, address="@clinic.example", plan="unlimited", timezone="UTC")
    return sign_in(client, "root@desk.example")


def owner_of(number: int) -> str | None:
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        coder = session.get(Coder, ticket.coder_id) if ticket.coder_id else None
        return coder.email if coder else None


def due_at(number: int) -> datetime | None:
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return ticket.due_at


def shown(response: Response) -> str:
    """The page's text as a person reads it (the HTML's escapes undone)."""
    return html.unescape(response.text)


def text_of(raw: bytes) -> str:
    email = message_from_bytes(raw, policy=policy.default)
    assert isinstance(email, EmailMessage)
    body = email.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def test_new_business_hours_are_checked_beside_each_field_and_re_time_a_running_clock(
    client: TestClient, desk: Desk
) -> None:
    csrf = signed_in_admin(client)
    number = new_case()
    before = due_at(number)  # 24x7 by default: 8 hours from now

    page = client.get("/admin/hours")
    assert page.status_code == 200 and "Open around the clock" in page.text
    bad = client.post(
        "/admin/hours",
        data={
            **WEEK,
            "csrf": csrf,
            "day_mon": "9-5",
            "day_tue": "25:00-26:00",
            "zone": "Mars/Olympus",
            "country": "ZZ",
        },
    )
    assert bad.status_code == 400
    assert 'id="problem-mon"' in bad.text and "cannot read '9-5'" in shown(bad)
    assert 'id="problem-tue"' in bad.text and "is not a time of day" in bad.text
    assert 'id="problem-zone"' in bad.text and "unknown time zone" in bad.text
    assert 'id="problem-country"' in bad.text and 'value="9-5"' in bad.text  # kept as typed
    subdivision = client.post(
        "/admin/hours",
        data={**WEEK, "csrf": csrf, "day_sat": "09:00-10:00", "country": "US", "subdivision": "QQ"},
    )
    assert subdivision.status_code == 400 and 'id="problem-subdivision"' in subdivision.text

    saved = client.post(
        "/admin/hours",
        data={**WEEK, "csrf": csrf, "day_sat": "09:00-10:00", "zone": "UTC", "country": "us"},
    )
    assert "Done: saved the business hours and holidays." in saved.text
    after = due_at(number)  # 8 business hours of one hour a week: weeks away
    assert before is not None and after is not None and after > before + timedelta(days=40)
    assert after.weekday() == 5 and after.hour in (9, 10)
    [detail] = admin_audit("admin.hours_changed")
    assert "business_hours: '24x7' → 'Sat 09:00-10:00 UTC'" in detail and "'US'" in detail
    listed = desk.consultant("hours", "show").stdout
    assert "Sat 09:00-10:00 UTC, closed on US holidays  [set by root@desk.example" in listed

    closed = client.post("/admin/hours/closed", data={"csrf": csrf, "day": "soon", "name": "x"})
    assert closed.status_code == 400 and 'id="problem-closed_day"' in closed.text
    client.post("/admin/hours/closed", data={"csrf": csrf, "day": "2027-01-02", "name": "Move"})
    twice = client.post("/admin/hours/closed", data={"csrf": csrf, "day": "2027-01-02"})
    assert twice.status_code == 400 and "closed already" in twice.text
    client.post("/admin/hours/open", data={"csrf": csrf, "day": "2027-01-02"})
    assert admin_audit("admin.closed_date_added")[0].startswith("2027-01-02 Move: 1 open case")
    assert admin_audit("admin.closed_date_removed") == ["2027-01-02: 1 open case(s) re-timed"]

    client.post("/admin/hours/unset", data={"csrf": csrf})
    back = due_at(number)  # 24x7 again; the seconds under Saturday's hours did not count
    assert back is not None and before < back < before + timedelta(minutes=5)
    assert "[default]" in desk.consultant("hours", "show").stdout


def test_a_changed_routing_policy_decides_who_gets_the_next_case(
    client: TestClient, desk: Desk
) -> None:
    csrf = signed_in_admin(client)
    add_coder("home@desk.example", specialties="medicine-home-health")
    add_coder("gen@desk.example", specialties="generalist")
    first = new_case(subject="Home infusion", body=HOME_INFUSION)
    assert owner_of(first) == "home@desk.example"

    page = client.get("/admin/routing")
    assert "coders who list the case's specialty" in shown(page) and "[default]" not in page.text
    empty = client.post("/admin/routing", data={"csrf": csrf, "tier": ["", ""], "prefer": ["load"]})
    assert empty.status_code == 400 and 'id="problem-tiers"' in empty.text
    twice = client.post(
        "/admin/routing", data={"csrf": csrf, "tier": ["family", "family"], "prefer": ["load"]}
    )
    assert twice.status_code == 400 and "names one twice" in twice.text
    odd = client.post("/admin/routing", data={"csrf": csrf, "tier": ["anyone"], "prefer": ["x"]})
    assert odd.status_code == 400 and 'id="problem-prefer"' in odd.text
    generalists_first = {"csrf": csrf, "tier": ["generalist", "specialty"], "prefer": ["load"]}
    preview = client.post("/admin/routing", data={**generalists_first, "preview": "yes"})
    assert "under the policy previewed" in preview.text
    second = new_case(subject="Home infusion 2", body=HOME_INFUSION)
    assert owner_of(second) == "home@desk.example"  # a preview changes nothing

    saved = client.post("/admin/routing", data=generalists_first)
    assert "Done: saved the routing policy." in saved.text
    third = new_case(subject="Home infusion 3", body=HOME_INFUSION)
    assert owner_of(third) == "gen@desk.example"
    refused = desk.consultant("routing", "set", "--tiers", "specialty,specialty")
    assert refused.returncode == 1 and "routing_tiers: names one twice" in refused.stderr
    status = desk.consultant("status").stdout
    assert "routing_tiers: generalist,specialty  [set by root@desk.example" in status
    assert "routing_prefer: load  [set by root@desk.example" in status
    assert admin_audit("admin.routing_changed") == [
        "routing_tiers: 'specialty,generalist,family' → 'generalist,specialty'; "
        "routing_prefer: 'on_shift,load,last_assigned' → 'load'"
    ]


def test_an_edited_acknowledgement_is_sent_and_one_broken_in_the_database_falls_back(
    client: TestClient, smtp_sink: SmtpSink
) -> None:
    csrf = signed_in_admin(client)
    page = client.get("/admin/templates/ack")
    assert page.status_code == 200 and "we have received your case" in page.text
    assert client.get("/admin/templates/nope").status_code == 404
    shown_html = page.text.split('name="html"')[1]
    packaged_html = shown_html.split(">", 1)[1].split("</textarea>")[0]
    words = "Thanks {{ name }}: {{ reference }} is with our coders.\n{{ desk_name }}\n"

    broken = client.post(
        "/admin/templates/ack",
        data={"csrf": csrf, "text": "Hi\n{{ nmae }}", "html": "<p>{% if %}</p>"},
    )
    assert broken.status_code == 400
    assert 'id="problem-text"' in broken.text and "line 2: 'nmae' is undefined" in shown(broken)
    assert 'id="problem-html"' in broken.text and "line 1:" in broken.text
    preview = client.post(
        "/admin/templates/ack",
        data={
            "csrf": csrf,
            "text": words,
            "html": "<p>{{ subject }}</p><script>x</script>",
            "preview": "yes",
        },
    )
    assert "Thanks Dana Whitfield: CC-1 is with our coders." in preview.text
    assert 'sandbox="" referrerpolicy="no-referrer"' in preview.text
    assert "<script>x</script>" not in preview.text  # inside srcdoc, escaped
    assert "Re: Modifier 25 with a preventive visit [#CC-1]" in preview.text
    with session_scope() as session:
        assert session.exec(select(EmailTemplate)).all() == []  # a preview saves nothing

    saved = client.post(
        "/admin/templates/ack",
        data={
            "csrf": csrf,
            "text": words.replace("\n", "\r\n"),
            "html": html.unescape(packaged_html),
        },
    )
    assert "Done: saved the ack email." in saved.text
    with session_scope() as session:
        [row] = session.exec(select(EmailTemplate)).all()  # the HTML part stayed packaged
    assert (row.kind, row.part, row.body) == ("ack", "text", words)
    assert admin_audit("admin.template_saved")[0].startswith("ack: text: -Hello{% if name %}")

    number = new_case("Dana Whitfield <dana@clinic.example>")
    [ack] = smtp_sink.messages
    assert text_of(ack.raw).startswith(f"Thanks Dana Whitfield: CC-{number} is with our coders.")

    with session_scope() as session:  # broken behind the page's back
        row = session.exec(select(EmailTemplate)).one()
        row.body = "{% for x in %}"
        session.add(row)
    smtp_sink.clear()
    second = new_case(subject="Another one")
    [ack] = smtp_sink.messages
    assert "we have received your case and opened ticket" in text_of(ack.raw)
    with session_scope() as session:
        [entry] = session.exec(
            select(AuditEntry).where(AuditEntry.action == "template.fallback")
        ).all()
    assert (entry.actor, entry.ticket_id) == ("desk", second)
    assert entry.detail.startswith("ack text: line 1:")
    assert "the packaged template was sent" in client.get("/admin/templates").text

    client.post("/admin/templates/ack/reset", data={"csrf": csrf})
    with session_scope() as session:
        assert session.exec(select(EmailTemplate)).all() == []
    assert admin_audit("admin.template_reset")[0].startswith("ack: text: -{% for x in %}")


def test_garbage_in_the_desk_forms_gets_messages_never_a_500(client: TestClient) -> None:
    csrf = signed_in_admin(client)
    nul, huge = "Mon\x00 08:00", "9" * 200_000
    posts = [
        ("/admin/hours", {**WEEK, "day_mon": nul, "zone": huge, "country": "\x00"}),
        ("/admin/hours", {**WEEK, "always": "yes", "country": huge, "subdivision": nul}),
        ("/admin/hours/closed", {"day": nul, "name": huge}),
        ("/admin/hours/open", {"day": huge}),
        ("/admin/routing", {"tier": [nul, huge], "prefer": [huge]}),
        ("/admin/templates/ack", {"text": nul, "html": huge}),
        ("/admin/templates/ack", {"text": "{{ ().__class__.__mro__ }}", "html": "{{ 1/0 }}"}),
        ("/admin/templates/%00", {"text": "x", "html": "y"}),
        ("/admin/templates/answer/reset", {}),
    ]
    for path, form in posts:
        response = client.post(path, data={"csrf": csrf, **form})
        assert response.status_code in (200, 303, 400, 404), (path, response.status_code)
    sandboxed = client.post(
        "/admin/templates/ack", data={"csrf": csrf, "text": "{{ ''.__class__ }}", "html": "x"}
    )
    assert "unsafe" in sandboxed.text
    with session_scope() as session:
        assert session.exec(select(EmailTemplate)).all() == []


def test_desk_pages_are_for_admins_only(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    csrf = sign_in(client, "lead@desk.example")
    for path in ("/admin/hours", "/admin/routing", "/admin/templates", "/admin/templates/ack"):
        assert client.get(path).status_code == 403
    posted = client.post("/admin/routing", data={"csrf": csrf, "tier": ["anyone"]})
    assert posted.status_code == 403
    with session_scope() as session:
        changes = select(AuditEntry).where(col(AuditEntry.action).like("admin.%"))
        assert session.exec(changes).all() == []


def test_an_admin_sets_hours_and_previews_and_saves_an_email_in_the_browser(
    page: Page, dashboard: str
) -> None:
    make_coder("root@desk.example", role="admin")
    page.goto(f"{dashboard}/queue")
    page.get_by_label("Email address").fill("root@desk.example")
    page.get_by_label("Password").fill("a long test passphrase")
    page.get_by_role("button", name="Sign in").click()
    key = page.locator("code.secret").inner_text()
    page.get_by_label("Code").fill(unused_code("root@desk.example", key))
    page.get_by_role("button", name="Set up and sign in").click()

    page.get_by_role("link", name="Hours").click()
    page.get_by_label("Open around the clock").uncheck()
    page.get_by_label("Mon").fill("8 to 5")
    page.get_by_role("button", name="Save hours and holidays").click()
    expect(page.locator("#problem-mon")).to_contain_text("spans are like 08:00-12:00")
    page.get_by_label("Mon").fill("08:00-17:00")
    page.get_by_label("Open around the clock").uncheck()
    page.get_by_label("Time zone").fill("America/Chicago")
    page.get_by_role("button", name="Save hours and holidays").click()
    expect(page.get_by_role("status")).to_contain_text("saved the business hours")

    page.get_by_role("link", name="Emails").click()
    page.get_by_role("link", name="Solved").click()
    page.get_by_label("Text part").fill("Case {{ reference }} is solved. Write back any time.\n")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("region", name="Preview")).to_contain_text("Case CC-1 is solved.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("saved the solved email")

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("main")).to_contain_text("admin.template_saved")
    expect(page.get_by_role("main")).to_contain_text("Mon 08:00-17:00 America/Chicago")
