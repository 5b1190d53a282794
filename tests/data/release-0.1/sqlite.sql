-- The schema release 0.1 made on SQLite (SQLModel's create_all), before migrations.
-- Frozen: tests recognise and upgrade a database made by that release.

CREATE TABLE plans (
	id INTEGER NOT NULL, 
	name TEXT NOT NULL, 
	cases_per_period INTEGER, 
	sla_hours INTEGER NOT NULL, 
	followups_count BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE mailboxes (
	id INTEGER NOT NULL, 
	name TEXT NOT NULL, 
	uidvalidity BIGINT, 
	last_uid BIGINT NOT NULL, 
	last_poll_at DATETIME, 
	last_error TEXT, 
	failures INTEGER DEFAULT '0' NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE coders (
	id INTEGER NOT NULL, 
	email TEXT NOT NULL, 
	name TEXT NOT NULL, 
	specialties TEXT NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
);

CREATE TABLE code_systems (
	id INTEGER NOT NULL, 
	name TEXT NOT NULL, 
	release TEXT NOT NULL, 
	code_count INTEGER NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE catalog_codes (
	id INTEGER NOT NULL, 
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
	search_vector TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (system, code, kind)
);

CREATE INDEX ix_catalog_codes_search ON catalog_codes (search_vector);

CREATE TABLE ncci_ptp_edits (
	id INTEGER NOT NULL, 
	column1 TEXT NOT NULL, 
	column2 TEXT NOT NULL, 
	effective_date DATE NOT NULL, 
	deletion_date DATE, 
	modifier_indicator INTEGER NOT NULL, 
	release TEXT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (column1, column2, effective_date)
);

CREATE TABLE mue_values (
	id INTEGER NOT NULL, 
	code TEXT NOT NULL, 
	max_units INTEGER NOT NULL, 
	adjudication_indicator INTEGER NOT NULL, 
	rationale TEXT NOT NULL, 
	release TEXT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (code)
);

CREATE TABLE accounts (
	id INTEGER NOT NULL, 
	address TEXT NOT NULL, 
	plan_id INTEGER NOT NULL, 
	timezone TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (address), 
	FOREIGN KEY(plan_id) REFERENCES plans (id)
);

CREATE TABLE tickets (
	id INTEGER NOT NULL, 
	subject TEXT NOT NULL, 
	requester TEXT NOT NULL, 
	requester_name TEXT NOT NULL, 
	account_id INTEGER, 
	status TEXT NOT NULL, 
	specialty TEXT, 
	coder_id INTEGER, 
	due_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id), 
	FOREIGN KEY(coder_id) REFERENCES coders (id)
);

CREATE INDEX ix_tickets_status ON tickets (status);

CREATE TABLE quota_entries (
	id INTEGER NOT NULL, 
	account_id INTEGER NOT NULL, 
	ticket_id INTEGER, 
	kind TEXT NOT NULL, 
	amount INTEGER NOT NULL, 
	period TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	reason TEXT, 
	actor TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (id), 
	FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
	UNIQUE ("key")
);

CREATE INDEX ix_quota_entries_account_period ON quota_entries (account_id, period);

CREATE TABLE inbound_emails (
	id INTEGER NOT NULL, 
	source TEXT NOT NULL, 
	mailbox_id INTEGER, 
	uidvalidity BIGINT, 
	uid BIGINT, 
	message_id TEXT NOT NULL, 
	fingerprint TEXT NOT NULL, 
	envelope_from TEXT, 
	envelope_to TEXT, 
	size INTEGER NOT NULL, 
	raw BLOB NOT NULL, 
	status TEXT NOT NULL, 
	stage TEXT, 
	error TEXT, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	ticket_id INTEGER, 
	received_at DATETIME NOT NULL, 
	processed_at DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (mailbox_id, uidvalidity, uid), 
	FOREIGN KEY(mailbox_id) REFERENCES mailboxes (id), 
	UNIQUE (fingerprint), 
	FOREIGN KEY(ticket_id) REFERENCES tickets (id)
);

CREATE INDEX ix_inbound_emails_message_id ON inbound_emails (message_id);

CREATE INDEX ix_inbound_emails_status ON inbound_emails (status);

CREATE TABLE outbox (
	id INTEGER NOT NULL, 
	ticket_id INTEGER, 
	kind TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	message_id TEXT NOT NULL, 
	recipient TEXT NOT NULL, 
	subject TEXT NOT NULL, 
	raw BLOB NOT NULL, 
	status TEXT NOT NULL, 
	is_automatic BOOLEAN NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	bounced_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
	UNIQUE ("key"), 
	UNIQUE (message_id)
);

CREATE INDEX ix_outbox_status ON outbox (status);

CREATE INDEX ix_outbox_ticket_id ON outbox (ticket_id);

CREATE INDEX ix_outbox_recipient_created ON outbox (recipient, created_at);

CREATE TABLE messages (
	id INTEGER NOT NULL, 
	ticket_id INTEGER NOT NULL, 
	inbound_id INTEGER, 
	direction TEXT NOT NULL, 
	message_id TEXT NOT NULL, 
	sender TEXT NOT NULL, 
	subject TEXT NOT NULL, 
	body_text TEXT NOT NULL, 
	body_html TEXT, 
	is_automatic BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
	UNIQUE (inbound_id), 
	FOREIGN KEY(inbound_id) REFERENCES inbound_emails (id)
);

CREATE INDEX ix_messages_ticket_id ON messages (ticket_id);

CREATE INDEX ix_messages_message_id ON messages (message_id);

CREATE TABLE events (
	id INTEGER NOT NULL, 
	ticket_id INTEGER, 
	inbound_id INTEGER, 
	actor TEXT NOT NULL, 
	kind TEXT NOT NULL, 
	detail TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
	FOREIGN KEY(inbound_id) REFERENCES inbound_emails (id)
);

CREATE INDEX ix_events_ticket_id ON events (ticket_id);

CREATE TABLE attachments (
	id INTEGER NOT NULL, 
	message_id INTEGER NOT NULL, 
	filename TEXT NOT NULL, 
	content_type TEXT NOT NULL, 
	size INTEGER NOT NULL, 
	sha256 TEXT NOT NULL, 
	content BLOB NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(message_id) REFERENCES messages (id)
);

CREATE INDEX ix_attachments_message_id ON attachments (message_id);

CREATE TABLE code_lookups (
	id INTEGER NOT NULL, 
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
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (ticket_id, message_id, system, code), 
	FOREIGN KEY(ticket_id) REFERENCES tickets (id), 
	FOREIGN KEY(message_id) REFERENCES messages (id)
);

CREATE INDEX ix_code_lookups_ticket_id ON code_lookups (ticket_id);
