"""/api/openapi.json covers every API route the service registers, and only real schemas.

No Asterisk and no database: the app is built but not started (its cleanup_ctx would
connect to ARI); its router is inspected and the ``openapi`` handler called directly.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import hdrs, web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from jsonschema import Draft202012Validator

from crm.agents import StateChangeRecord
from crm.calls import CallState, Direction, EndReason
from crm.deadlines import Moment
from crm.messages import MessageReason, MessageRecord
from crm.queue_callbacks import AttemptOutcome, AttemptRecord, CallbackRecord, CallbackStatus
from crm.recordings import RecordingRecord, RecordingRole, RecordingStatus
from crm.residents import SOURCES
from crm.rules import (
    SORTS,
    SUBJECTS,
    CallBackReason,
    CallBackStatus,
    Channel,
    Kind,
    Nature,
    Outcome,
    RepairClass,
    Rule,
    Satisfaction,
    Status,
    Step,
)
from crm.staff import Role
from crm.transcripts import SPEAKER_LABELS, JobRecord, JobStatus, Segment, Word
from telephony.acd.agent_state import AgentState, agent_machine
from telephony.acd.dispatcher import Acd
from telephony.acd.live import LiveEvents
from telephony.acd.roster import AgentRoster, LiveAgent
from telephony.config import load_config
from tests.conftest import with_test_model
from tests.documented_responses import DocumentedResponses
from web.app import build_app
from web.calls import CallPage
from web.errors import ErrorId
from web.routes import Reply, add_routes
from web.routes import route as declare_route

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_REF = "#/components/schemas/"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def app() -> web.Application:
    return build_app(with_test_model(load_config(ROOT / "config" / "hotline.toml", env={})))


@pytest.fixture
async def doc(app: web.Application) -> dict[str, Any]:
    """The document as the handler sends it (JSON, read back)."""
    handler = next(
        r.handler
        for r in app.router.routes()
        if r.resource and r.resource.canonical == "/api/openapi.json"
    )
    response = await handler(make_mocked_request("GET", "/api/openapi.json", app=app))
    assert isinstance(response, web.Response)
    assert response.status == 200
    assert response.text is not None
    document: dict[str, Any] = json.loads(response.text)
    return document


def api_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route under /api/, HEAD aside (aiohttp adds it to GETs)."""
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/") and route.method != hdrs.METH_HEAD:
            found.add((route.method.lower(), path))
    return found


def undocumented(app: web.Application, doc: dict[str, Any]) -> set[tuple[str, str]]:
    paths = doc["paths"]
    return {(m, p) for m, p in api_routes(app) if m not in paths.get(p, {})}


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def refs(node: Any) -> set[str]:
    """Every $ref, and every discriminator mapping target, anywhere in ``node``."""
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        mapping = node.get("mapping") if isinstance(node.get("mapping"), dict) else {}
        return own | set(mapping.values()) | set().union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def test_the_app_registers_the_acd_routes(app: web.Application) -> None:
    """Guards the coverage test below against an app with nothing under /api/."""
    assert {
        ("get", "/api/agents"),
        ("post", "/api/agents/{id}/state"),
        ("get", "/api/live"),
        ("get", "/api/calls"),
    } <= api_routes(app)


