"""Two-factor sign-in: a coder's TOTP secret, and when a session passed its second step.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coders") as batch:
        batch.add_column(sa.Column("totp_secret", sa.Text(), nullable=True))
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("second_factor_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("second_factor_at")
    with op.batch_alter_table("coders") as batch:
        batch.drop_column("totp_secret")
