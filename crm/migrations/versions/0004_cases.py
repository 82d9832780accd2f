"""The CRM: rooms, residents and phones, cases with calls, deadlines, work orders,
complaints and their steps, call-backs (回访), and the audit trail; call direction and
message addressee.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _fk(column: str, table: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def upgrade() -> None:
    op.create_table(
        "room",
        _id(),
        sa.Column("building", sa.String(), nullable=False),
        sa.Column("room", sa.String(), nullable=False),
        _pk("room"),
        sa.UniqueConstraint("building", "room", name=op.f("uq_room_building_room")),
    )
    op.create_table(
        "resident",
        _id(),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("complete", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _fk("room_id", "resident", "room", "RESTRICT"),
        _pk("resident"),
    )
    _index("resident", "room_id")
    op.create_table(
        "resident_phone",
        _id(),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        _fk("resident_id", "resident_phone", "resident", "CASCADE"),
        _pk("resident_phone"),
        sa.UniqueConstraint(
            "resident_id", "number", name=op.f("uq_resident_phone_resident_id_number")
        ),
    )
    _index("resident_phone", "number")
    op.create_table(
        "case",
        _id(),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subtype", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("owner_agent_id", sa.Integer(), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("reopened", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _fk("owner_agent_id", "case", "agent", "SET NULL"),
        _fk("resident_id", "case", "resident", "SET NULL"),
        _fk("room_id", "case", "room", "RESTRICT"),
        _pk("case"),
    )
    _index("case", "status", "owner_agent_id", "resident_id", "phone", "opened_at")
    op.create_index("ix_case_kind_status", "case", ["kind", "status"])
    op.create_table(
        "case_call",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("linked_at", TS, nullable=False),
        _fk("case_id", "case_call", "case", "CASCADE"),
        _fk("call_id", "case_call", "call", "CASCADE"),
        _pk("case_call"),
        sa.UniqueConstraint("case_id", "call_id", name=op.f("uq_case_call_case_id_call_id")),
    )
    _index("case_call", "call_id")
    op.create_table(
        "deadline",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("warn_at", TS, nullable=False),
        sa.Column("met_at", TS, nullable=True),
        sa.Column("cancelled_at", TS, nullable=True),
        sa.Column("warned_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        _fk("case_id", "deadline", "case", "CASCADE"),
        _pk("deadline"),
    )
    _index("deadline", "case_id")
    op.create_index("ix_deadline_open_due", "deadline", ["met_at", "due_at"])
    op.create_table(
        "repair_order",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reporter", sa.String(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("reported_at", TS, nullable=False),
        sa.Column("appointment_at", TS, nullable=True),
        sa.Column("key_left", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fault", sa.String(), nullable=False),
        sa.Column("work_done", sa.String(), nullable=True),
        sa.Column("materials", sa.String(), nullable=True),
        sa.Column("material_cost_fen", sa.Integer(), server_default="0", nullable=False),
        sa.Column("labour_cost_fen", sa.Integer(), server_default="0", nullable=False),
        sa.Column("technician", sa.String(), nullable=True),
        sa.Column("on_site_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("verdict", sa.String(), nullable=True),
        sa.Column("repair_class", sa.String(), nullable=False),
        sa.Column("suggested_class", sa.String(), nullable=True),
        sa.Column("suggested_because", sa.String(), nullable=True),
        sa.Column("class_confirmed_by", sa.String(), nullable=True),
        sa.Column("class_confirmed_at", TS, nullable=True),
        sa.Column("on_price_list", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("quoted_fen", sa.Integer(), nullable=True),
        sa.Column("price_reviewed_by", sa.String(), nullable=True),
        sa.Column("price_reviewed_at", TS, nullable=True),
        sa.Column("price_agreed_at", TS, nullable=True),
        sa.Column("rework_of", sa.Integer(), nullable=True),
        _fk("case_id", "repair_order", "case", "CASCADE"),
        _fk("room_id", "repair_order", "room", "RESTRICT"),
        _fk("rework_of", "repair_order", "repair_order", "SET NULL"),
        _pk("repair_order"),
        sa.UniqueConstraint("case_id", name=op.f("uq_repair_order_case_id")),
    )
    op.create_table(
        "complaint",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("nature", sa.String(), nullable=True),
        sa.Column("sort", sa.String(), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("reasonable", sa.Boolean(), nullable=True),
        sa.Column("on_premises", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("serious", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("responsible", sa.String(), nullable=True),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("causes", sa.String(), nullable=True),
        sa.Column("prevention", sa.String(), nullable=True),
        _fk("case_id", "complaint", "case", "CASCADE"),
        _pk("complaint"),
        sa.UniqueConstraint("case_id", name=op.f("uq_complaint_case_id")),
    )
    op.create_table(
        "complaint_step",
        _id(),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        _fk("complaint_id", "complaint_step", "complaint", "CASCADE"),
        _pk("complaint_step"),
    )
    _index("complaint_step", "complaint_id")
    op.create_table(
        "case_callback",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=True),
        sa.Column("satisfaction", sa.String(), nullable=True),
        sa.Column("remarks", sa.String(), nullable=True),
        sa.Column("letter", sa.String(), nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("done_by", sa.String(), nullable=True),
        sa.Column("queue_callback_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _fk("case_id", "case_callback", "case", "CASCADE"),
        _fk("queue_callback_id", "case_callback", "queue_callback", "SET NULL"),
        _pk("case_callback"),
    )
    _index("case_callback", "case_id", "due_at", "status")
    op.create_table(
        "case_callback_attempt",
        _id(),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        _fk("callback_id", "case_callback_attempt", "case_callback", "CASCADE"),
        _fk("call_id", "case_callback_attempt", "call", "SET NULL"),
        _pk("case_callback_attempt"),
    )
    _index("case_callback_attempt", "callback_id")
    op.create_table(
        "audit_entry",
        _id(),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("field", sa.String(), nullable=True),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("at", TS, nullable=False),
        _fk("case_id", "audit_entry", "case", "CASCADE"),
        _pk("audit_entry"),
    )
    _index("audit_entry", "case_id")
    op.create_index("ix_audit_entry_entity", "audit_entry", ["entity", "entity_id"])

    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("direction", sa.String(), server_default="in", nullable=False))
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("for_whom", sa.String(), nullable=True))
        batch.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_message_case_id_case"), "case", ["case_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index(op.f("ix_message_case_id"), ["case_id"])


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_index(op.f("ix_message_case_id"))
        batch.drop_constraint(op.f("fk_message_case_id_case"), type_="foreignkey")
        batch.drop_column("case_id")
        batch.drop_column("for_whom")
    with op.batch_alter_table("call") as batch:
        batch.drop_column("direction")
    for table in (
        "audit_entry",
        "case_callback_attempt",
        "case_callback",
        "complaint_step",
        "complaint",
        "repair_order",
        "deadline",
        "case_call",
        "case",
        "resident_phone",
        "resident",
        "room",
    ):
        op.drop_table(table)
