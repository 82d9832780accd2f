"""HTTP API of the CRM: cases, work orders, complaint steps, call-backs, deadlines.

Writes carry ``by`` (who does it, for the audit trail) and ``version`` (the case version
the client read: a stale one is refused with 409 ``stale-version`` instead of silently
overwriting a colleague). Bad input is 400 naming the field, a change the rules forbid is
409 ``illegal-transition`` with the reason, and every refusal writes nothing. Residents'
data is for staff only (service standards §6).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiMapping

from crm import validation as v
from crm.case_records import CaseRecord
from crm.cases import CaseQuery, NewComplaint, NewRepair
from crm.deadlines import DeadlineBook
from crm.desk import CrmDesk
from crm.exceptions import InvalidInput, InvalidQuery
from crm.rules import Kind
from telephony.acd.case_dialler import CaseDialler
from web.errors import answer_errors, json_body, path_id

CRM: web.AppKey[CrmDesk] = web.AppKey("crm", CrmDesk)
DEADLINES: web.AppKey[DeadlineBook] = web.AppKey("deadlines", DeadlineBook)
DIALLER: web.AppKey[CaseDialler] = web.AppKey("case_dialler", CaseDialler)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_INT = 2**31 - 1


def add_case_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/cases", _list_cases)
    r.add_post("/api/cases", _open_case)
    r.add_get("/api/cases/{id}", _get_case)
    r.add_patch("/api/cases/{id}", _update_case)
    r.add_post("/api/cases/{id}/transitions", _transition)
    r.add_post("/api/cases/{id}/reopen", _reopen)
    r.add_post("/api/cases/{id}/notes", _note)
    r.add_post("/api/cases/{id}/deadlines/{rule}/met", _meet)
    r.add_get("/api/cases/{id}/timeline", _timeline)
    r.add_patch("/api/cases/{id}/work-order", _update_order)
    r.add_post("/api/cases/{id}/complaint/steps", _complaint_step)
    r.add_post("/api/cases/{id}/callbacks", _promise_callback)
    r.add_get("/api/case-callbacks", _due_callbacks)
    r.add_get("/api/case-callbacks/{id}", _get_callback)
    r.add_post("/api/case-callbacks/{id}/attempts", _callback_attempt)
    r.add_get("/api/deadlines", _deadlines)
    r.add_post("/api/case-callbacks/{id}/dial", _dial)


def _case(record: CaseRecord, status: int = 200) -> web.Response:
    return web.json_response(record.to_json(), status=status)


def _version(body: dict[str, Any]) -> int:
    value = body.get("version")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
        raise InvalidInput("version", "is required: the case version you read (an integer)")
    return value


def _optional_id(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
        raise InvalidInput(key, "must be an id (a positive integer)")
    return value


def _bool_body(body: dict[str, Any], key: str, default: bool = False) -> bool:
    return default if body.get(key) is None else v.flag(key, body[key])


def _object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(key, "must be an object")
    return value


def _int_param(query: MultiMapping[str], key: str, default: int, low: int, high: int) -> int:
    raw = query.get(key)
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidQuery(key, f"must be an integer from {low} to {high}")
    return int(raw)


def _bool_param(query: MultiMapping[str], key: str) -> bool | None:
    raw = query.get(key)
    if not raw:
        return None
    if raw not in ("true", "false"):
        raise InvalidQuery(key, "must be true or false")
    return raw == "true"


def _time_param(query: MultiMapping[str], key: str) -> Any:
    raw = query.get(key)
    if not raw:
        return None
    try:
        return v.when(key, raw)
    except InvalidInput as err:
        raise InvalidQuery(key, err.reason + " (encode '+' as %2B)") from None


def parse_case_query(query: MultiMapping[str]) -> CaseQuery:
    """``GET /api/cases`` filters; empty values count as not given (HTML forms send all)."""
    phone = query.get("phone") or None
    if phone is not None:
        try:
            phone = v.phone("phone", phone)
        except InvalidInput as err:
            raise InvalidQuery("phone", err.reason) from None
    return CaseQuery(
        kind=query.get("kind") or None,
        status=tuple(s for s in (query.get("status") or "").split(",") if s),
        owner_agent_id=_int_param(query, "owner", 0, 1, MAX_INT) or None,
        resident_id=_int_param(query, "resident", 0, 1, MAX_INT) or None,
        phone=phone,
        overdue=_bool_param(query, "overdue"),
        since=_time_param(query, "since"),
        until=_time_param(query, "until"),
        limit=_int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_int_param(query, "offset", 0, 0, MAX_INT),
    )


@answer_errors
async def _list_cases(request: web.Request) -> web.StreamResponse:
    query = parse_case_query(request.query)
    records, total = await request.app[CRM].cases.list(query)
    return web.json_response(
        {
            "items": [r.to_json() for r in records],
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


@answer_errors
async def _open_case(request: web.Request) -> web.StreamResponse:
    """A contact by any channel: phone cases open themselves at hang-up, others here."""
    body = await json_body(request)
    known = {
        "kind",
        "channel",
        "summary",
        "detail",
        "subtype",
        "by",
        "owner_agent_id",
        "resident_id",
        "phone",
        "building",
        "room",
        "answered",
        "repair",
        "complaint",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidInput(unknown[0], "is not a case field")
    kind = body.get("kind")
    v.choice("kind", kind, Kind.ALL)
    assert isinstance(kind, str)
    repair_body = _object(body, "repair")
    # Given for another kind, the book refuses it (400 naming repair), never drops it.
    repair = _new_repair(repair_body) if kind == Kind.REPAIR or repair_body else None
    complaint_body = _object(body, "complaint")
    complaint = None
    if complaint_body is not None:
        complaint = NewComplaint(
            on_premises=_bool_body(complaint_body, "on_premises"),
            serious=_bool_body(complaint_body, "serious"),
        )
    record = await request.app[CRM].cases.open(
        kind=kind,
        channel=body.get("channel"),
        summary=body.get("summary"),
        by=body.get("by"),
        detail=body.get("detail"),
        subtype=body.get("subtype"),
        owner_agent_id=_optional_id(body, "owner_agent_id"),
        resident_id=_optional_id(body, "resident_id"),
        phone=body.get("phone"),
        building=body.get("building"),
        room=body.get("room"),
        repair=repair,
        complaint=complaint,
        answered=_bool_body(body, "answered"),
    )
    return _case(record, 201)


def _new_repair(raw: dict[str, Any] | None) -> NewRepair:
    raw = raw or {}
    known = {
        "fault",
        "reporter",
        "appointment_at",
        "key_left",
        "on_price_list",
        "repair_class",
        "rework_of",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInput(f"repair.{unknown[0]}", "is not a work order field at opening")
    fault = raw.get("fault")
    if fault is not None and not isinstance(fault, str):
        raise InvalidInput("repair.fault", "must be a string")
    reporter = raw.get("reporter")
    if reporter is not None and not isinstance(reporter, str):
        raise InvalidInput("repair.reporter", "must be a string")
    repair_class = raw.get("repair_class")
    if repair_class is not None and not isinstance(repair_class, str):
        raise InvalidInput("repair.repair_class", "must be urgent or general")
    return NewRepair(
        fault=fault,
        reporter=reporter,
        appointment_at=v.when("repair.appointment_at", raw.get("appointment_at")),
        key_left=_bool_body(raw, "key_left"),
        on_price_list=_bool_body(raw, "on_price_list", True),
        repair_class=repair_class,
        rework_of=_optional_id(raw, "rework_of"),
    )


@answer_errors
async def _get_case(request: web.Request) -> web.StreamResponse:
    return _case(await request.app[CRM].cases.get(path_id(request)))


@answer_errors
async def _update_case(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    changes = {k: val for k, val in body.items() if k not in ("version", "by")}
    record = await request.app[CRM].cases.update(
        path_id(request), version=_version(body), by=body.get("by"), changes=changes
    )
    return _case(record)


@answer_errors
async def _transition(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    to = body.get("to")
    if not isinstance(to, str):
        raise InvalidInput("to", "is required: the status to go to")
    record = await request.app[CRM].cases.transition(
        path_id(request), to=to, version=_version(body), by=body.get("by"), note=body.get("note")
    )
    return _case(record)


@answer_errors
async def _reopen(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    record = await request.app[CRM].cases.reopen(
        path_id(request), version=_version(body), by=body.get("by"), reason=body.get("reason")
    )
    return _case(record)


@answer_errors
async def _note(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    record = await request.app[CRM].cases.note(
        path_id(request), version=_version(body), by=body.get("by"), text=body.get("text")
    )
    return _case(record)


@answer_errors
async def _meet(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    record = await request.app[CRM].cases.meet(
        path_id(request),
        rule=request.match_info["rule"],
        version=_version(body),
        by=body.get("by"),
        at=v.when("at", body.get("at")),
    )
    return _case(record)


@answer_errors
async def _timeline(request: web.Request) -> web.StreamResponse:
    entries = await request.app[CRM].cases.timeline(path_id(request))
    return web.json_response({"items": [e.to_json() for e in entries]})


@answer_errors
async def _update_order(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    changes = {k: val for k, val in body.items() if k not in ("version", "by")}
    record = await request.app[CRM].orders.update(
        path_id(request), version=_version(body), by=body.get("by"), changes=changes
    )
    return _case(record)


@answer_errors
async def _complaint_step(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    step = body.get("step")
    if not isinstance(step, str):
        raise InvalidInput("step", "is required: the step to record")
    record = await request.app[CRM].complaints.step(
        path_id(request),
        step=step,
        version=_version(body),
        by=body.get("by"),
        note=body.get("note"),
        details=_object(body, "details"),
    )
    return _case(record)


@answer_errors
async def _promise_callback(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    record = await request.app[CRM].callbacks.promise(
        path_id(request),
        version=_version(body),
        by=body.get("by"),
        due_at=v.when("due_at", body.get("due_at")),
    )
    return _case(record, 201)


@answer_errors
async def _due_callbacks(request: web.Request) -> web.StreamResponse:
    limit = _int_param(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request.query, "offset", 0, 0, MAX_INT)
    records, total = await request.app[CRM].callbacks.due(
        overdue=_bool_param(request.query, "overdue") or False, limit=limit, offset=offset
    )
    return web.json_response(
        {"items": [r.to_json() for r in records], "total": total, "limit": limit, "offset": offset}
    )


@answer_errors
async def _get_callback(request: web.Request) -> web.StreamResponse:
    return web.json_response((await request.app[CRM].callbacks.get(path_id(request))).to_json())


@answer_errors
async def _callback_attempt(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    outcome = body.get("outcome")
    if not isinstance(outcome, str):
        raise InvalidInput("outcome", "is required: reached, no-answer, busy or failed")
    satisfaction = body.get("satisfaction")
    if satisfaction is not None and not isinstance(satisfaction, str):
        raise InvalidInput("satisfaction", "must be satisfied or unsatisfied")
    record = await request.app[CRM].callbacks.record_attempt(
        path_id(request),
        version=_version(body),
        by=body.get("by"),
        outcome=outcome,
        satisfaction=satisfaction,
        remarks=body.get("remarks"),
        call_id=_optional_id(body, "call_id"),
    )
    return _case(record, 201)


@answer_errors
async def _deadlines(request: web.Request) -> web.StreamResponse:
    """Open deadlines of every case, the earliest due first: the supervisor's to-do."""
    limit = _int_param(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request.query, "offset", 0, 0, MAX_INT)
    items, total = await request.app[DEADLINES].list(
        request.app[CRM].clock.now(),
        overdue=_bool_param(request.query, "overdue"),
        rule=request.query.get("rule") or None,
        limit=limit,
        offset=offset,
    )
    return web.json_response(
        {"items": [i.to_json() for i in items], "total": total, "limit": limit, "offset": offset}
    )


@answer_errors
async def _dial(request: web.Request) -> web.StreamResponse:
    """The agent's phone rings first, then the resident's; 202 while that happens."""
    body = await json_body(request)
    agent_id = _optional_id(body, "agent_id")
    if agent_id is None:
        raise InvalidInput("agent_id", "is required: whose softphone rings first")
    by = v.actor("by", body.get("by"))
    dialling = await request.app[DIALLER].dial(path_id(request), agent_id=agent_id, by=by)
    return web.json_response(
        {
            "callback_id": dialling.callback_id,
            "case_id": dialling.case_id,
            "call_id": dialling.call_id,
            "agent_id": dialling.agent_id,
        },
        status=202,
    )
