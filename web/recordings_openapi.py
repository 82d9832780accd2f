"""OpenAPI description of recordings and transcripts (``web.recordings``).

For whoever builds the supervisor's call review: what a recording's status means, when
audio is gone for good (retention: 410) or missing with a reason (404), and the shape
of a transcript: turns labelled 居民 / 坐席 with times, every word timed, for a player
that jumps to the moment a word was said.
"""

from __future__ import annotations

from typing import Any

from crm.recordings import RecordingRole, RecordingStatus
from crm.transcripts import JobStatus
from web.acd_openapi import (
    _error_response,
    _field,
    _id_param,
    _json_response,
    _object,
    _query_param,
    _ref,
)

ROLES = [RecordingRole.MIXED, RecordingRole.RESIDENT, RecordingRole.AGENT, RecordingRole.MESSAGE]
STATUSES = [
    RecordingStatus.RECORDING,
    RecordingStatus.PENDING,
    RecordingStatus.STORED,
    RecordingStatus.LOST,
    RecordingStatus.FAILED,
    RecordingStatus.PURGED,
]
JOB_STATUSES = [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED]
REVIEWERS: list[dict[str, list[str]]] = [{"reviewer": []}]
SECURITY_SCHEMES = {
    "reviewer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The reviewer token (HOTLINE_REVIEWER_TOKEN): recordings and "
        "transcripts are personal data, for authorised reviewers only.",
    }
}


def recording_openapi_paths() -> dict[str, Any]:
    unavailable = {
        "401": _error_response("No or wrong reviewer token (error_id unauthorised)."),
        "403": _error_response(
            "No reviewer token is configured: recordings and transcripts are closed "
            "(error_id closed)."
        ),
        "503": _error_response("The database is unavailable."),
    }
    return {
        "/api/calls/{id}/recordings": {
            "get": {
                "operationId": "listCallRecordings",
                "security": REVIEWERS,
                "summary": "A call's recordings: the mix, each speaker, or its message",
                "parameters": [_id_param("Call id.")],
                "responses": {
                    "200": _json_response("The call's recordings, oldest first.", "RecordingList"),
                    **unavailable,
                },
            }
        },
        "/api/recordings/{id}/audio": {
            "get": {
                "operationId": "getRecordingAudio",
                "security": REVIEWERS,
                "summary": "The audio of a stored recording (WAV, 8 kHz 16-bit mono)",
                "parameters": [_id_param("Recording id.")],
                "responses": {
                    "200": {
                        "description": "The WAV file.",
                        "content": {"audio/wav": {"schema": {"type": "string"}}},
                    },
                    "404": _error_response(
                        "No such recording, or no audio: error_id no-audio with the reason "
                        "(lost from Asterisk before the copy, copy failed, still being copied)."
                    ),
                    "410": _error_response("The audio was deleted by the retention setting."),
                    **unavailable,
                },
            }
        },
        "/api/calls/{id}/transcript": {
            "get": {
                "operationId": "getCallTranscript",
                "security": REVIEWERS,
                "summary": "A call's transcript: turns by speaker, every word timed",
                "description": (
                    "job says whether the transcript is queued, running, done or failed (with "
                    "the reason); turns is empty until it is done. format=text gives "
                    "'[mm:ss] 居民：…' lines instead."
                ),
                "parameters": [
                    _id_param("Call id."),
                    _query_param(
                        "format",
                        "json (default) or text.",
                        {"type": "string", "enum": ["json", "text"]},
                    ),
                ],
                "responses": {
                    "200": _json_response("The transcript and its job.", "Transcript"),
                    **unavailable,
                },
            }
        },
        "/api/calls/{id}/transcript/retry": {
            "post": {
                "operationId": "retryCallTranscript",
                "security": REVIEWERS,
                "summary": "Transcribe a call again (after a failure or a model change)",
                "parameters": [_id_param("Call id.")],
                "responses": {
                    "202": _json_response("The job, queued again.", "TranscriptionJob"),
                    "404": _error_response("The call has no transcription job."),
                    "409": _error_response(
                        "The job is queued or running already, or transcription is off."
                    ),
                    **unavailable,
                },
            }
        },
        "/api/transcription/jobs": {
            "get": {
                "operationId": "listTranscriptionJobs",
                "security": REVIEWERS,
                "summary": "Transcription jobs (the backlog, failures with their reasons)",
                "parameters": [
                    _query_param(
                        "status",
                        "Only jobs in this status.",
                        {"type": "string", "enum": JOB_STATUSES},
                    )
                ],
                "responses": {
                    "200": _json_response("Up to 100 jobs, oldest first.", "TranscriptionJobList"),
                    "400": _error_response("status is not one of the job statuses."),
                    **unavailable,
                },
            }
        },
    }


