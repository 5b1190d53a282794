"""What `consultant run` writes while it works: a console a person can read.

By default a few lines: where the desk listens, where its mail goes, one line per email
received and per email sent, with no library chatter; with CONSULTANT_LOG_FORMAT=json
one JSON object per line for a log shipper; and, at any level, never a case's subject,
body or attachment (PHI). Each test runs the real command as a subprocess on an
embedded desk (SQLite, mail kept as files) and reads what it printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.codes.conftest import make_pdf
from tests.conftest import read_email
from tests.servers.ports import free_port

UNSET = ("DATABASE_URL", "BROKER_URL", "IMAP_URL", "SMTP_URL", "DESK_ADDRESS", "DATA_DIR")
UNSET += ("LOG_LEVEL", "LOG_FORMAT")
DESK = "desk@localhost"  # the embedded desk's address
SENDER = "dana@clinic.example"
LIBRARY_INFO = re.compile(r"\bINFO (mail\.log|sqlalchemy|celery|kombu|amqp|alembic|asyncio)")

# A case whose every part is a phrase found nowhere else, so the log can be searched for it.
SECRET_SUBJECT = "Quillwort tangerine subject 5521"
SECRET_BODY = "Patient reports a marmalade harpsichord rash since Tuesday 4417."
SECRET_ATTACHMENT_NAME = "okapi-lantern-notes.pdf"
SECRET_ATTACHMENT_TEXT = "Operative note: zeppelin cardamom incision 9083, code E11.9"
SECRET_WORDS = ("quillwort", "tangerine", "marmalade", "harpsichord", "okapi", "zeppelin")


@dataclass
class Console:
    """What the desk printed, once it stopped."""

    stdout: str
    stderr: str
    returncode: int

    @property
    def lines(self) -> list[str]:
        return [line for line in (self.stdout + self.stderr).splitlines() if line.strip()]


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a new user's `make run`: nothing configured but a free port."""
    env = {k: v for k, v in os.environ.items() if k.removeprefix("CONSULTANT_") not in UNSET}
    return {
        **env,
        "CONSULTANT_GATEWAY": f"127.0.0.1:{free_port()}",
        "CONSULTANT_WEB": f"127.0.0.1:{free_port()}",
        "PYTHONUNBUFFERED": "1",
    }


def consultant(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One ``consultant`` command to its end, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "consultant", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def running_desk(env: dict[str, str], cwd: Path, *args: str) -> Iterator[list[Console]]:
    """``consultant run ARGS`` until the block ends, then SIGTERM, as a service manager
    stops it; the list it yields then holds what the desk printed."""
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "consultant", "run", *args],
            env=env,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    printed: list[Console] = []
    try:
        wait_for_gateway(env["CONSULTANT_GATEWAY"], process, err)
        yield printed
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
        printed.append(Console(out.read_text(), err.read_text(), returncode))


def wait_for_gateway(address: str, process: subprocess.Popen[str], stderr: Path) -> None:
    """Until the desk's SMTP gateway takes connections; fails if the desk exited."""
    host, port = address.split(":")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the desk exited:\n{stderr.read_text()}"
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"the gateway never listened on {address}")


def send(address: str, raw: bytes) -> None:
    host, port = address.split(":")
    with smtplib.SMTP(host, int(port), timeout=10) as client:
        client.sendmail(SENDER, [DESK], raw)


def wait_until_answered(cwd: Path, stderr: Path, *, tickets: int = 1) -> None:
    """Until the desk has made the ticket(s), sent each acknowledgement (as a file) and
    logged that it did: what a person watching the console waits for."""
    outbox = cwd / "var" / "outbox"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(list(outbox.glob("*.eml"))) >= tickets and "sent outbox" in stderr.read_text():
            return
        time.sleep(0.1)
    raise TimeoutError(f"no acknowledgement sent:\n{stderr.read_text()}")


