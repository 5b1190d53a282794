"""The desk's tables, all in one place.

A change here needs a migration (consultant/migrations/versions/) that makes the same
change in a live database; a test checks that the newest revision and these models
agree, and ``schema.sql`` is that revision rendered as SQL.
Timestamps are stored in UTC and always come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMPTZ`` on PostgreSQL; on SQLite, which keeps no zone, read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: the desk stores aware UTC times only")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def created_at_field() -> datetime:
    return Field(default_factory=utcnow, sa_type=UTCDateTime)


class SearchVector(TypeDecorator[str]):
    """``TSVECTOR`` on PostgreSQL (full-text search); unused text on SQLite, which
    searches through an FTS5 table instead (see ``consultant.codes.search`` and
    ``consultant.search``)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TSVECTOR())
        return dialect.type_descriptor(Text())


# --- accounts and quota -------------------------------------------------------------


class Plan(SQLModel, table=True):
    """What an account buys: so many cases a month, answered within so many hours."""

    __tablename__ = "plans"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    cases_per_period: int | None = None  # None: unlimited
    sla_hours: int = 24  # first response, in business hours
    resolution_hours: int | None = None  # None: no resolution target
    followups_count: bool = False
    created_at: datetime = created_at_field()


class Account(SQLModel, table=True):
    """A customer: one address (``jane@clinic.example``) or a whole domain (``@clinic.example``)."""

    __tablename__ = "accounts"

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(sa_type=Text, unique=True)
    plan_id: int = Field(foreign_key="plans.id")
    timezone: str = Field(default="UTC", sa_type=Text)
    created_at: datetime = created_at_field()


