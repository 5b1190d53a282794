"""`make run`'s desk as a new user meets it: no servers, SQLite, mail kept as files."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.conftest import read_email
from tests.servers.ports import free_port

UNSET = ("DATABASE_URL", "BROKER_URL", "IMAP_URL", "SMTP_URL", "DESK_ADDRESS", "DATA_DIR")


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.removeprefix("CONSULTANT_") not in UNSET}
    return {
        **env,
        "CONSULTANT_GATEWAY": f"127.0.0.1:{free_port()}",
        "CONSULTANT_WEB": f"127.0.0.1:{free_port()}",
    }


@contextmanager
def consultant_run(env: dict[str, str], cwd: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``consultant run`` in its own process, once its banner says it is ready: the
    process and the banner."""
    process = subprocess.Popen(
        [sys.executable, "-m", "consultant", "run"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner = ""
    while "Stop with Ctrl-C." not in banner:
        line = process.stdout.readline()
        assert line, f"the desk exited before it was ready:\n{banner}"
        banner += line
    try:
        yield process, banner
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def running_desk(embedded_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    with consultant_run(embedded_env, tmp_path) as (process, banner):
        assert embedded_env["CONSULTANT_GATEWAY"] in banner
        yield process


def wait_for_files(folder: Path, pattern: str, timeout: float = 10) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern))
        if found:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"nothing matching {pattern} appeared in {folder}")


def test_an_email_sent_to_the_gateway_becomes_cc_1_and_its_acknowledgement_a_file(
    running_desk: subprocess.Popen[str], embedded_env: dict[str, str], tmp_path: Path
) -> None:
    host, port = embedded_env["CONSULTANT_GATEWAY"].split(":")
    with smtplib.SMTP(host, int(port), timeout=10) as client:
        client.sendmail(
            "dana@clinic.example", ["desk@localhost"], read_email("case-home-infusion.eml")
        )

    [ack_file] = wait_for_files(tmp_path / "var" / "outbox", "*.eml")
    ack = message_from_bytes(ack_file.read_bytes())
    assert "[#CC-1]" in ack["Subject"]
    assert ack["In-Reply-To"] == "<case-home-infusion@clinic.example>"

    listed = subprocess.run(
        [sys.executable, "-m", "consultant", "tickets", "list", "--json"],
        env=embedded_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [t["reference"] for t in json.loads(listed.stdout)] == ["CC-1"]
