"""The admin's pages: the coders (add with a one-time sign-in link, change, deactivate,
send away and bring back, reset two-factor), plans and accounts, the saved answers
(write with a preview from a sample case), and the mailboxes and relay (with a
connection test).

Every page is for admins, checked on the server; every change goes through the same
domain function as the command line and is audited with what it was before and after.
A refused change shows the form again, as typed, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from consultant import audit, mailbox_settings, quota, saved_answers
from consultant.closed_dates import ClosedDateError
from consultant.coders import (
    CoderError,
    add_coder,
    come_back,
    describe,
    existing,
    list_coders,
    reset_second_factor,
    set_away,
    update_coder,
)
from consultant.codes.specialty import SPECIALTIES
from consultant.config import ENV_PREFIX, Settings, get_settings
from consultant.db import session_scope, storable
from consultant.desk_settings import DeskSettingError
from consultant.email_templates import EmailTemplateError
from consultant.inbound import InboundError
from consultant.mail.oauth_connect import ConnectRefused, start_connect
from consultant.mail.oauth_providers import providers, redirect_uri
from consultant.mail.probe import ProbeFailed
from consultant.models import CoderRole, Mailbox, MailRelay, utcnow
from consultant.outbox import OutboxError
from consultant.sign_in_links import issue_link
from consultant.web.mailbox_oauth import connect_policy
from consultant.web.pages import render
from consultant.web.security import Admin, check_csrf, client_address
from consultant.web.sessions import SignedIn

router = APIRouter(prefix="/admin")
ROLES = [role.value for role in CoderRole]


# --- coders -------------------------------------------------------------------------


@router.get("/coders")
def coders_page(request: Request, person: Admin, done: str = "") -> Response:
    return _coders_page(request, person, notice=done)


@router.post("/coders")
def add_coder_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = CoderRole.CODER,
    specialties: Annotated[list[str] | None, Form()] = None,
    capacity: Annotated[str, Form()] = "10",
    timezone: Annotated[str, Form()] = "UTC",
    hours: Annotated[str, Form()] = "",
) -> Response:
    """Add a coder; the page shows their one-time sign-in link, once."""
    check_csrf(person, csrf)
    typed = {"email": email, "name": name, "role": role, "specialties": specialties or [],
             "capacity": capacity, "timezone": timezone, "hours": hours}  # fmt: skip
    link = ""

    def add(session: Session) -> str:
        nonlocal link
        coder = add_coder(
            session,
            email=email,
            name=name,
            actor=person.email,
            now=utcnow(),
            role=role,
            specialties=specialties or ("generalist",),
            capacity=_whole(capacity, "capacity (cases)"),
            timezone=timezone.strip() or "UTC",
            working_hours=hours,
        )
        link = issue_link(session, email=coder.email, by=person.email, now=utcnow())
        return f"{coder.email} ({coder.role})"

    problem = _apply(request, person, "admin.coder_added", add)
    if problem:
        return _coders_page(request, person, error=problem, typed=typed, status_code=400)
    return _coders_page(request, person, notice=f"added {email.strip().lower()}", link=link)


@router.post("/coders/{email}")
def change_coder_submit(
    request: Request,
    person: Admin,
    email: str,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    specialties: Annotated[list[str] | None, Form()] = None,
    capacity: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
    hours: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
) -> Response:
    """Change a coder as the form has them; deactivating hands their cases on."""
    check_csrf(person, csrf)

    def change(session: Session) -> str:
        before = describe(existing(session, email), load=0, now=utcnow())
        coder = update_coder(
            session,
            email=email,
            actor=person.email,
            now=utcnow(),
            name=name,
            role=role,
            specialties=specialties or ("generalist",),
            capacity=_whole(capacity, "capacity (cases)"),
            timezone=timezone.strip() or "UTC",
            working_hours=hours,
            active=active == "yes",
        )
        after = describe(coder, load=0, now=utcnow())
        return f"{coder.email}: {audit.changes(before, after)}"

    problem = _apply(request, person, "admin.coder_changed", change)
    if problem:
        return _coders_page(request, person, error=f"{email}: {problem}", status_code=400)
    return RedirectResponse(f"/admin/coders?done=changed+{email}", status_code=303)


@router.post("/coders/{email}/link")
def new_link_submit(
    request: Request, person: Admin, email: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    """A new one-time sign-in link (a forgotten password), shown once."""
    check_csrf(person, csrf)
    with session_scope() as session:
        try:
            link = issue_link(session, email=email, by=person.email, now=utcnow())
        except CoderError as exc:
            return _coders_page(request, person, error=str(exc), status_code=400)
    return _coders_page(request, person, notice=f"a new sign-in link for {email}", link=link)


@router.post("/coders/{email}/reset-2fa")
def reset_two_factor_submit(
    request: Request, person: Admin, email: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)
    problem = _apply(
        request,
        person,
        "admin.two_factor_reset",
        lambda s: reset_second_factor(s, email=email, actor=person.email).email,
    )
    if problem:
        return _coders_page(request, person, error=problem, status_code=400)
    return RedirectResponse(f"/admin/coders?done=two-factor+reset+for+{email}", status_code=303)


@router.post("/coders/{email}/away")
def away_submit(
    request: Request,
    person: Admin,
    email: str,
    csrf: Annotated[str, Form()] = "",
    away_from: Annotated[str, Form()] = "",
    away_until: Annotated[str, Form()] = "",
) -> Response:
    """Out of office from a day (today) until a day (until they come back); their open
    cases go back to routing once the absence begins."""
    check_csrf(person, csrf)

    def away(session: Session) -> str:
        before = describe(existing(session, email), load=0, now=utcnow())
        start = _moment(away_from, "away from") if away_from.strip() else None
        until = _moment(away_until, "back on") if away_until.strip() else None
        coder = set_away(
            session, email=email, actor=person.email, now=utcnow(), start=start, until=until
        )
        after = describe(coder, load=0, now=utcnow())
        return f"{coder.email}: {audit.changes(before, after)}"

    problem = _apply(request, person, "admin.coder_away", away)
    if problem:
        return _coders_page(request, person, error=f"{email}: {problem}", status_code=400)
    return RedirectResponse(f"/admin/coders?done=away+noted+for+{email}", status_code=303)


@router.post("/coders/{email}/back")
def back_submit(
    request: Request, person: Admin, email: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)

    def back(session: Session) -> str:
        before = describe(existing(session, email), load=0, now=utcnow())
        coder = come_back(session, email=email, actor=person.email, now=utcnow())
        return f"{coder.email}: {audit.changes(before, describe(coder, load=0, now=utcnow()))}"

    problem = _apply(request, person, "admin.coder_back", back)
    if problem:
        return _coders_page(request, person, error=problem, status_code=400)
    return RedirectResponse(f"/admin/coders?done={email}+is+back", status_code=303)


def _coders_page(
    request: Request,
    person: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    link: str = "",
    typed: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    with session_scope() as session:
        coders = list_coders(session, now=utcnow())
        _audit(session, request, person, "admin.coders_viewed", "")
    return render(
        request,
        "admin_coders.html.j2",
        {
            "person": person,
            "coders": coders,
            "roles": ROLES,
            "specialties": ["generalist", *SPECIALTIES],
            "notice": notice,
            "error": error,
            "link": link,
            "typed": typed or {"role": "coder", "capacity": "10", "timezone": "UTC"},
        },
        status_code=status_code,
    )


# --- saved answers --------------------------------------------------------------------


@router.get("/answers")
def answers_page(request: Request, person: Admin, done: str = "") -> Response:
    return _answers_page(request, person, notice=done)


@router.post("/answers")
def save_answer_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
    existing_title: Annotated[str, Form()] = "",
    preview: Annotated[str, Form()] = "",
) -> Response:
    """Save a new answer or a changed one; with ``preview``, only show it filled in
    from a sample case. Either way a template that would not render is refused here."""
    check_csrf(person, csrf)
    typed = {"title": title, "body": body, "existing_title": existing_title}
    try:
        shown = saved_answers.render_template(body, saved_answers.SAMPLE)
    except saved_answers.SavedAnswerError as exc:
        return _answers_page(request, person, error=str(exc), typed=typed, status_code=400)
    if preview:
        return _answers_page(request, person, typed=typed, preview=shown)

    def save(session: Session) -> str:
        if existing_title:
            saved_answers.update_saved_answer(
                session, title=existing_title, body=body, now=utcnow()
            )
        else:
            saved_answers.add_saved_answer(
                session, title=title, body=body, by=person.email, now=utcnow()
            )
        return existing_title or title

    problem = _apply(request, person, "admin.answer_saved", save)
    if problem:
        return _answers_page(request, person, error=problem, typed=typed, status_code=400)
    return RedirectResponse("/admin/answers?done=saved", status_code=303)


@router.post("/answers/remove")
def remove_answer_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(person, csrf)

    def remove(session: Session) -> str:
        saved_answers.remove_saved_answer(session, title=title)
        return title

    problem = _apply(request, person, "admin.answer_removed", remove)
    if problem:
        return _answers_page(request, person, error=problem, status_code=400)
    return RedirectResponse("/admin/answers?done=removed", status_code=303)


def _answers_page(
    request: Request,
    person: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    typed: dict[str, str] | None = None,
    preview: str = "",
    status_code: int = 200,
) -> Response:
    with session_scope() as session:
        answers = [saved_answers.describe(a) for a in saved_answers.list_saved_answers(session)]
    return render(
        request,
        "admin_answers.html.j2",
        {
            "person": person,
            "answers": answers,
            "variables": saved_answers.VARIABLES,
            "notice": notice,
            "error": error,
            "typed": typed or {},
            "preview": preview,
        },
        status_code=status_code,
    )


# --- plans and accounts ---------------------------------------------------------------


@router.get("/accounts")
def accounts_page(request: Request, person: Admin, done: str = "") -> Response:
    return _accounts_page(request, person, notice=done)


@router.post("/plans")
def add_plan_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    cases: Annotated[str, Form()] = "",
    sla_hours: Annotated[str, Form()] = "24",
    resolution_hours: Annotated[str, Form()] = "",
    followups_count: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(person, csrf)

    def add(session: Session) -> str:
        plan = quota.add_plan(
            session,
            name=name,
            cases=cases,
            sla_hours=_whole(sla_hours, "business hours to the first answer"),
            resolution_hours=_whole(resolution_hours or "0", "business hours to solve"),
            followups_count=followups_count == "yes",
        )
        return f"{plan.name}: {quota.describe_plan(plan)}"

    typed = {"name": name, "cases": cases, "sla_hours": sla_hours,
             "resolution_hours": resolution_hours}  # fmt: skip
    done = f"added plan {name}"
    return _account_change(
        request, person, "admin.plan_added", add, done=done, form="plan", typed=typed
    )


@router.post("/plans/{name}")
def change_plan_submit(
    request: Request,
    person: Admin,
    name: str,
    csrf: Annotated[str, Form()] = "",
    cases: Annotated[str, Form()] = "",
    sla_hours: Annotated[str, Form()] = "",
    resolution_hours: Annotated[str, Form()] = "",
    followups_count: Annotated[str, Form()] = "",
) -> Response:
    """Change a plan as the form has it; a change of hours re-times open cases' clocks."""
    check_csrf(person, csrf)

    def change(session: Session) -> str:
        plan = quota.plan_named(session, name)
        before = quota.describe_plan(plan)
        first = _whole(sla_hours, "business hours to the first answer")
        solve = _whole(resolution_hours or "0", "business hours to solve")
        quota.change_plan(  # hours only when changed: a change re-times open cases
            session,
            plan,
            now=utcnow(),
            cases=cases,
            sla_hours=first if first != plan.sla_hours else None,
            resolution_hours=solve if solve != (plan.resolution_hours or 0) else None,
            followups_count=followups_count == "yes",
        )
        return f"{name}: {audit.changes(before, quota.describe_plan(plan))}"

    typed = {"cases": cases, "sla_hours": sla_hours, "resolution_hours": resolution_hours}
    return _account_change(
        request,
        person,
        "admin.plan_changed",
        change,
        done=f"changed {name}",
        form=f"plan:{name}",
        typed=typed,
    )


