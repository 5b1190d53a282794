"""The reports' rollups: what each case counts as, and per day the figures the reports add
up, refreshed by the beat; indexes that let a refresh read one day of answers and
assignments.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
DAY_MEASURES = (
    "received", "answered", "solved", "backlog", "bad_codes",
    "fr_met", "fr_breached", "res_met", "res_breached",
)  # fmt: skip
CASE_DAYS = ("created_on", "solved_on", "fr_on", "fr_breached_on", "res_on", "res_breached_on")


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index("ix_assignments_started_at", "assignments", ["started_at"])
    op.create_table(
        "report_cases",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("specialty", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("solved_on", sa.Date(), nullable=True),
        sa.Column("unfinished", sa.Boolean(), nullable=False),
        sa.Column("bad_codes", sa.Boolean(), nullable=False),
        sa.Column("fr_on", sa.Date(), nullable=True),
        sa.Column("fr_seconds", sa.Float(), nullable=True),
        sa.Column("fr_coder_id", sa.Integer(), nullable=False),
        sa.Column("fr_breached_on", sa.Date(), nullable=True),
        sa.Column("res_on", sa.Date(), nullable=True),
        sa.Column("res_seconds", sa.Float(), nullable=True),
        sa.Column("res_breached_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    for column in CASE_DAYS:
        op.create_index(f"ix_report_cases_{column}", "report_cases", [column])
    op.create_index(
        "ix_report_cases_backlog",
        "report_cases",
        ["created_on"],
        postgresql_where=sa.text("unfinished"),
        sqlite_where=sa.text("unfinished"),
    )
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("specialty", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        *_counts(*DAY_MEASURES),
        sa.PrimaryKeyConstraint("day", "plan_id", "specialty", "account_id"),
    )
    op.create_table(
        "report_speed",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("specialty", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        *_counts("cases"),
        sa.PrimaryKeyConstraint(
            "day", "target", "plan_id", "specialty", "account_id", "coder_id", "bucket"
        ),
    )
    op.create_table(
        "report_coder_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        *_counts("assigned", "answered"),
        sa.PrimaryKeyConstraint("day", "coder_id"),
    )
    op.create_table(
        "report_codes",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("specialty", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        *_counts("cases", "bad"),
        sa.PrimaryKeyConstraint("day", "plan_id", "specialty", "system", "code"),
    )
    op.create_table(
        "report_quota",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        *_counts("debits", "credits"),
        sa.PrimaryKeyConstraint("account_id", "period"),
    )
    op.create_table(
        "report_refresh",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", TIMESTAMPTZ, nullable=True),
        sa.Column("rebuilt_at", TIMESTAMPTZ, nullable=True),
        sa.Column("marks", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    for table in (
        "report_refresh", "report_quota", "report_codes", "report_coder_days",
        "report_speed", "report_days",
    ):  # fmt: skip
        op.drop_table(table)
    op.drop_index("ix_report_cases_backlog", table_name="report_cases")
    for column in CASE_DAYS:
        op.drop_index(f"ix_report_cases_{column}", table_name="report_cases")
    op.drop_table("report_cases")
    op.drop_index("ix_assignments_started_at", table_name="assignments")
    op.drop_index("ix_messages_created_at", table_name="messages")
