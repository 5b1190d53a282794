-- CaseConsultant schema for PostgreSQL, at the newest revision.
--
-- Generated from the migrations by `consultant db sql` (make schema.sql); do not edit.
-- The desk makes and upgrades its schema itself (`consultant db upgrade`); this file is
-- for reading, and for applying by hand where a DBA must. Times are UTC (TIMESTAMPTZ).

BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE catalog_codes (
    id SERIAL NOT NULL, 
    system TEXT NOT NULL, 
    code TEXT NOT NULL, 
    kind TEXT NOT NULL, 
    description TEXT NOT NULL, 
    short_description TEXT, 
    billable BOOLEAN NOT NULL, 
    parent TEXT, 
    notes TEXT NOT NULL, 
    effective_date DATE, 
    deletion_date DATE, 
    release TEXT NOT NULL, 
    search_vector TSVECTOR, 
    PRIMARY KEY (id), 
    UNIQUE (system, code, kind)
);

CREATE INDEX ix_catalog_codes_search ON catalog_codes USING gin (search_vector);

CREATE TABLE code_systems (
    id SERIAL NOT NULL, 
    name TEXT NOT NULL, 
    release TEXT NOT NULL, 
    code_count INTEGER NOT NULL, 
    loaded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (name)
);

CREATE TABLE coders (
    id SERIAL NOT NULL, 
    email TEXT NOT NULL, 
    name TEXT NOT NULL, 
    specialties TEXT NOT NULL, 
    active BOOLEAN NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (email)
);

CREATE TABLE mailboxes (
    id SERIAL NOT NULL, 
    name TEXT NOT NULL, 
    uidvalidity BIGINT, 
    last_uid BIGINT NOT NULL, 
    last_poll_at TIMESTAMP WITH TIME ZONE, 
    last_error TEXT, 
    failures INTEGER DEFAULT '0' NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (name)
);

CREATE TABLE mue_values (
    id SERIAL NOT NULL, 
    code TEXT NOT NULL, 
    max_units INTEGER NOT NULL, 
    adjudication_indicator INTEGER NOT NULL, 
    rationale TEXT NOT NULL, 
    release TEXT NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (code)
);

CREATE TABLE ncci_ptp_edits (
    id SERIAL NOT NULL, 
    column1 TEXT NOT NULL, 
    column2 TEXT NOT NULL, 
    effective_date DATE NOT NULL, 
    deletion_date DATE, 
    modifier_indicator INTEGER NOT NULL, 
    release TEXT NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (column1, column2, effective_date)
);

CREATE TABLE plans (
    id SERIAL NOT NULL, 
    name TEXT NOT NULL, 
    cases_per_period INTEGER, 
    sla_hours INTEGER NOT NULL, 
    followups_count BOOLEAN NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (name)
);

CREATE TABLE accounts (
    id SERIAL NOT NULL, 
    address TEXT NOT NULL, 
    plan_id INTEGER NOT NULL, 
    timezone TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(plan_id) REFERENCES plans (id), 
    UNIQUE (address)
);

CREATE TABLE tickets (
    id SERIAL NOT NULL, 
    subject TEXT NOT NULL, 
    requester TEXT NOT NULL, 
    requester_name TEXT NOT NULL, 
    account_id INTEGER, 
    status TEXT NOT NULL, 
    specialty TEXT, 
    coder_id INTEGER, 
    due_at TIMESTAMP WITH TIME ZONE, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(account_id) REFERENCES accounts (id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id)
);

CREATE INDEX ix_tickets_status ON tickets (status);