@router.post("/accounts")
def add_account_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    plan: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "UTC",
) -> Response:
    check_csrf(person, csrf)

    def add(session: Session) -> str:
        account = quota.add_account(
            session, address=address, plan=plan, timezone=timezone.strip() or "UTC"
        )
        return f"{account.address} on {plan}"

    done = f"added {quota.normalise_address(address)}"
    typed = {"address": address, "plan": plan, "timezone": timezone}
    return _account_change(
        request, person, "admin.account_added", add, done=done, form="account", typed=typed
    )


@router.post("/accounts/{address}")
def change_account_submit(
    request: Request,
    person: Admin,
    address: str,
    csrf: Annotated[str, Form()] = "",
    plan: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
) -> Response:
    """Move an account to another plan (its open cases' clocks follow) or time zone."""
    check_csrf(person, csrf)

    def change(session: Session) -> str:
        account = quota.account_named(session, address)
        before = quota.describe_account(session, account)
        quota.change_account(
            session, account, now=utcnow(), plan=plan or None, timezone=timezone or None
        )
        session.flush()
        after = quota.describe_account(session, account)
        return f"{account.address}: {audit.changes(before, after)}"

    return _account_change(
        request,
        person,
        "admin.account_changed",
        change,
        done=f"changed {address}",
        form=f"account:{address}",
        typed={"plan": plan, "timezone": timezone},
    )


