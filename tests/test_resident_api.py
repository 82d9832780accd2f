"""Specification of the resident directory's HTTP API (web.residents).

The routes are mounted on a small app with the real directory over a fresh database
(SQLite, plus PostgreSQL when HOTLINE_TEST_PG_URL is set). What a request changed is read
back through the API or plain SQL, never taken from what the test sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select

from crm import models as m
from crm.db import make_sessionmaker
from crm.desk import CrmDesk
from crm.residents import ResidentRecord, RoomRecord
from crm.roster_import import ImportReport, Rejected
from telephony.config import Config
from tests.clocks import T0, ManualClock
from tests.databases import one_connection_engine
from tests.staff import TESTS_TOKEN, signed_in_as
from web.appkeys import CONFIG
from web.cases import CRM
from web.openapi import openapi_document
from web.residents import MAX_ROSTER_BYTES, add_resident_routes
from web.residents import ROUTES as RESIDENT_ROUTES

AGENT = "agent:3 李娜"
SHARED = "13800138000"
NOT_A_PHONE = "is not a phone number (mobile, or landline with area code)"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

ROOMS = [("3", "201"), ("3", "202"), ("5", "302")]


@pytest.fixture
async def desk(migrated_db_url: str) -> AsyncIterator[CrmDesk]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(insert(m.Room), [{"building": b, "room": r} for b, r in ROOMS])
    yield CrmDesk.open(sessions, ManualClock(), Config().rules)
    await engine.dispose()


def app_for(desk: CrmDesk) -> web.Application:
    """The handlers alone: who may call them is web/auth.py's, tested in test_access.py."""
    app = web.Application(middlewares=[signed_in_as(TESTS_TOKEN)])
    app[CONFIG] = Config()
    app[CRM] = desk
    add_resident_routes(app)
    return app


@pytest.fixture
async def client(desk: CrmDesk, aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(app_for(desk))


async def call(
    client: Client, method: str, path: str, status: int, body: Any = None, **kw: Any
) -> Any:
    headers = kw.pop("headers", {})
    response = await client.request(method, path, json=body, headers=headers, **kw)
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json"
    return await response.json()


async def upload(
    client: Client, data: Any, status: int, query: str = "by=物业前台", **headers: str
) -> Any:
    return await call(
        client,
        "POST",
        f"/api/residents/import?{query}",
        status,
        data=data,
        headers={"Content-Type": "text/csv; charset=utf-8", **headers},
    )


async def counts(desk: CrmDesk) -> dict[str, int]:
    found = {}
    async with desk.residents._sessions() as session:
        for name, model in (
            ("rooms", m.Room),
            ("residents", m.Resident),
            ("phones", m.ResidentPhone),
            ("audit", m.AuditEntry),
        ):
            found[name] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return found


def resident(**change: Any) -> dict[str, Any]:
    return {
        "name": "张伟",
        "building": "3",
        "room": "201",
        "phones": ["138-0013-8000"],
        "by": AGENT,
        **change,
    }


async def create(client: Client, **change: Any) -> Any:
    return await call(client, "POST", "/api/residents", 201, resident(**change))


# -- residents -------------------------------------------------------------------------


async def test_a_resident_is_created_and_read_back(client: Client, desk: CrmDesk) -> None:
    created = await create(
        client, phones=["138-0013-8000", "+86 139 1234 5678", "13800138000"], note=" 耳背 "
    )
    fetched = await call(client, "GET", f"/api/residents/{created['id']}", 200)
    assert fetched == created
    assert fetched["name"] == "张伟"
    assert (fetched["building"], fetched["room"]) == ("3", "201")
    assert fetched["phones"] == [SHARED, "13912345678"]  # digits, the repeat dropped
    assert (fetched["complete"], fetched["source"], fetched["version"]) == (True, "api", 1)
    assert fetched["note"] == "耳背"
    assert fetched["created_at"] == fetched["updated_at"] == T0.isoformat()
    stored = await desk.residents.get(created["id"])
    assert stored.to_json() == fetched


async def test_lists_filter_and_page(client: Client) -> None:
    ids = [
        (await create(client, name="张伟", phones=[SHARED]))["id"],
        (await create(client, name="李娜", phones=[SHARED, "13912345678"]))["id"],
        (await create(client, name="王芳", room="202", phones=["021-62345678"]))["id"],
        (await create(client, name="王强", building="5", room="302", phones=["13700000001"]))["id"],
    ]
    contact = (await client.app[CRM].residents.contact_for("13611112222", at=T0)).id

    async def names(query: str) -> tuple[list[str | None], int]:
        page = await call(client, "GET", f"/api/residents?{query}", 200)
        return [r["name"] for r in page["items"]], page["total"]

    assert await names("") == (["张伟", "李娜", "王芳", "王强", None], 5)
    assert await names("building=3") == (["张伟", "李娜", "王芳"], 3)
    assert await names("building=3&room=201") == (["张伟", "李娜"], 2)
    assert await names("phone=138-0013-8000") == (["张伟", "李娜"], 2)
    assert await names("name=王") == (["王芳", "王强"], 2)
    assert await names("complete=false") == ([None], 1)
    assert await names("complete=true&building=") == (["张伟", "李娜", "王芳", "王强"], 4)
    page = await call(client, "GET", "/api/residents?limit=2&offset=1", 200)
    assert [r["id"] for r in page["items"]] == ids[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    page = await call(client, "GET", "/api/residents?offset=4", 200)
    assert [r["id"] for r in page["items"]] == [contact]
    assert (page["limit"], page["offset"]) == (50, 4)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("complete=yes", "complete"),
        ("phone=12345", "phone"),
        ("building=<b>", "building"),
        ("room=2%3B01", "room"),
    ],
)
async def test_bad_filters_are_400_naming_the_filter(
    client: Client, query: str, field: str
) -> None:
    refused = await call(client, "GET", f"/api/residents?{query}", 400)
    assert (refused["error_id"], refused["details"]["field"]) == ("invalid-query", field)


