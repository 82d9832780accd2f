"""HTTP API of the resident directory (住户名册): residents, their rooms, the roster import.

Names, rooms and phone numbers are personal data, so every route is for staff only
(service standards §6). Writes check every field before anything is stored and name the
field they refuse, so a console can point at it; an edit carries the version the agent
read, and a stale one is 409 ``stale-version`` with the current version instead of one
agent silently undoing another's correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from pydantic import ConfigDict, Field

from crm.exceptions import Conflict
from crm.repository import DOCUMENTED_FIELDS
from crm.residents import MAX_PHONES, NOTE_MAX, UNSET, ResidentRecord, RoomRecord
from crm.roster_import import ImportReport, import_roster_data
from web.actors import ACTOR_RULE, acting, acting_by_query
from web.bodies import Body, PhoneText
from web.cases import CRM
from web.errors import ErrorId, error
from web.params import DEFAULT_LIMIT, MAX_INT, Limit, Offset, Params, RecordId, TrueOrFalse
from web.replies import json_reply
from web.routes import Reply, add_routes, route

# A large estate's whole roster is about 1 MB; 5 MB leaves room for the columns offices
# add, while one upload cannot fill the memory or hold the event loop for long.
MAX_ROSTER_BYTES = 5 * 1024 * 1024
# Excel saves "CSV UTF-8" as text/csv and "Unicode text" as tab-separated values; the
# parser reads both (and finds the encoding itself, whatever charset the header claims).
ROSTER_TYPES = ("text/csv", "text/tab-separated-values")
_CHUNK = 64 * 1024

NAME = "姓名: 1-40 characters on one line, no markup (< > ; = …)."
BUILDING = "栋号 of a room in the directory (see /api/rooms)."
ROOM = "房号; an unknown room is refused (field room)."
BY = ACTOR_RULE
PHONES = (
    f"1 to {MAX_PHONES} mainland mobiles or landlines with area code, written any usual "
    "way (138-0013-8000, +86 …); stored as digits, repeats dropped. A refused one is "
    "named by its place, phones[1] being the first."
)


# -- inputs ----------------------------------------------------------------------------


class ResidentPath(Params):
    id: RecordId = Field(description="Resident id.")


class ResidentQuery(Params):
    building: str | None = Field(None, description="栋号.")
    room: str | None = Field(None, description="房号 (with building).")
    phone: str | None = Field(None, description="A number any usual way; matches any phone.")
    name: str | None = Field(None, description="Part of the name.")
    complete: TrueOrFalse | None = Field(
        None, description="true: identified residents only; false: contacts to complete."
    )
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


class LookupQuery(Params):
    phone: str = Field("", description="The caller's number, any usual way.")


class RoomQuery(Params):
    building: str | None = Field(None, description="Only this building's rooms.")


class ImportQuery(Params):
    by: str | None = Field(None, description=ACTOR_RULE)
    dry_run: TrueOrFalse | None = Field(None, description="true: check and report, change nothing.")


class _ResidentBody(Body):
    """A misspelt field (``phone`` for ``phones``) would otherwise be dropped unseen."""

    model_config = ConfigDict(extra="forbid")
    unknown: ClassVar[str] = "is not a resident field"


class ResidentCreate(_ResidentBody):
    """A resident of a known room. Unknown fields are refused."""

    name: str = Field(description=NAME)
    building: str = Field(description=BUILDING)
    room: str = Field(description=ROOM)
    phones: list[PhoneText] = Field(description=PHONES)
    by: str | None = Field(None, description=BY)
    note: str | None = Field(None, description=f"Up to {NOTE_MAX} characters.")


class ResidentUpdate(_ResidentBody):
    """The fields to change; those left out stay as they are. building and room go
    together. Naming and housing a contact completes it unless complete says otherwise.
    A change that changes nothing keeps the version. Unknown fields are refused."""

    version: int = Field(ge=1, le=MAX_INT, description="The resident version you read.")
    by: str | None = Field(None, description=BY)
    # Left out means unchanged (``given``); a null is passed on, and the directory
    # refuses it for all of these but the note, naming the field.
    name: str | None = Field(None, description=NAME)
    building: str | None = Field(None, description=BUILDING)
    room: str | None = Field(None, description=ROOM)
    phones: list[PhoneText] | None = Field(None, description=PHONES)
    note: str | None = Field(None, description=f"Up to {NOTE_MAX} characters; null clears it.")
    complete: bool | None = Field(None, description="Identified; true needs a name and a room.")

    def given(self, name: str) -> Any:
        """The value sent, or ``UNSET`` for a field left out (it stays as it is)."""
        return getattr(self, name) if name in self.model_fields_set else UNSET


class RoomCreate(Body):
    """A unit to add; one that exists is returned as it is."""

    model_config = ConfigDict(extra="forbid")
    unknown: ClassVar[str] = "is not a room field"

    building: str = Field(description="栋号: letters, digits, 栋/号楼/座, up to 12.")
    room: str = Field(description="房号: letters, digits and -, up to 12.")


# -- replies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResidentPage:
    """A page of residents in the order they were added."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[ResidentRecord, ...]
    """The residents on this page."""
    total: int
    """Matches in all pages."""
    limit: int
    """Page size used."""
    offset: int
    """Offset used."""