def _account_change(
    request: Request,
    person: SignedIn,
    action: str,
    change: Callable[[Session], str],
    *,
    done: str,
    form: str,
    typed: dict[str, str],
) -> Response:
    """Make the change; a refusal shows the page with the reason beside the form that was
    sent (``form``: ``plan``, ``plan:NAME``, ``account``, ``account:ADDRESS``), as typed."""
    problem = _apply(request, person, action, change)
    if problem:
        typed = {field: storable(value) for field, value in typed.items()}
        return _accounts_page(
            request, person, error=problem, form=form, typed=typed, status_code=400
        )
    return RedirectResponse(f"/admin/accounts?{urlencode({'done': done})}", status_code=303)


def _accounts_page(
    request: Request,
    person: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    form: str = "",
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with session_scope() as session:
        quota.ensure_builtin_plans(session)
        plans, accounts = quota.list_plans(session), quota.list_accounts(session)
        _audit(session, request, person, "admin.accounts_viewed", "")
    return render(
        request,
        "admin_accounts.html.j2",
        {
            "person": person,
            "plans": plans,
            "accounts": accounts,
            "notice": notice,
            "error": error,
            "form": form,
            "typed": typed or {},
        },
        status_code=status_code,
    )


# --- mailboxes and the relay -----------------------------------------------------------


@router.get("/mailboxes")
def mailboxes_page(request: Request, person: Admin, done: str = "") -> Response:
    return _mailboxes_page(request, person, notice=done)


@router.post("/mailboxes")
def add_mailbox_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    security: Annotated[str, Form()] = "tls",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    folder: Annotated[str, Form()] = "INBOX",
    enabled: Annotated[str, Form()] = "",
) -> Response:
    """Add a mailbox; the pollers follow it from their next look at the mailboxes on."""
    check_csrf(person, csrf)
    typed = {"name": name, "host": host, "port": port, "security": security,
             "username": username, "folder": folder, "enabled": enabled == "yes"}  # fmt: skip

    def add(session: Session) -> str:
        mailbox = mailbox_settings.add_mailbox(
            session, **typed, password=password, settings=get_settings()
        )
        return f"{mailbox.name}: {audit.changes({}, mailbox_settings.describe_mailbox(mailbox))}"

    return _mailbox_change(
        request, person, "admin.mailbox_added", add, form="new", typed=typed,
        done=f"added mailbox {name.strip().lower()}",
    )  # fmt: skip