class QuotaEntryKind(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class QuotaEntry(SQLModel, table=True):
    """One line of an account's ledger. ``key`` is unique, so a case is never charged twice."""

    __tablename__ = "quota_entries"
    __table_args__ = (Index("ix_quota_entries_account_period", "account_id", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    kind: str = Field(sa_type=Text)
    amount: int = 1
    period: str = Field(sa_type=Text)  # calendar month in the account's zone, "2026-11"
    key: str = Field(sa_type=Text, unique=True)
    reason: str | None = Field(default=None, sa_type=Text)
    actor: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_at_field()


# --- inbound mail -------------------------------------------------------------------


class Mailbox(SQLModel, table=True):
    """An IMAP folder the desk reads, with its sync cursor (RFC 9051: UIDVALIDITY + UID).

    A mailbox set up in the dashboard also keeps how to reach it (``host`` set); one
    named in ``CONSULTANT_IMAP_URL`` has only its cursor here. Its password is sealed
    (consultant/sealed.py), never stored as typed.
    """

    __tablename__ = "mailboxes"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    host: str | None = Field(default=None, sa_type=Text)  # None: not set up here
    port: int | None = None
    security: str | None = Field(default=None, sa_type=Text)  # tls, starttls or none
    username: str | None = Field(default=None, sa_type=Text)
    auth: str | None = Field(default=None, sa_type=Text)  # how it logs in: password
    password_sealed: str | None = Field(default=None, sa_type=Text)
    folder: str | None = Field(default=None, sa_type=Text)
    enabled: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    last_uid: int = Field(default=0, sa_type=BigInteger)
    last_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    # Failed connects or polls since the last good one. The database's own default lets
    # a poller that predates the column still write the row.
    failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Connected with OAuth 2.0 (consultant/mail/oauth_connect.py): the provider, its
    # tokens sealed (consultant/sealed.py), and when consent was given and withdrawn.
    oauth_provider: str | None = Field(default=None, sa_type=Text)  # microsoft, google
    oauth_refresh_sealed: str | None = Field(default=None, sa_type=Text)
    oauth_refresh_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    oauth_access_sealed: str | None = Field(default=None, sa_type=Text)
    oauth_access_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    oauth_connected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    oauth_connected_by: str | None = Field(default=None, sa_type=Text)
    oauth_revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()


class MailRelay(SQLModel, table=True):
    """The outgoing relay set up in the dashboard; it replaces ``CONSULTANT_SMTP_URL``.

    One row at most (``id`` 1). The password is sealed (consultant/sealed.py). With
    ``auth`` ``oauth`` it logs in with XOAUTH2 as the connected mailbox
    ``login_mailbox_id``, with that mailbox's access token and user.
    """

    __tablename__ = "mail_relays"

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(sa_type=Text)
    port: int
    security: str = Field(sa_type=Text)  # tls, starttls or none
    username: str = Field(default="", sa_type=Text)
    auth: str = Field(default="password", sa_type=Text)  # password or oauth
    password_sealed: str | None = Field(default=None, sa_type=Text)
    login_mailbox_id: int | None = Field(default=None, foreign_key="mailboxes.id")
    created_at: datetime = created_at_field()


class OAuthConnect(SQLModel, table=True):
    """A connect an admin has started and the provider has not answered yet.

    The ``state`` sent to the provider is kept only as its SHA-256 and belongs to the
    admin's web session; the PKCE ``code_verifier`` (RFC 7636) is sealed. A row answers
    one callback, within ten minutes: ``used_at`` is set by the first.
    """

    __tablename__ = "oauth_connects"

    id: int | None = Field(default=None, primary_key=True)
    state_hash: str = Field(sa_type=Text, unique=True)
    web_session_id: int = Field(foreign_key="web_sessions.id")
    mailbox_id: int = Field(foreign_key="mailboxes.id")
    provider: str = Field(sa_type=Text)
    verifier_sealed: str = Field(sa_type=Text)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InboundStatus(StrEnum):
    RECEIVED = "received"  # raw bytes stored, not yet processed
    PROCESSED = "processed"
    FAILED = "failed"  # an attempt failed; it will be retried
    QUARANTINED = "quarantined"  # set aside for an admin after repeated failures
    DELETED = "deleted"  # an admin gave up on it, saying why; the raw bytes are kept


class InboundEmail(SQLModel, table=True):
    """An email exactly as it arrived, stored before anything else happens to it.

    ``fingerprint`` (a hash of the fields its author wrote and of its body, see
    ``mail.parse.identify``) is unique, so the same email seen again — a re-poll, a new
    UIDVALIDITY, the gateway and the mailbox both — is stored once, and two different
    emails are never taken for one.
    """

    __tablename__ = "inbound_emails"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "uidvalidity", "uid"),
        Index("ix_inbound_emails_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_type=Text)  # "imap", "smtp" or "file" (consultant inbound add)
    mailbox_id: int | None = Field(default=None, foreign_key="mailboxes.id")
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    uid: int | None = Field(default=None, sa_type=BigInteger)
    message_id: str = Field(sa_type=Text, index=True)
    fingerprint: str = Field(sa_type=Text, unique=True)
    envelope_from: str | None = Field(default=None, sa_type=Text)
    envelope_to: str | None = Field(default=None, sa_type=Text)
    size: int
    raw: bytes = Field(sa_type=LargeBinary)
    status: str = Field(default=InboundStatus.RECEIVED, sa_type=Text)
    stage: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    next_attempt_at: datetime = created_at_field()  # a failed attempt pushes it back
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    received_at: datetime = created_at_field()
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_by: str | None = Field(default=None, sa_type=Text)
    deleted_reason: str | None = Field(default=None, sa_type=Text)


# --- tickets ------------------------------------------------------------------------


class TicketStatus(StrEnum):
    """Where a case stands; consultant/states.py says which moves are allowed."""

    NEW = "new"  # nobody owns it yet
    OPEN = "open"  # a coder owns it and owes the customer an answer
    PENDING = "pending"  # waiting on the customer; the resolution clock pauses
    SOLVED = "solved"  # a customer reply reopens it
    CLOSED = "closed"  # solved long enough ago (CONSULTANT_AUTO_CLOSE_DAYS); final
    HELD_QUOTA = "held_quota"
    HELD_UNVERIFIED = "held_unverified"


class CoderRole(StrEnum):
    CODER = "coder"
    LEAD = "lead"  # also assigns cases and hears of breaches and unroutable cases
    ADMIN = "admin"


LEAD_ROLES = frozenset({CoderRole.LEAD, CoderRole.ADMIN})  # assign cases, hear of breaches


class Coder(SQLModel, table=True):
    """A person who answers cases. Never deleted: deactivating keeps their history.

    ``specialties`` is a comma-separated list of the names code intelligence assigns
    (``consultant codes specialties``), or ``generalist``; ``working_hours`` is a schedule
    in the coder's own zone (``Mon-Fri 08:00-17:00``, empty: any time).
    """

    __tablename__ = "coders"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=Text, unique=True)
    name: str = Field(sa_type=Text)
    role: str = Field(
        default=CoderRole.CODER, sa_type=Text, sa_column_kwargs={"server_default": "coder"}
    )
    specialties: str = Field(default="", sa_type=Text)
    capacity: int = Field(default=10, sa_column_kwargs={"server_default": "10"})
    timezone: str = Field(default="UTC", sa_type=Text, sa_column_kwargs={"server_default": "UTC"})
    working_hours: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    active: bool = True
    away_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    away_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    password_hash: str | None = Field(default=None, sa_type=Text)  # argon2id; None: no sign-in
    totp_secret: str | None = Field(default=None, sa_type=Text)  # RFC 6238; None: not enrolled
    totp_last_step: int | None = None  # the last code's 30-second step: it works only once
    created_at: datetime = created_at_field()

    def specialty_list(self) -> list[str]:
        return [name for name in self.specialties.split(",") if name]

    def is_away(self, at: datetime) -> bool:
        """Out of office at ``at``: from ``away_from`` (or now) until ``away_until`` (or back)."""
        if self.away_from is None and self.away_until is None:
            return False
        starts = self.away_from is None or self.away_from <= at
        ends = self.away_until is not None and self.away_until <= at
        return starts and not ends


class Ticket(SQLModel, table=True):
    """One case. Its id is the number customers see as ``CC-<id>``."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status", "status"),
        Index("ix_tickets_coder_status", "coder_id", "status"),
        Index("ix_tickets_status_due", "status", "due_at"),
        Index("ix_tickets_claim_expires", "claim_expires_at"),
        Index("ix_tickets_account_id", "account_id", "id"),  # the account's earlier cases
        Index("ix_tickets_search", "search_vector", postgresql_using="gin"),
        # The queue's order (most urgent first), whole and per owner: a page reads 51 rows.
        Index("ix_tickets_due_id", "due_at", "id"),
        Index("ix_tickets_coder_due_id", "coder_id", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(sa_type=Text)
    requester: str = Field(sa_type=Text)
    requester_name: str = Field(default="", sa_type=Text)
    account_id: int | None = Field(default=None, foreign_key="accounts.id")
    status: str = Field(default=TicketStatus.NEW, sa_type=Text)
    specialty: str | None = Field(default=None, sa_type=Text)
    coder_id: int | None = Field(default=None, foreign_key="coders.id")  # the owner
    # A claim: the coder working on it now, until the lease runs out.
    claimed_by_id: int | None = Field(default=None, foreign_key="coders.id")
    claim_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the nearest SLA due
    waiting_since: datetime | None = Field(default=None, sa_type=UTCDateTime)  # no one to take it
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    solved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    # Subject and requester for case search, written by the database (revision 0006).
    search_vector: str | None = Field(default=None, sa_type=SearchVector)

    @property
    def reference(self) -> str:
        return f"CC-{self.id}"


class Message(SQLModel, table=True):
    """One email in a ticket's thread, in either direction."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_search", "search_vector", postgresql_using="gin"),
        Index("ix_messages_created_at", "created_at"),  # a day's answers, for the reports
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_emails.id", unique=True)
    direction: str = Field(sa_type=Text)  # "in" or "out"
    message_id: str = Field(sa_type=Text, index=True)
    sender: str = Field(sa_type=Text)
    subject: str = Field(sa_type=Text)
    body_text: str = Field(sa_type=Text)
    body_html: str | None = Field(default=None, sa_type=Text)
    is_automatic: bool = False
    coder_id: int | None = Field(default=None, foreign_key="coders.id")  # who wrote an answer
    created_at: datetime = created_at_field()
    # The text for case search, written by the database (revision 0006).
    search_vector: str | None = Field(default=None, sa_type=SearchVector)


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    filename: str = Field(sa_type=Text)
    content_type: str = Field(sa_type=Text)
    size: int
    sha256: str = Field(sa_type=Text)
    content: bytes = Field(sa_type=LargeBinary)


class CodeLookup(SQLModel, table=True):
    """A medical code found in a case, with what the catalog says of it.

    One row per (message, system, code): looking a ticket up again stores nothing new.
    """

    __tablename__ = "code_lookups"
    __table_args__ = (
        UniqueConstraint("ticket_id", "message_id", "system", "code"),
        Index("ix_code_lookups_code_ticket_id", "code", "ticket_id"),  # precedents, search
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    system: str = Field(sa_type=Text)
    code: str = Field(sa_type=Text)
    status: str = Field(sa_type=Text)
    description: str | None = Field(default=None, sa_type=Text)
    confidence: float = 1.0
    reason: str = Field(default="", sa_type=Text)
    span_start: int | None = None
    span_end: int | None = None
    source: str = Field(default="", sa_type=Text)  # subject, body or an attachment's name
    modifiers: str = Field(default="", sa_type=Text)  # comma-separated, as written
    units: int | None = None
    detail: str = Field(default="", sa_type=Text)  # status reason, NCCI and MUE findings
    alternatives: str = Field(default="", sa_type=Text)  # other readings, "icd10cm:J11.00"
    created_at: datetime = created_at_field()


class Event(SQLModel, table=True):
    """The audit trail: who did what to which ticket or email, and when."""

    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_emails.id")
    actor: str = Field(sa_type=Text)
    kind: str = Field(sa_type=Text)
    detail: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_at_field()


# --- owners and clocks --------------------------------------------------------------


class Assignment(SQLModel, table=True):
    """One stretch of a coder owning a case: who, from when, why, and why it ended."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_coder_started", "coder_id", "started_at"),
        Index("ix_assignments_started_at", "started_at"),  # a day's assignments, for reports
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    coder_id: int = Field(foreign_key="coders.id")
    reason: str = Field(sa_type=Text)  # "routed", "claimed", "assigned by lead@…"
    actor: str = Field(sa_type=Text)
    started_at: datetime = created_at_field()
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_reason: str | None = Field(default=None, sa_type=Text)


class SlaTarget(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class SlaClock(SQLModel, table=True):
    """One SLA target of one ticket, counted in business hours (consultant/sla.py).

    The clock runs from ``running_since``; a pause adds what ran to ``used_seconds``.
    ``next_check_at`` is the next instant the escalation sweep must look at it (the
    75 % mark, then the due time; none while paused or stopped), so a sweep reads only
    the clocks that need it, whatever the number of open tickets.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "target"),
        Index("ix_sla_clocks_next_check", "next_check_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id")
    target: str = Field(sa_type=Text)
    target_seconds: int
    used_seconds: float = 0.0
    running_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # while running
    next_check_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    warned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # 75 % reminder
    breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # met or ended


class Notification(SQLModel, table=True):
    """A line for a coder or lead (never a customer), sent in their working hours.

    Lines waiting for the same person go out together as one digest email.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_unsent", "sent_at", "coder_id"),)

    id: int | None = Field(default=None, primary_key=True)
    coder_id: int = Field(foreign_key="coders.id")
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    mailbox_id: int | None = Field(default=None, foreign_key="mailboxes.id")  # of mailbox.* lines
    kind: str = Field(sa_type=Text)  # "sla.at_risk", "sla.breached", "routing.waiting"
    key: str = Field(sa_type=Text, unique=True)  # one line per cause and person
    created_at: datetime = created_at_field()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")


class ClosedDate(SQLModel, table=True):
    """A day the desk is closed besides CONSULTANT_HOLIDAYS: its SLA clocks stand still."""

    __tablename__ = "closed_dates"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(unique=True)
    name: str = Field(default="", sa_type=Text)
    actor: str = Field(sa_type=Text)
    created_at: datetime = created_at_field()


# --- outgoing mail ------------------------------------------------------------------


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # an admin stopped it; never sent


class OutboxEmail(SQLModel, table=True):
    """An email to send, fully rendered, written in the same transaction as its cause.

    ``raw`` keeps the exact bytes, so a re-send after a crash carries the same Message-ID.
    ``key`` is unique: the same cause (say, the acknowledgement of ticket 7) queues one email.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status", "status"),
        Index("ix_outbox_recipient_created", "recipient", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    kind: str = Field(sa_type=Text)
    key: str = Field(sa_type=Text, unique=True)
    message_id: str = Field(sa_type=Text, unique=True)
    recipient: str = Field(sa_type=Text)
    subject: str = Field(sa_type=Text)
    raw: bytes = Field(sa_type=LargeBinary)
    status: str = Field(default=OutboxStatus.PENDING, sa_type=Text)
    is_automatic: bool = False
    attempts: int = 0
    next_attempt_at: datetime = created_at_field()  # a temporary failure pushes it back
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_at_field()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    bounced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- code catalog -------------------------------------------------------------------


class CodeSystem(SQLModel, table=True):
    """A loaded code system and the release it holds (``icd10cm`` 2026-04, ``hcpcs`` 2020)."""

    __tablename__ = "code_systems"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    release: str = Field(sa_type=Text)
    code_count: int = 0
    loaded_at: datetime = created_at_field()


class CatalogCode(SQLModel, table=True):
    """One code or modifier of a code system: what validation, search and ``show`` read."""

    __tablename__ = "catalog_codes"
    __table_args__ = (
        UniqueConstraint("system", "code", "kind"),
        Index("ix_catalog_codes_search", "search_vector", postgresql_using="gin"),
    )

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(sa_type=Text)
    code: str = Field(sa_type=Text)
    kind: str = Field(default="code", sa_type=Text)  # "code" or "modifier"
    description: str = Field(sa_type=Text)
    short_description: str | None = Field(default=None, sa_type=Text)
    billable: bool = True
    parent: str | None = Field(default=None, sa_type=Text)
    notes: str = Field(default="", sa_type=Text)
    effective_date: date | None = None
    deletion_date: date | None = None
    release: str = Field(sa_type=Text)
    search_vector: str | None = Field(default=None, sa_type=SearchVector)


class NcciPtpEdit(SQLModel, table=True):
    """An NCCI procedure-to-procedure edit from a file the user imported."""

    __tablename__ = "ncci_ptp_edits"
    __table_args__ = (UniqueConstraint("column1", "column2", "effective_date"),)

    id: int | None = Field(default=None, primary_key=True)
    column1: str = Field(sa_type=Text)
    column2: str = Field(sa_type=Text)
    effective_date: date
    deletion_date: date | None = None
    modifier_indicator: int
    release: str = Field(sa_type=Text)


class MueValue(SQLModel, table=True):
    """An NCCI medically unlikely edit (maximum units) from a file the user imported."""

    __tablename__ = "mue_values"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=Text, unique=True)
    max_units: int
    adjudication_indicator: int
    rationale: str = Field(default="", sa_type=Text)
    release: str = Field(sa_type=Text)


# --- yearly code releases ------------------------------------------------------------


class CodeRelease(SQLModel, table=True):
    """One release of a code system that was loaded (ICD-10-CM FY2026, effective
    2025-10-01), in effect until the next loaded release's ``effective_from``."""

    __tablename__ = "code_releases"
    __table_args__ = (UniqueConstraint("system", "effective_from"),)

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(sa_type=Text)
    name: str = Field(sa_type=Text)
    effective_from: date
    effective_to: date | None = None
    code_count: int = 0
    source: str = Field(sa_type=Text)  # the file's name, or the package it came from
    loaded_at: datetime = created_at_field()


class CodeVersion(SQLModel, table=True):
    """A code as the releases from ``valid_from`` up to (not including) ``valid_to``
    describe it; a new row starts where a release changed its description or flag."""

    __tablename__ = "code_versions"
    __table_args__ = (UniqueConstraint("system", "code", "valid_from"),)

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(sa_type=Text)
    code: str = Field(sa_type=Text)
    valid_from: date
    valid_to: date | None = None
    description: str = Field(sa_type=Text)
    short_description: str | None = Field(default=None, sa_type=Text)
    billable: bool = True


# --- the dashboard: who is signed in, and who saw or did what ------------------------


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is kept,
    so a copy of the database signs nobody in."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=Text, unique=True)
    coder_id: int = Field(foreign_key="coders.id", index=True)
    csrf_token: str = Field(sa_type=Text)
    address: str = Field(default="", sa_type=Text)
    created_at: datetime = created_at_field()
    last_seen_at: datetime = created_at_field()
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_reason: str | None = Field(default=None, sa_type=Text)
    second_factor_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """One thing a person saw or did: never changed, never deleted (on PostgreSQL a
    trigger refuses both, whoever asks)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor_action_at", "actor", "action", "at"),
        Index("ix_audit_log_address_action_at", "address", "action", "at"),
        Index("ix_audit_log_ticket_id", "ticket_id", "id"),  # who saw a case, newest first
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_at_field()
    actor: str = Field(sa_type=Text)  # the person's address as they gave it
    coder_id: int | None = Field(default=None, foreign_key="coders.id")
    action: str = Field(sa_type=Text)  # sign_in, case.viewed, case.answered, …
    ticket_id: int | None = None  # no foreign key: the log outlives what it names
    detail: str = Field(default="", sa_type=Text)
    address: str = Field(default="", sa_type=Text)  # where the request came from


# --- coders' own tools: answers they reuse, and the link that lets a new coder in ---------


class SavedAnswer(SQLModel, table=True):
    """An answer coders send again and again, with variables filled from the case
    (``{{ first_name }}``, ``{{ codes }}`` …) when it is put into the answer box."""

    __tablename__ = "saved_answers"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_type=Text, unique=True)
    body: str = Field(sa_type=Text)  # a Jinja2 template, checked to render when saved
    created_by: str = Field(sa_type=Text)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class SignInLink(SQLModel, table=True):
    """A one-time link a new coder opens to choose their password. Only the token's
    SHA-256 is kept; it works once, and not after ``expires_at``."""

    __tablename__ = "sign_in_links"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=Text, unique=True)
    coder_id: int = Field(foreign_key="coders.id", index=True)
    created_by: str = Field(sa_type=Text)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- presence: who has a case open in the dashboard right now ------------------------


class CasePresence(SQLModel, table=True):
    """A coder's open case page. The page's heartbeat says every few seconds that it is
    still open (``seen_at``) and whether they are typing an answer (``typing_at``); a row
    not renewed for a while is stale, and is deleted soon after."""

    __tablename__ = "case_presence"
    __table_args__ = (Index("ix_case_presence_seen_at", "seen_at"),)

    ticket_id: int = Field(foreign_key="tickets.id", primary_key=True)
    coder_id: int = Field(foreign_key="coders.id", primary_key=True)
    seen_at: datetime = Field(sa_type=UTCDateTime)
    typing_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- the JSON API: personal access tokens -------------------------------------------------


class ApiToken(SQLModel, table=True):
    """A token a program calls the API with, acting as one coder with some scopes.
    Shown once when created; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=Text, unique=True)
    name: str = Field(sa_type=Text)  # what it is for, e.g. "billing system"
    coder_id: int = Field(foreign_key="coders.id", index=True)  # whom it acts as
    scopes: str = Field(sa_type=Text)  # comma-separated: tickets:read, tickets:write, admin
    created_by: str = Field(sa_type=Text)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- webhooks: other systems told what happened, signed ------------------------------------


class Webhook(SQLModel, table=True):
    """An address told of some events (``ticket.created``, ``ticket.answered``,
    ``sla.breached``), each delivery signed with ``secret`` (HMAC-SHA256)."""

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=Text)
    secret: str = Field(sa_type=Text)  # the receiver checks signatures with it
    events: str = Field(sa_type=Text)  # comma-separated event kinds
    include_body: bool = False  # the customer's text goes out only when the admin says so
    active: bool = True
    last_event_id: int = 0  # events up to this one have their deliveries
    created_by: str = Field(sa_type=Text)
    created_at: datetime = created_at_field()


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: sent, waiting for its next try, or given up on."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id")
    event_id: int
    status: str = Field(default="pending", sa_type=Text)  # pending, sent, failed
    attempts: int = 0
    next_attempt_at: datetime = created_at_field()
    last_error: str = Field(default="", sa_type=Text)
    created_at: datetime = created_at_field()
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- reports: rollups the beat keeps, so no report reads the raw tables whole ----------