def secret_case() -> bytes:
    """A case with a subject, a body and a PDF attachment made of distinctive phrases."""
    message = EmailMessage()
    message["From"] = f"Dana <{SENDER}>"
    message["To"] = DESK
    message["Subject"] = SECRET_SUBJECT
    message["Message-ID"] = "<secret-case@clinic.example>"
    message.set_content(SECRET_BODY)
    message.add_attachment(
        make_pdf(SECRET_ATTACHMENT_TEXT),
        maintype="application",
        subtype="pdf",
        filename=SECRET_ATTACHMENT_NAME,
    )
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_the_default_console_says_where_the_desk_listens_and_one_line_per_email(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    gateway = embedded_env["CONSULTANT_GATEWAY"]
    case = read_email("case-home-infusion.eml")
    with running_desk(embedded_env, tmp_path) as printed:
        send(gateway, case)
        wait_until_answered(tmp_path, tmp_path / "stderr.txt")
    [console] = printed
    lines = console.lines

    assert console.returncode == 0, console.stderr
    assert len(lines) <= 16, "\n".join(lines)
    assert f"  inbound SMTP gateway: {gateway}" in lines
    assert "  outgoing mail:        saved as .eml files under var/outbox/" in lines
    [received] = [line for line in lines if "received email" in line]
    assert received.endswith(
        f"INFO consultant.intake: received email 1 by smtp ({len(case)} bytes) → new ticket CC-1"
    )
    [sent] = [line for line in lines if "sent outbox" in line]
    assert sent.endswith("sent outbox 1 (ack, ticket CC-1)")
    assert not [line for line in lines if "mail.log" in line or LIBRARY_INFO.search(line)]
    assert SENDER not in console.stdout + console.stderr  # ids at INFO, not addresses
    assert "Traceback" not in console.stderr


def test_a_stop_while_the_desk_is_starting_is_a_clean_stop(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    """A service manager may stop the desk as soon as its gateway listens, before the
    dashboard and the pollers are up: the desk then stops as it would later, with 0."""
    with running_desk(embedded_env, tmp_path) as printed:
        pass  # SIGTERM the moment the gateway takes connections
    [console] = printed

    assert console.returncode == 0, console.stderr
    assert "Traceback" not in console.stderr


def test_json_format_writes_one_object_per_line_for_a_log_shipper(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**embedded_env, "CONSULTANT_LOG_FORMAT": "json"}
    assert consultant(env, tmp_path, "db", "upgrade").returncode == 0  # as a deployment does
    with running_desk(env, tmp_path) as printed:
        send(env["CONSULTANT_GATEWAY"], read_email("case-home-infusion.eml"))
        wait_until_answered(tmp_path, tmp_path / "stderr.txt")
    [console] = printed

    records = [json.loads(line) for line in console.lines]
    assert console.returncode == 0, console.stderr
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    [banner] = [r for r in records if r["message"] == "CaseConsultant desk is running."]
    assert banner["gateway"] == env["CONSULTANT_GATEWAY"]
    assert banner["outgoing"] == "saved as .eml files under var/outbox/"
    [received] = [r for r in records if r["message"].startswith("received email")]
    assert received["level"] == "INFO"
    assert received["logger"] == "consultant.intake"
    assert (received["inbound_id"], received["source"], received["ticket"]) == (1, "smtp", "CC-1")
    [sent] = [r for r in records if r["message"].startswith("sent outbox")]
    assert (sent["outbox_id"], sent["kind"], sent["ticket"]) == (1, "ack", "CC-1")


def test_no_subject_body_or_attachment_reaches_the_log_even_at_debug(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**embedded_env, "CONSULTANT_LOG_LEVEL": "DEBUG"}
    with running_desk(env, tmp_path, "--verbose") as printed:
        send(env["CONSULTANT_GATEWAY"], secret_case())
        wait_until_answered(tmp_path, tmp_path / "stderr.txt")
    [console] = printed
    everything = console.stdout + console.stderr

    assert console.returncode == 0, console.stderr
    assert "received email 1 by smtp" in everything  # the intake ran, and was logged
    assert "mail.log" in everything  # --verbose: the libraries' INFO lines are there too
    secrets = (SECRET_SUBJECT, SECRET_BODY, SECRET_ATTACHMENT_NAME, SECRET_ATTACHMENT_TEXT)
    for phrase in (*secrets, *SECRET_WORDS):  # not the whole, and not even a fragment
        assert phrase.lower() not in everything.lower(), (phrase, everything)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CONSULTANT_LOG_FORMAT", "yaml", "'yaml' is not one of text, json"),
        ("CONSULTANT_LOG_LEVEL", "LOUD", "'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_a_bad_log_setting_stops_the_desk_with_a_one_line_error(
    embedded_env: dict[str, str], tmp_path: Path, variable: str, value: str, message: str
) -> None:
    refused = consultant({**embedded_env, variable: value}, tmp_path, "run")

    assert refused.returncode == 2
    assert refused.stderr.strip() == f"configuration error: {variable}: {message}"
    assert not (tmp_path / "var").exists()  # stopped before touching anything
