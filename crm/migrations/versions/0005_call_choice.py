"""The caller's IVR choice on the call record (queue, or queue/tag such as repair/urgent).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("choice", sa.String(), nullable=True))
    # Calls from before this revision: their queue entry's tag is the best knowledge.
    op.execute(
        "UPDATE call SET choice = COALESCE("
        "(SELECT e.queue || CASE WHEN e.tag IS NOT NULL AND e.tag <> '' THEN '/' || e.tag "
        "ELSE '' END FROM queue_entry e WHERE e.call_id = call.id ORDER BY e.id DESC LIMIT 1),"
        " queue) WHERE queue IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.drop_column("choice")
