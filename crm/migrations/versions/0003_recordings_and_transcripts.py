"""Recordings per call (mixed, per speaker, messages), transcription jobs and transcripts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
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
        "recording",
        _id(),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("asterisk_name", sa.String(), nullable=False),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(), nullable=True),
        sa.Column("stored_at", TS, nullable=True),
        sa.Column("purged_at", TS, nullable=True),
        _fk("call_id", "recording", "call", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording")),
        sa.UniqueConstraint("asterisk_name", name=op.f("uq_recording_asterisk_name")),
    )
    for column in ("call_id", "status", "stored_at"):
        op.create_index(op.f(f"ix_recording_{column}"), "recording", [column])
    op.create_table(
        "transcription_job",
        _id(),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("audio_s", sa.Float(), nullable=True),
        sa.Column("decode_s", sa.Float(), nullable=True),
        _fk("call_id", "transcription_job", "call", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcription_job")),
        sa.UniqueConstraint("call_id", name=op.f("uq_transcription_job_call_id")),
    )
    op.create_index(op.f("ix_transcription_job_status"), "transcription_job", ["status"])
    op.create_table(
        "transcript_segment",
        _id(),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(), nullable=False),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        _fk("call_id", "transcript_segment", "call", "CASCADE"),
        _fk("recording_id", "transcript_segment", "recording", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_segment")),
        sa.UniqueConstraint("call_id", "seq", name=op.f("uq_transcript_segment_call_id_seq")),
    )
    op.create_table(
        "transcript_word",
        _id(),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("word", sa.String(), nullable=False),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("conf", sa.Float(), nullable=False),
        _fk("segment_id", "transcript_word", "transcript_segment", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_word")),
        sa.UniqueConstraint("segment_id", "seq", name=op.f("uq_transcript_word_segment_id_seq")),
    )


def downgrade() -> None:
    for table in ("transcript_word", "transcript_segment", "transcription_job", "recording"):
        op.drop_table(table)