@router.post("/mailboxes/{name}/change")
def change_mailbox_submit(
    request: Request,
    person: Admin,
    name: str,
    csrf: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    security: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    folder: Annotated[str, Form()] = "",
    enabled: Annotated[str, Form()] = "",
) -> Response:
    """Change a mailbox as the form has it; an empty password keeps the stored one."""
    check_csrf(person, csrf)
    typed = {"host": host, "port": port, "security": security, "username": username,
             "folder": folder, "enabled": enabled == "yes"}  # fmt: skip

    def change(session: Session) -> str:
        before = mailbox_settings.describe_mailbox(mailbox_settings.mailbox_named(session, name))
        mailbox = mailbox_settings.change_mailbox(
            session, name=name, **typed, password=password, settings=get_settings()
        )
        after = mailbox_settings.describe_mailbox(mailbox)
        return f"{mailbox.name}: {mailbox_settings.change_detail(before, after, password=password)}"

    return _mailbox_change(
        request, person, "admin.mailbox_changed", change, form=name, typed=typed,
        done=f"changed mailbox {name}",
    )  # fmt: skip


@router.post("/mailboxes/{name}/remove")
def remove_mailbox_submit(
    request: Request, person: Admin, name: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)

    def remove(session: Session) -> str:
        before = mailbox_settings.describe_mailbox(mailbox_settings.mailbox_named(session, name))
        mailbox_settings.remove_mailbox(session, name=name)
        return f"{name}: {audit.changes(before, {key: None for key in before})}"

    return _mailbox_change(
        request, person, "admin.mailbox_removed", remove, form="", done=f"removed mailbox {name}"
    )


