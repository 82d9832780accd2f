"""Requests a fuzzer (or a careless client) sends: each is a 400 naming what was refused.

The whole service is started in this process (``build_app``) over a fresh database
(SQLite, plus PostgreSQL when HOTLINE_TEST_PG_URL is set), with Asterisk out of reach
(nothing listens on its port): bodies, query parameters and the log are the HTTP side's
alone. What a refused request left behind is counted in the database, never assumed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from crm import models as m
from crm.db import create_engine, make_sessionmaker
from telephony.config import AriConfig, DatabaseConfig, load_config
from tests.staff import cheap_hasher, entitled, issue_test_tokens
from web.app import build_app
from web.permissions import ROUTES, Permission

ROOT = Path(__file__).resolve().parents[1]
AGENT = "agent:3 李娜"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


def service_app(db_url: str, tmp_path: Path) -> web.Application:
    base = load_config(ROOT / "config" / "hotline.toml", env={})
    config = dataclasses.replace(
        base,
        ari=AriConfig(url="http://127.0.0.1:9/ari", reconnect_initial_s=0.05, reconnect_max_s=1),
        database=DatabaseConfig(url=db_url),
        recording=dataclasses.replace(base.recording, dir=tmp_path / "recordings"),
        transcription=dataclasses.replace(base.transcription, enabled=False),
    )
    return build_app(config, passwords=cheap_hasher())


@pytest.fixture
async def service(migrated_db_url: str, aiohttp_client: ClientFactory, tmp_path: Path) -> Client:
    app = service_app(migrated_db_url, tmp_path)
    client = await aiohttp_client(app)
    await issue_test_tokens(app)
    await call(client, "POST", "/api/rooms", 201, {"building": "3", "room": "201"})
    return client


async def call(
    client: Client, method: str, path: str, status: int, body: Any = None, **kw: Any
) -> Any:
    headers = {**entitled(method, path), **kw.pop("headers", {})}
    response = await client.request(method, path, json=body, headers=headers, **kw)
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json", text
    return await response.json()


async def raw(client: Client, method: str, path: str, status: int, data: bytes) -> Any:
    """A body as bytes, exactly as a fuzzer sends it (no client-side JSON encoding)."""
    headers = {"Content-Type": "application/json"}
    return await call(client, method, path, status, data=data, headers=headers)


@pytest.fixture
async def counts(migrated_db_url: str) -> AsyncIterator[Callable[[], Awaitable[dict[str, int]]]]:
    engine = create_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)

    async def count() -> dict[str, int]:
        found = {}
        async with sessions() as session:
            for model in (m.Case, m.Resident, m.Agent, m.AuditEntry):
                total = await session.scalar(select(func.count()).select_from(model))
                found[model.__tablename__] = int(total or 0)
        return found

    yield count
    await engine.dispose()


CASE = {"kind": "inquiry", "channel": "email", "summary": "咨询装修押金", "by": AGENT}
RESIDENT = {"name": "张伟", "building": "3", "room": "201", "phones": ["13800138000"], "by": AGENT}
AGENT_BODY = {"name": "李娜", "endpoint": "PJSIP/1001", "skills": {"inquiry": 5}}
CREATES = [
    ("/api/cases", CASE),
    ("/api/residents", RESIDENT),
    ("/api/agents", AGENT_BODY),
]


# -- bodies ----------------------------------------------------------------------------


def deep(depth: int) -> bytes:
    return b'{"summary": ' + b"[" * depth + b"]" * depth + b"}"


BAD_BODIES = {
    # RecursionError inside the JSON decoder
    "nested past the interpreter's limit": (deep(100_000), "body"),
    # less than the interpreter allows, but more than any request of ours needs
    "nested 64 deep": (deep(64), "body"),
    # ValueError: Python refuses to turn more than 4300 digits into an int
    "an integer of 5000 digits": (b'{"version": ' + b"7" * 5000 + b"}", "version"),
    "an integer of 400 digits": (b'{"name": "x", "version": -' + b"7" * 400 + b"}", "version"),
    # Python's decoder takes these; JSON has no such numbers, and no field of ours wants them
    "NaN": (b'{"version": NaN}', "version"),
    "Infinity": (b'{"skills": {"inquiry": -Infinity}}', "skills.inquiry"),
    "a float past the largest double": (b'{"version": 1e999}', "version"),
    # RFC 8259 says UTF-8; Latin-1 bytes are not
    "bytes that are no UTF-8": ('{"summary": "caf\u00e9"}'.encode("latin-1"), "body"),
    "a list, not an object": (b"[1, 2]", "body"),
}


@pytest.mark.parametrize(("path", "good"), CREATES)
@pytest.mark.parametrize("what", list(BAD_BODIES))
async def test_a_malformed_body_is_400_naming_where_and_writes_nothing(
    service: Client,
    counts: Callable[[], Awaitable[dict[str, int]]],
    path: str,
    good: dict[str, Any],
    what: str,
) -> None:
    data, field = BAD_BODIES[what]
    before = await counts()
    refused = await raw(service, "POST", path, 400, data)
    assert refused["error_id"] == "invalid-input"
    assert refused["details"]["field"] == field, refused
    assert refused["message"]
    assert await counts() == before


@pytest.mark.parametrize(("path", "good"), CREATES)
@pytest.mark.parametrize(
    ("escaped", "where"),
    [
        ('"a\\ud800b"', "a lone high surrogate"),
        ('"\\udc00"', "a lone low surrogate"),
        ('"\\udc00\\ud800"', "two halves in the wrong order"),
        ('"a\\u0000b"', "NUL, which PostgreSQL cannot store"),
    ],
)
async def test_a_string_no_database_can_store_is_400_naming_its_field(
    service: Client,
    counts: Callable[[], Awaitable[dict[str, int]]],
    path: str,
    good: dict[str, Any],
    escaped: str,
    where: str,
) -> None:
    """Valid JSON escapes that make no valid text: refused at the door, wherever they are."""
    key = "summary" if path == "/api/cases" else "name"
    before = await counts()
    body = json_with(good, key, escaped)
    refused = await raw(service, "POST", path, 400, body)
    assert refused["error_id"] == "invalid-input"
    assert refused["details"]["field"] == key, (where, refused)
    assert await counts() == before


async def test_a_bad_string_in_a_nested_field_or_a_key_is_named_by_its_path(
    service: Client, counts: Callable[[], Awaitable[dict[str, int]]]
) -> None:
    before = await counts()
    repair = {**CASE, "kind": "repair", "repair": {"fault": "漏水"}}
    refused = await raw(
        service, "POST", "/api/cases", 400, json_with(repair, "repair", '{"fault": "\\ud800"}')
    )
    assert refused["details"]["field"] == "repair.fault"
    phones = json_with(RESIDENT, "phones", '["13800138000", "\\udfff"]')
    refused = await raw(service, "POST", "/api/residents", 400, phones)
    assert refused["details"]["field"] == "phones[2]"
    key = b'{"\\ud800": 1, ' + json_with(CASE, "by", f'"{AGENT}"')[1:]
    refused = await raw(service, "POST", "/api/cases", 400, key)
    assert refused["details"]["field"] == "body"
    assert await counts() == before


async def test_ordinary_bodies_still_pass(service: Client) -> None:
    """Guards the tests above: the same requests, well formed, are taken."""
    for path, good in CREATES:
        await call(service, "POST", path, 201, good)
    nested = {**CASE, "kind": "repair", "repair": {"fault": "漏水", "key_left": True}}
    await call(service, "POST", "/api/cases", 201, nested)
    # A surrogate pair is text (one emoji), only a half alone is not.
    emoji = json_with(CASE, "summary", '"\\u6f0f\\u6c34 \\ud83d\\ude00"')
    case = await raw(service, "POST", "/api/cases", 201, emoji)
    assert case["summary"] == "漏水 \U0001f600"


@pytest.mark.parametrize("charset", ["latin-1", "no-such-charset"])
async def test_a_body_is_read_as_utf8_whatever_charset_the_header_claims(
    service: Client, charset: str
) -> None:
    """JSON is UTF-8 (RFC 8259); an unknown charset made the old decoder raise (a 500)."""
    headers = {"Content-Type": f"application/json; charset={charset}"}
    data = json_with(CASE, "summary", '"漏水"')
    case = await call(service, "POST", "/api/cases", 201, data=data, headers=headers)
    assert case["summary"] == "漏水"


def json_with(body: dict[str, Any], key: str, value: str) -> bytes:
    """``body`` as JSON with ``key`` set to ``value`` written as raw JSON text."""
    import json

    others = {k: v for k, v in body.items() if k != key}
    text = json.dumps(others, ensure_ascii=False)[:-1]
    return f'{text}, "{key}": {value}}}'.encode()


# -- times -----------------------------------------------------------------------------

# In UTC these are in year 0 and year 10000, which Python's datetime cannot hold.
TOO_EARLY = "0001-01-01T00:00:00+14:00"
TOO_LATE = "9999-12-31T23:59:59-14:00"


@pytest.mark.parametrize("path", ["/api/calls", "/api/cases"])
@pytest.mark.parametrize(("field", "value"), [("since", TOO_EARLY), ("until", TOO_LATE)])
async def test_a_time_filter_outside_the_calendar_is_400_naming_it(
    service: Client, path: str, field: str, value: str
) -> None:
    """Were 503 storage-unavailable: the conversion to UTC failed at the database."""
    refused = await call(service, "GET", path, 400, params={field: value})
    assert refused["error_id"] == "invalid-query"
    assert refused["details"]["field"] == field
    assert "1900 to 9998" in refused["details"]["reason"]


@pytest.mark.parametrize("path", ["/api/calls", "/api/cases"])
async def test_the_ends_of_the_allowed_range_are_taken(service: Client, path: str) -> None:
    window = {"since": "1900-01-01T00:00:00Z", "until": "9998-12-31T23:59:59Z"}
    found = await call(service, "GET", path, 200, params=window)
    assert found["total"] == 0


@pytest.mark.parametrize("value", [TOO_EARLY, TOO_LATE, "1899-12-31T23:59:59+00:00"])
async def test_a_work_order_appointment_outside_the_range_is_400_and_opens_nothing(
    service: Client, counts: Callable[[], Awaitable[dict[str, int]]], value: str
) -> None:
    before = await counts()
    body = {**CASE, "kind": "repair", "repair": {"fault": "漏水", "appointment_at": value}}
    refused = await call(service, "POST", "/api/cases", 400, body)
    assert refused["error_id"] == "invalid-input"
    assert refused["details"]["field"] == "repair.appointment_at"
    assert await counts() == before


async def test_every_time_field_of_a_case_is_bounded(
    service: Client, counts: Callable[[], Awaitable[dict[str, int]]]
) -> None:
    """The edits that take a time: the work order, a deadline met, a call-back promised."""
    body = {**CASE, "kind": "repair", "repair": {"fault": "漏水"}}
    case = await call(service, "POST", "/api/cases", 201, body)
    path = f"/api/cases/{case['id']}"
    before = await counts()
    edits = [
        ("PATCH", f"{path}/work-order", {"appointment_at": TOO_LATE}, "appointment_at"),
        ("POST", f"{path}/deadlines/reply/met", {"at": TOO_EARLY}, "at"),
        ("POST", f"{path}/callbacks", {"due_at": TOO_LATE}, "due_at"),
    ]
    for method, where, change, field in edits:
        edit = {"version": case["version"], "by": AGENT, **change}
        refused = await call(service, method, where, 400, edit)
        assert refused["details"]["field"] == field, (where, refused)
    assert await counts() == before
    assert (await call(service, "GET", path, 200))["version"] == case["version"]


# -- text ------------------------------------------------------------------------------

# Every name-like field: one line, nothing invisible or reordering, no markup, no formula.
BAD_NAMES = {
    "a line break": "李娜\n主管",
    "a tab": "李\t娜",
    "a right-to-left override": "李娜\u202e",
    "a zero-width space": "李\u200b娜",
    "a zero-width joiner": "李\u200d娜",
    "a word joiner": "李\u2060娜",
    "a BOM inside": "李\ufeff娜",
    "an escape sequence": "\x1b[2J李娜",
    "NUL": "李\x00娜",
    "markup": "<img src=x onerror=alert(1)>",
    "a formula": "@SUM(1+1)",
}
NAME_FIELDS = [
    ("/api/residents", RESIDENT, "name"),
    ("/api/residents", RESIDENT, "by"),
    ("/api/cases", CASE, "by"),
    ("/api/agents", AGENT_BODY, "name"),
]


@pytest.mark.parametrize(("path", "good", "field"), NAME_FIELDS)
@pytest.mark.parametrize("what", list(BAD_NAMES))
async def test_a_name_against_the_rules_of_names_is_400_naming_it_and_stores_nothing(
    service: Client,
    counts: Callable[[], Awaitable[dict[str, int]]],
    path: str,
    good: dict[str, Any],
    field: str,
    what: str,
) -> None:
    before = await counts()
    refused = await call(service, "POST", path, 400, {**good, field: BAD_NAMES[what]})
    assert refused["error_id"] == "invalid-input"
    assert refused["details"]["field"] == field, refused
    assert await counts() == before


async def test_an_edit_by_a_bad_name_changes_nothing_and_writes_no_audit_entry(
    service: Client, counts: Callable[[], Awaitable[dict[str, int]]]
) -> None:
    case = await call(service, "POST", "/api/cases", 201, CASE)
    path = f"/api/cases/{case['id']}"
    before = await counts()
    for by in ("agent:3\n2026-11-24 system: closed", "agent:3 \u202e李娜", "=cmd|' /C calc'!A0"):
        edit = {"version": case["version"], "by": by, "summary": "改了"}
        refused = await call(service, "PATCH", path, 400, edit)
        assert refused["details"]["field"] == "by"
        note = {"version": case["version"], "by": by, "text": "备注"}
        refused = await call(service, "POST", f"{path}/notes", 400, note)
        assert refused["details"]["field"] == "by"
    assert await counts() == before
    assert (await call(service, "GET", path, 200))["summary"] == CASE["summary"]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("漏水\x00", "NUL"),
        ("漏水\x07", "a bell"),
        ("\x1b[31m漏水", "an escape sequence"),
        ("漏水\u202e", "a right-to-left override"),
        ("漏\u2067水", "a right-to-left isolate"),
        ("漏水\x9b", "a C1 control"),
    ],
)
async def test_free_text_refuses_controls_and_reordering(
    service: Client, counts: Callable[[], Awaitable[dict[str, int]]], text: str, what: str
) -> None:
    before = await counts()
    for field in ("summary", "detail"):
        refused = await call(service, "POST", "/api/cases", 400, {**CASE, field: text})
        assert refused["details"]["field"] == field, what
    assert await counts() == before


async def test_free_text_keeps_its_line_breaks_and_tabs(service: Client) -> None:
    """A note is written in lines; a browser's form sends them as CR LF, stored as LF."""
    detail = "一楼:\t漏水\r\n二楼:\t正常\n三楼:\t\u200d👨\u200d👩\u200d👧"
    case = await call(service, "POST", "/api/cases", 201, {**CASE, "detail": detail})
    assert case["detail"] == "一楼:\t漏水\n二楼:\t正常\n三楼:\t\u200d👨\u200d👩\u200d👧"