class ReportCase(SQLModel, table=True):
    """What the reports last knew of one case: its group (plan, specialty, account) and
    the UTC days it counts on. A refresh compares it with the case now, so it knows the
    days a changed case used to count on as well as the new ones."""

    __tablename__ = "report_cases"
    __table_args__ = (
        Index("ix_report_cases_created_on", "created_on"),
        Index("ix_report_cases_solved_on", "solved_on"),
        Index("ix_report_cases_fr_on", "fr_on"),
        Index("ix_report_cases_fr_breached_on", "fr_breached_on"),
        Index("ix_report_cases_res_on", "res_on"),
        Index("ix_report_cases_res_breached_on", "res_breached_on"),
    )

    ticket_id: int = Field(primary_key=True, foreign_key="tickets.id")
    plan_id: int = 0  # 0: no account (nor plan)
    specialty: str = Field(default="", sa_type=Text)
    account_id: int = 0
    coder_id: int = 0  # the owner; 0: none
    created_on: date
    solved_on: date | None = None
    unfinished: bool = False  # new, open or pending: in the backlog
    bad_codes: bool = False  # a code the catalog calls unknown, deleted or not yet valid
    fr_on: date | None = None  # the first response clock stopped (the case was answered)
    fr_seconds: float | None = None  # business seconds it ran
    fr_coder_id: int = 0  # who gave the first response
    fr_breached_on: date | None = None
    res_on: date | None = None  # the resolution clock stopped (solved)
    res_seconds: float | None = None
    res_breached_on: date | None = None


