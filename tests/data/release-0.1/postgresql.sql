-- The schema release 0.1 made on PostgreSQL (its schema.sql, equal to create_all), before
-- migrations. Frozen: tests recognise and upgrade a database made by that release.

-- Accounts and quota ---------------------------------------------------------------

CREATE TABLE plans (
    id                SERIAL PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    cases_per_period  INTEGER,                  -- NULL: unlimited
    sla_hours         INTEGER NOT NULL,
    followups_count   BOOLEAN NOT NULL,         -- do follow-ups in an open case count?
    created_at        TIMESTAMPTZ NOT NULL
);

-- One address ("jane@clinic.example") or a whole domain ("@clinic.example").
CREATE TABLE accounts (
    id          SERIAL PRIMARY KEY,
    address     TEXT NOT NULL UNIQUE,
    plan_id     INTEGER NOT NULL REFERENCES plans (id),
    timezone    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE coders (
    id           SERIAL PRIMARY KEY,
    email        TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    specialties  TEXT NOT NULL,                 -- comma separated
    active       BOOLEAN NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- Tickets: the id is the number customers see as CC-<id>.
CREATE TABLE tickets (
    id              SERIAL PRIMARY KEY,
    subject         TEXT NOT NULL,
    requester       TEXT NOT NULL,
    requester_name  TEXT NOT NULL,
    account_id      INTEGER REFERENCES accounts (id),
    status          TEXT NOT NULL,
    specialty       TEXT,
    coder_id        INTEGER REFERENCES coders (id),
    due_at          TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_tickets_status ON tickets (status);

-- The ledger. "key" is unique: the same case can never be debited twice.
CREATE TABLE quota_entries (
    id          SERIAL PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    ticket_id   INTEGER REFERENCES tickets (id),
    kind        TEXT NOT NULL,                  -- debit | credit
    amount      INTEGER NOT NULL,
    period      TEXT NOT NULL,                  -- calendar month in the account's zone
    key         TEXT NOT NULL UNIQUE,
    reason      TEXT,
    actor       TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_quota_entries_account_period ON quota_entries (account_id, period);

-- Inbound mail ---------------------------------------------------------------------

-- An IMAP folder and its sync cursor (RFC 9051: UIDVALIDITY + UID name one email).
CREATE TABLE mailboxes (
    id            SERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,         -- user@host:port/FOLDER, no password
    uidvalidity   BIGINT,
    last_uid      BIGINT NOT NULL,
    last_poll_at  TIMESTAMPTZ,
    last_error    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,   -- failed polls since the last good one
    created_at    TIMESTAMPTZ NOT NULL
);

-- Every email exactly as it arrived. The fingerprint (Message-ID + body hash) keeps the
-- same email from being stored twice, whichever way it came in.
CREATE TABLE inbound_emails (
    id               SERIAL PRIMARY KEY,
    source           TEXT NOT NULL,             -- imap | smtp
    mailbox_id       INTEGER REFERENCES mailboxes (id),
    uidvalidity      BIGINT,
    uid              BIGINT,
    message_id       TEXT NOT NULL,
    fingerprint      TEXT NOT NULL UNIQUE,
    envelope_from    TEXT,
    envelope_to      TEXT,
    size             INTEGER NOT NULL,
    raw              BYTEA NOT NULL,
    status           TEXT NOT NULL,             -- received | processed | failed | quarantined
    stage            TEXT,                      -- where it failed, or why it was automatic
    error            TEXT,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,      -- a failed attempt pushes it back
    ticket_id        INTEGER REFERENCES tickets (id),
    received_at      TIMESTAMPTZ NOT NULL,
    processed_at     TIMESTAMPTZ,
    UNIQUE (mailbox_id, uidvalidity, uid)
);
CREATE INDEX ix_inbound_emails_message_id ON inbound_emails (message_id);
CREATE INDEX ix_inbound_emails_status ON inbound_emails (status);

-- The thread of a ticket, both directions.
CREATE TABLE messages (
    id            SERIAL PRIMARY KEY,
    ticket_id     INTEGER NOT NULL REFERENCES tickets (id),
    inbound_id    INTEGER UNIQUE REFERENCES inbound_emails (id),
    direction     TEXT NOT NULL,                -- in | out
    message_id    TEXT NOT NULL,
    sender        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body_text     TEXT NOT NULL,
    body_html     TEXT,                         -- sanitised
    is_automatic  BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_messages_ticket_id ON messages (ticket_id);
CREATE INDEX ix_messages_message_id ON messages (message_id);

CREATE TABLE attachments (
    id            SERIAL PRIMARY KEY,
    message_id    INTEGER NOT NULL REFERENCES messages (id),
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    content       BYTEA NOT NULL
);
CREATE INDEX ix_attachments_message_id ON attachments (message_id);

-- A medical code found in a case and what the catalog says of it.
CREATE TABLE code_lookups (
    id           SERIAL PRIMARY KEY,
    ticket_id    INTEGER NOT NULL REFERENCES tickets (id),
    message_id   INTEGER REFERENCES messages (id),
    system       TEXT NOT NULL,
    code         TEXT NOT NULL,
    status       TEXT NOT NULL,
    description  TEXT,
    confidence   DOUBLE PRECISION NOT NULL,
    reason       TEXT NOT NULL,
    span_start   INTEGER,
    span_end     INTEGER,
    source       TEXT NOT NULL,                 -- subject | body | attachment:NAME
    modifiers    TEXT NOT NULL,                 -- comma-separated
    units        INTEGER,
    detail       TEXT NOT NULL,                 -- status reason, NCCI and MUE findings
    alternatives TEXT NOT NULL,                 -- other readings: icd10cm:J11.00
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (ticket_id, message_id, system, code)  -- a second lookup stores nothing new
);
CREATE INDEX ix_code_lookups_ticket_id ON code_lookups (ticket_id);

-- The audit trail.
CREATE TABLE events (
    id          SERIAL PRIMARY KEY,
    ticket_id   INTEGER REFERENCES tickets (id),
    inbound_id  INTEGER REFERENCES inbound_emails (id),
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_events_ticket_id ON events (ticket_id);

-- Outgoing mail ----------------------------------------------------------------------

-- Every email the desk sends, fully rendered, written with its cause. "key" is unique:
-- one cause queues one email (say, one acknowledgement per ticket).
CREATE TABLE outbox (
    id               SERIAL PRIMARY KEY,
    ticket_id        INTEGER REFERENCES tickets (id),
    kind             TEXT NOT NULL,             -- ack | over_quota | not_registered | …
    key              TEXT NOT NULL UNIQUE,
    message_id       TEXT NOT NULL UNIQUE,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    raw              BYTEA NOT NULL,
    status           TEXT NOT NULL,             -- pending | sending | sent | failed
    is_automatic     BOOLEAN NOT NULL,          -- counts against per-recipient caps
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,      -- a temporary failure pushes it back
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    bounced_at       TIMESTAMPTZ                -- a bounce reported this email undeliverable
);
CREATE INDEX ix_outbox_ticket_id ON outbox (ticket_id);
CREATE INDEX ix_outbox_status ON outbox (status);
CREATE INDEX ix_outbox_recipient_created ON outbox (recipient, created_at);

-- Code catalog -----------------------------------------------------------------------
-- Loaded by `consultant codes load|import`. Full-text search: on PostgreSQL the GIN index
-- on search_vector below; on SQLite an FTS5 table that the first load creates
-- (consultant/codes/search.py), which is why it appears in neither file.

-- A loaded code system or NCCI table and the release it holds.
CREATE TABLE code_systems (
    id          SERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,           -- icd10cm | hcpcs | cpt | ncci-ptp | ncci-mue
    release     TEXT NOT NULL,
    code_count  INTEGER NOT NULL,
    loaded_at   TIMESTAMPTZ NOT NULL
);

-- One code or modifier of a code system.
CREATE TABLE catalog_codes (
    id                 SERIAL PRIMARY KEY,
    system             TEXT NOT NULL,
    code               TEXT NOT NULL,
    kind               TEXT NOT NULL,           -- code | modifier
    description        TEXT NOT NULL,
    short_description  TEXT,
    billable           BOOLEAN NOT NULL,
    parent             TEXT,
    notes              TEXT NOT NULL,
    effective_date     DATE,
    deletion_date      DATE,
    release            TEXT NOT NULL,
    search_vector      TSVECTOR,                -- filled by the loader
    UNIQUE (system, code, kind)
);
CREATE INDEX ix_catalog_codes_search ON catalog_codes USING gin (search_vector);

-- NCCI procedure-to-procedure edits from a file the user imported.
CREATE TABLE ncci_ptp_edits (
    id                  SERIAL PRIMARY KEY,
    column1             TEXT NOT NULL,
    column2             TEXT NOT NULL,
    effective_date      DATE NOT NULL,
    deletion_date       DATE,
    modifier_indicator  INTEGER NOT NULL,       -- 0 never together | 1 with a modifier | 9 n/a
    release             TEXT NOT NULL,
    UNIQUE (column1, column2, effective_date)
);

-- NCCI medically unlikely edits (maximum units) from a file the user imported.
CREATE TABLE mue_values (
    id                      SERIAL PRIMARY KEY,
    code                    TEXT NOT NULL UNIQUE,
    max_units               INTEGER NOT NULL,
    adjudication_indicator  INTEGER NOT NULL,   -- 1 line | 2 date, policy | 3 date, clinical
    rationale               TEXT NOT NULL,
    release                 TEXT NOT NULL
);
