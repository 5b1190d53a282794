"""Saved answers coders reuse, one-time links a new coder signs in with, and the index
that finds an account's earlier cases (shown beside a case).
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "saved_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("title"),
    )
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("expires_at", TIMESTAMPTZ, nullable=False),
        sa.Column("used_at", TIMESTAMPTZ, nullable=True),
        sa.ForeignKeyConstraint(["coder_id"], ["coders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_sign_in_links_coder_id", "sign_in_links", ["coder_id"])
    op.create_index("ix_tickets_account_id", "tickets", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_account_id", table_name="tickets")
    op.drop_index("ix_sign_in_links_coder_id", table_name="sign_in_links")
    op.drop_table("sign_in_links")
    op.drop_table("saved_answers")
