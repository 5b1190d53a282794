"""Fixtures: real servers on free loopback ports, and the desk pointed at them.

Every test that touches the database runs twice, on SQLite and on PostgreSQL (the
``backend`` fixture). Servers live for the whole session; each test gets empty tables,
an empty SMTP sink and a folder of its own in the shared Dovecot.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, Table, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel

from consultant import config, db, migrate
from tests.servers.dovecot import DovecotServer
from tests.servers.postgres import scratch_database
from tests.servers.redis_server import RedisServer
from tests.servers.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parent.parent
EMAILS = Path(__file__).resolve().parent / "emails"
DESK_ADDRESS = "desk@desk.example"
MAIL_USER, MAIL_PASSWORD = "desk", "test-only-password"


def read_email(name: str) -> bytes:
    """A test email from tests/emails/, with CRLF line ends as it travels on the wire."""
    return (EMAILS / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- databases ----------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``one_database("sqlite")`` runs on that database only, and so does
    every test in Chromium, on SQLite. They check what sits above the database: the
    command line's own work (its arguments, what it prints; each command is a new
    process that costs a second or more to start) and the dashboard in a browser (a few
    seconds each). The domain functions and every page's HTTP tests under them run on
    both databases."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("one_database")
        wanted = marker.args[0] if marker is not None else None
        if "browser" in getattr(item, "fixturenames", ()):
            wanted = "sqlite"
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if wanted is not None and backend is not None and backend != wanted:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test run, dropped at the end."""
    with scratch_database("cc_test", durable=False) as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database URL for the test: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'desk.db'}"
    return request.getfixturevalue("postgres_database")


def empty_tables(url: str) -> None:
    """The schema at the newest revision, through the migrations as a desk gets it, with
    no rows in any table."""
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    for attempt in range(5):
        try:
            _delete_every_row(engine, tables)
            break
        except OperationalError as exc:
            # The session's Celery worker may still be finishing the previous test's last
            # task; TRUNCATE takes its locks table by table and PostgreSQL may pick it
            # as a deadlock's victim. The worker's task is retried; so is this.
            if "deadlock" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.5)
    engine.dispose()


def _delete_every_row(engine: Engine, tables: list[Table]) -> None:
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in tables)
            # The audit log's trigger refuses TRUNCATE to the desk; a test's fresh start
            # (as a superuser) sets triggers aside for this one transaction.
            session.execute(text("SET LOCAL session_replication_role = replica"))
            session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                session.execute(table.delete())
        session.commit()


