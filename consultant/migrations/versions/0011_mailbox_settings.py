"""Mailboxes and the outgoing relay set up in the dashboard.

A mailbox row, until now only a folder's sync cursor, can also hold how to reach the
folder (host, port, security, user, sealed password, folder, enabled); rows of mailboxes
named in CONSULTANT_IMAP_URL keep these empty. The relay gets a table of its own.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
_TEXT_SETTINGS = ("host", "security", "username", "auth", "password_sealed", "folder")


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        for name in _TEXT_SETTINGS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
        batch.add_column(sa.Column("port", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.create_table(
        "mail_relays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("auth", sa.Text(), nullable=False),
        sa.Column("password_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("mail_relays")
    with op.batch_alter_table("mailboxes") as batch:
        for name in ("enabled", "port", *_TEXT_SETTINGS):
            batch.drop_column(name)
