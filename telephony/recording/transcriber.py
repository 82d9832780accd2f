"""Transcription jobs, one per call, run in the decoder pool until each is done or failed.

The job list lives in the database (``crm.transcripts``): this loop only claims the next
due job, decodes the call's speaker legs in the pool, lays them on one timeline and
stores the transcript. Bad audio fails the job at once with the reason (retrying cannot
mend a truncated file); anything else (a worker crash, the database busy) is retried
after a delay, up to ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from typing import Any

from crm.clock import Clock
from crm.exceptions import CrmError
from crm.recordings import RecordingLog, RecordingRecord, RecordingRole, RecordingStatus
from crm.transcripts import JobRecord, Segment, TranscriptBook
from telephony.config import TranscriptionConfig
from telephony.exceptions import AudioError, ModelError
from telephony.recording.loops import sleep_until, stop_task
from telephony.recording.pool import DecoderPool
from telephony.recording.store import RecordingStore
from telephony.recording.timeline import Leg, turns

log = logging.getLogger(__name__)

IDLE_POLL_S = 30.0  # also look for due retries this often when nobody kicks


class NoAudio(AudioError):
    """The call has no speaker leg to transcribe (never recorded, lost or failed)."""


Publish = Callable[..., None]


class Transcriber:
    def __init__(
        self,
        config: TranscriptionConfig,
        pool: DecoderPool,
        store: RecordingStore,
        recordings: RecordingLog,
        book: TranscriptBook,
        clock: Clock,
        publish: Publish | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.store = store
        self.recordings = recordings
        self.book = book
        self.clock = clock
        self.publish = publish or (lambda *_a, **_k: None)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None

    async def start(self, *, warm: bool = False) -> None:
        """Resume the jobs a previous run left; ``warm`` loads the model in the workers now."""
        if warm:
            self._warming = asyncio.create_task(self.pool.warm(), name="warm-decoders")
        resumed = await self.book.resume_running(at=self.clock.now())
        if resumed:
            log.info("resuming %d transcription job(s) a previous run had started", resumed)
        self._task = asyncio.create_task(self._run_forever(), name="transcriber")

    async def stop(self) -> None:
        await stop_task(self._task)
        await stop_task(self._warming)
        self.pool.close(kill=True)  # a job cut here is still 'running': the restart resumes it

    async def enqueue(self, call_id: int) -> JobRecord:
        job = await self.book.enqueue(call_id, at=self.clock.now())
        if job.status in ("done", "failed"):  # new audio for the call (a call-back): redo it
            job = await self.book.requeue(call_id, at=self.clock.now())
        self.publish("transcript-queued", call_id=call_id)
        self.kick()
        return job

    def kick(self) -> None:
        self._wake.set()

    async def run_due(self) -> list[JobRecord]:
        """Run every job due now, one after another (``hotline transcribe --pending``)."""
        finished = []
        while (job := await self.book.claim(now=self.clock.now())) is not None:
            await self._attempt(job)
            finished.append(await self.book.job_for_call(job.call_id))
        return finished

    async def _run_forever(self) -> None:
        while True:
            self._wake.clear()  # before looking: a kick from now on is not lost
            try:
                job = await self.book.claim(now=self.clock.now())
            except CrmError:
                log.exception("cannot read transcription jobs; trying again")
                job = None
            if job is not None:
                await self._attempt(job)
                continue
            idle_s = await self._idle_s()
            await sleep_until(self._wake, idle_s)

    async def _idle_s(self) -> float:
        with contextlib.suppress(CrmError):
            due = await self.book.next_due_at()
            if due is not None:
                return max(0.05, min(IDLE_POLL_S, (due - self.clock.now()).total_seconds()))
        return IDLE_POLL_S

    async def _attempt(self, job: JobRecord) -> None:
        call_id = job.call_id
        self.publish("transcript-running", call_id=call_id, attempt=job.attempts)
        try:
            segments, audio_s, decode_s = await self.transcribe_call(call_id)
        except (AudioError, ModelError) as err:
            await self._failed(job, str(err), retry=False)
        except BrokenProcessPool as err:
            await self._failed(job, f"a decoder process died: {err}", retry=True)
        except Exception as err:
            log.exception("transcription of call %s failed", call_id)
            await self._failed(job, f"{type(err).__name__}: {err}", retry=True)
        else:
            await self.book.done(
                job.id,
                segments,
                model=self.pool.model.name,
                audio_s=audio_s,
                decode_s=decode_s,
                at=self.clock.now(),
            )
            self.publish("transcript-ready", call_id=call_id, turns=len(segments))

    async def _failed(self, job: JobRecord, reason: str, *, retry: bool) -> None:
        now = self.clock.now()
        again = retry and job.attempts < self.config.max_attempts
        retry_at = now + timedelta(seconds=self.config.retry_delay_s) if again else None
        await self.book.failed(job.id, error=reason, retry_at=retry_at, at=now)
        log.warning(
            "transcription of call %s %s: %s",
            job.call_id,
            "will be retried" if again else "failed",
            reason,
        )
        self.publish("transcript-failed", call_id=job.call_id, reason=reason, retry=again)

    async def transcribe_call(self, call_id: int) -> tuple[list[Segment], float, float]:
        """The call's turns, and the seconds of audio and of decoding (CPU) they took."""
        recordings = await self.recordings.for_call(call_id)
        speakers = [r for r in recordings if r.role in RecordingRole.SPEAKERS]
        usable = [r for r in speakers if r.status == RecordingStatus.STORED and r.path]
        if not usable:
            raise NoAudio(_why_no_audio(call_id, speakers))
        start = min(r.started_at for r in recordings)
        texts = await asyncio.gather(
            *(self.pool.decode(self.store.path_of(r.path or "")) for r in usable)
        )
        legs = [
            Leg(
                speaker=r.role,
                recording_id=r.id,
                offset_ms=round((r.started_at - start).total_seconds() * 1000),
                utterances=text.utterances,
            )
            for r, text in zip(usable, texts, strict=True)
        ]
        return (
            turns(legs),
            sum(t.audio_s for t in texts),
            sum(t.decode_s for t in texts),
        )


def _why_no_audio(call_id: int, speakers: list[RecordingRecord]) -> str:
    if not speakers:
        return f"call {call_id} has no speaker recording"
    parts: list[Any] = [
        f"{r.role} {r.status}" + (f" ({r.error})" if r.error else "") for r in speakers
    ]
    return f"call {call_id}: no stored speaker audio: " + "; ".join(parts)
