"""Specification of the CRM HTTP API (web.cases) over a fresh database.

The routes are mounted on a small app with the real books (SQLite, plus PostgreSQL when
HOTLINE_TEST_PG_URL is set) and a hand-moved clock. What a request changed is read back
through the API or the books, never taken from what the test sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select

from crm import models as m
from crm.case_records import (
    AuditRecord,
    CallBackAttemptRecord,
    CallBackRecord,
    CaseCallRecord,
    CaseRecord,
    ComplaintRecord,
    DeadlineRecord,
    RepairOrderRecord,
    StepRecord,
)
from crm.db import make_sessionmaker
from crm.deadlines import DeadlineItem
from crm.desk import CrmDesk
from telephony.config import Config
from tests.clocks import ManualClock
from tests.databases import one_connection_engine
from tests.staff import TESTS_TOKEN, signed_in_as
from web.appkeys import CONFIG
from web.cases import CRM, add_case_routes
from web.cases import ROUTES as CASE_ROUTES
from web.openapi import openapi_document

AGENT = "agent:3 李娜"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
async def desk(migrated_db_url: str) -> AsyncIterator[CrmDesk]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(insert(m.Room), [{"building": "5", "room": "302"}])
    yield CrmDesk.open(sessions, ManualClock(), Config().rules)
    await engine.dispose()


def app_for(desk: CrmDesk) -> web.Application:
    """The handlers alone: who may call them is web/auth.py's, tested in test_access.py."""
    app = web.Application(middlewares=[signed_in_as(TESTS_TOKEN)])
    app[CONFIG] = Config()
    app[CRM] = desk
    add_case_routes(app)
    return app


@pytest.fixture
async def client(desk: CrmDesk, aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(app_for(desk))


async def call(
    client: Client, method: str, path: str, status: int, body: Any = None, **kw: Any
) -> Any:
    response = await client.request(method, path, json=body, **kw)
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json"
    return await response.json()


async def count(desk: CrmDesk, model: type[m.Base]) -> int:
    async with desk.cases._sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


EMAIL = {
    "kind": "inquiry",
    "channel": "email",
    "summary": "咨询装修押金退还",
    "by": AGENT,
    "phone": "13712345678",
    "building": "5",
    "room": "302",
}


async def test_a_contact_by_email_becomes_a_case_with_its_reply_deadline(client: Client) -> None:
    case = await call(client, "POST", "/api/cases", 201, EMAIL)
    assert (case["kind"], case["kind_label"], case["channel"]) == ("inquiry", "咨询", "email")
    assert (case["building"], case["room"], case["phone"]) == ("5", "302", "13712345678")
    (reply,) = case["deadlines"]
    assert (reply["rule"], reply["label"], reply["met_at"]) == ("reply", "咨询回复", None)
    fetched = await call(client, "GET", f"/api/cases/{case['id']}", 200)
    assert fetched == case


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "1234"}, "phone"),
        ({"building": "9", "room": "999"}, "room"),
        ({"summary": ""}, "summary"),
        ({"channel": "pigeon"}, "channel"),
        ({"kind": None}, "kind"),
        ({"by": "<img src=x onerror=alert(1)>"}, "by"),
        ({"colour": "red"}, "colour"),
        ({"kind": "repair", "repair": {"rework_of": -1}}, "repair.rework_of"),
        ({"answered": "yes"}, "answered"),
        ({"repair": {"fault": "灯坏了"}}, "repair"),
        ({"channel": None}, "channel"),
    ],
)
async def test_bad_contacts_are_refused_naming_the_field(
    client: Client, desk: CrmDesk, change: dict[str, Any], field: str
) -> None:
    body = await call(client, "POST", "/api/cases", 400, {**EMAIL, **change})
    assert body["error_id"] == "invalid-input"
    assert body["details"]["field"] == field
    assert await count(desk, m.Case) == 0
    assert await count(desk, m.AuditEntry) == 0


async def test_not_json_is_refused(client: Client) -> None:
    response = await client.post("/api/cases", data=b"{not json")
    assert response.status == 400
    assert (await response.json())["details"]["field"] == "body"


async def test_illegal_transition_and_stale_version_are_409_with_the_reason(
    client: Client,
) -> None:
    case = await call(client, "POST", "/api/cases", 201, {**EMAIL, "kind": "repair"})
    path = f"/api/cases/{case['id']}"
    refused = await call(
        client,
        "POST",
        f"{path}/transitions",
        409,
        {"to": "closed", "by": AGENT, "version": case["version"]},
    )
    assert refused["error_id"] == "illegal-transition"
    assert refused["details"]["state"] == "open"
    assert refused["details"]["wanted"] == "closed"
    assert "allowed next" in refused["details"]["reason"]
    moved = await call(
        client,
        "POST",
        f"{path}/transitions",
        200,
        {"to": "in-progress", "by": AGENT, "version": case["version"]},
    )
    assert moved["version"] == case["version"] + 1
    stale = await call(
        client, "PATCH", path, 409, {"summary": "改", "by": AGENT, "version": case["version"]}
    )
    assert stale["error_id"] == "stale-version"
    assert stale["details"]["current_version"] == moved["version"]
    missing = await call(client, "PATCH", path, 400, {"summary": "改", "by": AGENT})
    assert missing["details"]["field"] == "version"
    assert (await call(client, "GET", path, 200))["summary"] == case["summary"]
    await call(client, "GET", "/api/cases/99999", 404)


