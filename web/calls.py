"""HTTP API for call records: list with filters, and one call with its IVR path.

Handlers find the ``CallLog`` in ``request.app[CALL_LOG]`` so the application that mounts
them decides which database they read. Errors are JSON with a stable ``error_id`` that
clients can branch on; ``message`` is for people.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from crm import validation
from crm.calls import CallLog
from crm.exceptions import InvalidInput, InvalidQuery, NotFound, StorageError

CALL_LOG: web.AppKey[CallLog] = web.AppKey("call_log", CallLog)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Ids and offsets beyond a 32-bit integer cannot match anything; refusing them early keeps
# PostgreSQL from answering "integer out of range" with a storage error.
MAX_INT = 2**31 - 1

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_call_routes(app: web.Application) -> None:
    """Mount the call-record endpoints; the app must hold a ``CallLog`` under ``CALL_LOG``."""
    app.router.add_get("/api/calls", _list_calls)
    app.router.add_get("/api/calls/{id}", _get_call)


@dataclass(frozen=True, slots=True)
class CallQuery:
    """The list filters after validation."""

    caller: str | None
    queue: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


def parse_call_query(query: MultiMapping[str]) -> CallQuery:
    """Validate ``GET /api/calls`` parameters; an empty value counts as not given.

    Empty values are accepted because HTML filter forms send every field, filled or not.
    """
    since = _datetime_param(query, "since")
    until = _datetime_param(query, "until")
    if since is not None and until is not None and until <= since:
        raise InvalidQuery("until", "must be later than since")
    return CallQuery(
        caller=_text_param(query, "caller"),
        queue=_text_param(query, "queue"),
        since=since,
        until=until,
        limit=_int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_int_param(query, "offset", 0, 0, MAX_INT),
    )


def _answer_errors(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidQuery as err:
            details = {"field": err.field, "reason": err.reason}
            return _error(400, "invalid-query", str(err), details)
        except NotFound as err:
            return _error(404, "call-not-found", str(err), {"id": err.key})
        except StorageError as err:
            logger.warning("call records unavailable: %s", err, exc_info=err)
            return _error(503, "storage-unavailable", "call records are unavailable", {})

    return answering


@_answer_errors
async def _list_calls(request: web.Request) -> web.StreamResponse:
    query = parse_call_query(request.query)
    records, total = await request.app[CALL_LOG].list(
        caller=query.caller,
        queue=query.queue,
        since=query.since,
        until=query.until,
        limit=query.limit,
        offset=query.offset,
    )
    return web.json_response(
        {
            "items": [record.to_json() for record in records],
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


@_answer_errors
async def _get_call(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit():
        raise InvalidQuery("id", "must be a positive integer")
    call_id = int(raw)
    if not 1 <= call_id <= MAX_INT:
        raise NotFound("call", call_id)
    record = await request.app[CALL_LOG].get(call_id)
    return web.json_response(record.to_json())


def _error(status: int, error_id: str, message: str, details: dict[str, Any]) -> web.Response:
    body = {"error_id": error_id, "message": message, "details": details}
    return web.json_response(body, status=status)


def _text_param(query: MultiMapping[str], field: str) -> str | None:
    """A text filter; NUL and other controls are refused (PostgreSQL cannot even bind NUL)."""
    try:
        return validation.text(field, query.get(field), max_len=80)
    except InvalidInput as err:
        raise InvalidQuery(field, err.reason) from None


def _datetime_param(query: MultiMapping[str], field: str) -> datetime | None:
    raw = query.get(field)
    if not raw:
        return None
    try:
        return validation.when(field, raw, naive_is_utc=True)
    except InvalidInput as err:
        reason = err.reason
        if " " in raw:
            # An unencoded "+08:00" arrives as " 08:00".
            reason += "; encode '+' in the offset as %2B"
        raise InvalidQuery(field, reason) from None


def _int_param(query: MultiMapping[str], field: str, default: int, low: int, high: int) -> int:
    raw = query.get(field)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidQuery(field, "must be an integer") from None
    if not low <= value <= high:
        raise InvalidQuery(field, f"must be between {low} and {high}")
    return value


def calls_openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.1 ``paths`` entries for the call-record endpoints.

    References schemas by name under ``#/components/schemas``; merge
    ``calls_openapi_schemas()`` there as well.
    """
    errors = {
        "400": _error_response("A query parameter was refused (error_id invalid-query)."),
        "503": _error_response("The database is unavailable (error_id storage-unavailable)."),
    }
    return {
        "/api/calls": {
            "get": {
                "operationId": "listCalls",
                "summary": "List calls, newest first",
                "description": (
                    "Calls ordered by started_at descending (ties by id descending). "
                    "Empty parameters count as not given."
                ),
                "parameters": [
                    _query_param("caller", "Exact caller number.", {"type": "string"}),
                    _query_param("queue", "Queue the call was sent to.", {"type": "string"}),
                    _query_param(
                        "since",
                        "Calls started at or after this time (ISO-8601; no offset means "
                        "UTC; encode '+' as %2B).",
                        {"type": "string", "format": "date-time"},
                    ),
                    _query_param(
                        "until",
                        "Calls started before this time (exclusive; same format as since).",
                        {"type": "string", "format": "date-time"},
                    ),
                    _query_param(
                        "limit",
                        "Page size.",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": DEFAULT_LIMIT,
                        },
                    ),
                    _query_param(
                        "offset",
                        "Calls to skip.",
                        {"type": "integer", "minimum": 0, "maximum": MAX_INT, "default": 0},
                    ),
                ],
                "responses": {
                    "200": _json_response("One page of calls.", "CallPage"),
                    **errors,
                },
            }
        },
        "/api/calls/{id}": {
            "get": {
                "operationId": "getCall",
                "summary": "One call with its IVR path",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "Call id.",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
                "responses": {
                    "200": _json_response("The call.", "CallRecord"),
                    "404": _error_response("No such call (error_id call-not-found)."),
                    **errors,
                },
            }
        },
    }


