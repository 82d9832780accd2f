"""HTTP API for a call's recordings and transcript.

A supervisor reviewing a call gets its recordings (each with status, and the reason when
the audio is missing), the audio itself, and the transcript: turns with speaker and
start time, every word with its time, so the player can jump to the moment a word was
said. A transcript that is not ready says why (queued, running, or failed with reason).

Recordings and transcripts are personal data (service standards §6): supervisors get
any call's, an agent only the calls they took (web/privacy.py); each playback, download
and transcript read is in the access audit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from pydantic import Field

from crm.exceptions import Conflict, NotFound
from crm.recordings import RecordingRecord, RecordingStatus
from crm.repository import DOCUMENTED_FIELDS
from crm.transcripts import SPEAKER_LABELS, JobRecord, Segment
from telephony.recording.timeline import as_text
from web.appkeys import RECORDING_STORE, RECORDINGS, TRANSCRIBER, TRANSCRIPTS
from web.errors import ErrorId, error
from web.params import Params, RecordId, TrueOrFalse
from web.privacy import hearing_refused
from web.replies import extended, json_reply
from web.routes import Reply, add_routes, route

JobStatusName = Literal["queued", "running", "done", "failed"]


class CallPath(Params):
    id: RecordId = Field(description="Call id.")


class RecordingPath(Params):
    id: RecordId = Field(description="Recording id.")


@dataclass(frozen=True, slots=True)
class Recording(RecordingRecord):
    """One recording of a call, and where to fetch its audio."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    audio_url: str | None = field(kw_only=True)
    """Where to fetch the audio, when stored."""

    @classmethod
    def of(cls, record: RecordingRecord) -> Recording:
        stored = record.status == RecordingStatus.STORED
        url = f"/api/recordings/{record.id}/audio" if stored else None
        return extended(cls, record, audio_url=url)


@dataclass(frozen=True, slots=True)
class RecordingList:
    """A call's recordings."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[Recording, ...]
    """Oldest first."""


@dataclass(frozen=True, slots=True)
class Turn(Segment):
    """What one speaker said until the other spoke."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    label: str = field(kw_only=True)
    """居民, 坐席 or 留言."""

    @classmethod
    def of(cls, segment: Segment) -> Turn:
        label = SPEAKER_LABELS.get(segment.speaker, segment.speaker)
        return extended(cls, segment, label=label)


@dataclass(frozen=True, slots=True)
class Transcript:
    """A call's transcript."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    call_id: int
    """The call."""
    job: JobRecord | None
    """Its transcription job; null when none was queued."""
    turns: tuple[Turn, ...]
    """Empty until the job is done."""


@dataclass(frozen=True, slots=True)
class JobList:
    """Transcription jobs."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[JobRecord, ...]
    """Up to 100, oldest first."""


class TranscriptQuery(Params):
    format: Literal["json", "text"] = Field("json", description="json (default) or text.")


class AudioQuery(Params):
    download: TrueOrFalse | None = Field(
        None, description="true: sent as a file to save (audited as a download)."
    )


class JobQuery(Params):
    status: JobStatusName | None = Field(None, description="Only jobs in this status.")


@route(
    "GET",
    "/api/calls/{id}/recordings",
    operation_id="listCallRecordings",
    summary="A call's recordings: the mix, each speaker, or its message",
    replies={200: Reply("The call's recordings, oldest first.", RecordingList)},
    errors=[ErrorId.NOT_FOUND, ErrorId.STORAGE_UNAVAILABLE],
)
async def list_recordings(request: web.Request, path: CallPath) -> web.StreamResponse:
    target = f"call {path.id}"
    if refused := await hearing_refused(request, path.id, "recordings", target, audit=False):
        return refused
    items = await request.app[RECORDINGS].for_call(path.id)
    return json_reply(RecordingList(tuple(Recording.of(r) for r in items)))


