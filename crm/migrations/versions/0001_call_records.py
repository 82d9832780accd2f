"""Call records: one row per call, plus the call's path through the IVR.

Revision ID: 0001
Revises:
Create Date: 2024-11-24

Timestamps are plain ``DateTime(timezone=True)`` here: keeping them UTC-aware in Python is
the job of ``crm.models.UTCDateTime``, and migrations must not import the models, which
will have moved on by the time later revisions run.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("caller_number", sa.String(), nullable=True),
        sa.Column("caller_name", sa.String(), nullable=True),
        sa.Column("dialled_number", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ring_ms", sa.Integer(), nullable=True),
        sa.Column("greeting_played", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("hangup_cause_text", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_call_channel_id")),
    )
    op.create_index(op.f("ix_call_caller_number"), "call", ["caller_number"])
    op.create_index(op.f("ix_call_queue"), "call", ["queue"])
    op.create_index(op.f("ix_call_started_at"), "call", ["started_at"])

    op.create_table(
        "ivr_step",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("input", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call.id"],
            name=op.f("fk_ivr_step_call_id_call"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_step")),
        sa.UniqueConstraint("call_id", "seq", name=op.f("uq_ivr_step_call_id_seq")),
    )


def downgrade() -> None:
    op.drop_table("ivr_step")
    op.drop_index(op.f("ix_call_started_at"), table_name="call")
    op.drop_index(op.f("ix_call_queue"), table_name="call")
    op.drop_index(op.f("ix_call_caller_number"), table_name="call")
    op.drop_table("call")
