"""Presence on the case page, TOTP codes that work once, and the audit log by case.

``case_presence`` holds one row per coder with a case page open, renewed by the page's
heartbeat; ``coders.totp_last_step`` is the 30-second step of the last code a coder gave,
so that the same code (or an older one) is refused when given again; the audit log's
index by case answers "who saw this case" on the admins' page without reading it all.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("coders") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.create_table(
        "case_presence",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", TIMESTAMPTZ, nullable=False),
        sa.Column("typing_at", TIMESTAMPTZ, nullable=True),
        sa.ForeignKeyConstraint(["coder_id"], ["coders.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("ticket_id", "coder_id"),
    )
    op.create_index("ix_case_presence_seen_at", "case_presence", ["seen_at"])
    op.create_index("ix_audit_log_ticket_id", "audit_log", ["ticket_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_ticket_id", table_name="audit_log")
    op.drop_table("case_presence")
    with op.batch_alter_table("coders") as batch:
        batch.drop_column("totp_last_step")
