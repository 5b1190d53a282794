"""The outgoing relay may log in with a connected mailbox's OAuth 2.0 access token.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_relays") as batch:
        batch.add_column(sa.Column("login_mailbox_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_mail_relays_login_mailbox_id", "mailboxes", ["login_mailbox_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("mail_relays") as batch:
        batch.drop_constraint("fk_mail_relays_login_mailbox_id", type_="foreignkey")
        batch.drop_column("login_mailbox_id")
