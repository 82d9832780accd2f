"""SQLAlchemy mapping of the call-record tables.

These classes stay inside the package: ``crm.calls`` turns rows into frozen records before
they leave, so no caller can trigger a lazy load or hold a session open by accident.
The hand-written migrations in ``crm/migrations/versions`` must match this file; a test
compares the migrated schema with this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints let later migrations drop or alter them by name on every backend
# (SQLite's batch mode needs names to find them).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC on the Python side.

    SQLite has no timezone type and hands back naive values; PostgreSQL hands back aware
    ones in the session's zone. Normalising here means the rest of the code can compare
    and serialise datetimes without asking which database it runs on. Naive input is
    refused because its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused; give a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Call(Base):
    """One inbound call, from channel creation to hang-up; one row per Asterisk channel."""

    __tablename__ = "call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String, unique=True)
    caller_number: Mapped[str | None] = mapped_column(String, index=True)
    caller_name: Mapped[str | None] = mapped_column(String)
    dialled_number: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ring_ms: Mapped[int | None] = mapped_column(Integer)
    greeting_played: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    queue: Mapped[str | None] = mapped_column(String, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String)
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_text: Mapped[str | None] = mapped_column(String)

    # lazy="raise": the path is loaded on purpose with selectinload; an accidental lazy
    # load under asyncio would fail far from its cause, so make it fail right here.
    ivr_steps: Mapped[list[IvrStep]] = relationship(
        order_by="IvrStep.seq",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class IvrStep(Base):
    """One key press (or timeout) in a call's walk through the IVR menus."""

    __tablename__ = "ivr_step"
    # The unique (call_id, seq) index also serves lookups by call_id, so call_id needs
    # no index of its own.
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String)
    input: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
