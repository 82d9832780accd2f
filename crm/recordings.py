"""The recordings of each call, from the moment Asterisk starts one to the stored file.

A row exists before any audio does, so whatever happens later (Asterisk deleting the
file, a full disk, a restart mid-copy) the call still shows that it was recorded and
why the audio is missing. Statuses move one way:

    recording ──finished──▶ pending ──copied──▶ stored ──retention──▶ purged
                                │
                                └──gave up──▶ lost (gone from Asterisk) / failed (other reason)
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import insert, select, update

from crm.exceptions import NotFound
from crm.models import Call, Recording
from crm.repository import DOCUMENTED_FIELDS, OneOf, Repository, record_json, require_aware
from crm.uncancellable import uncancellable


class RecordingRole:
    MIXED = "mixed"  # the bridge: both speakers, what a reviewer listens to
    RESIDENT = "resident"  # the resident's voice only (snoop, spy=in)
    AGENT = "agent"  # the agent's voice only
    MESSAGE = "message"  # a message (留言): the caller alone

    SPEAKERS = (RESIDENT, AGENT, MESSAGE)
    ALL = (MIXED, *SPEAKERS)


class RecordingStatus:
    RECORDING = "recording"
    PENDING = "pending"
    STORED = "stored"
    LOST = "lost"
    FAILED = "failed"
    PURGED = "purged"

    UNSETTLED = (RECORDING, PENDING)
    ALL = (RECORDING, PENDING, STORED, LOST, FAILED, PURGED)


@dataclass(frozen=True, slots=True)
class RecordingRecord:
    """One recording of a call."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Recording id."""
    call_id: int
    """The call."""
    role: Annotated[str, OneOf(RecordingRole.ALL)]
    """Whose audio: mixed (both speakers), resident, agent or message."""
    asterisk_name: str
    """The name Asterisk stored it under."""
    format: str
    """Audio format (wav)."""
    started_at: datetime
    """When recording started."""
    ended_at: datetime | None
    """When it stopped."""
    status: Annotated[str, OneOf(RecordingStatus.ALL)]
    """recording → pending (to copy) → stored → purged (retention); lost: Asterisk no
    longer had it; failed: could not start or could not be copied."""
    attempts: int
    """Copy attempts."""
    error: str | None
    """Why the audio is missing, if it is."""
    path: str | None
    """Where it is in the recording store."""
    size_bytes: int | None
    """Size of the stored file."""
    duration_s: float | None
    """Length in seconds."""
    sample_rate: int | None
    """Samples per second (8000)."""
    sha256: str | None
    """Checksum of the stored file."""
    stored_at: datetime | None
    """When the copy was stored."""
    purged_at: datetime | None
    """When retention deleted the audio."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class StoredAudio:
    """What the recording store says about a file it has written."""

    path: str
    size_bytes: int
    duration_s: float
    sample_rate: int
    sha256: str


class RecordingLog(Repository):
    @uncancellable
    async def started(
        self, *, call_id: int, role: str, asterisk_name: str, fmt: str, at: datetime
    ) -> int:
        require_aware("at", at)
        statement = (
            insert(Recording)
            .values(
                call_id=call_id,
                role=role,
                asterisk_name=asterisk_name,
                format=fmt,
                started_at=at,
                status=RecordingStatus.RECORDING,
            )
            .returning(Recording.id)
        )
        async with self._transaction("recording started") as session:
            return (await session.execute(statement)).scalar_one()

    @uncancellable
    async def finished(self, recording_id: int, *, at: datetime) -> None:
        """Asterisk has closed the file: it may be copied now."""
        require_aware("at", at)
        statement = (
            update(Recording)
            .where(Recording.id == recording_id, Recording.status == RecordingStatus.RECORDING)
            .values(status=RecordingStatus.PENDING, ended_at=at, next_attempt_at=at)
        )
        async with self._transaction("recording finished") as session:
            await session.execute(statement)

    @uncancellable
    async def release_unfinished(self, *, at: datetime, call_ended_before: datetime) -> int:
        """Recordings we never saw finish (a restart, a lost event) whose call has ended."""
        require_aware("at", at)
        ended = select(Call.id).where(Call.ended_at < call_ended_before)
        statement = (
            update(Recording)
            .where(Recording.status == RecordingStatus.RECORDING, Recording.call_id.in_(ended))
            .values(status=RecordingStatus.PENDING, next_attempt_at=at)
            .returning(Recording.id)
        )
        async with self._transaction("release unfinished recordings") as session:
            return len((await session.scalars(statement)).all())

    @uncancellable
    async def due_copies(self, *, now: datetime, limit: int = 20) -> list[RecordingRecord]:
        query = (
            select(Recording)
            .where(Recording.status == RecordingStatus.PENDING, Recording.next_attempt_at <= now)
            .order_by(Recording.next_attempt_at, Recording.id)
            .limit(limit)
        )
        return await self._select("due copies", query)

    @uncancellable
    async def next_copy_at(self) -> datetime | None:
        query = select(Recording.next_attempt_at).where(Recording.status == RecordingStatus.PENDING)
        async with self._transaction("next copy") as session:
            times = [t for t in (await session.scalars(query)).all() if t is not None]
        return min(times, default=None)

    @uncancellable
    async def stored(self, recording_id: int, audio: StoredAudio, *, at: datetime) -> None:
        require_aware("at", at)
        statement = (
            update(Recording)
            .where(Recording.id == recording_id)
            .values(
                status=RecordingStatus.STORED,
                attempts=Recording.attempts + 1,
                error=None,
                path=audio.path,
                size_bytes=audio.size_bytes,
                duration_s=audio.duration_s,
                sample_rate=audio.sample_rate,
                sha256=audio.sha256,
                stored_at=at,
                next_attempt_at=None,
            )
        )
        async with self._transaction("recording stored") as session:
            await session.execute(statement)

    @uncancellable
    async def copy_failed(
        self, recording_id: int, *, error: str, retry_at: datetime | None, final_status: str
    ) -> None:
        """One failed copy: try again at ``retry_at``, or give up with ``final_status``."""
        values: dict[str, Any] = {"attempts": Recording.attempts + 1, "error": error[:500]}
        if retry_at is None:
            values.update(status=final_status, next_attempt_at=None)
        else:
            values.update(next_attempt_at=retry_at)
        statement = update(Recording).where(Recording.id == recording_id).values(**values)
        async with self._transaction("recording copy failed") as session:
            await session.execute(statement)

    @uncancellable
    async def to_purge(self, *, stored_before: datetime, limit: int = 100) -> list[RecordingRecord]:
        query = (
            select(Recording)
            .where(Recording.status == RecordingStatus.STORED, Recording.stored_at < stored_before)
            .order_by(Recording.stored_at)
            .limit(limit)
        )
        return await self._select("recordings to purge", query)

    @uncancellable
    async def purged(self, recording_id: int, *, at: datetime) -> None:
        statement = (
            update(Recording)
            .where(Recording.id == recording_id)
            .values(status=RecordingStatus.PURGED, purged_at=at)
        )
        async with self._transaction("recording purged") as session:
            await session.execute(statement)

    @uncancellable
    async def get(self, recording_id: int) -> RecordingRecord:
        found = await self._select(
            "get recording", select(Recording).where(Recording.id == recording_id)
        )
        if not found:
            raise NotFound("recording", recording_id)
        return found[0]

    @uncancellable
    async def for_call(self, call_id: int) -> builtins.list[RecordingRecord]:
        query = select(Recording).where(Recording.call_id == call_id).order_by(Recording.id)
        return await self._select("recordings of call", query)

    async def _select(self, operation: str, query: Any) -> builtins.list[RecordingRecord]:
        async with self._transaction(operation) as session:
            rows = (await session.scalars(query)).all()
        return [_record(r) for r in rows]


def _record(r: Recording) -> RecordingRecord:
    return RecordingRecord(
        id=r.id,
        call_id=r.call_id,
        role=r.role,
        asterisk_name=r.asterisk_name,
        format=r.format,
        started_at=r.started_at,
        ended_at=r.ended_at,
        status=r.status,
        attempts=r.attempts,
        error=r.error,
        path=r.path,
        size_bytes=r.size_bytes,
        duration_s=r.duration_s,
        sample_rate=r.sample_rate,
        sha256=r.sha256,
        stored_at=r.stored_at,
        purged_at=r.purged_at,
    )