async def test_the_lookup_finds_everyone_sharing_a_number(client: Client) -> None:
    zhang = await create(client, name="张伟", phones=[SHARED])
    li = await create(client, name="李娜", phones=["13912345678", SHARED])
    await create(client, name="王芳", room="202", phones=["13700000001"])
    found = await call(client, "GET", "/api/residents/lookup?phone=%2B86%20138-0013-8000", 200)
    assert [r["id"] for r in found["items"]] == [zhang["id"], li["id"]]
    assert found["items"][1]["phones"] == ["13912345678", SHARED]
    nobody = await call(client, "GET", "/api/residents/lookup?phone=13500000000", 200)
    assert nobody == {"items": []}


@pytest.mark.parametrize("query", ["phone=123", "phone=abc", "phone=", ""])
async def test_a_lookup_of_no_number_is_400(client: Client, query: str) -> None:
    refused = await call(client, "GET", f"/api/residents/lookup?{query}", 400)
    assert (refused["error_id"], refused["details"]["field"]) == ("invalid-query", "phone")


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"building": "9", "room": "901"}, "room", "unknown room 9-901"),
        ({"phones": ["12345"]}, "phones[1]", f"'12345' {NOT_A_PHONE}"),
        ({"phones": [SHARED, "1380013800"]}, "phones[2]", NOT_A_PHONE),
        ({"phones": [13800138000]}, "phones[1]", "must be a phone number as a string"),
        ({"phones": SHARED}, "phones", "must be a list"),
        ({"phones": []}, "phones", "at least one"),
        ({"name": "<script>alert(1)</script>"}, "name", "no markup"),
        ({"name": "张\n伟"}, "name", "one line"),
        ({"name": None}, "name", "is required"),
        ({"by": "<b>x</b>"}, "by", "no markup"),
        ({"note": "x" * 501}, "note", "at most 500"),
        ({"phone": SHARED}, "phone", "is not a resident field"),
        ({"source": "import"}, "source", "is not a resident field"),
    ],
)
async def test_bad_residents_are_400_naming_the_field_and_write_nothing(
    client: Client, desk: CrmDesk, change: dict[str, Any], field: str, reason: str
) -> None:
    before = await counts(desk)
    refused = await call(client, "POST", "/api/residents", 400, resident(**change))
    assert refused["error_id"] == "invalid-input"
    assert refused["details"]["field"] == field
    assert reason in refused["details"]["reason"]
    assert await counts(desk) == before


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
async def test_a_body_that_is_no_json_object_is_400(client: Client, body: bytes) -> None:
    refused = await call(
        client,
        "POST",
        "/api/residents",
        400,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert refused["details"]["field"] == "body"


@pytest.mark.parametrize("path", ["/api/residents/99", "/api/residents/abc", "/api/residents/0"])
async def test_an_unknown_resident_is_404(client: Client, path: str) -> None:
    refused = await call(client, "GET", path, 404)
    assert refused["error_id"] == "not-found"
    refused = await call(client, "PATCH", path, 404, {"version": 1, "by": AGENT, "note": "x"})
    assert refused["error_id"] == "not-found"


# -- edits -----------------------------------------------------------------------------


async def test_an_edit_changes_the_fields_given_and_moves_the_version(
    client: Client, desk: CrmDesk
) -> None:
    created = await create(client, note="耳背")
    path = f"/api/residents/{created['id']}"
    changed = await call(
        client,
        "PATCH",
        path,
        200,
        {"version": 1, "by": AGENT, "building": "5", "room": "302", "phones": ["13912345678"]},
    )
    fetched = await call(client, "GET", path, 200)
    assert fetched == changed
    assert (fetched["building"], fetched["room"], fetched["phones"]) == (
        "5",
        "302",
        ["13912345678"],
    )
    assert (fetched["name"], fetched["note"], fetched["version"]) == ("张伟", "耳背", 2)
    cleared = await call(client, "PATCH", path, 200, {"version": 2, "by": AGENT, "note": None})
    assert (cleared["note"], cleared["version"]) == (None, 3)
    same = await call(client, "PATCH", path, 200, {"version": 3, "by": AGENT, "name": "张伟"})
    assert same["version"] == 3  # nothing changed, so no new version
    assert (await desk.residents.get(created["id"])).version == 3


async def test_naming_a_callers_contact_completes_it(client: Client) -> None:
    contact = await client.app[CRM].residents.contact_for("13611112222", at=T0)
    path = f"/api/residents/{contact.id}"
    done = await call(
        client,
        "PATCH",
        path,
        200,
        {"version": contact.version, "by": AGENT, "name": "赵磊", "building": "3", "room": "202"},
    )
    fetched = await call(client, "GET", path, 200)
    assert fetched == done
    assert (fetched["name"], fetched["room"], fetched["complete"]) == ("赵磊", "202", True)
    assert fetched["source"] == "call"


async def test_a_stale_version_is_409_and_changes_nothing(client: Client, desk: CrmDesk) -> None:
    created = await create(client)
    path = f"/api/residents/{created['id']}"
    first = await call(client, "PATCH", path, 200, {"version": 1, "by": AGENT, "name": "张卫"})
    before = await counts(desk)
    stale = await call(
        client, "PATCH", path, 409, {"version": 1, "by": "agent:4 王芳", "name": "章伟"}
    )
    assert stale["error_id"] == "stale-version"
    assert stale["details"] == {"current_version": first["version"]}
    assert "changed by someone else" in stale["message"]
    assert await call(client, "GET", path, 200) == first
    assert await counts(desk) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"building": "9", "room": "901"}, "room"),
        ({"building": "5"}, "room"),  # building and room go together
        ({"phones": ["13800138000", "4444"]}, "phones[2]"),
        ({"name": "张<i>伟</i>"}, "name"),
        ({"complete": "yes"}, "complete"),
        ({"version": 0}, "version"),
        ({"version": "1"}, "version"),
        ({"version": None}, "version"),
        ({"by": ""}, "by"),
        ({"id": 7}, "id"),
        ({"phone": SHARED}, "phone"),
    ],
)
async def test_bad_edits_are_400_naming_the_field_and_change_nothing(
    client: Client, desk: CrmDesk, change: dict[str, Any], field: str
) -> None:
    created = await create(client)
    before = await counts(desk)
    body = {"version": 1, "by": AGENT, "note": "新备注", **change}
    refused = await call(client, "PATCH", f"/api/residents/{created['id']}", 400, body)
    assert (refused["error_id"], refused["details"]["field"]) == ("invalid-input", field)
    assert await call(client, "GET", f"/api/residents/{created['id']}", 200) == created
    assert await counts(desk) == before


