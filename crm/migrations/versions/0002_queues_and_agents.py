"""Queues and agents: agents with skills and state history, queue facts, call-backs, messages.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _fk(column: str, table: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "agent",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("state_reason", sa.String(), nullable=True),
        sa.Column("state_since", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_agent_endpoint")),
    )
    op.create_table(
        "agent_skill",
        _id(),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        _fk("agent_id", "agent_skill", "agent", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_skill")),
        sa.UniqueConstraint("agent_id", "queue", name=op.f("uq_agent_skill_agent_id_queue")),
    )
    op.create_table(
        "agent_state_change",
        _id(),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        _fk("agent_id", "agent_state_change", "agent", "CASCADE"),
        _fk("call_id", "agent_state_change", "call", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_change")),
    )
    op.create_index(op.f("ix_agent_state_change_agent_id"), "agent_state_change", ["agent_id"])
    op.create_index(op.f("ix_agent_state_change_at"), "agent_state_change", ["at"])

    op.create_table(
        "queue_entry",
        _id(),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("tag", sa.String(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("left_at", TS, nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("talk_ended_at", TS, nullable=True),
        sa.Column("wrap_up_ended_at", TS, nullable=True),
        _fk("call_id", "queue_entry", "call", "CASCADE"),
        _fk("agent_id", "queue_entry", "agent", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_entry")),
    )
    for column in ("call_id", "queue", "entered_at"):
        op.create_index(op.f(f"ix_queue_entry_{column}"), "queue_entry", [column])

    op.create_table(
        "agent_offer",
        _id(),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("ring_started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        _fk("entry_id", "agent_offer", "queue_entry", "CASCADE"),
        _fk("agent_id", "agent_offer", "agent", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_offer")),
    )
    op.create_index(op.f("ix_agent_offer_entry_id"), "agent_offer", ["entry_id"])

    op.create_table(
        "queue_callback",
        _id(),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("place_at", TS, nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        _fk("call_id", "queue_callback", "call", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_callback")),
    )
    for column in ("call_id", "queue", "status"):
        op.create_index(op.f(f"ix_queue_callback_{column}"), "queue_callback", [column])

    op.create_table(
        "queue_callback_attempt",
        _id(),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        _fk("callback_id", "queue_callback_attempt", "queue_callback", "CASCADE"),
        _fk("agent_id", "queue_callback_attempt", "agent", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_callback_attempt")),
    )
    op.create_index(
        op.f("ix_queue_callback_attempt_callback_id"), "queue_callback_attempt", ["callback_id"]
    )

    op.create_table(
        "message",
        _id(),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("recording", sa.String(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("handled_at", TS, nullable=True),
        sa.Column("handled_by", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        _fk("call_id", "message", "call", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    op.create_index(op.f("ix_message_call_id"), "message", ["call_id"])
    op.create_index(op.f("ix_message_recorded_at"), "message", ["recorded_at"])


def downgrade() -> None:
    for table in (
        "message",
        "queue_callback_attempt",
        "queue_callback",
        "agent_offer",
        "queue_entry",
        "agent_state_change",
        "agent_skill",
        "agent",
    ):
        op.drop_table(table)