async def test_every_api_route_is_documented(app: web.Application, doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    assert undocumented(app, doc) == set()
    documented = {(m, p) for m, p, _ in operations(doc) if p.startswith("/api/")}
    assert documented == api_routes(app), "documented but not served"


async def test_the_coverage_check_notices_a_missing_operation(
    app: web.Application, doc: dict[str, Any]
) -> None:
    """The check above can fail: drop one path, or one method of a path, and it does."""
    without_path = copy.deepcopy(doc)
    del without_path["paths"]["/api/messages/{id}/handled"]
    assert undocumented(app, without_path) == {("post", "/api/messages/{id}/handled")}
    without_method = copy.deepcopy(doc)
    del without_method["paths"]["/api/agents/{id}"]["patch"]
    assert undocumented(app, without_method) == {("patch", "/api/agents/{id}")}


async def test_every_ref_resolves_to_a_schema(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    found = refs(doc)
    assert found, "no $ref at all: the check would prove nothing"
    assert {r for r in found if not r.startswith(SCHEMA_REF)} == set()
    assert {r.removeprefix(SCHEMA_REF) for r in found} - set(schemas) == set()
    # And nothing is provided that nobody uses.
    assert set(schemas) - {r.removeprefix(SCHEMA_REF) for r in found} == set()


async def test_operation_ids_are_unique(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    ids = Counter(op.get("operationId") for _, path, op in ops if path.startswith("/api/"))
    assert None not in ids, "an /api/ operation has no operationId"
    assert {i: n for i, n in ids.items() if n > 1} == {}
    assert len(ids) == len([p for _, p, _ in ops if p.startswith("/api/")])


async def test_operations_describe_responses_and_path_parameters(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        assert op["responses"], (method, path)
        assert op.get("summary"), (method, path)
        params = doc["paths"][path].get("parameters", []) + op.get("parameters", [])
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", path)), (method, path)


def test_every_schema_property_is_described(doc: dict[str, Any]) -> None:
    """A field without words cannot slip into the document (records: attribute docstrings;
    models: Field descriptions); the live events' type tags say themselves what they are."""
    undescribed = {
        (name, field)
        for name, schema in doc["components"]["schemas"].items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description") and not (field == "type" and "const" in prop)
    }
    assert undescribed == set()


def test_no_schema_is_written_by_hand() -> None:
    """The document has one source: the declarations (no *_openapi.py modules of dicts)."""
    assert sorted(p.name for p in (ROOT / "web").glob("*openapi*.py")) == ["openapi.py"]


def field_names(record: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(record)}


async def test_acd_schemas_list_exactly_the_fields_the_api_sends(doc: dict[str, Any]) -> None:
    """Documented properties are the keys the handlers send (records, agents, queues)."""
    schemas = doc["components"]["schemas"]

    def documented(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    clock = type("Fixed", (), {"now": lambda self: datetime(2025, 1, 1, tzinfo=UTC)})()
    live = LiveEvents(clock)
    roster = AgentRoster(cast(Any, None), clock, live)
    agent = LiveAgent(
        id=1,
        name="Li",
        endpoint="PJSIP/1001",
        skills={"repair": 5},
        machine=agent_machine("1"),
        reason=None,
        since=clock.now(),
        idle_since=0.0,
    )
    config = load_config(ROOT / "config" / "hotline.toml", env={})
    nothing = cast(Any, None)
    acd = Acd(config, nothing, roster, nothing, nothing, clock, live, nothing, nothing, nothing)
    queue = acd.snapshot()[0]

    assert documented("AgentView") == set(agent.to_json())
    assert documented("AgentDetail") == {*agent.to_json(), "history"}
    assert documented("StateChangeRecord") == field_names(StateChangeRecord)
    assert documented("CallbackRecord") == field_names(CallbackRecord)
    assert documented("AttemptRecord") == field_names(AttemptRecord)
    assert documented("MessageRecord") == field_names(MessageRecord)
    assert documented("QueueView") == set(queue)
    assert set(queue["agents"]) == {str(state) for state in AgentState}
    assert set(schemas["AgentState"]["enum"]) == {str(state) for state in AgentState}


def test_every_live_event_type_is_documented(doc: dict[str, Any]) -> None:
    """Each kind the code publishes (plus the snapshot on connect) has a LiveEvent variant."""
    published = {"snapshot", Moment.NEAR, Moment.PASSED}  # the watcher's, by constant
    for package in ("telephony", "crm", "web"):
        for source in (ROOT / package).rglob("*.py"):
            text = source.read_text()
            published |= set(re.findall(r"publish\(\s*\"([a-z-]+)\"", text))
    schemas = doc["components"]["schemas"]
    live = schemas["LiveEvent"]
    assert set(live["discriminator"]["mapping"]) == published
    for kind, target in live["discriminator"]["mapping"].items():
        assert schemas[target.removeprefix(SCHEMA_REF)]["properties"]["type"]["const"] == kind
    operation = doc["paths"]["/api/live"]["get"]
    assert operation["x-websocket-message"] == {"$ref": SCHEMA_REF + "LiveEvent"}


def test_recording_schemas_list_exactly_the_fields_the_api_sends(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]

    def documented(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    assert documented("Recording") == field_names(RecordingRecord) | {"audio_url"}
    assert documented("JobRecord") == field_names(JobRecord)
    assert documented("Turn") == field_names(Segment) | {"label"}
    assert documented("Word") == field_names(Word)
    assert set(schemas["Recording"]["required"]) == documented("Recording")


@declare_route(
    "GET",
    "/api/test/fault",
    operation_id="fault",
    summary="A handler whose answer is not the documented one (a fault injected).",
    replies={200: Reply("A page of calls.", CallPage)},
)
async def fault_undocumented_answer(request: web.Request) -> web.StreamResponse:
    if request.query.get("status") == "418":
        return web.json_response({}, status=418)
    return web.json_response({"items": "none", "total": 0, "limit": 1, "offset": 0})


async def test_the_response_check_notices_an_answer_the_document_does_not_describe() -> None:
    """Guards the check every API test's client runs (tests/documented_responses.py)."""
    checker = DocumentedResponses()
    app = web.Application(middlewares=[checker.middleware])
    add_routes(app, [fault_undocumented_answer])
    async with TestClient(TestServer(app)) as client:
        await client.get("/api/test/fault")
        await client.get("/api/test/fault?status=418")
    assert checker.checked == 1
    (wrong_body, wrong_status) = checker.mismatches
    assert wrong_body.startswith("GET /api/test/fault → 200: items: ")
    assert wrong_status == "GET /api/test/fault → 418: status not documented"


def test_every_schema_is_valid_json_schema(doc: dict[str, Any]) -> None:
    """OpenAPI 3.1 schemas are JSON Schema 2020-12; a malformed one fails here, not in a
    client generator."""
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for _, _, operation in operations(doc):
        for response in operation["responses"].values():
            for content in response.get("content", {}).values():
                Draft202012Validator.check_schema(content.get("schema", {}))


def test_every_error_id_is_in_the_document(doc: dict[str, Any]) -> None:
    """Including those the hand-written document lacked (unauthorised, invalid-query,
    stale-version), and each route's refusals list the ids it may answer."""
    assert set(doc["components"]["schemas"]["ErrorId"]["enum"]) == {str(e) for e in ErrorId}
    answered = set()
    for _, _, operation in operations(doc):
        for response in operation["responses"].values():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            for part in schema.get("allOf", []) + schema.get("oneOf", []):
                for nested in [part, *part.get("allOf", [])]:
                    answered |= set(
                        nested.get("properties", {}).get("error_id", {}).get("enum", [])
                    )
    assert {"unauthorised", "invalid-query", "stale-version", "call-not-found"} <= answered


def enum_of(schema: dict[str, Any], record: str, field: str) -> set[str] | None:
    """The values a record's field is documented to take (itself, or its non-null option)."""
    prop = schema[record]["properties"][field]
    for option in [prop, *prop.get("anyOf", [])]:
        if "$ref" in option:
            option = schema[option["$ref"].removeprefix(SCHEMA_REF)]
        if "enum" in option:
            return set(option["enum"])
    return None


def test_record_fields_with_a_closed_set_of_values_list_them(doc: dict[str, Any]) -> None:
    """A client can switch on them; the sets are the code's own constants (crm.repository
    OneOf), and each constant class's ALL holds every value it names."""
    closed: dict[tuple[str, str], Iterable[str]] = {
        ("CaseRecord", "kind"): Kind.ALL,
        ("CaseRecord", "channel"): Channel.ALL,
        ("CaseRecord", "status"): Status.ALL,
        ("DeadlineItem", "case_kind"): Kind.ALL,
        ("DeadlineItem", "case_status"): Status.ALL,
        ("DeadlineRecord", "rule"): Rule.ALL,
        ("RepairOrderRecord", "repair_class"): RepairClass.ALL,
        ("RepairOrderRecord", "suggested_class"): RepairClass.ALL,
        ("RepairOrderRecord", "verdict"): Satisfaction.ALL,
        ("ComplaintRecord", "nature"): Nature.ALL,
        ("ComplaintRecord", "sort"): SORTS,
        ("ComplaintRecord", "subject"): SUBJECTS,
        ("ComplaintRecord", "step"): Step.ORDER,
        ("ComplaintRecord", "next_step"): Step.ORDER,
        ("StepRecord", "step"): Step.ORDER,
        ("CallBackRecord", "reason"): CallBackReason.ALL,
        ("CallBackRecord", "status"): CallBackStatus.ALL,
        ("CallBackRecord", "satisfaction"): Satisfaction.ALL,
        ("CallBackAttemptRecord", "outcome"): Outcome.ALL,
        ("CallRecord", "direction"): Direction.ALL,
        ("CallRecord", "state"): CallState,
        ("CallRecord", "end_reason"): EndReason.ALL,
        ("CallbackRecord", "status"): CallbackStatus.ALL,
        ("AttemptRecord", "outcome"): AttemptOutcome.ALL,
        ("Recording", "role"): RecordingRole.ALL,
        ("Recording", "status"): RecordingStatus.ALL,
        ("JobRecord", "status"): JobStatus.ALL,
        ("Turn", "speaker"): SPEAKER_LABELS,
        ("MessageRecord", "reason"): MessageReason.ALL,
        ("ResidentRecord", "source"): SOURCES,
        ("StateChangeRecord", "state"): AgentState,
        ("AgentView", "state"): AgentState,
        ("Me", "role"): Role,
    }
    schemas = doc["components"]["schemas"]
    wrong = {
        (record, field): enum_of(schemas, record, field)
        for (record, field), values in closed.items()
        if enum_of(schemas, record, field) != {str(v) for v in values}
    }
    assert wrong == {}
    for constants in (
        Kind,
        Channel,
        Status,
        Rule,
        RepairClass,
        Satisfaction,
        Nature,
        CallBackReason,
        CallBackStatus,
        Outcome,
        Direction,
        EndReason,
        CallbackStatus,
        AttemptOutcome,
        RecordingRole,
        RecordingStatus,
        JobStatus,
        MessageReason,
    ):
        named = {v for k, v in vars(constants).items() if k.isupper() and isinstance(v, str)}
        assert set(constants.ALL) == named, constants.__name__