class ReportDay(SQLModel, table=True):
    """One UTC day of one group of cases: what the volume, speed and codes reports add up.
    Rows with ``account_id`` -1 add up every account (consultant/reports/rollups.py)."""

    __tablename__ = "report_days"
    __table_args__ = (Index("ix_report_days_account_day", "account_id", "day"),)

    day: date = Field(primary_key=True)
    plan_id: int = Field(default=0, primary_key=True)
    specialty: str = Field(default="", sa_type=Text, primary_key=True)
    account_id: int = Field(default=0, primary_key=True)
    received: int = 0
    answered: int = 0  # answers coders sent that day
    solved: int = 0
    backlog: int = 0  # cases received that day and still unfinished
    bad_codes: int = 0  # cases received that day with an invalid or deleted code
    fr_met: int = 0
    fr_breached: int = 0
    res_met: int = 0
    res_breached: int = 0


class ReportSpeed(SQLModel, table=True):
    """How many first responses (or resolutions) of one day and group took a number of
    business minutes within one histogram bucket (``bucket``: its upper bound)."""

    __tablename__ = "report_speed"
    # One account's rows, or the summed ones (account -1) of one kind: per plan
    # (specialty "*"), per plan and specialty, or per coder.
    __table_args__ = (
        Index(
            "ix_report_speed_account_coder_specialty_day",
            "account_id",
            "coder_id",
            "specialty",
            "day",
        ),
    )

    day: date = Field(primary_key=True)
    target: str = Field(sa_type=Text, primary_key=True)  # first_response or resolution
    plan_id: int = Field(default=0, primary_key=True)
    specialty: str = Field(default="", sa_type=Text, primary_key=True)
    account_id: int = Field(default=0, primary_key=True)
    coder_id: int = Field(default=0, primary_key=True)
    bucket: int = Field(primary_key=True)
    cases: int = 0