def calls_openapi_schemas() -> dict[str, Any]:
    """OpenAPI 3.1 ``components.schemas`` used by ``calls_openapi_paths()``."""
    text, int_ = "string", "integer"
    optional_text, optional_int = [text, "null"], [int_, "null"]
    return {
        "IvrStep": _object(
            "One key press or timeout in the caller's walk through the IVR.",
            seq=_field(int_, "Order within the call, from 0.", minimum=0),
            node=_field(text, "Menu node the caller was in, e.g. main, repair."),
            input=_field(text, "Digit pressed, or timeout, invalid:<digit>, hangup."),
            action=_field(text, "What the IVR did, e.g. submenu:repair, queue:repair, reprompt."),
            at=_field(text, "When the input arrived (UTC).", format="date-time"),
        ),
        "CallRecord": _object(
            "One inbound call, from channel creation to hang-up.",
            id=_field(int_, "Call id."),
            channel_id=_field(text, "Asterisk channel id."),
            direction=_field(
                text,
                "in: the resident called; out: we called them back (回访).",
                enum=["in", "out"],
            ),
            caller_number=_field(optional_text, "Caller id number; null when absent."),
            caller_name=_field(optional_text, "Caller id name; null when absent."),
            dialled_number=_field(optional_text, "Number the caller dialled (the hotline)."),
            started_at=_field(text, "Channel creation time (UTC).", format="date-time"),
            answered_at=_field(optional_text, "When the service answered.", format="date-time"),
            ring_ms=_field(optional_int, "Milliseconds from started_at to answered_at."),
            greeting_played=_field("boolean", "Whether the caller heard the whole greeting."),
            queue=_field(
                optional_text,
                "Queue the call was routed to: inquiry, repair, complaint, operator, emergency "
                "or message.",
            ),
            choice=_field(
                optional_text,
                "What the caller chose in the IVR, as queue or queue/tag (e.g. repair/urgent), "
                "stored when the key was pressed; a submenu standing for one queue gives the "
                "queue alone (报修 chosen, no class yet). The case reads it.",
            ),
            queued_at=_field(optional_text, "When the call was queued.", format="date-time"),
            state=_field(text, "Last call state, e.g. ringing, ivr, queued, ended."),
            ended_at=_field(optional_text, "When it ended; null while live.", format="date-time"),
            end_reason=_field(
                optional_text,
                "Why it ended: caller-hangup, agent-hangup, holding-timeout, "
                "callback-requested, message-left, asterisk-restart, channel-lost, "
                "service-restart, service-error or connect-failed.",
            ),
            hangup_cause=_field(optional_int, "Q.850 cause code reported by Asterisk."),
            hangup_cause_text=_field(optional_text, "Asterisk's text for the hang-up cause."),
            ivr_path=_field("array", "IVR steps in order.", items=_ref("IvrStep")),
        ),
        "CallPage": _object(
            "One page of calls, newest first.",
            items=_field("array", "The calls on this page.", items=_ref("CallRecord")),
            total=_field(int_, "Calls matching the filters in all pages."),
            limit=_field(int_, "Page size used."),
            offset=_field(int_, "Calls skipped."),
        ),
        "Error": _object(
            "Why a request failed.",
            error_id=_field(
                text, "Stable code: invalid-query, call-not-found or storage-unavailable."
            ),
            message=_field(text, "Human-readable explanation."),
            details=_field(
                "object", "For invalid-query: field and reason; for call-not-found: id."
            ),
        ),
    }


def _object(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema in which every property is required (null stands for absent)."""
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "properties": properties,
    }


def _field(kind: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _error_response(description: str) -> dict[str, Any]:
    return _json_response(description, "Error")