@dataclass(frozen=True, slots=True)
class ResidentMatches:
    """Everyone with the number: identified residents first, then in the order added."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[ResidentRecord, ...]
    """The residents."""


@dataclass(frozen=True, slots=True)
class RoomList:
    """Rooms by building and room."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[RoomRecord, ...]
    """The rooms."""


STORAGE = ErrorId.STORAGE_UNAVAILABLE


# -- routes ----------------------------------------------------------------------------


@route(
    "GET",
    "/api/residents/lookup",
    operation_id="lookupResidents",
    summary="Who may be calling from a number",
    replies={200: Reply("Everyone with the number.", ResidentMatches)},
    errors=[STORAGE],
)
async def lookup(request: web.Request, query: LookupQuery) -> web.StreamResponse:
    """Family members often share one phone: every resident with it is listed."""
    found = await request.app[CRM].residents.find_by_phone(query.phone)
    return json_reply(ResidentMatches(tuple(found)))


@route(
    "POST",
    "/api/residents/import",
    operation_id="importRoster",
    summary="Upload the roster file (CSV or tab-separated, as Excel saves it)",
    replies={200: Reply("What the import changed, and the rows it refused.", ImportReport)},
    errors=[ErrorId.TOO_LARGE, STORAGE],
    accepts=ROSTER_TYPES,
)
async def import_roster(request: web.Request, query: ImportQuery) -> web.StreamResponse:
    """The office uploads the roster file as it is; bad rows are reported, not fatal.

    The body is the file (text/csv or text/tab-separated-values, any common encoding),
    at most 5 MB."""
    if request.content_type not in ROSTER_TYPES:
        return error(
            415,
            ErrorId.UNSUPPORTED_MEDIA_TYPE,
            f"send the roster file as {' or '.join(ROSTER_TYPES)}, not {request.content_type}",
            expected=list(ROSTER_TYPES),
        )
    by = acting_by_query(request, query.by)
    data = await _read_limited(request)
    if data is None:
        return error(
            413,
            ErrorId.TOO_LARGE,
            f"the roster file must be at most {MAX_ROSTER_BYTES // (1024 * 1024)} MB; "
            "split it by building",
            max_bytes=MAX_ROSTER_BYTES,
        )
    report = await import_roster_data(
        request.app[CRM].residents, data, by=by, dry_run=query.dry_run or False
    )
    return json_reply(report)