# -- rooms -----------------------------------------------------------------------------


async def test_rooms_are_listed_and_added_once(client: Client, desk: CrmDesk) -> None:
    listed = await call(client, "GET", "/api/rooms", 200)
    assert [(r["building"], r["room"]) for r in listed["items"]] == ROOMS
    added = await call(client, "POST", "/api/rooms", 201, {"building": "3", "room": "1-1201"})
    again = await call(client, "POST", "/api/rooms", 201, {"building": " 3", "room": "1-1201"})
    assert again == added
    in_3 = await call(client, "GET", "/api/rooms?building=3", 200)
    assert [(r["building"], r["room"]) for r in in_3["items"]] == [
        ("3", "1-1201"),
        ("3", "201"),
        ("3", "202"),
    ]
    assert added in in_3["items"]
    assert (await counts(desk))["rooms"] == len(ROOMS) + 1
    # a resident can now live there
    moved_in = await create(client, room="1-1201")
    assert (moved_in["building"], moved_in["room"]) == ("3", "1-1201")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"building": "3栋!", "room": "101"}, "building"),
        ({"building": "3", "room": "<b>"}, "room"),
        ({"building": "3"}, "room"),
        ({"building": "3", "room": "101", "by": AGENT}, "by"),
    ],
)
async def test_bad_rooms_are_400_and_add_nothing(
    client: Client, desk: CrmDesk, body: dict[str, Any], field: str
) -> None:
    refused = await call(client, "POST", "/api/rooms", 400, body)
    assert (refused["error_id"], refused["details"]["field"]) == ("invalid-input", field)
    assert (await counts(desk))["rooms"] == len(ROOMS)


