"""Search: the index of transcript and case text (crm/search_index.py), filled from what
is already stored.

SQLite gets FTS5 virtual tables (rowid = call or case id); PostgreSQL tables of id and
tsvector with GIN indexes, their rows going with their call or case.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-16
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from crm.search_index import CALLS, CASES, rebuild

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# remove_diacritics 0: terms are stored as crm/search_terms.py cut them, as on PostgreSQL.
FTS5 = "fts5(terms, tokenize = 'unicode61 remove_diacritics 0')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in (CALLS, CASES):
            op.execute(f"CREATE VIRTUAL TABLE {table} USING {FTS5}")
    else:
        for table, key, owner in ((CALLS, "call_id", "call"), (CASES, "case_id", "case")):
            op.execute(
                f"CREATE TABLE {table} ("
                f"{key} INTEGER NOT NULL, terms TSVECTOR NOT NULL, "
                f"CONSTRAINT pk_{table} PRIMARY KEY ({key}), "
                f"CONSTRAINT fk_{table}_{key}_{owner} FOREIGN KEY ({key}) "
                f'REFERENCES "{owner}" (id) ON DELETE CASCADE)'
            )
    rebuild(op.get_bind())  # on PostgreSQL it also creates the GIN indexes, once filled


def downgrade() -> None:
    for table in (CALLS, CASES):
        op.execute(f"DROP TABLE {table}")
