"""The backlog report reads the day rollups' every-account rows, not the cases: the
partial index it used goes.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_report_cases_backlog", table_name="report_cases")


def downgrade() -> None:
    op.create_index(
        "ix_report_cases_backlog",
        "report_cases",
        ["created_on"],
        postgresql_where=sa.text("unfinished"),
        sqlite_where=sa.text("unfinished"),
    )