async def test_a_bad_building_filter_is_400(client: Client) -> None:
    refused = await call(client, "GET", "/api/rooms?building=%3Cb%3E", 400)
    assert (refused["error_id"], refused["details"]["field"]) == ("invalid-query", "building")


# -- roster import ---------------------------------------------------------------------

ROSTER = "\n".join(
    [
        "栋号,房号,姓名,电话",  # 1
        "3,201,张伟,13800138000",  # 2
        "3,201,李娜,13800138000；139-1234-5678",  # 3
        "3,202,王芳,12345",  # 4  bad number
        "12A,301,赵磊,+8613755556666",  # 5  a room the directory lacks: added
        "",
    ]
)


async def test_a_roster_is_imported_with_its_bad_lines_reported(
    client: Client, desk: CrmDesk
) -> None:
    report = await upload(client, ROSTER.encode(), 200)
    assert (
        report
        == ImportReport(
            added=3,
            updated=0,
            unchanged=0,
            rejected=[Rejected(4, f"phones[1]: '12345' {NOT_A_PHONE}")],
        ).to_json()
    )
    listed = await call(client, "GET", "/api/residents", 200)
    assert {(r["building"], r["room"], r["name"]): r["phones"] for r in listed["items"]} == {
        ("3", "201", "张伟"): [SHARED],
        ("3", "201", "李娜"): [SHARED, "13912345678"],
        ("12A", "301", "赵磊"): ["13755556666"],
    }
    assert {r["source"] for r in listed["items"]} == {"import"}
    rooms = await call(client, "GET", "/api/rooms?building=12A", 200)
    assert [r["room"] for r in rooms["items"]] == ["301"]
    found = await call(client, "GET", f"/api/residents/lookup?phone={SHARED}", 200)
    assert [r["name"] for r in found["items"]] == ["张伟", "李娜"]

    before = await counts(desk)
    again = await upload(client, ("\ufeff" + ROSTER).encode(), 200)  # Excel's BOM this time
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert again["rejected"] == [{"line": 4, "reason": f"phones[1]: '12345' {NOT_A_PHONE}"}]
    assert await counts(desk) == before


async def test_a_dry_run_reports_and_writes_nothing(client: Client, desk: CrmDesk) -> None:
    await upload(client, ROSTER.encode(), 200)
    before = await counts(desk)
    moved_on = ROSTER.replace("张伟,13800138000", "张伟,13700000000") + "5,1101,刘洋,13911112222\n"
    report = await upload(client, moved_on.encode("gb18030"), 200, "by=李经理&dry_run=true")
    assert (report["added"], report["updated"], report["unchanged"]) == (1, 1, 2)
    assert await counts(desk) == before
    applied = await upload(client, moved_on.encode("gb18030"), 200, "by=李经理&dry_run=false")
    assert (applied["added"], applied["updated"], applied["unchanged"]) == (1, 1, 2)
    zhang = await call(client, "GET", "/api/residents?name=张伟", 200)
    assert [(r["phones"], r["version"]) for r in zhang["items"]] == [(["13700000000"], 2)]


