"""Mailboxes connected with OAuth 2.0.

A mailbox keeps its provider, its sealed refresh and access tokens with their ends, and
when consent was given and withdrawn; ``oauth_connects`` holds the connects an admin has
started and the provider has not answered yet; a notification can name a mailbox.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
_TEXTS = (
    "oauth_provider",
    "oauth_refresh_sealed",
    "oauth_access_sealed",
    "oauth_connected_by",
)
_TIMES = (
    "oauth_refresh_expires_at",
    "oauth_access_expires_at",
    "oauth_connected_at",
    "oauth_revoked_at",
)


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        for name in _TEXTS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
        for name in _TIMES:
            batch.add_column(sa.Column(name, TIMESTAMPTZ, nullable=True))
    op.create_table(
        "oauth_connects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.Text(), nullable=False),
        sa.Column("web_session_id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("verifier_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("expires_at", TIMESTAMPTZ, nullable=False),
        sa.Column("used_at", TIMESTAMPTZ, nullable=True),
        sa.ForeignKeyConstraint(["web_session_id"], ["web_sessions.id"]),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailboxes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("state_hash"),
    )
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("mailbox_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_notifications_mailbox_id", "mailboxes", ["mailbox_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint("fk_notifications_mailbox_id", type_="foreignkey")
        batch.drop_column("mailbox_id")
    op.drop_table("oauth_connects")
    with op.batch_alter_table("mailboxes") as batch:
        for name in (*_TIMES, *_TEXTS):
            batch.drop_column(name)
