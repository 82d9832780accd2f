"""Transcription jobs and the transcripts they produce.

A job is a row, not a task in memory: a restart finds the jobs that were running and
puts them back in line, so no call is left without a transcript or a reason. A
transcript is written whole in one transaction with its job marked done, so a reader
never sees half of one.

    queued ──claim──▶ running ──▶ done
      ▲                  │
      └──retry (attempts left)──┴──▶ failed (reason kept)
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from crm.exceptions import Conflict, NotFound, StorageError
from crm.models import TranscriptionJob, TranscriptSegment, TranscriptWord
from crm.repository import DOCUMENTED_FIELDS, OneOf, Repository, record_json, require_aware
from crm.search_index import index_call
from crm.uncancellable import uncancellable

# How staff name each speaker of a transcript (the API, the text form, search results).
SPEAKER_LABELS = {"resident": "居民", "agent": "坐席", "message": "留言", "audio": "音频"}


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    ALL = (QUEUED, RUNNING, DONE, FAILED)


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times in ms from the start of the conversation."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    word: str
    """The word, normalised (digits for spoken numbers)."""
    start_ms: int
    """When it starts."""
    end_ms: int
    """When it ends."""
    conf: float
    """The recogniser's confidence, 0 to 1."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One turn of the timeline; times in ms from the start of the conversation."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    speaker: Annotated[str, OneOf(tuple(SPEAKER_LABELS))]
    """resident, agent or message (audio: a file transcribed by itself, hotline transcribe)."""
    start_ms: int
    """Start, ms from the start of the conversation."""
    end_ms: int
    """End, ms from the start of the conversation."""
    text: str
    """The turn's text (Han without spaces, digits)."""
    words: tuple[Word, ...]
    """Every word of the turn, timed."""
    recording_id: int | None = None
    """The speaker's recording."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Speech-to-text of one call."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Job id."""
    call_id: int
    """The call."""
    status: Annotated[str, OneOf(JobStatus.ALL)]
    """Where the job is: queued, running, done or failed."""
    attempts: int
    """Attempts so far (a restart counts one)."""
    next_attempt_at: datetime
    """When it runs (again)."""
    error: str | None
    """Why it failed (or why the last attempt did)."""
    model: str | None
    """The model that made the transcript."""
    queued_at: datetime
    """When it was queued."""
    started_at: datetime | None
    """When the last attempt started."""
    finished_at: datetime | None
    """When it finished (done or failed)."""
    audio_s: float | None
    """Seconds of audio decoded."""
    decode_s: float | None
    """CPU seconds the decoding took."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


class TranscriptBook(Repository):
    @uncancellable
    async def enqueue(self, call_id: int, *, at: datetime) -> JobRecord:
        """Queue the call's job (once: a second enqueue returns the existing job)."""
        require_aware("at", at)
        statement = insert(TranscriptionJob).values(
            call_id=call_id, status=JobStatus.QUEUED, next_attempt_at=at, queued_at=at
        )
        try:
            async with self._transaction("queue transcription") as session:
                await session.execute(statement)
        except StorageError as err:  # a duplicate is fine: the call already has its job
            if not isinstance(err.__cause__, IntegrityError):
                raise
        return await self.job_for_call(call_id)

    @uncancellable
    async def requeue(self, call_id: int, *, at: datetime) -> JobRecord:
        """Run a finished or failed job again (after a model change, or by hand)."""
        require_aware("at", at)
        statement = (
            update(TranscriptionJob)
            .where(
                TranscriptionJob.call_id == call_id,
                TranscriptionJob.status.in_([JobStatus.DONE, JobStatus.FAILED]),
            )
            .values(status=JobStatus.QUEUED, attempts=0, error=None, next_attempt_at=at)
            .returning(TranscriptionJob.id)
        )
        async with self._transaction("requeue transcription") as session:
            job_id = (await session.execute(statement)).scalar_one_or_none()
            # Read in the same session: a second unit of work here would wait for the
            # connection this one holds (SQLite has one).
            job = await session.scalar(
                select(TranscriptionJob)
                .where(TranscriptionJob.call_id == call_id)
                .execution_options(populate_existing=True)
            )
            if job is None:
                raise NotFound("transcription job for call", call_id)
            if job_id is None:
                raise Conflict(f"transcription of call {call_id} is {job.status}")
            return _job(job)

    @uncancellable
    async def resume_running(self, *, at: datetime) -> int:
        """At start: jobs a previous run was doing go back in line (their attempt counts)."""
        statement = (
            update(TranscriptionJob)
            .where(TranscriptionJob.status == JobStatus.RUNNING)
            .values(status=JobStatus.QUEUED, next_attempt_at=at)
            .returning(TranscriptionJob.id)
        )
        async with self._transaction("resume transcription jobs") as session:
            return len((await session.scalars(statement)).all())

    @uncancellable
    async def claim(self, *, now: datetime) -> JobRecord | None:
        """The oldest due job, marked running; None when nothing is due."""
        require_aware("now", now)
        async with self._transaction("claim transcription") as session:
            job = await session.scalar(
                select(TranscriptionJob)
                .where(
                    TranscriptionJob.status == JobStatus.QUEUED,
                    TranscriptionJob.next_attempt_at <= now,
                )
                .order_by(TranscriptionJob.next_attempt_at, TranscriptionJob.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job is None:
                return None
            job.status = JobStatus.RUNNING
            job.attempts += 1
            job.started_at = now
            job.error = None
            await session.flush()
            return _job(job)

    @uncancellable
    async def next_due_at(self) -> datetime | None:
        query = select(TranscriptionJob.next_attempt_at).where(
            TranscriptionJob.status == JobStatus.QUEUED
        )
        async with self._transaction("next transcription") as session:
            return min((await session.scalars(query)).all(), default=None)

    @uncancellable
    async def done(
        self,
        job_id: int,
        segments: Sequence[Segment],
        *,
        model: str,
        audio_s: float,
        decode_s: float,
        at: datetime,
    ) -> None:
        """Replace the call's transcript with ``segments`` (and its search terms) and mark
        the job done, at once."""
        require_aware("at", at)
        async with self._transaction("store transcript") as session:
            job = await session.get(TranscriptionJob, job_id)
            if job is None:
                raise NotFound("transcription job", job_id)
            await session.execute(
                delete(TranscriptSegment).where(TranscriptSegment.call_id == job.call_id)
            )
            for seq, segment in enumerate(segments):
                row = TranscriptSegment(
                    call_id=job.call_id,
                    recording_id=segment.recording_id,
                    seq=seq,
                    speaker=segment.speaker,
                    start_ms=segment.start_ms,
                    end_ms=segment.end_ms,
                    text=segment.text,
                    words=[
                        TranscriptWord(
                            seq=i, word=w.word, start_ms=w.start_ms, end_ms=w.end_ms, conf=w.conf
                        )
                        for i, w in enumerate(segment.words)
                    ],
                )
                session.add(row)
            await session.flush()
            await index_call(session, job.call_id)
            job.status = JobStatus.DONE
            job.model = model
            job.audio_s = audio_s
            job.decode_s = decode_s
            job.finished_at = at
            job.error = None

    @uncancellable
    async def failed(
        self, job_id: int, *, error: str, retry_at: datetime | None, at: datetime
    ) -> None:
        """A failed attempt: back in line at ``retry_at``, or failed for good with the reason."""
        values: dict[str, Any] = {"error": error[:1000]}
        if retry_at is None:
            values.update(status=JobStatus.FAILED, finished_at=at)
        else:
            values.update(status=JobStatus.QUEUED, next_attempt_at=retry_at)
        statement = update(TranscriptionJob).where(TranscriptionJob.id == job_id).values(**values)
        async with self._transaction("transcription failed") as session:
            await session.execute(statement)

    @uncancellable
    async def job_for_call(self, call_id: int) -> JobRecord:
        query = select(TranscriptionJob).where(TranscriptionJob.call_id == call_id)
        async with self._transaction("transcription job") as session:
            job = await session.scalar(query)
            if job is None:
                raise NotFound("transcription job for call", call_id)
            return _job(job)

    @uncancellable
    async def jobs(
        self, *, status: str | None = None, limit: int = 100
    ) -> builtins.list[JobRecord]:
        query = select(TranscriptionJob).order_by(TranscriptionJob.id).limit(limit)
        if status is not None:
            query = query.where(TranscriptionJob.status == status)
        async with self._transaction("transcription jobs") as session:
            return [_job(j) for j in (await session.scalars(query)).all()]

    @uncancellable
    async def transcript(self, call_id: int) -> builtins.list[Segment]:
        query = (
            select(TranscriptSegment)
            .where(TranscriptSegment.call_id == call_id)
            .order_by(TranscriptSegment.seq)
            .options(selectinload(TranscriptSegment.words))
        )
        async with self._transaction("transcript") as session:
            rows = (await session.scalars(query)).all()
            return [
                Segment(
                    speaker=s.speaker,
                    start_ms=s.start_ms,
                    end_ms=s.end_ms,
                    text=s.text,
                    words=tuple(Word(w.word, w.start_ms, w.end_ms, w.conf) for w in s.words),
                    recording_id=s.recording_id,
                )
                for s in rows
            ]


def _job(j: TranscriptionJob) -> JobRecord:
    return JobRecord(
        id=j.id,
        call_id=j.call_id,
        status=j.status,
        attempts=j.attempts,
        next_attempt_at=j.next_attempt_at,
        error=j.error,
        model=j.model,
        queued_at=j.queued_at,
        started_at=j.started_at,
        finished_at=j.finished_at,
        audio_s=j.audio_s,
        decode_s=j.decode_s,
    )