class ReportCoderDay(SQLModel, table=True):
    """One coder's UTC day: cases assigned to them and answers they sent."""

    __tablename__ = "report_coder_days"

    day: date = Field(primary_key=True)
    coder_id: int = Field(primary_key=True)
    assigned: int = 0
    answered: int = 0


class ReportCode(SQLModel, table=True):
    """How many cases received on one UTC day (in one plan and specialty) named a code,
    and how many of those the catalog found it invalid or deleted in."""

    __tablename__ = "report_codes"

    day: date = Field(primary_key=True)
    plan_id: int = Field(default=0, primary_key=True)
    specialty: str = Field(default="", sa_type=Text, primary_key=True)
    system: str = Field(sa_type=Text, primary_key=True)
    code: str = Field(sa_type=Text, primary_key=True)
    cases: int = 0
    bad: int = 0


class ReportQuota(SQLModel, table=True):
    """An account's ledger for one period, summed: cases charged and given back."""

    __tablename__ = "report_quota"

    account_id: int = Field(primary_key=True)
    period: str = Field(sa_type=Text, primary_key=True)
    debits: int = 0
    credits: int = 0


class ReportRefresh(SQLModel, table=True):
    """Where the last refresh of the rollups stopped reading (one row). ``marks`` holds,
    per table it reads, the highest id seen by the last two refreshes (JSON)."""

    __tablename__ = "report_refresh"

    id: int = Field(default=1, primary_key=True)
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rebuilt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    marks: str = Field(default="{}", sa_type=Text)


# --- desk settings an admin changes in the browser ------------------------------------


class DeskSetting(SQLModel, table=True):
    """A desk-wide setting an admin set (business hours, holidays, the routing policy);
    while a name has no row, its environment value is in force."""

    __tablename__ = "desk_settings"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    value: str = Field(sa_type=Text)  # as the CONSULTANT_* variable of the name would say it
    changed_by: str = Field(sa_type=Text)
    changed_at: datetime = created_at_field()


class EmailTemplate(SQLModel, table=True):
    """An admin's version of one part of an outgoing email (``ack`` text, ``ack`` html…),
    used instead of the packaged template while it renders."""

    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("kind", "part"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=Text)  # ack, answer, over_quota, not_registered, …
    part: str = Field(sa_type=Text)  # text, html
    body: str = Field(sa_type=Text)  # a Jinja2 template, checked to render when saved
    changed_by: str = Field(sa_type=Text)
    changed_at: datetime = created_at_field()