@router.post("/mailboxes/connect")
def connect_new_mailbox_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    provider: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    security: Annotated[str, Form()] = "tls",
    username: Annotated[str, Form()] = "",
    folder: Annotated[str, Form()] = "INBOX",
) -> Response:
    """Add a mailbox that signs in with Microsoft 365 or Google, and go to the
    provider's sign-in to connect it (the form names the provider)."""
    check_csrf(person, csrf)
    typed = {"name": name, "host": host, "port": port, "security": security,
             "username": username, "folder": folder}  # fmt: skip
    started = ""

    def add_and_start(session: Session) -> str:
        nonlocal started
        mailbox = mailbox_settings.add_mailbox(
            session, **typed, password="", auth="oauth", settings=get_settings()
        )
        started = _start_connect(session, person, mailbox, provider)
        added = audit.changes({}, mailbox_settings.describe_mailbox(mailbox))
        return f"{mailbox.name}: {added}; connecting with {provider}"

    return _mailbox_change(
        request, person, "admin.mailbox_added", add_and_start, form=f"oauth:{provider}",
        typed=typed, done="", then=lambda: started,
    )  # fmt: skip


@router.post("/mailboxes/{name}/connect")
def connect_mailbox_submit(
    request: Request,
    person: Admin,
    name: str,
    csrf: Annotated[str, Form()] = "",
    provider: Annotated[str, Form()] = "",
) -> Response:
    """Connect a mailbox (again) that signs in with Microsoft 365 or Google."""
    check_csrf(person, csrf)
    started = ""

    def start(session: Session) -> str:
        nonlocal started
        mailbox = mailbox_settings.mailbox_named(session, name)
        started = _start_connect(session, person, mailbox, provider)
        return f"{mailbox.name} with {provider}"

    return _mailbox_change(
        request, person, "admin.mailbox_connect_started", start, form=name, done="",
        then=lambda: started,
    )  # fmt: skip