async def test_ordinary_names_still_pass(service: Client) -> None:
    """Guards the tests above: names as people write them are taken."""
    for name in ("张伟", "阿沛·阿旺晋美", "Li Na", "O'Brien", "李娜 (夜班)"):
        await call(service, "POST", "/api/residents", 201, {**RESIDENT, "name": name})
    agent = await call(service, "POST", "/api/agents", 201, {**AGENT_BODY, "name": "王敏 2号"})
    assert agent["name"] == "王敏 2号"


async def test_a_roster_upload_refuses_a_formula_for_a_name(
    service: Client, counts: Callable[[], Awaitable[dict[str, int]]]
) -> None:
    """Was stored as a resident named @SUM(1+1), to run in the next export's spreadsheet."""
    before = await counts()
    roster = "building,room,name,phones\n3,201,@SUM(1+1),13800138000\n3,201,=1+1,13900139000\n"
    report = await call(
        service,
        "POST",
        "/api/residents/import",
        200,
        params={"by": "物业前台"},
        data=roster.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert [r["line"] for r in report["rejected"]] == [2, 3]
    assert all("formula" in r["reason"] for r in report["rejected"])
    assert report["added"] == 0
    assert await counts() == before


# -- the log ---------------------------------------------------------------------------


async def fake_handler_bug(request: web.Request) -> web.StreamResponse:
    """A fault injected for the test: what a bug in a handler looks like to aiohttp."""
    raise ZeroDivisionError("a bug")


@pytest.fixture
async def with_a_bug(
    migrated_db_url: str,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Client:
    app = service_app(migrated_db_url, tmp_path)
    app.router.add_get("/test/fake-bug", fake_handler_bug)
    monkeypatch.setitem(ROUTES, ("GET", "/test/fake-bug"), Permission.OPEN)  # type: ignore[arg-type]
    return await aiohttp_client(app)


async def exchange(client: Client, request: bytes) -> bytes:
    """Send raw bytes to the running server and read its whole answer (it closes after)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


MALFORMED = {
    "a header line without a colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    "a header of 10 kB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: "
    + b"a" * 10_000
    + b"\r\n\r\n",
    "a control character in the path": b"GET /api/\x01calls HTTP/1.1\r\nHost: x\r\n\r\n",
    "two content lengths": (
        b"POST /api/cases HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    ),
    "a chunk size that is no number": (
        b"POST /api/cases HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
    # aiohttp keeps this one at DEBUG (port scanners send it), but with a traceback
    "a method that is no token": b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("what", list(MALFORMED))
async def test_a_malformed_request_is_one_info_line_without_a_traceback(
    with_a_bug: Client, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    answer = await exchange(with_a_bug, MALFORMED[what])
    assert re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)[-1] == b"400", answer
    server = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelname for r in server if r.levelno >= logging.WARNING] == []
    assert [r for r in server if r.exc_info or r.exc_text] == []
    (line,) = server
    assert line.levelno <= logging.INFO
    assert line.getMessage().startswith("bad request refused: 400 ")
    assert "\n" not in line.getMessage()


async def test_a_bug_in_a_handler_still_logs_an_error_with_its_traceback(
    with_a_bug: Client, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await exchange(with_a_bug, b"GET /test/fake-bug HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ")
    (error,) = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert error.levelno == logging.ERROR
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], ZeroDivisionError)
