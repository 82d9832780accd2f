"""The messages page (留言): what callers left when nobody could take the call, to be
passed on (转告) to whom it is for, with who did it and when.

Passing one on is a form posted with the session's CSRF token; the name recorded is the
signed-in user's (web/actors.py), and a message passed on twice is refused, naming who
was first, as the API does.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from crm.exceptions import Conflict, InvalidInput, InvalidQuery, NotFound
from crm.recordings import RecordingRole, RecordingStatus
from web.actors import acting
from web.appkeys import ACD, LIVE, MESSAGES, RECORDINGS, TRANSCRIPTS
from web.auth import see_other
from web.calls import CALL_LOG
from web.pages.frame import masked_calls, page, refusal
from web.params import Params, PositiveId, parse_params
from web.privacy import may_hear

PAGE_SIZE = 20


class MessagesQuery(Params):
    show: Literal["open", "all"] = "open"
    page: PositiveId = 1
    problem: Literal["twice", "note"] | None = None


class MessagePath(Params):
    id: PositiveId = Field(description="Message id.")


def add_messages_page(app: web.Application) -> None:
    app.router.add_get("/messages", messages)
    app.router.add_post("/messages/{id}/handled", pass_on)


async def messages(request: web.Request) -> web.StreamResponse:
    try:
        query = parse_params(MessagesQuery, request.query)
    except InvalidQuery:
        query = MessagesQuery.model_validate({})
    box = request.app[MESSAGES]
    found, total = await box.list(
        handled=False if query.show == "open" else None,
        limit=PAGE_SIZE,
        offset=(query.page - 1) * PAGE_SIZE,
    )
    calls = await request.app[CALL_LOG].of_ids([m.call_id for m in found])
    shown = {c.id: c for c in await masked_calls(request, list(calls.values()))}
    items = [
        (message, shown.get(message.call_id), *await _heard(request, message.call_id))
        for message in found
    ]
    return page(
        request,
        "messages.html",
        items=items,
        total=total,
        query=query,
        problem=query.problem,
        pages=max(1, -(-total // PAGE_SIZE)),
    )


async def _heard(request: web.Request, call_id: int) -> tuple[str | None, str]:
    """The message's audio address and its transcript, for those who may hear it."""
    if not await may_hear(request, call_id):
        return None, ""
    recordings = await request.app[RECORDINGS].for_call(call_id)
    audio = next(
        (
            f"/api/recordings/{r.id}/audio"
            for r in recordings
            if r.role == RecordingRole.MESSAGE and r.status == RecordingStatus.STORED
        ),
        None,
    )
    segments = await request.app[TRANSCRIPTS].transcript(call_id)
    return audio, " ".join(s.text for s in segments)


async def pass_on(request: web.Request) -> web.StreamResponse:
    try:
        message_id = parse_params(MessagePath, request.match_info).id
    except (InvalidQuery, NotFound):
        return refusal(request, 404, "not_found_title", request.path)
    form = await request.post()
    note = form.get("note")
    text = note.strip() if isinstance(note, str) and note.strip() else None
    try:
        record = await request.app[MESSAGES].mark_handled(
            message_id, by=acting(request, None), note=text, at=request.app[ACD].clock.now()
        )
    except NotFound:
        return refusal(request, 404, "not_found_title", f"#{message_id}")
    except Conflict:
        return see_other("/messages?problem=twice")
    except InvalidInput:
        return see_other("/messages?problem=note")
    request.app[LIVE].publish("message-handled", message_id=record.id)
    return see_other(f"/messages?show=all#message-{record.id}")  # it leaves the to-do list