@contextmanager
def empty_database_like(url: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the same kind as ``url``."""
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with scratch_database("cc_empty") as url:
        yield url


# --- the desk -----------------------------------------------------------------------


@dataclass
class Desk:
    """The desk's configuration for one test, as environment variables."""

    env: dict[str, str]
    data_dir: Path

    def consultant(
        self, *args: str, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``consultant`` command as a user would, in a separate process
        (``input``: what the person types at its prompts)."""
        return subprocess.run(
            [sys.executable, "-m", "consultant", *args],
            env={**os.environ, **self.env},
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )


@pytest.fixture
def desk(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_sink: SmtpSink
) -> Iterator[Desk]:
    """The desk on empty tables, sending to the SMTP sink; in-process, no broker."""
    yield from in_process_desk(backend, tmp_path, monkeypatch, smtp_sink)


def in_process_desk(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_sink: SmtpSink
) -> Iterator[Desk]:
    empty_tables(url)
    env = {
        "CONSULTANT_DATABASE_URL": url,
        "CONSULTANT_DATA_DIR": str(tmp_path / "var"),
        "CONSULTANT_DESK_ADDRESS": DESK_ADDRESS,
        "CONSULTANT_SMTP_URL": smtp_sink.url,
        "CONSULTANT_BROKER_URL": "",
        "CONSULTANT_IMAP_URL": "",
    }
    yield from configured_desk(env, tmp_path / "var", monkeypatch)


def configured_desk(
    env: dict[str, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Desk]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    db.reset_engine()
    yield Desk(env=env, data_dir=data_dir)
    db.reset_engine()
    config.get_settings.cache_clear()


# --- servers ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(autouse=True)
def _empty_sink(request: pytest.FixtureRequest) -> None:
    if "smtp_sink" in request.fixturenames:
        request.getfixturevalue("smtp_sink").clear()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    base = Path(tempfile.mkdtemp(prefix="dc"))  # short: Unix socket paths are limited
    with DovecotServer(base, users={MAIL_USER: MAIL_PASSWORD}) as server:
        yield server
    shutil.rmtree(base, ignore_errors=True)


@dataclass
class CaseMailbox:
    server: DovecotServer
    folder: str

    @property
    def url(self) -> str:
        return self.server.url(MAIL_USER, self.folder)

    def append(self, *raws: bytes) -> None:
        self.server.append_many(MAIL_USER, list(raws), folder=self.folder)


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> CaseMailbox:
    """An empty IMAP folder of the test's own in the shared Dovecot."""
    return new_case_mailbox(dovecot)


def new_case_mailbox(server: DovecotServer) -> CaseMailbox:
    """A new, empty folder of the desk's user in ``server``."""
    folder = f"Case{secrets.token_hex(4)}"
    with server.client(MAIL_USER) as client:
        client.create_folder(folder)
    return CaseMailbox(server, folder)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@dataclass
class CeleryWorker:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as the OOM killer would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def celery_env(
    database: str, *, broker: str, smtp_sink: SmtpSink, data_dir: Path
) -> dict[str, str]:
    """The desk's settings for a Celery deployment against the test servers."""
    return {
        "CONSULTANT_DATABASE_URL": database,
        "CONSULTANT_BROKER_URL": broker,
        "CONSULTANT_SMTP_URL": smtp_sink.url,
        "CONSULTANT_DESK_ADDRESS": DESK_ADDRESS,
        "CONSULTANT_DATA_DIR": str(data_dir),
        "CONSULTANT_IMAP_URL": "",
        "CONSULTANT_SMTP_RETRY_SECONDS": "0.5",
    }


@contextmanager
def running_celery_worker(
    env: dict[str, str],
    log: Path,
    *,
    pool: Sequence[str] = ("--concurrency", "2"),
    code: Path = REPO,
) -> Iterator[CeleryWorker]:
    """A real ``celery worker`` process on the three queues (two pool processes unless
    ``pool`` says otherwise), running the desk's code from ``code``.

    It runs in a process group of its own, so that a test can kill it whole; it is
    stopped on the way out unless it is dead already.
    """
    command = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", *pool]
    command += ["--without-gossip", "--without-mingle"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--loglevel", "INFO"],
            env={**os.environ, **env, "PYTHONPATH": str(code)},
            cwd=code,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_log(log, b"ready.", process, timeout=60)
        yield CeleryWorker(process=process, env=env, log=log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="session")
def celery_worker(
    backend: str,
    redis_server: RedisServer,
    smtp_sink: SmtpSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryWorker]:
    """A worker for the whole session, against the shared Redis and the test's database."""
    data_dir = tmp_path_factory.mktemp("worker")
    env = celery_env(
        backend, broker=redis_server.url, smtp_sink=smtp_sink, data_dir=data_dir / "var"
    )
    empty_tables(backend)  # the worker's first task must find the schema in place
    with running_celery_worker(env, data_dir / "worker.log") as worker:
        yield worker


def _wait_for_log(
    log: Path, marker: bytes, process: subprocess.Popen[bytes], *, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in log.read_bytes():
            return
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"celery worker not ready:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    """A Redis of the test's own: no session-wide worker takes its tasks, and pausing or
    killing its consumers disturbs no other test."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def celery_postgres_desk(
    postgres_database: str,
    broker: RedisServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Desk]:
    """The desk on PostgreSQL and Celery; each test starts (and kills) its own workers.

    ``CONSULTANT_SWEEP_SECONDS=0``: a sweep the test runs announces whatever is pending.
    """
    empty_tables(postgres_database)
    data_dir = tmp_path / "var"
    env = celery_env(postgres_database, broker=broker.url, smtp_sink=smtp_sink, data_dir=data_dir)
    env["CONSULTANT_SWEEP_SECONDS"] = "0"
    yield from configured_desk(env, data_dir, monkeypatch)


@pytest.fixture
def celery_desk(
    celery_worker: CeleryWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Desk]:
    """The desk configured like the worker: work announced through Redis to Celery."""
    empty_tables(celery_worker.env["CONSULTANT_DATABASE_URL"])
    env = {**celery_worker.env, "CONSULTANT_DATA_DIR": str(tmp_path / "var")}
    yield from configured_desk(env, tmp_path / "var", monkeypatch)
