"""HTTP API for call records: list with filters, and one call with its IVR path.

Handlers find the ``CallLog`` in ``request.app[CALL_LOG]`` so the application that mounts
them decides which database they read.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from pydantic import Field

from crm.calls import CallLog, CallRecord
from crm.repository import DOCUMENTED_FIELDS
from web.errors import ErrorId
from web.params import CallId, FilterText, Params, WindowQuery
from web.replies import json_reply
from web.routes import Reply, add_routes, route

CALL_LOG: web.AppKey[CallLog] = web.AppKey("call_log", CallLog)


class CallQuery(WindowQuery):
    """The filters of the call list; all optional, an empty one is not given."""

    caller: FilterText | None = Field(None, description="Exact caller number.")
    queue: FilterText | None = Field(None, description="Queue the call was sent to.")


class CallPath(Params):
    id: CallId = Field(description="Call id.")


@dataclass(frozen=True, slots=True)
class CallPage:
    """One page of calls, newest first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[CallRecord, ...]
    """The calls on this page."""
    total: int
    """Calls matching the filters in all pages."""
    limit: int
    """Page size used."""
    offset: int
    """Calls skipped."""


@route(
    "GET",
    "/api/calls",
    operation_id="listCalls",
    summary="List calls, newest first",
    replies={200: Reply("One page of calls.", CallPage)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def list_calls(request: web.Request, query: CallQuery) -> web.StreamResponse:
    """Calls ordered by started_at descending (ties by id descending).

    Empty parameters count as not given.
    """
    records, total = await request.app[CALL_LOG].list(
        caller=query.caller,
        queue=query.queue,
        since=query.since,
        until=query.until,
        limit=query.limit,
        offset=query.offset,
    )
    return json_reply(CallPage(tuple(records), total, query.limit, query.offset))


@route(
    "GET",
    "/api/calls/{id}",
    operation_id="getCall",
    summary="One call with its IVR path",
    replies={200: Reply("The call.", CallRecord)},
    errors=[ErrorId.INVALID_QUERY, ErrorId.CALL_NOT_FOUND, ErrorId.STORAGE_UNAVAILABLE],
    not_found=ErrorId.CALL_NOT_FOUND,
)
async def get_call(request: web.Request, path: CallPath) -> web.StreamResponse:
    record = await request.app[CALL_LOG].get(path.id)
    return json_reply(record)


ROUTES = (list_calls, get_call)


def add_call_routes(app: web.Application) -> None:
    """Mount the call-record endpoints; the app must hold a ``CallLog`` under ``CALL_LOG``."""
    add_routes(app, ROUTES)