def _start_connect(session: Session, person: SignedIn, mailbox: Mailbox, provider: str) -> str:
    """The provider's sign-in address for ``mailbox``, its connect kept for the callback."""
    if mailbox.auth != "oauth":
        raise ConnectRefused(f"{mailbox.name} logs in with a password; nothing to connect")
    return start_connect(
        session,
        mailbox=mailbox,
        provider_key=provider,
        web_session_id=person.session_id,
        now=utcnow(),
        settings=get_settings(),
    )


@router.post("/mailboxes/{name}/test")
def test_mailbox_submit(
    request: Request, person: Admin, name: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Try the mailbox's settings step by step and show which step failed, and why."""
    check_csrf(person, csrf)
    return _connection_tested(
        request, person, name, lambda: mailbox_settings.check_mailbox(name, settings=get_settings())
    )


@router.post("/relay")
def set_relay_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    security: Annotated[str, Form()] = "starttls",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    login_mailbox: Annotated[str, Form()] = "",
) -> Response:
    """Send through this relay from the next email on; an empty password keeps the
    stored one. A connected mailbox chosen to log in as stands for user and password."""
    check_csrf(person, csrf)
    typed = {"host": host, "port": port, "security": security, "username": username,
             "login_mailbox": login_mailbox}  # fmt: skip

    def change(session: Session) -> str:
        settings = get_settings()
        before = mailbox_settings.describe_relay(
            session.get(MailRelay, mailbox_settings.RELAY_ID), settings=settings
        )
        relay = mailbox_settings.set_relay(session, **typed, password=password, settings=settings)
        after = mailbox_settings.describe_relay(relay, settings=settings)
        return f"relay: {mailbox_settings.change_detail(before, after, password=password)}"

    return _mailbox_change(
        request, person, "admin.relay_set", change, form="relay", typed=typed,
        done="set the outgoing relay",
    )  # fmt: skip


@router.post("/relay/remove")
def remove_relay_submit(
    request: Request, person: Admin, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)

    def remove(session: Session) -> str:
        settings = get_settings()
        before = mailbox_settings.describe_relay(
            mailbox_settings.remove_relay(session), settings=settings
        )
        after = mailbox_settings.describe_relay(None, settings=settings)
        return f"relay: {audit.changes(before, after)}"

    return _mailbox_change(
        request, person, "admin.relay_removed", remove, form="", done="removed the relay"
    )


@router.post("/relay/test")
def test_relay_submit(
    request: Request, person: Admin, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)
    return _connection_tested(
        request, person, "relay", lambda: mailbox_settings.check_relay(settings=get_settings())
    )


def _mailbox_change(
    request: Request,
    person: SignedIn,
    action: str,
    change: Callable[[Session], str],
    *,
    form: str,
    done: str,
    typed: dict[str, Any] | None = None,
    then: Callable[[], str] | None = None,
) -> Response:
    """Make the change, or show the page again with each field's message beside it in
    ``form`` (the new mailbox's, a mailbox's by name, or the relay's), as typed. Done,
    the browser goes to ``then()`` (a provider's sign-in), or back to the page."""
    fields: dict[str, str] = {}

    def noting_fields(session: Session) -> str:
        try:
            return change(session)
        except mailbox_settings.MailboxError as exc:
            fields.update(exc.fields)
            raise

    problem = _apply(request, person, action, noting_fields)
    if problem:
        return _mailboxes_page(
            request, person, error=problem, form=form, fields=fields, typed=typed,
            status_code=400,
        )  # fmt: skip
    if then is not None:
        return RedirectResponse(then(), status_code=303)
    return RedirectResponse(f"/admin/mailboxes?{urlencode({'done': done})}", status_code=303)


