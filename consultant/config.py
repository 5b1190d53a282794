"""Every setting of the desk, read from the environment (``CONSULTANT_*``) or ``.env``.

With nothing set the desk runs embedded: SQLite under ``./var/``, work done in-process,
outgoing mail written to ``./var/outbox/``. Production names a database, a broker, the
mailboxes and a relay. A bad value stops start-up with a one-line message that names the
setting (:class:`ConfigError`), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "CONSULTANT_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)
# Routing policy words (consultant/routing/policy.py says what each means).
RoutingTier = Literal["specialty", "generalist", "family", "anyone"]
RoutingPreference = Literal["on_shift", "load", "last_assigned"]
ROUTING_TIERS: tuple[str, ...] = get_args(RoutingTier)
ROUTING_PREFERENCES: tuple[str, ...] = get_args(RoutingPreference)
_KNOWN_DEFAULTS = {"changeme", "changethis", "secret", "password"}


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class TokenSource:
    """Where an XOAUTH2 access token comes from, asked afresh at every connect.

    For a mailbox named in ``CONSULTANT_IMAP_URL`` another program keeps a current one
    in ``file``, or ``command`` prints one; for one connected in the dashboard the desk
    keeps and refreshes it itself (``connection``: the mailbox row's id).
    """

    file: Path | None = None
    command: tuple[str, ...] = ()
    connection: int | None = None


@dataclass(frozen=True)
class MailboxURL:
    """One IMAP mailbox: ``imap[s]://user[:password]@host:port/FOLDER[?options]``.

    Options, URL-encoded: ``starttls=true`` (``imap://`` only) upgrades the connection
    before logging in; ``auth=xoauth2`` with ``token_file=PATH`` or ``token_command=CMD``
    logs in with an OAuth 2.0 access token instead of a password.
    """

    tls: bool
    host: str
    port: int
    username: str
    password: str = field(repr=False)  # never in a log line or a traceback's locals
    folder: str
    starttls: bool = False
    xoauth2: TokenSource | None = None  # set: log in with an access token, not the password
    label: str = ""  # a mailbox set up in the dashboard: the name the admin gave it

    @property
    def name(self) -> str:
        """A stable, password-free name: the key of the mailbox's sync cursor."""
        return self.label or f"{self.username}@{self.host}:{self.port}/{self.folder}"


@dataclass(frozen=True)
class RelayURL:
    """The outgoing relay: ``smtp://user:password@host:port[?starttls=true]`` or ``smtps://``."""

    tls: bool
    starttls: bool
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    # Set (a relay set up in the dashboard): log in with XOAUTH2 as a connected mailbox.
    xoauth2: TokenSource | None = None


def parse_mailbox_url(text: str) -> MailboxURL:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("imap", "imaps"):
        raise ValueError(
            f"unknown scheme {parts.scheme!r} in {_redact(text)} (use imap:// or imaps://)"
        )
    if not parts.hostname or not parts.username:
        raise ValueError(f"{_redact(text)} needs a user and a host")
    options = _query(parts, allowed=("starttls", "auth", "token_file", "token_command"))
    tls = parts.scheme == "imaps"
    starttls = _flag(options, "starttls", parts)
    if tls and starttls:
        raise ValueError(f"{_redact(text)}: starttls is for imap://; imaps:// is TLS already")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxURL(
        tls=tls,
        host=parts.hostname,
        port=_port(parts, 993 if tls else 143),
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=folder,
        starttls=starttls,
        xoauth2=_token_source(options, parts),
    )


def _token_source(options: dict[str, str], parts: SplitResult) -> TokenSource | None:
    """Where the XOAUTH2 token comes from; ``None`` for a password login.

    A token source without ``auth=xoauth2``, or a password with it, is refused rather
    than ignored, so a mistyped URL never logs in some other way than the one meant.
    """
    auth = options.get("auth", "password").lower()
    url = _redact(parts.geturl())
    if auth not in ("password", "xoauth2"):
        raise ValueError(f"{url}: unknown auth {auth!r} (use password or xoauth2)")
    token_file = options.get("token_file", "")
    command = options.get("token_command", "")
    if auth == "password":
        if token_file or command:
            raise ValueError(f"{url}: token_file and token_command need auth=xoauth2")
        return None
    if bool(token_file) == bool(command):
        raise ValueError(f"{url}: auth=xoauth2 needs one of token_file or token_command")
    if parts.password is not None:
        raise ValueError(f"{url}: auth=xoauth2 takes no password; the token stands for it")
    if token_file:
        return TokenSource(file=Path(token_file))
    try:  # split as a shell would, but run without one
        return TokenSource(command=tuple(shlex.split(command)))
    except ValueError as exc:  # an unclosed quote
        raise ValueError(f"{url}: token_command: {exc}") from None


def parse_relay_url(text: str) -> RelayURL:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(
            f"unknown scheme {parts.scheme!r} in {_redact(text)} (use smtp:// or smtps://)"
        )
    if not parts.hostname:
        raise ValueError(f"{_redact(text)} needs a host")
    tls = parts.scheme == "smtps"
    starttls = _flag(_query(parts, allowed=("starttls",)), "starttls", parts)
    return RelayURL(
        tls=tls,
        starttls=starttls,
        host=parts.hostname,
        port=_port(parts, 465 if tls else (587 if starttls else 25)),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def _query(parts: SplitResult, *, allowed: tuple[str, ...]) -> dict[str, str]:
    """The URL's options, decoded; an unknown or repeated one is an error, not ignored
    (a mistyped ``starttls`` must not quietly mean plaintext)."""
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in allowed:
            raise ValueError(
                f"unknown option {key!r} in {_redact(parts.geturl())} (known: {', '.join(allowed)})"
            )
        if key in options:
            raise ValueError(f"option {key!r} given twice in {_redact(parts.geturl())}")
        options[key] = value
    return options


def _flag(options: dict[str, str], key: str, parts: SplitResult) -> bool:
    value = options.get(key, "false").lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise ValueError(f"{key}={value!r} in {_redact(parts.geturl())} is not true or false")
    return value in ("1", "true", "yes")


def _port(parts: SplitResult, default: int) -> int:
    try:
        return parts.port or default
    except ValueError as exc:  # urlsplit raises lazily on a non-numeric port
        raise ValueError(f"bad port in {_redact(parts.geturl())}") from exc


def _redact(url: str) -> str:
    """The URL with its password replaced, so an error message never leaks it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    imap_url: Annotated[tuple[MailboxURL, ...], NoDecode] = ()
    smtp_url: RelayURL | None = None
    desk_address: str = "desk@localhost"
    desk_name: str = "CaseConsultant desk"
    desk_aliases: Annotated[tuple[str, ...], NoDecode] = ()  # more addresses the gateway accepts
    gateway: str = "127.0.0.1:2525"
    web: str = "127.0.0.1:8000"  # where the dashboard listens (host:port)
    templates_dir: Path = Path(__file__).resolve().parent.parent / "templates"
    imap_batch_size: int = Field(default=200, ge=1, le=5000)
    imap_connect_timeout: float = Field(default=10.0, gt=0)
    imap_read_timeout: float = Field(default=60.0, gt=0)
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_connections: int = Field(default=3, ge=1, le=20)  # per worker process, at once
    poll_interval: float = Field(default=30.0, gt=0)  # for servers without IDLE
    imap_processed_folder: str = ""  # move stored emails there; empty: flag them only
    imap_idle_seconds: float = Field(default=540.0, gt=0)  # renew IDLE before servers drop it
    imap_token_command_timeout: float = Field(default=30.0, gt=0)  # for auth=xoauth2
    max_message_bytes: int = Field(default=30 * 1024 * 1024, ge=1024)
    unknown_senders: Literal["guest", "reject"] = "guest"
    authserv_id: str = ""
    secret_key: str = ""
    # Keys used before CONSULTANT_SECRET_KEY, comma separated: sealed secrets still open
    # with them until `consultant mailboxes reseal` (consultant/sealed.py).
    secret_key_previous: Annotated[tuple[str, ...], NoDecode] = ()
    template_overrides: Path | None = None
    auto_replies_per_day: int = Field(default=10, ge=0)
    bounce_holdoff_days: int = Field(default=30, ge=0)
    smtp_max_per_minute: int = Field(default=0, ge=0)  # 0: no limit
    smtp_max_per_hour: int = Field(default=0, ge=0)
    max_send_attempts: int = Field(default=10, ge=1)
    sweep_seconds: float = Field(default=60.0, ge=0)  # how often, and how old work must be
    max_process_attempts: int = Field(default=5, ge=1)  # then an email is quarantined
    process_retry_seconds: float = Field(default=30.0, gt=0)
    smtp_retry_seconds: float = Field(default=30.0, gt=0)  # first retry; doubles each time
    log_level: LogLevel = "INFO"  # the desk's own loggers; libraries stay at WARNING
    log_format: LogFormat = "text"  # json: one object per line, for a log shipper
    # Routing and SLA clocks.
    routing_tiers: Annotated[tuple[RoutingTier, ...], NoDecode] = (
        "specialty",
        "generalist",
        "family",
    )
    routing_prefer: Annotated[tuple[RoutingPreference, ...], NoDecode] = (
        "on_shift",
        "load",
        "last_assigned",
    )
    claim_minutes: int = Field(default=15, ge=1, le=24 * 60)
    business_hours: str = ""  # "Mon-Fri 08:00-18:00 America/New_York"; empty: 24x7
    holidays: str = ""  # "US", "US-NY": the holidays package's country[-subdivision]
    auto_close_days: int = Field(default=7, ge=1)  # solved this long: closed
    escalation_seconds: float = Field(default=60.0, gt=0)  # how often SLA clocks are checked
    notify_minutes: float = Field(default=30.0, ge=0)  # one email per person per interval
    web_url: str = ""  # the dashboard's address for links; unset: http:// and CONSULTANT_WEB
    # The dashboard (HIPAA 164.312(a)(2)(iii): automatic logoff; OWASP's session limits).
    web_idle_minutes: int = Field(default=15, ge=1, le=24 * 60)  # signed out when idle
    web_session_hours: float = Field(default=8.0, gt=0, le=24 * 7)  # signed out regardless
    web_sign_in_failures: int = Field(default=5, ge=1)  # failures before a wait …
    web_sign_in_wait_minutes: int = Field(default=15, ge=1)  # … this long, per account and address
    web_two_factor: Literal["leads", "everyone"] = "leads"  # who must give a TOTP code
    api_calls_per_minute: int = Field(default=120, ge=1)  # per API token; then 429
    webhook_seconds: float = Field(default=10.0, gt=0)  # how often Celery beat posts webhooks
    # Mailboxes connected with OAuth 2.0 (consultant/mail/oauth_providers.py): the app the
    # desk is registered as at Microsoft Entra or Google Cloud. The *_url ones stand in
    # for the provider's own endpoints, for tests against a local authorization server.
    oauth_microsoft_client_id: str = ""
    oauth_microsoft_client_secret: str = ""
    oauth_microsoft_tenant: str = "common"  # or the directory (tenant) id of one organisation
    oauth_microsoft_authorize_url: str = ""
    oauth_microsoft_token_url: str = ""
    oauth_google_client_id: str = ""
    oauth_google_client_secret: str = ""
    oauth_google_authorize_url: str = ""
    oauth_google_token_url: str = ""
    oauth_timeout: float = Field(default=15.0, gt=0)  # one call to a token endpoint
    report_seconds: float = Field(default=60.0, gt=0)  # how often the reports' rollups refresh

    @field_validator("imap_url", mode="before")
    @classmethod
    def _parse_mailboxes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(parse_mailbox_url(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("desk_aliases", mode="before")
    @classmethod
    def _split_aliases(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _parse_relay(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_relay_url(value) if value.strip() else None
        return value

    @field_validator("routing_tiers", "routing_prefer", mode="before")
    @classmethod
    def _split_words(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("routing_tiers", "routing_prefer")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one word")
        if len(set(value)) != len(value):
            raise ValueError(f"names a word twice: {', '.join(value)}")
        return value

    @field_validator("business_hours")
    @classmethod
    def _check_business_hours(cls, value: str) -> str:
        from consultant.hours import parse_schedule

        parse_schedule(value)  # a ScheduleError is a ValueError, which names the setting
        return value.strip()

    @field_validator("holidays")
    @classmethod
    def _check_holidays(cls, value: str) -> str:
        from consultant.hours import check_holidays_spec

        return check_holidays_spec(value)

    @model_validator(mode="before")
    @classmethod
    def _web_url_from_web(cls, data: Any) -> Any:
        """Links point where the dashboard listens unless a proxy's address is given."""
        if isinstance(data, dict) and not data.get("web_url"):
            data = {**data, "web_url": f"http://{data.get('web') or '127.0.0.1:8000'}"}
        return data

    @field_validator("web_url")
    @classmethod
    def _check_web_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// address")
        return value.rstrip("/")

    @field_validator(
        "oauth_microsoft_authorize_url",
        "oauth_microsoft_token_url",
        "oauth_google_authorize_url",
        "oauth_google_token_url",
    )
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if value and (
            urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname
        ):
            raise ValueError(f"{value!r} is not an http:// or https:// address")
        return value

    @field_validator("desk_address")
    @classmethod
    def _check_desk_address(cls, value: str) -> str:
        local, at, domain = value.strip().rpartition("@")
        if not at or not local or not domain or " " in value.strip():
            raise ValueError(f"{value!r} is not an email address")
        return value.strip().lower()

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_secret(cls, value: str) -> str:
        if value and _weak(value):
            raise ValueError("must be at least 32 random characters (or unset, to generate one)")
        return value

    @field_validator("secret_key_previous", mode="before")
    @classmethod
    def _split_previous_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("secret_key_previous")
    @classmethod
    def _refuse_weak_previous(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(_weak(key) for key in value):
            raise ValueError("each key must be at least 32 random characters")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: object) -> object:
        return _one_of(value, LOG_LEVELS, normalise=str.upper)

    @field_validator("log_format", mode="before")
    @classmethod
    def _check_log_format(cls, value: object) -> object:
        return _one_of(value, LOG_FORMATS, normalise=str.lower)

    @field_validator("gateway", "web")
    @classmethod
    def _check_host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{value!r} is not host:port")
        return value

    @property
    def database(self) -> str:
        """The database URL; embedded SQLite under the data directory when none is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'consultant.db').as_posix()}"

    @property
    def outbox_dir(self) -> Path:
        """Where outgoing mail is written as ``.eml`` files when no relay is configured."""
        return self.data_dir / "outbox"

    def signing_key(self) -> bytes:
        """The key that signs ticket references in Message-IDs.

        ``CONSULTANT_SECRET_KEY`` when set; otherwise one generated on first use and kept
        in the data directory, readable by this user only. Every process of one desk must
        share it, so a deployment with several machines sets the variable.
        """
        if self.secret_key:
            return self.secret_key.encode()
        return _key_kept_in(self.data_dir / "secret.key")

    @property
    def desk_addresses(self) -> tuple[str, ...]:
        """Every address the desk receives for: its own and the aliases."""
        return (self.desk_address, *self.desk_aliases)

    @property
    def desk_domain(self) -> str:
        return self.desk_address.rpartition("@")[2]

    @property
    def web_host(self) -> str:
        return self.web.rpartition(":")[0]

    @property
    def web_port(self) -> int:
        return int(self.web.rpartition(":")[2])

    @property
    def web_is_secure(self) -> bool:
        """Served behind TLS (``CONSULTANT_WEB_URL`` is https): cookies are ``Secure``."""
        return self.web_url.startswith("https://")

    @property
    def gateway_host(self) -> str:
        return self.gateway.rpartition(":")[0]

    @property
    def gateway_port(self) -> int:
        return int(self.gateway.rpartition(":")[2])


def _weak(key: str) -> bool:
    return len(key) < 32 or key.lower() in _KNOWN_DEFAULTS


def _one_of(value: object, allowed: tuple[str, ...], *, normalise: Callable[[str], str]) -> object:
    """``value`` as one of ``allowed`` (any case), or a message that lists them."""
    if not isinstance(value, str):
        return value
    if normalise(value.strip()) not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return normalise(value.strip())


def load_settings() -> Settings:
    """Read the settings, turning a validation error into a one-line :class:`ConfigError`."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{ENV_PREFIX}{field.upper()}: {message}") from None


@lru_cache(maxsize=4)
def _key_kept_in(path: Path) -> bytes:
    """The key in ``path``, made there first if there is none; read once per process,
    as every email the desk sends is signed with it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"secret.key.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another process was first: use its key
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip().encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Tests clear the cache after changing the env."""
    return load_settings()
