"""Owners and clocks: coders as people, assignments, claims, SLA clocks, notifications.

Tickets that were ``answered`` become ``pending`` (waiting on the customer), and a
ticket's first response is the first answer a person sent in it.
A released revision is never edited: a later change is a revision of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    _add_coder_columns()
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("resolution_hours", sa.Integer(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("coder_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_messages_coder_id", "coders", ["coder_id"], ["id"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("claimed_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claim_expires_at", TIMESTAMPTZ, nullable=True))
        batch.add_column(sa.Column("first_response_at", TIMESTAMPTZ, nullable=True))
        batch.add_column(sa.Column("solved_at", TIMESTAMPTZ, nullable=True))
        batch.add_column(sa.Column("waiting_since", TIMESTAMPTZ, nullable=True))
        batch.create_foreign_key("fk_tickets_claimed_by_id", "coders", ["claimed_by_id"], ["id"])
        batch.create_index("ix_tickets_coder_status", ["coder_id", "status"])
        batch.create_index("ix_tickets_status_due", ["status", "due_at"])
        batch.create_index("ix_tickets_claim_expires", ["claim_expires_at"])
    _create_assignments()
    _create_sla_clocks()
    _create_notifications()
    op.create_table(
        "closed_dates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day"),
    )
    _carry_over_ticket_states()


def _add_coder_columns() -> None:
    with op.batch_alter_table("coders") as batch:
        batch.add_column(sa.Column("role", sa.Text(), server_default="coder", nullable=False))
        batch.add_column(sa.Column("capacity", sa.Integer(), server_default="10", nullable=False))
        batch.add_column(sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False))
        batch.add_column(sa.Column("working_hours", sa.Text(), server_default="", nullable=False))
        for name in ("away_from", "away_until", "last_assigned_at", "last_notified_at"):
            batch.add_column(sa.Column(name, TIMESTAMPTZ, nullable=True))


def _create_assignments() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=False),
        sa.Column("ended_at", TIMESTAMPTZ, nullable=True),
        sa.Column("ended_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["coder_id"], ["coders.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_assignments_coder_started", "assignments", ["coder_id", "started_at"])
    op.create_index("ix_assignments_ticket_id", "assignments", ["ticket_id"])


def _create_sla_clocks() -> None:
    op.create_table(
        "sla_clocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("used_seconds", sa.Float(), nullable=False),
        sa.Column("running_since", TIMESTAMPTZ, nullable=True),
        sa.Column("due_at", TIMESTAMPTZ, nullable=True),
        sa.Column("next_check_at", TIMESTAMPTZ, nullable=True),
        sa.Column("warned_at", TIMESTAMPTZ, nullable=True),
        sa.Column("breached_at", TIMESTAMPTZ, nullable=True),
        sa.Column("stopped_at", TIMESTAMPTZ, nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "target"),
    )
    op.create_index("ix_sla_clocks_next_check", "sla_clocks", ["next_check_at"])


def _create_notifications() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("sent_at", TIMESTAMPTZ, nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["coder_id"], ["coders.id"]),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_notifications_unsent", "notifications", ["sent_at", "coder_id"])


def _carry_over_ticket_states() -> None:
    """``answered`` is now ``pending``; the first person's answer is the first response."""
    op.execute("UPDATE tickets SET status = 'pending' WHERE status = 'answered'")
    op.execute(
        "UPDATE tickets SET first_response_at = ("
        " SELECT min(messages.created_at) FROM messages"
        " WHERE messages.ticket_id = tickets.id"
        " AND messages.direction = 'out' AND NOT messages.is_automatic)"
    )


def downgrade() -> None:
    op.execute("UPDATE tickets SET status = 'answered' WHERE status = 'pending'")
    op.execute("UPDATE tickets SET status = 'solved' WHERE status = 'closed'")
    for table in ("closed_dates", "notifications", "sla_clocks", "assignments"):
        op.drop_table(table)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_claim_expires")
        batch.drop_index("ix_tickets_status_due")
        batch.drop_index("ix_tickets_coder_status")
        batch.drop_constraint("fk_tickets_claimed_by_id", type_="foreignkey")
        for name in ("waiting_since", "solved_at", "first_response_at"):
            batch.drop_column(name)
        for name in ("claim_expires_at", "claimed_by_id"):
            batch.drop_column(name)
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("fk_messages_coder_id", type_="foreignkey")
        batch.drop_column("coder_id")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("resolution_hours")
    with op.batch_alter_table("coders") as batch:
        for name in ("last_notified_at", "last_assigned_at", "away_until", "away_from"):
            batch.drop_column(name)
        for name in ("working_hours", "timezone", "capacity", "role"):
            batch.drop_column(name)
