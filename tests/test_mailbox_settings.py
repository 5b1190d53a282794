"""Mailboxes and the relay set up in the database: sealed passwords, key rotation, what
the forms refuse, and the ``consultant mailboxes`` command."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text

from consultant import config, db, mailbox_settings
from consultant.db import session_scope
from consultant.mailbox_settings import MailboxError
from consultant.sealed import SealedError, seal, unseal
from tests.conftest import MAIL_PASSWORD, MAIL_USER, CaseMailbox, Desk

OLD_KEY = "o" * 16 + "ld-key-for-sealing-tests-0123456789"
NEW_KEY = "n" * 16 + "ew-key-for-sealing-tests-0123456789"


def use_keys(monkeypatch: pytest.MonkeyPatch, current: str, *previous: str) -> config.Settings:
    monkeypatch.setenv("CONSULTANT_SECRET_KEY", current)
    monkeypatch.setenv("CONSULTANT_SECRET_KEY_PREVIOUS", ",".join(previous))
    config.get_settings.cache_clear()
    return config.get_settings()


def add_support_mailbox(mailbox: CaseMailbox, **changes: object) -> None:
    fields: dict[str, object] = {
        "name": "Support",
        "host": mailbox.server.host,
        "port": str(mailbox.server.port),
        "security": "none",
        "username": MAIL_USER,
        "password": MAIL_PASSWORD,
        "folder": mailbox.folder,
        **changes,
    }
    with session_scope() as session:
        mailbox_settings.add_mailbox(session, **fields, settings=config.get_settings())  # type: ignore[arg-type]


def test_a_sealed_password_opens_with_the_key_and_shows_nothing_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = use_keys(monkeypatch, OLD_KEY)
    sealed = seal("hunter2-é", settings=settings)
    assert "hunter2" not in sealed
    assert seal("hunter2-é", settings=settings) != sealed  # a fresh IV every time
    assert unseal(sealed, settings=settings, whose="x") == "hunter2-é"

    stranger = use_keys(monkeypatch, NEW_KEY)
    with pytest.raises(SealedError) as refused:
        unseal(sealed, settings=stranger, whose="mailbox support's password")
    assert "mailbox support's password" in str(refused.value)
    assert "CONSULTANT_SECRET_KEY_PREVIOUS" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    with pytest.raises(SealedError):
        unseal("not a token at all \x00", settings=stranger, whose="x")


def test_a_rotated_key_still_reads_old_secrets_and_reseal_moves_them_to_the_new_one(
    desk: Desk, mailbox: CaseMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch, OLD_KEY)
    add_support_mailbox(mailbox)

    use_keys(monkeypatch, NEW_KEY, OLD_KEY)  # rotated: the old key only opens
    [polled] = mailbox_settings.mailboxes_to_poll(settings=config.get_settings())
    assert polled.password == MAIL_PASSWORD
    resealed = desk.consultant("mailboxes", "reseal")
    assert resealed.returncode == 0, resealed.stderr
    assert "1 secret(s) sealed with the current key" in resealed.stdout

    use_keys(monkeypatch, NEW_KEY)  # the old key gone: everything still opens
    [polled] = mailbox_settings.mailboxes_to_poll(settings=config.get_settings())
    assert polled.password == MAIL_PASSWORD

    use_keys(monkeypatch, OLD_KEY)  # a key the secret was never sealed with
    assert mailbox_settings.mailboxes_to_poll(settings=config.get_settings()) == []
    [listed] = _list()
    assert "mailbox support's password was sealed with a key" in listed["last_error"]
    refused = desk.consultant("mailboxes", "reseal")
    assert refused.returncode == 1
    assert "0 secret(s) sealed" in refused.stdout
    assert "mailbox support's password was sealed with a key" in refused.stderr


def test_the_stored_password_is_sealed_and_never_listed(
    desk: Desk, mailbox: CaseMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch, OLD_KEY)
    add_support_mailbox(mailbox)
    with db.get_engine().connect() as connection:
        stored = connection.execute(text("SELECT password_sealed FROM mailboxes")).scalar_one()
    assert MAIL_PASSWORD not in stored
    listed = desk.consultant("mailboxes", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert MAIL_PASSWORD not in listed.stdout
    assert '"password": "set"' in listed.stdout
    assert f'"folder": "{mailbox.folder}"' in listed.stdout


def test_changing_where_a_mailbox_points_restarts_its_cursor_and_keeps_the_password(
    desk: Desk, mailbox: CaseMailbox
) -> None:
    add_support_mailbox(mailbox)
    with session_scope() as session:
        row = mailbox_settings.mailbox_named(session, "support")
        row.uidvalidity, row.last_uid = 7, 42
        sealed = row.password_sealed
    with session_scope() as session:
        mailbox_settings.change_mailbox(
            session, name="support", host=mailbox.server.host, port=mailbox.server.port,
            security="none", username=MAIL_USER, password="", folder="Elsewhere",
            enabled=False, settings=config.get_settings(),
        )  # fmt: skip
    with session_scope() as session:
        row = mailbox_settings.mailbox_named(session, "support")
        assert (row.uidvalidity, row.last_uid, row.enabled) == (None, 0, False)
        assert row.password_sealed == sealed
    assert mailbox_settings.mailboxes_to_poll(settings=config.get_settings()) == []


def test_every_field_at_fault_is_named_at_once(desk: Desk, mailbox: CaseMailbox) -> None:
    with pytest.raises(MailboxError) as refused:
        add_support_mailbox(
            mailbox, name="", host="bad host\x00", port="99999999999999", security="ssl",
            username="", password="",
        )  # fmt: skip
    assert set(refused.value.fields) == {"name", "host", "port", "security", "username", "password"}
    assert "control characters" in refused.value.fields["host"]
    with pytest.raises(MailboxError) as refused:
        add_support_mailbox(mailbox, port="-1")
    assert refused.value.fields["port"].startswith("a whole number from 1 to 65535")
    add_support_mailbox(mailbox)
    with pytest.raises(MailboxError, match="already"):
        add_support_mailbox(mailbox)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    typed=st.fixed_dictionaries(
        {
            key: st.text(max_size=300)
            for key in ("name", "host", "port", "security", "username", "password", "folder")
        }
    )
)
def test_whatever_is_typed_is_saved_or_refused_with_a_message(typed: dict[str, str]) -> None:
    """The form's checks alone (no database): every input is either clean or a
    MailboxError naming its fields, never another exception."""
    try:
        clean = mailbox_settings._checked(
            typed, ports=mailbox_settings.IMAP_PORTS, password_required=True
        )
    except MailboxError as exc:
        assert exc.fields and all(key in typed for key in exc.fields)
        return
    assert 1 <= clean["port"] <= 65535
    assert clean["security"] in mailbox_settings.SECURITIES


def test_the_relay_set_here_replaces_the_environment_s(desk: Desk) -> None:
    settings = config.get_settings()
    assert mailbox_settings.current_relay(settings=settings) == settings.smtp_url
    added = desk.consultant(
        "mailboxes", "set-relay", "--host", "relay.example", "--user", "desk",
        "--new-password", input="relay-secret\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    relay = mailbox_settings.current_relay(settings=settings)
    assert relay is not None
    assert (relay.host, relay.port, relay.starttls, relay.password) == (
        "relay.example", 587, True, "relay-secret",
    )  # fmt: skip
    assert desk.consultant("mailboxes", "remove-relay").returncode == 0
    assert mailbox_settings.current_relay(settings=settings) == settings.smtp_url


def _list() -> list[dict[str, object]]:
    with session_scope() as session:
        return mailbox_settings.list_mailboxes(session, settings=config.get_settings())


@pytest.mark.one_database("sqlite")
def test_the_command_line_adds_and_tests_a_mailbox_naming_the_failed_step(
    desk: Desk, mailbox: CaseMailbox
) -> None:
    server = mailbox.server
    added = desk.consultant(
        "mailboxes", "add", "support", "--host", server.host, "--port", str(server.port),
        "--security", "none", "--user", MAIL_USER, "--folder", "Missing",
        input=f"{MAIL_PASSWORD}\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert MAIL_PASSWORD not in added.stdout
    tested = desk.consultant("mailboxes", "test", "support")
    assert tested.returncode == 1
    assert "support: open folder failed: " in tested.stderr
