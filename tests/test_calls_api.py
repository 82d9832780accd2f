"""Specification of the call-record HTTP API in web.calls.

Each test mounts the routes on a small app over a fresh database (SQLite, plus PostgreSQL
when HOTLINE_TEST_PG_URL is set) and writes its calls through the real CallLog.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from crm.calls import CallLog
from crm.db import create_engine, make_sessionmaker
from web.calls import CALL_LOG, add_call_routes
from web.calls import ROUTES as CALL_ROUTES
from web.openapi import openapi_document

T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def app_for(log: CallLog) -> web.Application:
    app = web.Application()
    app[CALL_LOG] = log
    add_call_routes(app)
    return app


@pytest.fixture
async def client(call_log: CallLog, aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(app_for(call_log))


async def add_call(
    log: CallLog, channel: str, started_at: datetime, caller: str = "13800000000"
) -> int:
    return await log.open_call(
        channel_id=channel,
        caller_number=caller,
        caller_name=None,
        dialled_number="4008001234",
        started_at=started_at,
    )


async def get_json(client: Client, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def item_ids(body: Any) -> list[int]:
    return [item["id"] for item in body["items"]]


# --- GET /api/calls ---


async def test_list_defaults_to_first_page_of_50(client: Client, call_log: CallLog) -> None:
    """Without parameters the newest calls come first, with total, limit 50 and offset 0."""
    older = await add_call(call_log, "chan-1", at(0))
    newer = await add_call(call_log, "chan-2", at(10))
    body = await get_json(client, "/api/calls")
    assert (item_ids(body), body["total"], body["limit"], body["offset"]) == (
        [newer, older],
        2,
        50,
        0,
    )
    assert body["items"][0]["started_at"] == "2024-05-01T09:00:10+00:00"


async def test_list_passes_filters_and_paging(client: Client, call_log: CallLog) -> None:
    """caller, queue, limit and offset narrow the list; total counts all matches."""
    calls = [await add_call(call_log, f"chan-{i}", at(i), caller="13800000000") for i in range(3)]
    await add_call(call_log, "chan-x", at(5), caller="13911111111")
    for call_id in calls:
        await call_log.set_queue(call_id, queue="repair", at=at(20))
    body = await get_json(client, "/api/calls?caller=13800000000&queue=repair&limit=1&offset=1")
    assert (item_ids(body), body["total"], body["limit"], body["offset"]) == ([calls[1]], 3, 1, 1)


async def test_list_time_window_naive_means_utc(client: Client, call_log: CallLog) -> None:
    """since/until without an offset are read as UTC; with an encoded offset they convert."""
    await add_call(call_log, "chan-1", at(-60))
    inside = await add_call(call_log, "chan-2", at(0))
    await add_call(call_log, "chan-3", at(60))
    naive = await get_json(client, "/api/calls?since=2024-05-01T09:00:00&until=2024-05-01T09:01:00")
    beijing = await get_json(
        client, "/api/calls?since=2024-05-01T17:00:00%2B08:00&until=2024-05-01T09:01:00Z"
    )
    assert item_ids(naive) == [inside]
    assert item_ids(beijing) == [inside]


async def test_list_treats_empty_parameters_as_absent(client: Client, call_log: CallLog) -> None:
    """Empty form fields (caller=&since=) do not filter."""
    call_id = await add_call(call_log, "chan-1", at(0))
    body = await get_json(client, "/api/calls?caller=&queue=&since=&until=&limit=&offset=")
    assert (item_ids(body), body["limit"]) == ([call_id], 50)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("since=2024-05-01T17:00:00+08:00", "since"),
        ("until=2024-13-01", "until"),
        # outside Python's datetime once in UTC: were 503 storage-unavailable
        ("since=0001-01-01T00:00:00%2B14:00", "since"),
        ("until=9999-12-31T23:59:59-14:00", "until"),
        ("until=1899-12-31T23:59:59Z", "until"),
        # NUL: PostgreSQL could not bind it (was 503 storage-unavailable there)
        ("caller=138%0000", "caller"),
        ("queue=repair%00", "queue"),
        ("since=2024-05-02&until=2024-05-01", "until"),
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("offset=99999999999999999999999", "offset"),
    ],
)
async def test_list_rejects_bad_parameters(client: Client, query: str, field: str) -> None:
    """A bad parameter is a 400 invalid-query naming the field and the reason."""
    body = await get_json(client, f"/api/calls?{query}", status=400)
    assert body["error_id"] == "invalid-query"
    assert body["details"]["field"] == field
    assert body["details"]["reason"]
    assert field in body["message"]


async def test_unencoded_plus_in_offset_gets_a_hint(client: Client) -> None:
    """A '+' sent unencoded arrives as a space; the error says how to fix it."""
    body = await get_json(client, "/api/calls?since=2024-05-01T17:00:00+08:00", status=400)
    assert "%2B" in body["details"]["reason"]


async def test_limit_500_is_allowed(client: Client) -> None:
    """The largest page size is 500."""
    body = await get_json(client, "/api/calls?limit=500")
    assert body["limit"] == 500


# --- GET /api/calls/{id} ---


async def test_get_returns_record_with_ivr_path(client: Client, call_log: CallLog) -> None:
    """One call comes back with every field and its IVR path in order."""
    call_id = await add_call(call_log, "chan-1", at(0))
    await call_log.mark_answered(call_id, answered_at=at(1.5), ring_ms=1500)
    await call_log.add_ivr_step(call_id, node="main", input="2", action="submenu:repair", at=at(8))
    await call_log.add_ivr_step(call_id, node="repair", input="1", action="queue:repair", at=at(12))
    body = await get_json(client, f"/api/calls/{call_id}")
    assert body["id"] == call_id
    assert (body["channel_id"], body["ring_ms"]) == ("chan-1", 1500)
    assert body["answered_at"] == "2024-05-01T09:00:01.500000+00:00"
    assert [(s["seq"], s["action"]) for s in body["ivr_path"]] == [
        (0, "submenu:repair"),
        (1, "queue:repair"),
    ]


@pytest.mark.parametrize("call_id", ["12345", "0", "99999999999"])
async def test_get_unknown_call_is_404(client: Client, call_id: str) -> None:
    """An id with no call, including ones no call can have, is a 404 call-not-found."""
    body = await get_json(client, f"/api/calls/{call_id}", status=404)
    assert body["error_id"] == "call-not-found"


async def test_get_non_numeric_id_is_400(client: Client) -> None:
    """A call id that is not a number is a 400 naming the id field."""
    body = await get_json(client, "/api/calls/abc", status=400)
    assert (body["error_id"], body["details"]["field"]) == ("invalid-query", "id")


async def test_storage_failure_is_503(db_url: str, aiohttp_client: ClientFactory) -> None:
    """When the database cannot answer (here: never migrated) the API says 503."""
    engine = create_engine(db_url)
    try:
        client = await aiohttp_client(app_for(CallLog(make_sessionmaker(engine))))
        for path in ("/api/calls", "/api/calls/1"):
            body = await get_json(client, path, status=503)
            assert body["error_id"] == "storage-unavailable"
    finally:
        await engine.dispose()


# --- OpenAPI ---


async def test_openapi_record_schema_lists_every_json_field(call_log: CallLog) -> None:
    """The documented CallRecord and its IVR steps have exactly the keys the API sends."""
    call_id = await add_call(call_log, "chan-1", at(0))
    await call_log.add_ivr_step(call_id, node="main", input="1", action="queue:inquiry", at=at(3))
    data = (await call_log.get(call_id)).to_json()
    schemas = call_document()["components"]["schemas"]
    assert set(schemas["CallRecord"]["properties"]) == set(data)
    assert set(schemas["IvrStepRecord"]["properties"]) == set(data["ivr_path"][0])
    assert all(p.get("description") for p in schemas["CallRecord"]["properties"].values())


def call_document() -> dict[str, Any]:
    return openapi_document(
        CALL_ROUTES, info={"title": "calls", "version": "0"}, security_schemes={}
    )


def test_openapi_paths_only_reference_provided_schemas() -> None:
    """Every $ref in the paths and schemas resolves to a schema the document provides."""
    doc = call_document()
    schemas = doc["components"]["schemas"]

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            own = {node["$ref"]} if "$ref" in node else set()
            return own.union(*(refs(value) for value in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(value) for value in node))
        return set()

    assert refs(doc) == {f"#/components/schemas/{name}" for name in schemas}
    assert set(doc["paths"]) == {"/api/calls", "/api/calls/{id}"}


def test_openapi_lists_every_error_a_call_route_answers() -> None:
    """/api/calls/{id} answers call-not-found (it was missing from the hand-written one)."""
    responses = call_document()["paths"]["/api/calls/{id}"]["get"]["responses"]
    refused = responses["404"]["content"]["application/json"]["schema"]["allOf"][1]
    assert refused["properties"]["error_id"]["enum"] == ["call-not-found"]
    assert set(responses) == {"200", "400", "401", "404", "503"}  # 401: the guard
