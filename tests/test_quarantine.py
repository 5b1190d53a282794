"""An email that breaks a stage is retried a few times, then set aside, and can be replayed."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import InboundEmail, Ticket
from consultant.quarantine import inert
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink


@pytest.fixture
def broken_template(desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An admin's acknowledgement template that names a variable that does not exist."""
    overrides = tmp_path / "overrides"
    (overrides / "email").mkdir(parents=True)
    broken = overrides / "email" / "ack.txt.j2"
    broken.write_text("Your case {{ reference }} is due {{ due_date_typo }}.\n")
    for name, value in {
        "TEMPLATE_OVERRIDES": str(overrides),
        "MAX_PROCESS_ATTEMPTS": "2",
        "PROCESS_RETRY_SECONDS": "0.01",
    }.items():
        monkeypatch.setenv(f"CONSULTANT_{name}", value)
        desk.env[f"CONSULTANT_{name}"] = value
    get_settings.cache_clear()
    return broken


def only_email() -> InboundEmail:
    with session_scope() as session:
        [email] = session.exec(select(InboundEmail)).all()
        return email


def test_a_failing_email_is_retried_then_quarantined_then_replayed_after_the_fix(
    desk: Desk, smtp_sink: SmtpSink, broken_template: Path
) -> None:
    raw = case_email("dana@clinic.example")
    store(raw)

    drain()
    first = only_email()
    assert (first.status, first.stage, first.attempts) == ("failed", "reply", 1)
    assert first.error is not None and "due_date_typo" in first.error
    time.sleep(0.1)
    drain()
    assert (only_email().status, only_email().attempts) == ("quarantined", 2)
    drain()  # set aside: not tried again
    assert only_email().attempts == 2

    listed = json.loads(
        desk.consultant("inbound", "list", "--status", "quarantined", "--json").stdout
    )
    assert [(e["stage"], e["attempts"]) for e in listed] == [("reply", 2)]
    with session_scope() as session:
        assert session.exec(select(Ticket)).all() == []  # rolled back with the stage
    assert only_email().raw == raw  # nothing lost

    broken_template.unlink()
    retried = desk.consultant("inbound", "retry", "--all")
    assert "1 email(s) queued again" in retried.stdout
    drain()

    assert only_email().status == "processed"
    assert len(smtp_sink.wait_for(1, timeout=10)) == 1


def test_retry_needs_ids_or_all(desk: Desk) -> None:
    result = desk.consultant("inbound", "retry")
    assert result.returncode == 1
    assert "--all" in result.stderr


def test_retry_says_which_named_emails_it_left_alone(desk: Desk) -> None:
    processed = store(case_email("dana@clinic.example"))
    drain()
    assert only_email().status == "processed"

    result = desk.consultant("inbound", "retry", str(processed), "999")

    assert result.returncode == 1
    assert "0 email(s) queued again" in result.stdout
    assert f"email {processed}: processed, nothing to retry" in result.stderr
    assert "email 999: no such email" in result.stderr
    assert only_email().status == "processed"  # never processed twice


def test_an_empty_list_says_so(desk: Desk) -> None:
    assert desk.consultant("inbound", "list").stdout == "no emails received yet\n"
    quarantined = desk.consultant("inbound", "list", "--status", "quarantined")
    assert quarantined.stdout == "no quarantined emails\n"


def test_a_deleted_email_is_listed_with_who_and_why_and_its_bytes_kept(desk: Desk) -> None:
    raw = b"not an email at all\r\n"
    inbound_id = str(store(raw))
    drain()

    deleted = desk.consultant("inbound", "delete", inbound_id, "--reason", "a probe", "--by", "ann")
    assert deleted.returncode == 0 and "its bytes are kept" in deleted.stdout

    listed = json.loads(desk.consultant("inbound", "list", "--status", "deleted", "--json").stdout)
    assert [(e["status"], e["deleted_by"], e["deleted_reason"]) for e in listed] == [
        ("deleted", "ann", "a probe")
    ]
    assert only_email().raw == raw


HOSTILE_PARTS = st.sampled_from([
    "<a href='https://evil.example/'>", "<img src=https://t.example/p.gif>",
    "<img srcset='x.png 2x'>", "<script>alert(1)</script>", "<body background=//t.example/b>",
    "<a href=cid:x>", "<img src=cid:part1>", "<p onclick=x()>", "<style>@import url(x)</style>",
    "</a>", "<", ">", "'", '"', "=", " ", "text",
])  # fmt: skip


class Elements(HTMLParser):
    """Every element a browser would build from some HTML, with its attributes."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.found: list[tuple[str, list[str]]] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, [name for name, _ in attrs]))


@given(st.lists(HOSTILE_PARTS | st.text(max_size=8), max_size=30).map("".join))
def test_a_set_aside_emails_html_keeps_no_link_image_or_script(markup: str) -> None:
    for tag, attributes in Elements(inert(markup)).found:
        assert tag not in ("script", "style", "iframe", "object")
        assert not {"href", "src", "srcset", "background"} & set(attributes)
        assert not [name for name in attributes if name.startswith("on")]