@route(
    "GET",
    "/api/recordings/{id}/audio",
    operation_id="getRecordingAudio",
    summary="The audio of a stored recording (WAV, 8 kHz 16-bit mono)",
    replies={
        200: Reply("The WAV file.", media_type="audio/wav"),
        206: Reply("The part of it a Range header asked for.", media_type="audio/wav"),
        416: Reply("The Range header is malformed or starts past the end of the file."),
    },
    errors=[ErrorId.NOT_FOUND, ErrorId.NO_AUDIO, ErrorId.PURGED, ErrorId.STORAGE_UNAVAILABLE],
)
async def recording_audio(
    request: web.Request, path: RecordingPath, query: AudioQuery
) -> web.StreamResponse:
    """no-audio says why (lost from Asterisk before the copy, copy failed, still copying).
    Range requests are answered 206, so a player seeks without fetching the whole file."""
    recording = await request.app[RECORDINGS].get(path.id)
    starting = _starts_playback(request)
    target = f"recording {recording.id} ({recording.role}) of call {recording.call_id}"
    action = "download" if query.download else "playback"
    if refused := await hearing_refused(request, recording.call_id, action, target, audit=starting):
        return refused
    if recording.status == RecordingStatus.PURGED:
        return error(410, ErrorId.PURGED, "the audio was deleted by the retention setting")
    if recording.status != RecordingStatus.STORED or recording.path is None:
        reason = recording.error or recording.status
        return error(404, ErrorId.NO_AUDIO, f"no audio for this recording: {reason}")
    stored = request.app[RECORDING_STORE].path_of(recording.path)
    if not stored.exists():
        return error(404, ErrorId.NO_AUDIO, "the audio file is missing from the recording store")
    headers = {"Content-Type": "audio/wav"}
    if query.download:
        name = f"call-{recording.call_id}-{recording.role}.wav"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return web.FileResponse(stored, headers=headers)


def _starts_playback(request: web.Request) -> bool:
    """A player fetches a file in many ranges: one audit row per playback, at its start.

    A Range header that does not parse is a request of its own (the file answers it 416,
    as RFC 9110 says), so it is audited as a start rather than failing as a server error.
    """
    try:
        return request.http_range.start in (None, 0)
    except ValueError:
        return True


@route(
    "GET",
    "/api/calls/{id}/transcript",
    operation_id="getCallTranscript",
    summary="A call's transcript: turns by speaker, every word timed",
    replies={200: Reply("The transcript and its job.", Transcript, also=("text/plain",))},
    errors=[ErrorId.NOT_FOUND, ErrorId.STORAGE_UNAVAILABLE],
)
async def transcript(
    request: web.Request, path: CallPath, query: TranscriptQuery
) -> web.StreamResponse:
    """job says whether the transcript is queued, running, done or failed (with the
    reason); turns is empty until it is done. format=text gives '[mm:ss] 居民：…' lines
    instead."""
    if refused := await hearing_refused(request, path.id, "transcript", f"call {path.id}"):
        return refused
    book = request.app[TRANSCRIPTS]
    try:
        job: JobRecord | None = await book.job_for_call(path.id)
    except NotFound:
        job = None
    segments = await book.transcript(path.id)
    if query.format == "text":
        return web.Response(text=as_text(segments) + "\n", content_type="text/plain")
    return json_reply(Transcript(path.id, job, tuple(Turn.of(s) for s in segments)))


@route(
    "POST",
    "/api/calls/{id}/transcript/retry",
    operation_id="retryCallTranscript",
    summary="Transcribe a call again (after a failure or a model change)",
    replies={202: Reply("The job, queued again.", JobRecord)},
    errors=[ErrorId.NOT_FOUND, ErrorId.CONFLICT, ErrorId.STORAGE_UNAVAILABLE],
)
async def retry_transcript(request: web.Request, path: CallPath) -> web.StreamResponse:
    """404: the call has no transcription job; 409: it is queued or running already, or
    transcription is off."""
    transcriber = request.app[TRANSCRIBER]
    if transcriber is None:
        raise Conflict("transcription is switched off in the configuration")
    job = await request.app[TRANSCRIPTS].requeue(path.id, at=transcriber.clock.now())
    transcriber.kick()
    return json_reply(job, status=202)


@route(
    "GET",
    "/api/transcription/jobs",
    operation_id="listTranscriptionJobs",
    summary="Transcription jobs (the backlog, failures with their reasons)",
    replies={200: Reply("Up to 100 jobs, oldest first.", JobList)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def list_jobs(request: web.Request, query: JobQuery) -> web.StreamResponse:
    jobs = await request.app[TRANSCRIPTS].jobs(status=query.status)
    return json_reply(JobList(tuple(jobs)))


ROUTES = (list_recordings, recording_audio, transcript, retry_transcript, list_jobs)


def add_recording_routes(app: web.Application) -> None:
    add_routes(app, ROUTES)