def recording_openapi_schemas() -> dict[str, Any]:
    time = {"type": ["string", "null"], "format": "date-time"}
    nullable_int = {"type": ["integer", "null"]}
    word = _object(
        "One recognised word; times in ms from the start of the conversation.",
        word=_field("string", "The word, normalised (digits for spoken numbers)."),
        start_ms=_field("integer", "When it starts."),
        end_ms=_field("integer", "When it ends."),
        conf=_field("number", "The recogniser's confidence, 0 to 1."),
    )
    return {
        "Recording": _object(
            "One recording of a call.",
            id=_field("integer", "Recording id."),
            call_id=_field("integer", "The call."),
            role=_field("string", "Whose audio.", enum=ROLES),
            asterisk_name=_field("string", "The name Asterisk stored it under."),
            format=_field("string", "Audio format (wav)."),
            started_at=_field("string", "When recording started.", format="date-time"),
            ended_at={**time, "description": "When it stopped."},
            status=_field(
                "string",
                "recording → pending (to copy) → stored → purged (retention); lost: Asterisk "
                "no longer had it; failed: could not start or could not be copied.",
                enum=STATUSES,
            ),
            attempts=_field("integer", "Copy attempts."),
            error=_field(["string", "null"], "Why the audio is missing, if it is."),
            path=_field(["string", "null"], "Where it is in the recording store."),
            size_bytes={**nullable_int, "description": "Size of the stored file."},
            duration_s=_field(["number", "null"], "Length in seconds."),
            sample_rate={**nullable_int, "description": "Samples per second (8000)."},
            sha256=_field(["string", "null"], "Checksum of the stored file."),
            stored_at={**time, "description": "When the copy was stored."},
            purged_at={**time, "description": "When retention deleted the audio."},
            audio_url=_field(["string", "null"], "Where to fetch the audio, when stored."),
        ),
        "RecordingList": _object(
            "A call's recordings.", items={"type": "array", "items": _ref("Recording")}
        ),
        "TranscriptionJob": _object(
            "Speech-to-text of one call.",
            id=_field("integer", "Job id."),
            call_id=_field("integer", "The call."),
            status=_field("string", "Where the job is.", enum=JOB_STATUSES),
            attempts=_field("integer", "Attempts so far (a restart counts one)."),
            next_attempt_at=_field("string", "When it runs (again).", format="date-time"),
            error=_field(["string", "null"], "Why it failed (or why the last attempt did)."),
            model=_field(["string", "null"], "The model that made the transcript."),
            queued_at=_field("string", "When it was queued.", format="date-time"),
            started_at={**time, "description": "When the last attempt started."},
            finished_at={**time, "description": "When it finished (done or failed)."},
            audio_s=_field(["number", "null"], "Seconds of audio decoded."),
            decode_s=_field(["number", "null"], "CPU seconds the decoding took."),
        ),
        "TranscriptionJobList": _object(
            "Transcription jobs.", items={"type": "array", "items": _ref("TranscriptionJob")}
        ),
        "Transcript": _object(
            "A call's transcript.",
            call_id=_field("integer", "The call."),
            job={"oneOf": [_ref("TranscriptionJob"), {"type": "null"}]},
            turns={
                "type": "array",
                "items": _object(
                    "What one speaker said until the other spoke.",
                    speaker=_field("string", "resident, agent or message."),
                    label=_field("string", "居民, 坐席 or 留言."),
                    start_ms=_field("integer", "Start, ms from the start of the conversation."),
                    end_ms=_field("integer", "End, ms from the start of the conversation."),
                    text=_field("string", "The turn's text (Han without spaces, digits)."),
                    recording_id={**nullable_int, "description": "The speaker's recording."},
                    words={"type": "array", "items": word},
                ),
            },
        ),
    }
