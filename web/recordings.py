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

from aiohttp import web

from crm.exceptions import Conflict, NotFound
from crm.recordings import RecordingStatus
from telephony.recording.timeline import SPEAKER_LABELS, as_text
from web.appkeys import RECORDING_STORE, RECORDINGS, TRANSCRIBER, TRANSCRIPTS
from web.errors import answer_errors, error, path_id
from web.privacy import hearing_refused


def add_recording_routes(app: web.Application) -> None:
    app.router.add_get("/api/calls/{id}/recordings", _recordings)
    app.router.add_get("/api/recordings/{id}/audio", _audio)
    app.router.add_get("/api/calls/{id}/transcript", _transcript)
    app.router.add_post("/api/calls/{id}/transcript/retry", _retry)
    app.router.add_get("/api/transcription/jobs", _jobs)


@answer_errors
async def _recordings(request: web.Request) -> web.StreamResponse:
    call_id = path_id(request)
    if refused := await hearing_refused(
        request, call_id, "recordings", f"call {call_id}", audit=False
    ):
        return refused
    items = await request.app[RECORDINGS].for_call(call_id)
    return web.json_response(
        {
            "items": [
                {
                    **r.to_json(),
                    "audio_url": f"/api/recordings/{r.id}/audio"
                    if r.status == RecordingStatus.STORED
                    else None,
                }
                for r in items
            ]
        }
    )


@answer_errors
async def _audio(request: web.Request) -> web.StreamResponse:
    recording = await request.app[RECORDINGS].get(path_id(request))
    # A player fetches a file in many ranges: one audit row per playback, at its start.
    starting = request.http_range.start in (None, 0)
    target = f"recording {recording.id} ({recording.role}) of call {recording.call_id}"
    if refused := await hearing_refused(
        request, recording.call_id, "playback", target, audit=starting
    ):
        return refused
    if recording.status == RecordingStatus.PURGED:
        return error(410, "purged", "the audio was deleted by the retention setting")
    if recording.status != RecordingStatus.STORED or recording.path is None:
        reason = recording.error or recording.status
        return error(404, "no-audio", f"no audio for this recording: {reason}")
    path = request.app[RECORDING_STORE].path_of(recording.path)
    if not path.exists():
        return error(404, "no-audio", "the audio file is missing from the recording store")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@answer_errors
async def _transcript(request: web.Request) -> web.StreamResponse:
    call_id = path_id(request)
    if refused := await hearing_refused(request, call_id, "transcript", f"call {call_id}"):
        return refused
    book = request.app[TRANSCRIPTS]
    try:
        job = (await book.job_for_call(call_id)).to_json()
    except NotFound:
        job = None
    segments = await book.transcript(call_id)
    if request.query.get("format") == "text":
        return web.Response(text=as_text(segments) + "\n", content_type="text/plain")
    return web.json_response(
        {
            "call_id": call_id,
            "job": job,
            "turns": [
                {**s.to_json(), "label": SPEAKER_LABELS.get(s.speaker, s.speaker)} for s in segments
            ],
        }
    )


@answer_errors
async def _retry(request: web.Request) -> web.StreamResponse:
    transcriber = request.app[TRANSCRIBER]
    if transcriber is None:
        raise Conflict("transcription is switched off in the configuration")
    job = await request.app[TRANSCRIPTS].requeue(path_id(request), at=transcriber.clock.now())
    transcriber.kick()
    return web.json_response(job.to_json(), status=202)


@answer_errors
async def _jobs(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status")
    if status is not None and status not in ("queued", "running", "done", "failed"):
        return error(400, "invalid-query", "status: must be queued, running, done or failed")
    jobs = await request.app[TRANSCRIPTS].jobs(status=status)
    return web.json_response({"items": [j.to_json() for j in jobs]})