@pytest.mark.parametrize(
    ("data", "query", "field", "error_id"),
    [
        (ROSTER.encode(), "by=%3Cb%3E", "by", "invalid-query"),
        (ROSTER.encode(), "by=x&dry_run=maybe", "dry_run", "invalid-query"),
        (b"", "by=x", "file", "invalid-input"),
        ("楼栋,房间,姓名,电话\n3,201,张伟,13800138000\n".encode(), "by=x", "file", "invalid-input"),
        (b"PK\x03\x04 a workbook", "by=x", "file", "invalid-input"),
    ],
)
async def test_an_unusable_upload_is_400_and_writes_nothing(
    client: Client, desk: CrmDesk, data: bytes, query: str, field: str, error_id: str
) -> None:
    before = await counts(desk)
    refused = await upload(client, data, 400, query)
    assert (refused["error_id"], refused["details"]["field"]) == (error_id, field)
    assert await counts(desk) == before


async def test_a_roster_imported_without_by_is_the_callers(client: Client) -> None:
    """Who imports comes from the sign-in (web/actors.py); ``by`` is only a token's word."""
    report = await upload(client, ROSTER.encode(), 200, "dry_run=true")
    assert report["added"] == 3


async def test_a_roster_sent_as_something_else_than_csv_is_415(
    client: Client, desk: CrmDesk
) -> None:
    before = await counts(desk)
    refused = await upload(client, ROSTER.encode(), 415, **{"Content-Type": "application/json"})
    assert refused["error_id"] == "unsupported-media-type"
    assert "text/csv" in refused["details"]["expected"]
    assert await counts(desk) == before


def roster_of_size(size: int) -> tuple[bytes, int]:
    """A roster of exactly ``size`` bytes and its number of residents.

    Few rows, each padded with spaces after the number (the parser strips them; csv allows
    128 KiB a cell), so a file at the limit is quick to check.
    """
    header = b"building,room,name,phones\n"
    rows = -(-(size - len(header)) // 100_000)
    width, extra = divmod(size - len(header), rows)
    lines = []
    for i in range(rows):
        start = f"3,201,住户{i},13800138000".encode()
        lines.append(start + b" " * (width + (extra if i == rows - 1 else 0) - len(start) - 1))
    data = header + b"\n".join(lines) + b"\n"
    assert len(data) == size
    return data, rows


async def test_a_roster_over_5_mb_is_413_and_writes_nothing(client: Client, desk: CrmDesk) -> None:
    before = await counts(desk)
    too_big, _ = roster_of_size(MAX_ROSTER_BYTES + 1)
    refused = await upload(client, too_big, 413)
    assert refused["error_id"] == "too-large"
    assert refused["details"] == {"max_bytes": MAX_ROSTER_BYTES}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(too_big), 256 * 1024):
            yield too_big[start : start + 256 * 1024]

    refused = await upload(client, chunks(), 413)
    assert refused["error_id"] == "too-large"
    assert await counts(desk) == before

    # At the limit the file is read whole, well past the app's 1 MB client_max_size.
    fits, residents = roster_of_size(MAX_ROSTER_BYTES)
    report = await upload(client, fits, 200, "by=x&dry_run=true")
    assert report == {"added": residents, "updated": 0, "unchanged": 0, "rejected": []}
    assert await counts(desk) == before


# -- OpenAPI ---------------------------------------------------------------------------


def test_documented_resident_schemas_are_the_records_fields() -> None:
    """The document describes the records the routes send, every field with words."""
    doc = openapi_document(RESIDENT_ROUTES, info={}, security_schemes={})
    schemas = doc["components"]["schemas"]
    for record in (ResidentRecord, RoomRecord, ImportReport, Rejected):
        properties = schemas[record.__name__]["properties"]
        assert set(properties) == set(record.__dataclass_fields__), record
        assert all(p.get("description") for p in properties.values()), record
