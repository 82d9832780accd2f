"""One call for review: its audio beside its transcript, the IVR path, the queue timeline
and the case it belongs to.

The page shows a transcript and plays recordings, so it is for those who may hear the
call (web/privacy.py): opening it is a transcript read and leaves an access-audit row,
granted or denied; each playback leaves its own row from the audio route. ``?t=`` (in
seconds) opens the call at a moment, which is how a search hit links here.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from pydantic import Field

from crm.exceptions import InvalidQuery, NotFound
from crm.recordings import RecordingRecord, RecordingRole, RecordingStatus
from crm.rules import Kind
from web.appkeys import CONFIG, RECORDINGS, TRANSCRIPTS
from web.audit import record_access
from web.auth import principal_of
from web.calls import CALL_LOG
from web.i18n import Words, language_of
from web.pages.call_log import CALL_REVIEW
from web.pages.frame import masked_calls, page, refusal
from web.params import CallId, Params, parse_params
from web.privacy import may_hear

# The order the player offers them in: the conversation first, then each speaker alone.
LEGS = (RecordingRole.MIXED, RecordingRole.RESIDENT, RecordingRole.AGENT)


class CallPagePath(Params):
    id: CallId


class CallPageQuery(Params):
    t: float | None = Field(None, ge=0, le=86_400, description="Open at this second.")


@dataclass(frozen=True, slots=True)
class Leg:
    """One playable recording: which speaker, and where its audio is served."""

    role: str
    recording_id: int
    duration_s: float | None

    @property
    def audio_url(self) -> str:
        return f"/api/recordings/{self.recording_id}/audio"


def add_call_detail_page(app: web.Application) -> None:
    app.router.add_get("/calls/{id}", call_detail)


async def call_detail(request: web.Request) -> web.StreamResponse:
    try:
        call_id = parse_params(CallPagePath, request.match_info).id
        start = parse_params(CallPageQuery, request.query).t
    except (InvalidQuery, NotFound):
        return refusal(request, 404, "not_found_title", request.path)
    try:
        call = await request.app[CALL_LOG].get(call_id)
    except NotFound:
        return refusal(request, 404, "not_found_title", f"#{call_id}")
    principal = principal_of(request)
    granted = await may_hear(request, call_id)
    reason = "" if granted else f"a {principal.role} hears only calls they took"
    await record_access(
        request, principal, "call-review", f"call {call_id}", granted=granted, reason=reason
    )
    if not granted:
        words = Words(language_of(request))
        return refusal(request, 403, "forbidden_title", words("hear_only_taken"))
    (shown,) = await masked_calls(request, [call])
    recordings = await request.app[RECORDINGS].for_call(call_id)
    segments = await request.app[TRANSCRIPTS].transcript(call_id)
    try:
        job_status = (await request.app[TRANSCRIPTS].job_for_call(call_id)).status
    except NotFound:
        job_status = "none"
    review = request.app[CALL_REVIEW]
    config = request.app[CONFIG]
    return page(
        request,
        "call_detail.html",
        call=shown,
        legs=_legs(recordings),
        segments=segments,
        job_status=job_status,
        timeline=await review.timeline(call_id),
        case=await review.case_of(call_id),
        kinds=Kind.LABELS,
        queues={name: q.label for name, q in config.queues.items()},
        rings_deadline_ms=config.ring.rings_deadline_ms,
        start=start or 0,
        clock=_clock,
    )


def _legs(recordings: list[RecordingRecord]) -> list[Leg]:
    stored = {
        r.role: r for r in recordings if r.status == RecordingStatus.STORED and r.role in LEGS
    }
    return [Leg(role, stored[role].id, stored[role].duration_s) for role in LEGS if role in stored]


def _clock(ms: int) -> str:
    """A moment in the call as a player shows it: 1:05."""
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"