CREATE TABLE inbound_emails (
    id SERIAL NOT NULL, 
    source TEXT NOT NULL, 
    mailbox_id INTEGER, 
    uidvalidity BIGINT, 
    uid BIGINT, 
    message_id TEXT NOT NULL, 
    fingerprint TEXT NOT NULL, 
    envelope_from TEXT, 
    envelope_to TEXT, 
    size INTEGER NOT NULL, 
    raw BYTEA NOT NULL, 
    status TEXT NOT NULL, 
    stage TEXT, 
    error TEXT, 
    attempts INTEGER NOT NULL, 
    next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    ticket_id INTEGER, 
    received_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    processed_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(mailbox_id) REFERENCES mailboxes (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
    UNIQUE (fingerprint), 
    UNIQUE (mailbox_id, uidvalidity, uid)
);

CREATE INDEX ix_inbound_emails_message_id ON inbound_emails (message_id);

CREATE INDEX ix_inbound_emails_status ON inbound_emails (status);

CREATE TABLE outbox (
    id SERIAL NOT NULL, 
    ticket_id INTEGER, 
    kind TEXT NOT NULL, 
    key TEXT NOT NULL, 
    message_id TEXT NOT NULL, 
    recipient TEXT NOT NULL, 
    subject TEXT NOT NULL, 
    raw BYTEA NOT NULL, 
    status TEXT NOT NULL, 
    is_automatic BOOLEAN NOT NULL, 
    attempts INTEGER NOT NULL, 
    next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    last_error TEXT, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    sent_at TIMESTAMP WITH TIME ZONE, 
    bounced_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
    UNIQUE (key), 
    UNIQUE (message_id)
);

CREATE INDEX ix_outbox_recipient_created ON outbox (recipient, created_at);

CREATE INDEX ix_outbox_status ON outbox (status);

CREATE INDEX ix_outbox_ticket_id ON outbox (ticket_id);

CREATE TABLE quota_entries (
    id SERIAL NOT NULL, 
    account_id INTEGER NOT NULL, 
    ticket_id INTEGER, 
    kind TEXT NOT NULL, 
    amount INTEGER NOT NULL, 
    period TEXT NOT NULL, 
    key TEXT NOT NULL, 
    reason TEXT, 
    actor TEXT, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(account_id) REFERENCES accounts (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
    UNIQUE (key)
);

CREATE INDEX ix_quota_entries_account_period ON quota_entries (account_id, period);

CREATE TABLE events (
    id SERIAL NOT NULL, 
    ticket_id INTEGER, 
    inbound_id INTEGER, 
    actor TEXT NOT NULL, 
    kind TEXT NOT NULL, 
    detail TEXT, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(inbound_id) REFERENCES inbound_emails (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id)
);

CREATE INDEX ix_events_ticket_id ON events (ticket_id);

CREATE TABLE messages (
    id SERIAL NOT NULL, 
    ticket_id INTEGER NOT NULL, 
    inbound_id INTEGER, 
    direction TEXT NOT NULL, 
    message_id TEXT NOT NULL, 
    sender TEXT NOT NULL, 
    subject TEXT NOT NULL, 
    body_text TEXT NOT NULL, 
    body_html TEXT, 
    is_automatic BOOLEAN NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(inbound_id) REFERENCES inbound_emails (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
    UNIQUE (inbound_id)
);

CREATE INDEX ix_messages_message_id ON messages (message_id);

CREATE INDEX ix_messages_ticket_id ON messages (ticket_id);

CREATE TABLE attachments (
    id SERIAL NOT NULL, 
    message_id INTEGER NOT NULL, 
    filename TEXT NOT NULL, 
    content_type TEXT NOT NULL, 
    size INTEGER NOT NULL, 
    sha256 TEXT NOT NULL, 
    content BYTEA NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(message_id) REFERENCES messages (id)
);

CREATE INDEX ix_attachments_message_id ON attachments (message_id);

CREATE TABLE code_lookups (
    id SERIAL NOT NULL, 
    ticket_id INTEGER NOT NULL, 
    message_id INTEGER, 
    system TEXT NOT NULL, 
    code TEXT NOT NULL, 
    status TEXT NOT NULL, 
    description TEXT, 
    confidence FLOAT NOT NULL, 
    reason TEXT NOT NULL, 
    span_start INTEGER, 
    span_end INTEGER, 
    source TEXT NOT NULL, 
    modifiers TEXT NOT NULL, 
    units INTEGER, 
    detail TEXT NOT NULL, 
    alternatives TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(message_id) REFERENCES messages (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
    UNIQUE (ticket_id, message_id, system, code)
);

CREATE INDEX ix_code_lookups_ticket_id ON code_lookups (ticket_id);

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;

-- Running upgrade 0001 -> 0002

ALTER TABLE coders ADD COLUMN role TEXT DEFAULT 'coder' NOT NULL;

ALTER TABLE coders ADD COLUMN capacity INTEGER DEFAULT '10' NOT NULL;

ALTER TABLE coders ADD COLUMN timezone TEXT DEFAULT 'UTC' NOT NULL;

ALTER TABLE coders ADD COLUMN working_hours TEXT DEFAULT '' NOT NULL;

ALTER TABLE coders ADD COLUMN away_from TIMESTAMP WITH TIME ZONE;

ALTER TABLE coders ADD COLUMN away_until TIMESTAMP WITH TIME ZONE;

ALTER TABLE coders ADD COLUMN last_assigned_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE coders ADD COLUMN last_notified_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE plans ADD COLUMN resolution_hours INTEGER;

ALTER TABLE messages ADD COLUMN coder_id INTEGER;

ALTER TABLE messages ADD CONSTRAINT fk_messages_coder_id FOREIGN KEY(coder_id) REFERENCES coders (id);

ALTER TABLE tickets ADD COLUMN claimed_by_id INTEGER;

ALTER TABLE tickets ADD COLUMN claim_expires_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE tickets ADD COLUMN first_response_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE tickets ADD COLUMN solved_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE tickets ADD COLUMN waiting_since TIMESTAMP WITH TIME ZONE;

ALTER TABLE tickets ADD CONSTRAINT fk_tickets_claimed_by_id FOREIGN KEY(claimed_by_id) REFERENCES coders (id);

CREATE INDEX ix_tickets_coder_status ON tickets (coder_id, status);

CREATE INDEX ix_tickets_status_due ON tickets (status, due_at);

CREATE INDEX ix_tickets_claim_expires ON tickets (claim_expires_at);

CREATE TABLE assignments (
    id SERIAL NOT NULL, 
    ticket_id INTEGER NOT NULL, 
    coder_id INTEGER NOT NULL, 
    reason TEXT NOT NULL, 
    actor TEXT NOT NULL, 
    started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    ended_at TIMESTAMP WITH TIME ZONE, 
    ended_reason TEXT, 
    PRIMARY KEY (id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id)
);

CREATE INDEX ix_assignments_coder_started ON assignments (coder_id, started_at);

CREATE INDEX ix_assignments_ticket_id ON assignments (ticket_id);

CREATE TABLE sla_clocks (
    id SERIAL NOT NULL, 
    ticket_id INTEGER NOT NULL, 
    target TEXT NOT NULL, 
    target_seconds INTEGER NOT NULL, 
    used_seconds FLOAT NOT NULL, 
    running_since TIMESTAMP WITH TIME ZONE, 
    due_at TIMESTAMP WITH TIME ZONE, 
    next_check_at TIMESTAMP WITH TIME ZONE, 
    warned_at TIMESTAMP WITH TIME ZONE, 
    breached_at TIMESTAMP WITH TIME ZONE, 
    stopped_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
    UNIQUE (ticket_id, target)
);

CREATE INDEX ix_sla_clocks_next_check ON sla_clocks (next_check_at);

CREATE TABLE notifications (
    id SERIAL NOT NULL, 
    coder_id INTEGER NOT NULL, 
    ticket_id INTEGER, 
    kind TEXT NOT NULL, 
    key TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    sent_at TIMESTAMP WITH TIME ZONE, 
    outbox_id INTEGER, 
    PRIMARY KEY (id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id), 
    FOREIGN KEY(outbox_id) REFERENCES outbox (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
    UNIQUE (key)
);

CREATE INDEX ix_notifications_unsent ON notifications (sent_at, coder_id);

CREATE TABLE closed_dates (
    id SERIAL NOT NULL, 
    day DATE NOT NULL, 
    name TEXT NOT NULL, 
    actor TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (day)
);

UPDATE tickets SET status = 'pending' WHERE status = 'answered';

UPDATE tickets SET first_response_at = ( SELECT min(messages.created_at) FROM messages WHERE messages.ticket_id = tickets.id AND messages.direction = 'out' AND NOT messages.is_automatic);

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

-- Running upgrade 0002 -> 0003

ALTER TABLE coders ADD COLUMN password_hash TEXT;

CREATE TABLE web_sessions (
    id SERIAL NOT NULL, 
    token_hash TEXT NOT NULL, 
    coder_id INTEGER NOT NULL, 
    csrf_token TEXT NOT NULL, 
    address TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    ended_at TIMESTAMP WITH TIME ZONE, 
    ended_reason TEXT, 
    PRIMARY KEY (id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id), 
    UNIQUE (token_hash)
);

CREATE INDEX ix_web_sessions_coder_id ON web_sessions (coder_id);

CREATE TABLE audit_log (
    id SERIAL NOT NULL, 
    at TIMESTAMP WITH TIME ZONE NOT NULL, 
    actor TEXT NOT NULL, 
    coder_id INTEGER, 
    action TEXT NOT NULL, 
    ticket_id INTEGER, 
    detail TEXT NOT NULL, 
    address TEXT NOT NULL, 
    PRIMARY KEY (id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id)
);

CREATE INDEX ix_audit_log_at ON audit_log (at);

CREATE INDEX ix_audit_log_actor_action_at ON audit_log (actor, action, at);

CREATE INDEX ix_audit_log_address_action_at ON audit_log (address, action, at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();;

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';

-- Running upgrade 0003 -> 0004

ALTER TABLE coders ADD COLUMN totp_secret TEXT;

ALTER TABLE web_sessions ADD COLUMN second_factor_at TIMESTAMP WITH TIME ZONE;

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0003';

-- Running upgrade 0004 -> 0005

CREATE TABLE code_releases (
    id SERIAL NOT NULL, 
    system TEXT NOT NULL, 
    name TEXT NOT NULL, 
    effective_from DATE NOT NULL, 
    effective_to DATE, 
    code_count INTEGER NOT NULL, 
    source TEXT NOT NULL, 
    loaded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (system, effective_from)
);

CREATE TABLE code_versions (
    id SERIAL NOT NULL, 
    system TEXT NOT NULL, 
    code TEXT NOT NULL, 
    valid_from DATE NOT NULL, 
    valid_to DATE, 
    description TEXT NOT NULL, 
    short_description TEXT, 
    billable BOOLEAN NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (system, code, valid_from)
);

UPDATE alembic_version SET version_num='0005' WHERE alembic_version.version_num = '0004';

-- Running upgrade 0005 -> 0006

ALTER TABLE tickets ADD COLUMN search_vector TSVECTOR;

CREATE INDEX ix_tickets_search ON tickets USING gin (search_vector);

ALTER TABLE messages ADD COLUMN search_vector TSVECTOR;

CREATE INDEX ix_messages_search ON messages USING gin (search_vector);

CREATE INDEX ix_code_lookups_code_ticket_id ON code_lookups (code, ticket_id);

CREATE INDEX ix_tickets_due_id ON tickets (due_at, id);

CREATE INDEX ix_tickets_coder_due_id ON tickets (coder_id, due_at, id);

CREATE FUNCTION tickets_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := setweight(to_tsvector('english', coalesce(NEW.subject, '')), 'A') || setweight(to_tsvector('english', coalesce(NEW.requester_name, '') || ' ' || translate(coalesce(NEW.requester, ''), '@.+-_', '     ')), 'B');
    RETURN NEW;
END;
$$;
CREATE TRIGGER tickets_search BEFORE INSERT OR UPDATE OF subject, requester, requester_name
    ON tickets FOR EACH ROW EXECUTE FUNCTION tickets_search_document();
CREATE FUNCTION messages_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := to_tsvector('english', coalesce(NEW.body_text, ''));
    RETURN NEW;
END;
$$;
CREATE TRIGGER messages_search BEFORE INSERT OR UPDATE OF body_text
    ON messages FOR EACH ROW EXECUTE FUNCTION messages_search_document();;

UPDATE tickets SET search_vector = setweight(to_tsvector('english', coalesce(tickets.subject, '')), 'A') || setweight(to_tsvector('english', coalesce(tickets.requester_name, '') || ' ' || translate(coalesce(tickets.requester, ''), '@.+-_', '     ')), 'B');

UPDATE messages SET search_vector = to_tsvector('english', coalesce(messages.body_text, ''));

UPDATE alembic_version SET version_num='0006' WHERE alembic_version.version_num = '0005';

-- Running upgrade 0006 -> 0007

ALTER TABLE coders ADD COLUMN totp_last_step INTEGER;

CREATE TABLE case_presence (
    ticket_id INTEGER NOT NULL, 
    coder_id INTEGER NOT NULL, 
    seen_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    typing_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (ticket_id, coder_id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id)
);

CREATE INDEX ix_case_presence_seen_at ON case_presence (seen_at);

CREATE INDEX ix_audit_log_ticket_id ON audit_log (ticket_id, id);

UPDATE alembic_version SET version_num='0007' WHERE alembic_version.version_num = '0006';

-- Running upgrade 0007 -> 0008

CREATE TABLE saved_answers (
    id SERIAL NOT NULL, 
    title TEXT NOT NULL, 
    body TEXT NOT NULL, 
    created_by TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (title)
);

CREATE TABLE sign_in_links (
    id SERIAL NOT NULL, 
    token_hash TEXT NOT NULL, 
    coder_id INTEGER NOT NULL, 
    created_by TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    used_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id), 
    UNIQUE (token_hash)
);

CREATE INDEX ix_sign_in_links_coder_id ON sign_in_links (coder_id);

CREATE INDEX ix_tickets_account_id ON tickets (account_id, id);

UPDATE alembic_version SET version_num='0008' WHERE alembic_version.version_num = '0007';

-- Running upgrade 0008 -> 0009

CREATE TABLE api_tokens (
    id SERIAL NOT NULL, 
    token_hash TEXT NOT NULL, 
    name TEXT NOT NULL, 
    coder_id INTEGER NOT NULL, 
    scopes TEXT NOT NULL, 
    created_by TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    last_used_at TIMESTAMP WITH TIME ZONE, 
    revoked_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(coder_id) REFERENCES coders (id), 
    UNIQUE (token_hash)
);

CREATE INDEX ix_api_tokens_coder_id ON api_tokens (coder_id);

UPDATE alembic_version SET version_num='0009' WHERE alembic_version.version_num = '0008';

-- Running upgrade 0009 -> 0010

CREATE TABLE webhooks (
    id SERIAL NOT NULL, 
    url TEXT NOT NULL, 
    secret TEXT NOT NULL, 
    events TEXT NOT NULL, 
    include_body BOOLEAN NOT NULL, 
    active BOOLEAN NOT NULL, 
    last_event_id INTEGER NOT NULL, 
    created_by TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id)
);

CREATE TABLE webhook_deliveries (
    id SERIAL NOT NULL, 
    webhook_id INTEGER NOT NULL, 
    event_id INTEGER NOT NULL, 
    status TEXT NOT NULL, 
    attempts INTEGER NOT NULL, 
    next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    last_error TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    delivered_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(webhook_id) REFERENCES webhooks (id), 
    UNIQUE (webhook_id, event_id)
);

CREATE INDEX ix_webhook_deliveries_status_next ON webhook_deliveries (status, next_attempt_at);

UPDATE alembic_version SET version_num='0010' WHERE alembic_version.version_num = '0009';

-- Running upgrade 0010 -> 0011

ALTER TABLE mailboxes ADD COLUMN host TEXT;

ALTER TABLE mailboxes ADD COLUMN security TEXT;

ALTER TABLE mailboxes ADD COLUMN username TEXT;

ALTER TABLE mailboxes ADD COLUMN auth TEXT;

ALTER TABLE mailboxes ADD COLUMN password_sealed TEXT;

ALTER TABLE mailboxes ADD COLUMN folder TEXT;

ALTER TABLE mailboxes ADD COLUMN port INTEGER;

ALTER TABLE mailboxes ADD COLUMN enabled BOOLEAN DEFAULT true NOT NULL;

CREATE TABLE mail_relays (
    id SERIAL NOT NULL, 
    host TEXT NOT NULL, 
    port INTEGER NOT NULL, 
    security TEXT NOT NULL, 
    username TEXT NOT NULL, 
    auth TEXT NOT NULL, 
    password_sealed TEXT, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id)
);

UPDATE alembic_version SET version_num='0011' WHERE alembic_version.version_num = '0010';

-- Running upgrade 0011 -> 0012

ALTER TABLE inbound_emails ADD COLUMN deleted_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE inbound_emails ADD COLUMN deleted_by TEXT;

ALTER TABLE inbound_emails ADD COLUMN deleted_reason TEXT;

UPDATE alembic_version SET version_num='0012' WHERE alembic_version.version_num = '0011';

-- Running upgrade 0012 -> 0013

ALTER TABLE mailboxes ADD COLUMN oauth_provider TEXT;

ALTER TABLE mailboxes ADD COLUMN oauth_refresh_sealed TEXT;

ALTER TABLE mailboxes ADD COLUMN oauth_access_sealed TEXT;

ALTER TABLE mailboxes ADD COLUMN oauth_connected_by TEXT;

ALTER TABLE mailboxes ADD COLUMN oauth_refresh_expires_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE mailboxes ADD COLUMN oauth_access_expires_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE mailboxes ADD COLUMN oauth_connected_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE mailboxes ADD COLUMN oauth_revoked_at TIMESTAMP WITH TIME ZONE;

CREATE TABLE oauth_connects (
    id SERIAL NOT NULL, 
    state_hash TEXT NOT NULL, 
    web_session_id INTEGER NOT NULL, 
    mailbox_id INTEGER NOT NULL, 
    provider TEXT NOT NULL, 
    verifier_sealed TEXT NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    used_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    FOREIGN KEY(web_session_id) REFERENCES web_sessions (id), 
    FOREIGN KEY(mailbox_id) REFERENCES mailboxes (id), 
    UNIQUE (state_hash)
);

ALTER TABLE notifications ADD COLUMN mailbox_id INTEGER;

ALTER TABLE notifications ADD CONSTRAINT fk_notifications_mailbox_id FOREIGN KEY(mailbox_id) REFERENCES mailboxes (id);

UPDATE alembic_version SET version_num='0013' WHERE alembic_version.version_num = '0012';

-- Running upgrade 0013 -> 0014

CREATE INDEX ix_messages_created_at ON messages (created_at);

CREATE INDEX ix_assignments_started_at ON assignments (started_at);

CREATE TABLE report_cases (
    ticket_id INTEGER NOT NULL, 
    plan_id INTEGER NOT NULL, 
    specialty TEXT NOT NULL, 
    account_id INTEGER NOT NULL, 
    coder_id INTEGER NOT NULL, 
    created_on DATE NOT NULL, 
    solved_on DATE, 
    unfinished BOOLEAN NOT NULL, 
    bad_codes BOOLEAN NOT NULL, 
    fr_on DATE, 
    fr_seconds FLOAT, 
    fr_coder_id INTEGER NOT NULL, 
    fr_breached_on DATE, 
    res_on DATE, 
    res_seconds FLOAT, 
    res_breached_on DATE, 
    PRIMARY KEY (ticket_id), 
    FOREIGN KEY(ticket_id) REFERENCES tickets (id)
);

CREATE INDEX ix_report_cases_created_on ON report_cases (created_on);

CREATE INDEX ix_report_cases_solved_on ON report_cases (solved_on);

CREATE INDEX ix_report_cases_fr_on ON report_cases (fr_on);

CREATE INDEX ix_report_cases_fr_breached_on ON report_cases (fr_breached_on);

CREATE INDEX ix_report_cases_res_on ON report_cases (res_on);

CREATE INDEX ix_report_cases_res_breached_on ON report_cases (res_breached_on);

CREATE INDEX ix_report_cases_backlog ON report_cases (created_on) WHERE unfinished;

CREATE TABLE report_days (
    day DATE NOT NULL, 
    plan_id INTEGER NOT NULL, 
    specialty TEXT NOT NULL, 
    account_id INTEGER NOT NULL, 
    received INTEGER NOT NULL, 
    answered INTEGER NOT NULL, 
    solved INTEGER NOT NULL, 
    backlog INTEGER NOT NULL, 
    bad_codes INTEGER NOT NULL, 
    fr_met INTEGER NOT NULL, 
    fr_breached INTEGER NOT NULL, 
    res_met INTEGER NOT NULL, 
    res_breached INTEGER NOT NULL, 
    PRIMARY KEY (day, plan_id, specialty, account_id)
);

CREATE TABLE report_speed (
    day DATE NOT NULL, 
    target TEXT NOT NULL, 
    plan_id INTEGER NOT NULL, 
    specialty TEXT NOT NULL, 
    account_id INTEGER NOT NULL, 
    coder_id INTEGER NOT NULL, 
    bucket INTEGER NOT NULL, 
    cases INTEGER NOT NULL, 
    PRIMARY KEY (day, target, plan_id, specialty, account_id, coder_id, bucket)
);

CREATE TABLE report_coder_days (
    day DATE NOT NULL, 
    coder_id INTEGER NOT NULL, 
    assigned INTEGER NOT NULL, 
    answered INTEGER NOT NULL, 
    PRIMARY KEY (day, coder_id)
);

CREATE TABLE report_codes (
    day DATE NOT NULL, 
    plan_id INTEGER NOT NULL, 
    specialty TEXT NOT NULL, 
    system TEXT NOT NULL, 
    code TEXT NOT NULL, 
    cases INTEGER NOT NULL, 
    bad INTEGER NOT NULL, 
    PRIMARY KEY (day, plan_id, specialty, system, code)
);

CREATE TABLE report_quota (
    account_id INTEGER NOT NULL, 
    period TEXT NOT NULL, 
    debits INTEGER NOT NULL, 
    credits INTEGER NOT NULL, 
    PRIMARY KEY (account_id, period)
);

CREATE TABLE report_refresh (
    id SERIAL NOT NULL, 
    refreshed_at TIMESTAMP WITH TIME ZONE, 
    rebuilt_at TIMESTAMP WITH TIME ZONE, 
    marks TEXT NOT NULL, 
    PRIMARY KEY (id)
);

UPDATE alembic_version SET version_num='0014' WHERE alembic_version.version_num = '0013';

-- Running upgrade 0014 -> 0015

CREATE INDEX ix_report_days_account_day ON report_days (account_id, day);

CREATE INDEX ix_report_speed_account_day ON report_speed (account_id, day);

UPDATE alembic_version SET version_num='0015' WHERE alembic_version.version_num = '0014';

-- Running upgrade 0015 -> 0016

CREATE TABLE desk_settings (
    id SERIAL NOT NULL, 
    name TEXT NOT NULL, 
    value TEXT NOT NULL, 
    changed_by TEXT NOT NULL, 
    changed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (name)
);

CREATE TABLE email_templates (
    id SERIAL NOT NULL, 
    kind TEXT NOT NULL, 
    part TEXT NOT NULL, 
    body TEXT NOT NULL, 
    changed_by TEXT NOT NULL, 
    changed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (kind, part)
);

UPDATE alembic_version SET version_num='0016' WHERE alembic_version.version_num = '0015';

-- Running upgrade 0016 -> 0017

DROP INDEX ix_report_cases_backlog;

UPDATE alembic_version SET version_num='0017' WHERE alembic_version.version_num = '0016';

-- Running upgrade 0017 -> 0018

DROP INDEX ix_report_speed_account_day;

CREATE INDEX ix_report_speed_account_coder_specialty_day ON report_speed (account_id, coder_id, specialty, day);

UPDATE alembic_version SET version_num='0018' WHERE alembic_version.version_num = '0017';

-- Running upgrade 0018 -> 0019

ALTER TABLE mail_relays ADD COLUMN login_mailbox_id INTEGER;

ALTER TABLE mail_relays ADD CONSTRAINT fk_mail_relays_login_mailbox_id FOREIGN KEY(login_mailbox_id) REFERENCES mailboxes (id);

UPDATE alembic_version SET version_num='0019' WHERE alembic_version.version_num = '0018';

COMMIT;

