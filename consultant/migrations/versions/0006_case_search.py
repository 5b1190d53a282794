"""Case search: every case's subject and requester, and every message's text, indexed
for full-text search, kept current by the database itself as rows are written; and the
indexes the dashboard's queue and code search need at a million tickets.

PostgreSQL: a ``tsvector`` column on ``tickets`` and on ``messages``, filled by a
trigger before each insert or change of the text, GIN-indexed. SQLite: an FTS5 table
over each (external content: the text is not stored twice), kept by triggers. The
existing rows are indexed here.

On SQLite a later revision that rebuilds ``tickets`` or ``messages`` (batch mode's
copy-and-move) drops their triggers with the old table, and must make them again.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SEARCH_VECTOR = sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql")

# The subject weighs more than the requester; an address is searched by its parts
# ("dana", "clinic", "example"), which the parser would otherwise keep as one token.
TICKET_DOCUMENT = (
    "setweight(to_tsvector('english', coalesce({row}.subject, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce({row}.requester_name, '') || ' ' || "
    "translate(coalesce({row}.requester, ''), '@.+-_', '     ')), 'B')"
)
MESSAGE_DOCUMENT = "to_tsvector('english', coalesce({row}.body_text, ''))"

POSTGRES_TRIGGERS = f"""
CREATE FUNCTION tickets_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := {TICKET_DOCUMENT.format(row="NEW")};
    RETURN NEW;
END;
$$;
CREATE TRIGGER tickets_search BEFORE INSERT OR UPDATE OF subject, requester, requester_name
    ON tickets FOR EACH ROW EXECUTE FUNCTION tickets_search_document();
CREATE FUNCTION messages_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := {MESSAGE_DOCUMENT.format(row="NEW")};
    RETURN NEW;
END;
$$;
CREATE TRIGGER messages_search BEFORE INSERT OR UPDATE OF body_text
    ON messages FOR EACH ROW EXECUTE FUNCTION messages_search_document();
"""

SQLITE_INDEXES = {
    "tickets_fts": ("tickets", ("subject", "requester", "requester_name")),
    "messages_fts": ("messages", ("body_text",)),
}


def upgrade() -> None:
    for table in ("tickets", "messages"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("search_vector", SEARCH_VECTOR, nullable=True))
        op.create_index(f"ix_{table}_search", table, ["search_vector"], postgresql_using="gin")
    # Cases by a code found in them, newest first; precedents read it too.
    op.create_index("ix_code_lookups_code_ticket_id", "code_lookups", ["code", "ticket_id"])
    # The queue in its order (due time, then number), whole and per owner, without
    # sorting every matching ticket: at a million tickets a page reads its 51 rows.
    op.create_index("ix_tickets_due_id", "tickets", ["due_at", "id"])
    op.create_index("ix_tickets_coder_due_id", "tickets", ["coder_id", "due_at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_TRIGGERS)
        op.execute(f"UPDATE tickets SET search_vector = {TICKET_DOCUMENT.format(row='tickets')}")
        op.execute(f"UPDATE messages SET search_vector = {MESSAGE_DOCUMENT.format(row='messages')}")
        return
    for name, (table, columns) in SQLITE_INDEXES.items():
        _create_sqlite_index(name, table, columns)


def _create_sqlite_index(name: str, table: str, columns: tuple[str, ...]) -> None:
    listed = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    forget = f"INSERT INTO {name}({name}, rowid, {listed}) VALUES ('delete', old.id, {old});"
    remember = f"INSERT INTO {name}(rowid, {listed}) VALUES (new.id, {new});"
    op.execute(
        f"CREATE VIRTUAL TABLE {name} USING fts5({listed}, content='{table}', "
        "content_rowid='id', tokenize='porter unicode61')"
    )
    op.execute(f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN {remember} END")
    op.execute(f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN {forget} END")
    op.execute(
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {listed} ON {table} "
        f"BEGIN {forget} {remember} END"
    )
    op.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER messages_search ON messages")
        op.execute("DROP FUNCTION messages_search_document()")
        op.execute("DROP TRIGGER tickets_search ON tickets")
        op.execute("DROP FUNCTION tickets_search_document()")
    else:
        for name in SQLITE_INDEXES:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {name}_{event}")
            op.execute(f"DROP TABLE {name}")
    op.drop_index("ix_tickets_coder_due_id", table_name="tickets")
    op.drop_index("ix_tickets_due_id", table_name="tickets")
    op.drop_index("ix_code_lookups_code_ticket_id", table_name="code_lookups")
    for table in ("messages", "tickets"):
        op.drop_index(f"ix_{table}_search", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("search_vector")
