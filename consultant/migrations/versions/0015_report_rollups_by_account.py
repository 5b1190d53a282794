"""The reports' day rollups read by account: one account's days without the others'.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_report_days_account_day", "report_days", ["account_id", "day"])
    op.create_index("ix_report_speed_account_day", "report_speed", ["account_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_report_speed_account_day", table_name="report_speed")
    op.drop_index("ix_report_days_account_day", table_name="report_days")
