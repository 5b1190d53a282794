"""docker-compose.yml is a valid production description that refuses missing secrets."""

from __future__ import annotations

import os
import subprocess

import yaml

from tests.conftest import REPO

REQUIRED = {
    "POSTGRES_PASSWORD": "compose-test-only",
    "CONSULTANT_SMTP_URL": "smtp://relay.example:25",
    "CONSULTANT_DESK_ADDRESS": "desk@desk.example",
}


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    return subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_and_names_every_process() -> None:
    assert compose("config", "-q", env=REQUIRED).returncode == 0
    services = compose("config", "--services", env=REQUIRED).stdout.split()
    assert {"postgres", "redis", "poller", "gateway", "worker", "beat", "web"} <= set(services)


def test_compose_refuses_to_start_without_the_secrets() -> None:
    result = compose("config", "-q", env={})
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_every_process_of_the_desk_starts_after_the_one_migration() -> None:
    """Processes refuse a schema that is behind, so the migration runs once, first."""
    resolved = yaml.safe_load(compose("config", env=REQUIRED).stdout)["services"]
    desk = {"poller", "gateway", "worker", "beat", "web"}

    assert resolved["migrate"]["command"] == ["consultant", "db", "upgrade"]
    assert resolved["migrate"]["restart"] == "no"
    for name in desk:
        assert resolved[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