@route(
    "GET",
    "/api/residents",
    operation_id="listResidents",
    summary="List residents, filtered",
    replies={200: Reply("One page of residents.", ResidentPage)},
    errors=[STORAGE],
)
async def list_residents(request: web.Request, query: ResidentQuery) -> web.StreamResponse:
    records, total = await request.app[CRM].residents.list(
        building=query.building,
        room=query.room,
        phone=query.phone,
        name=query.name,
        complete=query.complete,
        limit=query.limit,
        offset=query.offset,
    )
    return json_reply(ResidentPage(tuple(records), total, query.limit, query.offset))


@route(
    "POST",
    "/api/residents",
    operation_id="createResident",
    summary="Add a resident to a known room",
    replies={201: Reply("The resident as stored.", ResidentRecord)},
    errors=[ErrorId.CONFLICT, STORAGE],
)
async def create_resident(request: web.Request, body: ResidentCreate) -> web.StreamResponse:
    record = await request.app[CRM].residents.create(
        name=body.name,
        building=body.building,
        room=body.room,
        phones=body.phones,
        by=acting(request, body.by),
        note=body.note,
    )
    return json_reply(record, status=201)


@route(
    "GET",
    "/api/residents/{id}",
    operation_id="getResident",
    summary="One resident",
    replies={200: Reply("The resident.", ResidentRecord)},
    errors=[ErrorId.NOT_FOUND, STORAGE],
)
async def get_resident(request: web.Request, path: ResidentPath) -> web.StreamResponse:
    return json_reply(await request.app[CRM].residents.get(path.id))


@route(
    "PATCH",
    "/api/residents/{id}",
    operation_id="updateResident",
    summary="Correct a resident (name, room, phones, note, complete)",
    replies={200: Reply("The resident after the change.", ResidentRecord)},
    errors=[ErrorId.NOT_FOUND, ErrorId.STALE_VERSION, ErrorId.CONFLICT, STORAGE],
)
async def update_resident(
    request: web.Request, path: ResidentPath, body: ResidentUpdate
) -> web.StreamResponse:
    """Fields left out stay as they are; ``note: null`` clears the note."""
    directory = request.app[CRM].residents
    try:
        record = await directory.update(
            path.id,
            version=body.version,
            by=acting(request, body.by),
            name=body.given("name"),
            building=body.given("building"),
            room=body.given("room"),
            phones=body.given("phones"),
            note=body.given("note"),
            complete=body.given("complete"),
        )
    except Conflict as err:
        # The directory says "stale" with a plain Conflict; the current version is what
        # the client needs to reload, and only a version that moved makes it stale.
        current = await directory.get(path.id)
        if current.version == body.version:
            raise
        return error(409, ErrorId.STALE_VERSION, str(err), current_version=current.version)
    return json_reply(record)


@route(
    "GET",
    "/api/rooms",
    operation_id="listRooms",
    summary="The estate's rooms",
    replies={200: Reply("The rooms.", RoomList)},
    errors=[STORAGE],
)
async def list_rooms(request: web.Request, query: RoomQuery) -> web.StreamResponse:
    rooms = await request.app[CRM].residents.rooms(query.building)
    return json_reply(RoomList(tuple(rooms)))


@route(
    "POST",
    "/api/rooms",
    operation_id="addRoom",
    summary="Add a room the roster lacks",
    replies={201: Reply("The room (the existing one if it was there).", RoomRecord)},
    errors=[STORAGE],
)
async def add_room(request: web.Request, body: RoomCreate) -> web.StreamResponse:
    """A unit the roster lacks (a newly split flat); adding an existing one returns it."""
    record = await request.app[CRM].residents.add_room(body.building, body.room)
    return json_reply(record, status=201)


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


# The fixed paths first: "lookup" and "import" are not resident ids.
ROUTES = (
    lookup,
    import_roster,
    list_residents,
    create_resident,
    get_resident,
    update_resident,
    list_rooms,
    add_room,
)


def add_resident_routes(app: web.Application) -> None:
    add_routes(app, ROUTES)