def _connection_tested(
    request: Request, person: SignedIn, what: str, check: Callable[[], list[str]]
) -> Response:
    """Run a connection test (no session held meanwhile: it may wait on a server), audit
    its outcome and show it beside what was tested."""
    try:
        tested = {"what": what, "ok": True, "passed": check()}
        detail = f"{what}: works"
    except ProbeFailed as exc:
        tested = {"what": what, "ok": False, "step": exc.step, "reason": exc.reason}
        detail = f"{what}: {exc}"
    except mailbox_settings.MailboxError as exc:
        tested = {"what": what, "ok": False, "step": "settings", "reason": str(exc)}
        detail = f"{what}: {exc}"
    action = "admin.relay_tested" if what == "relay" else "admin.mailbox_tested"
    with session_scope() as session:
        _audit(session, request, person, action, detail[:500])
    return _mailboxes_page(request, person, tested=tested)


def _mailboxes_page(
    request: Request,
    person: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    form: str = "",
    fields: dict[str, str] | None = None,
    typed: dict[str, Any] | None = None,
    tested: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    settings = get_settings()
    with session_scope() as session:
        mailboxes = mailbox_settings.list_mailboxes(session, settings=settings)
        relay = mailbox_settings.describe_relay(
            session.get(MailRelay, mailbox_settings.RELAY_ID), settings=settings
        )
        relay_logins = mailbox_settings.relay_login_mailboxes(session)
        _audit(session, request, person, "admin.mailboxes_viewed", "")
    page = render(
        request,
        "admin_mailboxes.html.j2",
        {
            "person": person,
            "mailboxes": mailboxes,
            "relay": relay,
            "relay_logins": relay_logins,
            "gateway": _gateway_settings(settings),
            "securities": mailbox_settings.SECURITIES,
            "notice": notice,
            "error": error,
            "form": form,
            "fields": fields or {},
            "typed": typed or {},
            "tested": tested,
            "providers": providers(settings),
            "redirect_uri": redirect_uri(settings),
        },
        status_code=status_code,
    )
    page.headers["Content-Security-Policy"] = connect_policy(settings)
    return page


def _gateway_settings(settings: Settings) -> list[dict[str, str]]:
    """The inbound gateway's settings, which belong to the process: each with the
    variable that sets it and whether it was set or is the default."""
    shown = {
        "gateway": ("Listens on", settings.gateway),
        "desk_address": ("Desk address", settings.desk_address),
        "desk_aliases": ("Also accepts", ", ".join(settings.desk_aliases) or "no other address"),
    }
    return [
        {
            "label": label,
            "value": value,
            "variable": f"{ENV_PREFIX}{key.upper()}",
            "source": "set in the environment" if key in settings.model_fields_set else "default",
        }
        for key, (label, value) in shown.items()
    ]


# --- shared ---------------------------------------------------------------------------


class FormValueError(ValueError):
    """A field that should hold a number does not; the message names it."""


REFUSALS = (
    CoderError,
    quota.QuotaError,
    saved_answers.SavedAnswerError,
    FormValueError,
    InboundError,
    OutboxError,
    mailbox_settings.MailboxError,
    ConnectRefused,
    ClosedDateError,
    DeskSettingError,
    EmailTemplateError,
)


def _apply(
    request: Request, person: SignedIn, action: str, change: Callable[[Session], str]
) -> str:
    """Make one admin change in its transaction and audit it (``change`` returns the
    row's detail): the refusal to show the admin, or ``""`` when it was done."""
    with session_scope() as session:
        try:
            detail = change(session)
        except REFUSALS as exc:
            session.rollback()  # nothing a refused change did before its refusal stays
            return str(exc)
        _audit(session, request, person, action, detail)
    return ""


def _moment(text: str, what: str) -> datetime:
    try:
        return audit.moment(text)
    except ValueError as exc:
        raise FormValueError(f"{what}: {exc}") from None


def _whole(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise FormValueError(f"{what} is a whole number, not {text.strip()!r}") from None


def _audit(session: Session, request: Request, person: SignedIn, action: str, detail: str) -> None:
    audit.record(
        session,
        actor=person.email,
        action=action,
        address=client_address(request),
        detail=detail,
    )
