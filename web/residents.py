"""HTTP API of the resident directory (住户名册): residents, their rooms, the roster import.

Names, rooms and phone numbers are personal data, so every route is for staff only
(service standards §6). Writes check every field before anything is stored and name the
field they refuse, so a console can point at it; an edit carries the version the agent
read, and a stale one is 409 ``stale-version`` with the current version instead of one
agent silently undoing another's correction.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm.exceptions import Conflict, InvalidInput
from crm.residents import MAX_PAGE, UNSET, ResidentRecord
from crm.roster_import import import_roster_data
from web.cases import CRM, DEFAULT_LIMIT, MAX_INT, _bool_param, _int_param
from web.errors import answer_errors, error, json_body, path_id

# A large estate's whole roster is about 1 MB; 5 MB leaves room for the columns offices
# add, while one upload cannot fill the memory or hold the event loop for long.
MAX_ROSTER_BYTES = 5 * 1024 * 1024
# Excel saves "CSV UTF-8" as text/csv and "Unicode text" as tab-separated values; the
# parser reads both (and finds the encoding itself, whatever charset the header claims).
ROSTER_TYPES = ("text/csv", "text/tab-separated-values")
_CHUNK = 64 * 1024

CREATE_FIELDS = frozenset({"name", "building", "room", "phones", "by", "note"})
UPDATE_FIELDS = frozenset(
    {"version", "by", "name", "building", "room", "phones", "note", "complete"}
)
ROOM_FIELDS = frozenset({"building", "room"})


def add_resident_routes(app: web.Application) -> None:
    r = app.router
    # The fixed paths first: "lookup" and "import" are not resident ids.
    r.add_get("/api/residents/lookup", _lookup)
    r.add_post("/api/residents/import", _import_roster)
    r.add_get("/api/residents", _list_residents)
    r.add_post("/api/residents", _create_resident)
    r.add_get("/api/residents/{id}", _get_resident)
    r.add_patch("/api/residents/{id}", _update_resident)
    r.add_get("/api/rooms", _list_rooms)
    r.add_post("/api/rooms", _add_room)


def _resident(record: ResidentRecord, status: int = 200) -> web.Response:
    return web.json_response(record.to_json(), status=status)


def _refuse_unknown(body: dict[str, Any], known: frozenset[str], what: str) -> None:
    """A misspelt field (``phone`` for ``phones``) would otherwise be dropped unseen."""
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidInput(unknown[0], f"is not a {what} field")


def _phones(body: dict[str, Any]) -> Any:
    """The numbers as sent; a non-string among them is refused at its place in the list.

    The directory's own check would call a number sent as a JSON number "required",
    which sends the person fixing the request looking in the wrong place.
    """
    value = body.get("phones")
    if isinstance(value, list):
        for position, item in enumerate(value, 1):
            if not isinstance(item, str):
                raise InvalidInput(f"phones[{position}]", "must be a phone number as a string")
    return value


def _sent(body: dict[str, Any], key: str) -> Any:
    """A value as sent, None when absent; the directory checks it and names the field."""
    return body.get(key)


def _version(body: dict[str, Any]) -> int:
    value = body.get("version")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
        raise InvalidInput("version", "is required: the resident version you read (an integer)")
    return value


def _text_param(request: web.Request, key: str) -> str | None:
    """A filter; an empty one counts as not given (HTML forms send every field)."""
    return request.query.get(key) or None


@answer_errors
async def _list_residents(request: web.Request) -> web.StreamResponse:
    limit = _int_param(request.query, "limit", DEFAULT_LIMIT, 1, MAX_PAGE)
    offset = _int_param(request.query, "offset", 0, 0, MAX_INT)
    records, total = await request.app[CRM].residents.list(
        building=_text_param(request, "building"),
        room=_text_param(request, "room"),
        phone=_text_param(request, "phone"),
        name=_text_param(request, "name"),
        complete=_bool_param(request.query, "complete"),
        limit=limit,
        offset=offset,
    )
    return web.json_response(
        {"items": [r.to_json() for r in records], "total": total, "limit": limit, "offset": offset}
    )


@answer_errors
async def _lookup(request: web.Request) -> web.StreamResponse:
    """Who may be calling from a number: family members often share one phone."""
    found = await request.app[CRM].residents.find_by_phone(request.query.get("phone", ""))
    return web.json_response({"items": [r.to_json() for r in found]})


@answer_errors
async def _create_resident(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    _refuse_unknown(body, CREATE_FIELDS, "resident")
    record = await request.app[CRM].residents.create(
        name=_sent(body, "name"),
        building=_sent(body, "building"),
        room=_sent(body, "room"),
        phones=_phones(body),
        by=_sent(body, "by"),
        note=body.get("note"),
    )
    return _resident(record, 201)


@answer_errors
async def _get_resident(request: web.Request) -> web.StreamResponse:
    return _resident(await request.app[CRM].residents.get(path_id(request)))


@answer_errors
async def _update_resident(request: web.Request) -> web.StreamResponse:
    """Fields left out stay as they are; ``note: null`` clears the note."""
    body = await json_body(request)
    _refuse_unknown(body, UPDATE_FIELDS, "resident")
    resident_id = path_id(request)
    version = _version(body)
    directory = request.app[CRM].residents
    try:
        record = await directory.update(
            resident_id,
            version=version,
            by=_sent(body, "by"),
            name=body.get("name", UNSET),
            building=body.get("building", UNSET),
            room=body.get("room", UNSET),
            phones=_phones(body) if "phones" in body else UNSET,
            note=body.get("note", UNSET),
            complete=body.get("complete", UNSET),
        )
    except Conflict as err:
        # The directory says "stale" with a plain Conflict; the current version is what
        # the client needs to reload, and only a version that moved makes it stale.
        current = await directory.get(resident_id)
        if current.version == version:
            raise
        return error(409, "stale-version", str(err), current_version=current.version)
    return _resident(record)


@answer_errors
async def _list_rooms(request: web.Request) -> web.StreamResponse:
    rooms = await request.app[CRM].residents.rooms(_text_param(request, "building"))
    return web.json_response({"items": [r.to_json() for r in rooms]})


@answer_errors
async def _add_room(request: web.Request) -> web.StreamResponse:
    """A unit the roster lacks (a newly split flat); adding an existing one returns it."""
    body = await json_body(request)
    _refuse_unknown(body, ROOM_FIELDS, "room")
    record = await request.app[CRM].residents.add_room(_sent(body, "building"), _sent(body, "room"))
    return web.json_response(record.to_json(), status=201)


@answer_errors
async def _import_roster(request: web.Request) -> web.StreamResponse:
    """The office uploads the roster file as it is; bad rows are reported, not fatal."""
    if request.content_type not in ROSTER_TYPES:
        return error(
            415,
            "unsupported-media-type",
            f"send the roster file as {' or '.join(ROSTER_TYPES)}, not {request.content_type}",
            expected=list(ROSTER_TYPES),
        )
    by = request.query.get("by")
    if not by:
        raise InvalidInput("by", "is required (query parameter): who imports, for the audit")
    dry_run = _bool_param(request.query, "dry_run") or False
    data = await _read_limited(request)
    if data is None:
        return error(
            413,
            "too-large",
            f"the roster file must be at most {MAX_ROSTER_BYTES // (1024 * 1024)} MB; "
            "split it by building",
            max_bytes=MAX_ROSTER_BYTES,
        )
    report = await import_roster_data(request.app[CRM].residents, data, by=by, dry_run=dry_run)
    return web.json_response(report.to_json())


async def _read_limited(request: web.Request) -> bytes | None:
    """The body, or None past the limit, read in chunks so an oversize upload (or one with
    no Content-Length) is refused after at most the limit, never held in memory whole.

    Read from the stream because ``request.read()`` applies the app's client_max_size
    (1 MB by default), which a whole estate's roster may exceed.
    """
    declared = request.content_length
    if declared is not None and declared > MAX_ROSTER_BYTES:
        return None
    data = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > MAX_ROSTER_BYTES:
            return None
    return bytes(data)
