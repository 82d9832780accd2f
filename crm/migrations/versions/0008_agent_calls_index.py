"""The calls an agent took, from an index: queue_entry (agent_id, call_id, answered_at).

An agent's search (crm/search.py) reads the set of calls they answered once and looks
each hit up in it; with the call id and answered_at in the index that set is a range of
it, the table never read (at a million calls the search went from 304 to 81 ms p95 on
SQLite, bench/search.py). ``answered_by`` (is this call theirs?) finds its rows by the
first two columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_queue_entry_agent_call", "queue_entry", ["agent_id", "call_id", "answered_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_queue_entry_agent_call", table_name="queue_entry")