async def test_work_order_complaint_and_call_back_through_the_api(
    client: Client, desk: CrmDesk
) -> None:
    repair = await call(
        client,
        "POST",
        "/api/cases",
        201,
        {
            **EMAIL,
            "kind": "repair",
            "channel": "walk-in",
            "summary": "卫生间漏水",
            "repair": {"key_left": True, "repair_class": "urgent"},
        },
    )
    assert repair["repair"]["repair_class"] == "urgent"
    assert repair["repair"]["key_left"] is True
    path = f"/api/cases/{repair['id']}"
    assert isinstance(desk.clock, ManualClock)
    desk.clock.advance(hours=1)
    order = await call(
        client,
        "PATCH",
        f"{path}/work-order",
        200,
        {
            "by": "技师 王",
            "version": repair["version"],
            "material_cost": "8.5",
            "labour_cost": 20,
            "work_done": "换密封圈",
            "completed_at": "2026-11-24T17:30:00+08:00",
        },
    )
    assert order["repair"]["total"] == "28.50"
    assert [d["met_at"] for d in order["deadlines"]] == ["2026-11-24T09:30:00+00:00"] * 2
    bad = await call(
        client,
        "PATCH",
        f"{path}/work-order",
        400,
        {"by": "x", "version": order["version"], "labour_cost": -1},
    )
    assert bad["details"] == {"field": "labour_cost", "reason": "must not be negative"}
    resolved = await call(
        client,
        "POST",
        f"{path}/transitions",
        200,
        {"to": "resolved", "by": AGENT, "version": order["version"]},
    )
    (callback,) = resolved["callbacks"]
    due = await call(client, "GET", "/api/case-callbacks", 200)
    assert [c["id"] for c in due["items"]] == [callback["id"]]
    after = await call(
        client,
        "POST",
        f"/api/case-callbacks/{callback['id']}/attempts",
        201,
        {
            "by": AGENT,
            "version": resolved["version"],
            "outcome": "reached",
            "satisfaction": "unsatisfied",
            "remarks": "又漏了",
        },
    )
    assert (after["status"], after["reopened"]) == ("in-progress", 1)
    timeline = await call(client, "GET", f"{path}/timeline", 200)
    assert [
        e["new"] for e in timeline["items"] if e["entity"] == "case" and e["field"] == "status"
    ] == [
        "open",
        "resolved",
        "in-progress",
    ]

    complaint = await call(
        client,
        "POST",
        "/api/cases",
        201,
        {**EMAIL, "kind": "complaint", "complaint": {"on_premises": True}},
    )
    assert complaint["complaint"]["step"] == "receive"
    skipped = await call(
        client,
        "POST",
        f"/api/cases/{complaint['id']}/complaint/steps",
        409,
        {"step": "resolve", "by": AGENT, "version": complaint["version"], "note": "x"},
    )
    assert "next step is classify" in skipped["details"]["reason"]
    met = await call(
        client,
        "POST",
        f"/api/cases/{complaint['id']}/deadlines/complaint-on-site/met",
        200,
        {"by": "保安 赵", "version": complaint["version"]},
    )
    assert met["deadlines"][0]["met_at"] is not None


async def test_case_lists_filter_and_page(client: Client, desk: CrmDesk) -> None:
    ids = []
    for kind in ("inquiry", "repair", "complaint", "inquiry"):
        ids.append((await call(client, "POST", "/api/cases", 201, {**EMAIL, "kind": kind}))["id"])
    page = await call(client, "GET", "/api/cases?kind=inquiry&limit=1", 200)
    assert (page["total"], [c["id"] for c in page["items"]]) == (2, [ids[3]])
    page = await call(client, "GET", "/api/cases?kind=inquiry&limit=1&offset=1", 200)
    assert [c["id"] for c in page["items"]] == [ids[0]]
    assert (await call(client, "GET", "/api/cases?overdue=true", 200))["total"] == 0
    assert isinstance(desk.clock, ManualClock)
    desk.clock.advance(minutes=6)  # the two inquiries' 5-minute replies have passed
    late = await call(client, "GET", "/api/cases?overdue=true", 200)
    assert sorted(c["id"] for c in late["items"]) == [ids[0], ids[3]]
    assert (await call(client, "GET", "/api/cases?overdue=false", 200))["total"] == 2
    for query, field in (
        ("kind=gossip", "kind"),
        ("status=sleeping", "status"),
        ("overdue=maybe", "overdue"),
        ("limit=0", "limit"),
        ("phone=abc", "phone"),
        ("since=yesterday", "since"),
    ):
        refused = await call(client, "GET", f"/api/cases?{query}", 400)
        assert (refused["error_id"], refused["details"]["field"]) == ("invalid-query", field)


def test_documented_case_schemas_are_the_records_fields() -> None:
    """The document describes the records the routes send, every field with words."""
    doc = openapi_document(CASE_ROUTES, info={}, security_schemes={})
    schemas = doc["components"]["schemas"]
    records = (
        CaseRecord,
        CaseCallRecord,
        DeadlineRecord,
        RepairOrderRecord,
        StepRecord,
        ComplaintRecord,
        CallBackAttemptRecord,
        CallBackRecord,
        AuditRecord,
        DeadlineItem,
    )
    for record in records:
        properties = schemas[record.__name__]["properties"]
        assert set(properties) == set(record.__dataclass_fields__), record
        assert all(p.get("description") for p in properties.values()), record


def test_a_case_conflict_is_documented_with_the_case_states() -> None:
    """The 409s name the ids they may be; details are not the agent's states (as before)."""
    doc = openapi_document(CASE_ROUTES, info={}, security_schemes={})
    conflict = doc["paths"]["/api/cases/{id}/transitions"]["post"]["responses"]["409"]
    narrowed = conflict["content"]["application/json"]["schema"]["allOf"][1]
    assert narrowed["properties"]["error_id"]["enum"] == [
        "conflict",
        "illegal-transition",
        "stale-version",
    ]
    assert "logged-out" not in json.dumps(doc["components"]["schemas"]["ErrorBody"])
