"""The speed histograms' summed rows of one kind read without the others: an index led
by account, coder and specialty replaces the one by account and day.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

NEW = "ix_report_speed_account_coder_specialty_day"


def upgrade() -> None:
    op.drop_index("ix_report_speed_account_day", table_name="report_speed")
    op.create_index(NEW, "report_speed", ["account_id", "coder_id", "specialty", "day"])


def downgrade() -> None:
    op.drop_index(NEW, table_name="report_speed")
    op.create_index("ix_report_speed_account_day", "report_speed", ["account_id", "day"])
