"""How every HTTP handler of the service answers a refused request: one JSON shape.

``{"status", "error_id", "message", "details"}``: ``error_id`` is one of ``ErrorId``, so a
console can branch on it and the OpenAPI document can list, per route, exactly the ids
it may answer; ``message`` is for people; ``details`` names the field and the reason
(400), the record (404) or the stored state that refused the change (409).

The domain's exceptions become answers in one place, ``answer_errors``:

    crm.exceptions.InvalidInput       400 invalid-input (field, reason)
    crm.exceptions.InvalidQuery       400 invalid-query (field, reason)
    crm.exceptions.NotFound           404 not-found, or the route's own id (call-not-found)
    telephony IllegalTransition       409 illegal-transition (state: the agent's)
    crm.rules.IllegalTransition       409 illegal-transition (state, wanted, reason: the case's)
    crm.case_store.StaleVersion       409 stale-version (current_version)
    crm.exceptions.Conflict           409 conflict
    crm.exceptions.StorageError       503 storage-unavailable (logged, never shown)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from crm.case_store import StaleVersion
from crm.exceptions import (
    Conflict,
    CrmError,
    InvalidInput,
    InvalidQuery,
    NotFound,
    StorageError,
)
from crm.rules import IllegalTransition as IllegalCaseTransition
from telephony.exceptions import IllegalTransition

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ErrorId(StrEnum):
    """Every ``error_id`` the service answers; clients branch on these, so they stay."""

    INVALID_INPUT = "invalid-input"
    INVALID_QUERY = "invalid-query"
    UNAUTHORISED = "unauthorised"
    FORBIDDEN = "forbidden"
    CSRF = "csrf"
    BAD_ORIGIN = "bad-origin"
    NOT_FOUND = "not-found"
    CALL_NOT_FOUND = "call-not-found"
    PROMPT_NOT_FOUND = "prompt-not-found"
    NO_AUDIO = "no-audio"
    ILLEGAL_TRANSITION = "illegal-transition"
    STALE_VERSION = "stale-version"
    CONFLICT = "conflict"
    PURGED = "purged"
    TOO_LARGE = "too-large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    STORAGE_UNAVAILABLE = "storage-unavailable"


# Each id always comes with the same status, so a route's declared ids give its responses.
STATUS: dict[ErrorId, int] = {
    ErrorId.INVALID_INPUT: 400,
    ErrorId.INVALID_QUERY: 400,
    ErrorId.UNAUTHORISED: 401,
    ErrorId.FORBIDDEN: 403,
    ErrorId.CSRF: 403,
    ErrorId.BAD_ORIGIN: 403,
    ErrorId.NOT_FOUND: 404,
    ErrorId.CALL_NOT_FOUND: 404,
    ErrorId.PROMPT_NOT_FOUND: 404,
    ErrorId.NO_AUDIO: 404,
    ErrorId.ILLEGAL_TRANSITION: 409,
    ErrorId.STALE_VERSION: 409,
    ErrorId.CONFLICT: 409,
    ErrorId.PURGED: 410,
    ErrorId.TOO_LARGE: 413,
    ErrorId.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorId.STORAGE_UNAVAILABLE: 503,
}


class ErrorBody(BaseModel):
    """Why a request was refused."""

    model_config = ConfigDict(frozen=True, title="Error")

    status: int = Field(description="The HTTP status, repeated for logs and consoles.")
    error_id: ErrorId = Field(description="Stable code to branch on.")
    message: str = Field(description="Human-readable explanation.")
    details: dict[str, Any] = Field(
        description=(
            "invalid-input / invalid-query: field (its path, e.g. repair.appointment_at) "
            "and reason; not-found: id; illegal-transition: state (and for a case: wanted, "
            "reason); stale-version: current_version."
        )
    )


def error(status: int, error_id: str, message: str, **details: Any) -> web.Response:
    body = {"status": status, "error_id": str(error_id), "message": message, "details": details}
    return web.json_response(body, status=status)


def refusal(err: Exception, *, not_found: ErrorId = ErrorId.NOT_FOUND) -> web.Response | None:
    """The answer to a domain exception, or None for one that is a bug (a 500)."""
    match err:
        case InvalidInput():
            return error(400, ErrorId.INVALID_INPUT, str(err), field=err.field, reason=err.reason)
        case InvalidQuery():
            return error(400, ErrorId.INVALID_QUERY, str(err), field=err.field, reason=err.reason)
        case IllegalTransition():
            return error(409, ErrorId.ILLEGAL_TRANSITION, str(err), state=str(err.state))
        case IllegalCaseTransition():
            details = {"state": err.current, "wanted": err.wanted, "reason": err.reason}
            return error(409, ErrorId.ILLEGAL_TRANSITION, str(err), **details)
        case StaleVersion():
            return error(409, ErrorId.STALE_VERSION, str(err), current_version=err.current)
        case Conflict():
            return error(409, ErrorId.CONFLICT, str(err))
        case NotFound():
            return error(404, not_found, str(err), id=err.key)
        case StorageError():
            log.warning("storage unavailable: %s", err, exc_info=err)
            return error(503, ErrorId.STORAGE_UNAVAILABLE, "records are unavailable")
    return None


def answer_errors(handler: Handler, *, not_found: ErrorId = ErrorId.NOT_FOUND) -> Handler:
    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (CrmError, IllegalTransition) as err:
            answer = refusal(err, not_found=not_found)
            if answer is None:
                raise
            return answer

    return answering
