"""OpenAPI description of the CRM endpoints (``web.cases``).

Record schemas are derived from the record dataclasses' type hints, and every field must
have a description here (``record_schema`` refuses a missing one), so the document can
neither omit a field the API sends nor describe one it does not.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any

from crm import case_records
from crm.deadlines import DeadlineItem
from crm.rules import (
    SORTS,
    SUBJECTS,
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

STAFF: list[dict[str, list[str]]] = [{"staff": []}, {"reviewer": []}]
STAFF_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "The staff token (HOTLINE_STAFF_TOKEN) of agents and supervisors; the "
    "reviewer token works too. Residents' names, rooms and phones are personal data.",
}


MAX_ID = 2**31 - 1


def _object(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema in which every property is required (null stands for absent)."""
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "properties": properties,
    }


def _field(kind: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _id_param(description: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": description + " An id that is not a positive integer is 404.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _json_body(description: str, schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _error_response(description: str) -> dict[str, Any]:
    """The error shape is generated (web.errors.ErrorBody); these routes refer to it."""
    return _json_response(description, "ErrorBody")


DESCRIPTIONS: dict[str, dict[str, str]] = {
    "CaseRecord": {
        "id": "Case id.",
        "kind": f"One of {', '.join(Kind.ALL)}.",
        "kind_label": "The kind as staff say it: 咨询 / 报修 / 投诉 / 紧急求助 / 留言.",
        "subtype": "E.g. 家政 or 代订 for other requests logged as inquiries.",
        "channel": f"How the contact came: {', '.join(Channel.ALL)}.",
        "status": f"One of {', '.join(Status.ALL)}.",
        "owner_agent_id": "The agent who took it and follows it up (首问负责制).",
        "resident_id": "The resident (or the caller's contact to be completed).",
        "phone": "The number to reply to (digits).",
        "building": "栋号 of the unit concerned.",
        "room": "房号 of the unit concerned.",
        "summary": "What it is about, in a line.",
        "detail": "What was said and done.",
        "opened_at": "When the contact came (deadlines count from here).",
        "resolved_at": "When it was resolved; null while open or after a reopening.",
        "closed_at": "When it was closed (归档) or cancelled.",
        "reopened": "How often it was reopened (an unsatisfied resident reopens it).",
        "updated_at": "Last change.",
        "version": "Send it back with a change; a stale one is 409 stale-version.",
        "overdue": "An open deadline has passed.",
        "calls": "Calls of the case: the one that opened it, later ones, call-backs.",
        "deadlines": "Every deadline the case had, met, cancelled or open.",
        "repair": "The work order (维修服务任务单) of a repair case.",
        "complaint": "Classification and steps of a complaint case.",
        "callbacks": "Call-backs (回访) owed or done.",
    },
    "CaseCallRecord": {
        "call_id": "The call (GET /api/calls/{id}).",
        "role": "opened / follow-up / call-back.",
        "linked_at": "When the call was linked.",
    },
    "DeadlineRecord": {
        "id": "Deadline id.",
        "case_id": "Its case.",
        "rule": f"One of {', '.join(Rule.ALL)}.",
        "label": "The rule as staff say it (急修到场, 维修完成, 咨询回复 …).",
        "starts_at": "When the time started (for repairs: the call).",
        "due_at": "The last moment that is still in time.",
        "warn_at": "When the deadline counts as near (rules.warn_fraction left).",
        "met_at": "When it was met; null while open.",
        "cancelled_at": "When it stopped applying (class changed, case cancelled).",
        "overdue": "Open and past due_at, or met after it.",
    },
    "RepairOrderRecord": {
        "id": "Work order id.",
        "reporter": "申报人.",
        "building": "栋号.",
        "room": "房号.",
        "phone": "The reporter's phone.",
        "reported_at": "时间 reported (the call).",
        "appointment_at": "预约时间.",
        "key_left": "留钥匙: a key was left for the technician.",
        "fault": "故障描述.",
        "work_done": "维修内容.",
        "materials": "所用材料.",
        "material_cost": "材料费, yuan as a decimal string.",
        "labour_cost": "人工费, yuan as a decimal string.",
        "total": "合计 (materials + labour).",
        "technician": "维修人.",
        "on_site_at": "When the technician arrived.",
        "completed_at": "完成时间.",
        "verdict": "居民意见: satisfied / unsatisfied.",
        "repair_class": f"{' / '.join(RepairClass.ALL)} (急修 / 一般): decides the deadlines.",
        "suggested_class": "What the IVR choice and the call's words suggested.",
        "suggested_because": "Why, e.g. 'words: 电梯, 漏水'.",
        "class_confirmed_by": "Who confirmed the class; null: only suggested.",
        "class_confirmed_at": "When it was confirmed.",
        "on_price_list": "On the standard price list; if not, reviewed in 15 minutes.",
        "quoted": "The reviewed price for a job off the list.",
        "price_reviewed_by": "The engineering supervisor who reviewed it.",
        "price_reviewed_at": "When.",
        "price_agreed_at": "When the resident agreed (work cannot start before).",
        "rework_of": "Warranty: the order this redoes, free of charge.",
    },
    "StepRecord": {
        "step": f"One of {', '.join(Step.ORDER)}.",
        "label": "接诉 辨诉 析诉 定责 处理 回访 总结 归档.",
        "by": "Who did it.",
        "at": "When.",
        "note": "What was found, decided or done.",
    },
    "ComplaintRecord": {
        "id": "Complaint id.",
        "nature": f"{' / '.join(Nature.ALL)} (有效投诉 / 沟通性投诉).",
        "sort": f"For a communication complaint: {', '.join(SORTS)} (求助 咨询 建议 发泄).",
        "subject": f"{', '.join(SUBJECTS)} (设备 服务态度 服务质量 突发事件).",
        "reasonable": "Judged reasonable at 辨诉.",
        "on_premises": "About something happening now: someone on site within 3 minutes.",
        "serious": "Goes to the manager in person.",
        "responsible": "Department or person made responsible (定责).",
        "step": "The step done last.",
        "next_step": "The step to do next; null when archived.",
        "causes": "总结: causes.",
        "prevention": "总结: preventive measures.",
        "steps": "Every step done, oldest first (a reopening adds rows, never removes).",
    },
    "AttemptRecord": {
        "id": "Attempt id.",
        "call_id": "The outbound call, when dialled from the case.",
        "by": "Who tried.",
        "at": "When.",
        "outcome": f"One of {', '.join(Outcome.ALL)}.",
    },
    "CallBackRecord": {
        "id": "Call-back id.",
        "case_id": "Its case.",
        "reason": "satisfaction (after resolution) / promised-reply / queued.",
        "due_at": "When it is due (moves on after a try that did not reach the resident).",
        "status": f"due, {', '.join(CallBackStatus.SETTLED)} or cancelled.",
        "reached": "Whether the resident was reached.",
        "satisfaction": f"{' / '.join(Satisfaction.ALL)} (满意 / 不满意).",
        "remarks": "What the resident said.",
        "letter": "Standard letter sent when unreachable (tried-to-reach).",
        "done_at": "When it was settled.",
        "done_by": "Who settled it.",
        "queue_callback_id": "The queue call-back it came from, if any.",
        "created_at": "When it was scheduled.",
        "attempts": "Every try, oldest first.",
    },
    "DeadlineItem": {
        "deadline": "The deadline.",
        "case_kind": "Its case's kind.",
        "case_status": "Its case's status.",
        "case_summary": "Its case's summary.",
        "owner_agent_id": "Who follows the case up.",
    },
    "AuditRecord": {
        "id": "Entry id.",
        "case_id": "The case.",
        "entity": "case / repair-order / complaint / call-back / deadline.",
        "entity_id": "Which one.",
        "action": "opened / changed / status / reopened / note / deadline-met / …",
        "field": "The field changed.",
        "old": "Value before.",
        "new": "Value after.",
        "by": "Who.",
        "at": "When.",
    },
}


def _schema_of(hint: Any) -> dict[str, Any]:
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    simple = {str: "string", int: "integer", bool: "boolean", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        schema = _schema_of(inner)
        if "$ref" in schema:
            return {"anyOf": [schema, {"type": "null"}]}
        return {**schema, "type": [schema["type"], "null"]}
    if origin is tuple:
        return {"type": "array", "items": _schema_of(typing.get_args(hint)[0])}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _ref(_name_of(hint))
    raise TypeError(f"no schema for {hint!r}")


def _name_of(record: type[Any]) -> str:
    return next(name for name, (cls, _) in RECORDS.items() if cls is record)


def record_schema(record: type[Any], description: str) -> dict[str, Any]:
    hints = typing.get_type_hints(record)
    described = DESCRIPTIONS[record.__name__]
    properties = {}
    for f in dataclasses.fields(record):
        if f.name not in described:
            raise KeyError(f"{record.__name__}.{f.name} has no description")
        properties[f.name] = {**_schema_of(hints[f.name]), "description": described[f.name]}
    extra = set(described) - set(properties)
    if extra:
        raise KeyError(f"{record.__name__} describes fields it does not have: {extra}")
    return _object(description, **properties)


RECORDS = {
    "CaseRecord": (case_records.CaseRecord, "A case with all its parts, as one moment."),
    "CaseCallRecord": (case_records.CaseCallRecord, "A call of a case."),
    "DeadlineRecord": (case_records.DeadlineRecord, "One deadline of the service standards."),
    "RepairOrderRecord": (case_records.RepairOrderRecord, "维修服务任务单."),
    "StepRecord": (case_records.StepRecord, "One complaint step done."),
    "ComplaintRecord": (case_records.ComplaintRecord, "A complaint's classification and steps."),
    "CaseAttemptRecord": (case_records.AttemptRecord, "One try at a call-back."),
    "CallBackRecord": (case_records.CallBackRecord, "A call-back (回访)."),
    "AuditRecord": (case_records.AuditRecord, "One change: who, when, old → new."),
    "DeadlineItem": (DeadlineItem, "An open deadline with its case."),
}


def case_openapi_schemas() -> dict[str, Any]:
    schemas = {name: record_schema(cls, text) for name, (cls, text) in RECORDS.items()}
    page: dict[str, Any] = {
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "properties": {
            "total": _field("integer", "Matches in all pages."),
            "limit": _field("integer", "Page size used."),
            "offset": _field("integer", "Offset used."),
        },
    }
    schemas["CasePage"] = {
        **page,
        "description": "A page of cases.",
        "properties": {
            "items": {"type": "array", "items": _ref("CaseRecord")},
            **page["properties"],
        },
    }
    schemas["CallBackPage"] = {
        **page,
        "description": "A page of call-backs, most urgent first.",
        "properties": {
            "items": {"type": "array", "items": _ref("CallBackRecord")},
            **page["properties"],
        },
    }
    schemas["DeadlinePage"] = {
        **page,
        "description": "A page of open deadlines, the earliest due first.",
        "properties": {
            "items": {"type": "array", "items": _ref("DeadlineItem")},
            **page["properties"],
        },
    }
    schemas["Timeline"] = _object(
        "Every change to the case, oldest first.",
        items={"type": "array", "items": _ref("AuditRecord")},
    )
    change = {
        "by": _field("string", "Who does it (named in the audit trail)."),
        "version": _field("integer", "The case version you read."),
    }
    schemas["CaseOpen"] = {
        "type": "object",
        "description": "A contact by any channel (phone calls open cases themselves).",
        "required": ["kind", "channel", "summary", "by"],
        "properties": {
            "kind": _field("string", "Kind.", enum=list(Kind.ALL)),
            "channel": _field("string", "Channel.", enum=list(Channel.ALL)),
            "summary": _field("string", "1-200 characters.", maxLength=200),
            "detail": _field(["string", "null"], "Up to 5000 characters."),
            "subtype": _field(["string", "null"], "Up to 40 characters."),
            "by": change["by"],
            "owner_agent_id": _field(["integer", "null"], "Owner; default none."),
            "resident_id": _field(["integer", "null"], "The resident."),
            "phone": _field(["string", "null"], "A mainland mobile or landline."),
            "building": _field(["string", "null"], "栋号; with room, a known unit."),
            "room": _field(["string", "null"], "房号."),
            "answered": _field("boolean", "An inquiry answered on the spot: resolved."),
            "repair": {
                "type": "object",
                "description": "For a repair: the start of its work order.",
                "properties": {
                    "fault": _field("string", "Default: the summary."),
                    "reporter": _field("string", "申报人."),
                    "appointment_at": _field("string", "ISO 8601 with zone.", format="date-time"),
                    "key_left": _field("boolean", "留钥匙."),
                    "on_price_list": _field("boolean", "Default true."),
                    "repair_class": _field(
                        "string", "Confirmed class.", enum=list(RepairClass.ALL)
                    ),
                    "rework_of": _field("integer", "Warranty rework of this order."),
                },
            },
            "complaint": {
                "type": "object",
                "description": "For a complaint.",
                "properties": {
                    "on_premises": _field("boolean", "Someone on site within 3 minutes."),
                    "serious": _field("boolean", "To the manager in person."),
                },
            },
        },
    }
    schemas["CaseUpdate"] = {
        "type": "object",
        "description": "Fields to change; status has its own endpoint.",
        "required": ["by", "version"],
        "properties": {
            **change,
            **{
                k: _field(["string", "null"], k)
                for k in ("summary", "detail", "subtype", "phone", "building", "room")
            },
            "owner_agent_id": _field(["integer", "null"], "New owner."),
            "resident_id": _field(["integer", "null"], "The resident."),
        },
    }
    schemas["CaseTransition"] = _object(
        "A status change.",
        to=_field("string", "The status to go to.", enum=list(Status.ALL)),
        note=_field(["string", "null"], "Why."),
        **change,
    )
    schemas["CaseReopen"] = _object("Back to work.", reason=_field("string", "Why."), **change)
    schemas["CaseNote"] = _object(
        "A note on the timeline.", text=_field("string", "The note."), **change
    )
    schemas["DeadlineMet"] = {
        "type": "object",
        "description": "A reply given or someone on site.",
        "required": ["by", "version"],
        "properties": {**change, "at": _field("string", "When (default now).", format="date-time")},
    }
    schemas["WorkOrderUpdate"] = {
        "type": "object",
        "description": "Work order fields to change; money in yuan (at most 2 decimals, "
        "0 to 100000); times ISO 8601 with zone, not in the future. price_reviewed and "
        "price_agreed record the review and the resident's agreement.",
        "required": ["by", "version"],
        "properties": {
            **change,
            **{
                k: _field(["string", "null"], k)
                for k in (
                    "reporter",
                    "phone",
                    "building",
                    "room",
                    "fault",
                    "work_done",
                    "materials",
                    "technician",
                )
            },
            **{
                k: _field(["string", "null"], k, format="date-time")
                for k in ("appointment_at", "on_site_at", "completed_at")
            },
            **{
                k: _field(["string", "number"], k)
                for k in ("material_cost", "labour_cost", "quoted")
            },
            **{
                k: _field("boolean", k)
                for k in ("key_left", "on_price_list", "price_reviewed", "price_agreed")
            },
            "verdict": _field(["string", "null"], "居民意见.", enum=[*Satisfaction.ALL, None]),
            "repair_class": _field(
                "string", "Confirm or overrule the class.", enum=list(RepairClass.ALL)
            ),
        },
    }
    schemas["ComplaintStepRequest"] = {
        "type": "object",
        "description": "The next step. classify needs details nature, subject, reasonable "
        "(and sort for a communication complaint); investigate and resolve need a note; "
        "assign needs details.responsible; review needs details.causes and prevention.",
        "required": ["step", "by", "version"],
        "properties": {
            **change,
            "step": _field("string", "The step.", enum=list(Step.ORDER)),
            "note": _field(["string", "null"], "Findings, decision or what was done."),
            "details": {"type": "object", "description": "What the step decides."},
        },
    }
    schemas["CallBackPromise"] = {
        "type": "object",
        "description": "A promised reply (default due: the inquiry reply time).",
        "required": ["by", "version"],
        "properties": {**change, "due_at": _field("string", "When.", format="date-time")},
    }
    schemas["CallBackDial"] = _object(
        "Who dials: the agent must be ready; their phone rings first.",
        agent_id=_field("integer", "The agent whose softphone rings."),
        by=change["by"],
    )
    schemas["CallBackDialling"] = _object(
        "A call-back being dialled. Its call is linked to the case, recorded and "
        "transcribed; a try that does not reach the resident is recorded by itself, a "
        "reached one waits for the agent's POST .../attempts with this call_id.",
        callback_id=_field("integer", "The call-back."),
        case_id=_field("integer", "Its case."),
        call_id=_field("integer", "The outbound call (GET /api/calls/{id})."),
        agent_id=_field("integer", "The agent rung first."),
    )
    schemas["CallBackAttemptRequest"] = {
        "type": "object",
        "description": "One try: reached needs satisfaction for a satisfaction call-back.",
        "required": ["by", "version", "outcome"],
        "properties": {
            **change,
            "outcome": _field("string", "How it went.", enum=list(Outcome.ALL)),
            "satisfaction": _field(
                ["string", "null"], "满意 / 不满意.", enum=[*Satisfaction.ALL, None]
            ),
            "remarks": _field(["string", "null"], "What the resident said."),
            "call_id": _field(["integer", "null"], "The call of the try."),
        },
    }
    return schemas


def staff_operation(
    op_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An operation of the staff-only API (cases, residents)."""
    operation: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "security": STAFF,
        "parameters": params or [],
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = _json_body("The request.", body)
    return operation


def case_openapi_paths() -> dict[str, Any]:
    guarded = {
        "401": _error_response("No or wrong staff token (error_id unauthorised)."),
        "403": _error_response("No staff token is configured (error_id closed)."),
        "503": _error_response("The database is unavailable."),
    }
    refused = {
        "400": _error_response("A value was refused (error_id invalid-input: field, reason)."),
        "404": _error_response("No such case (error_id not-found)."),
        "409": _error_response(
            "The rules forbid it (illegal-transition: state, wanted, reason) or the case "
            "changed since you read it (stale-version: current_version)."
        ),
    }

    def op(
        op_id: str,
        summary: str,
        ok: dict[str, Any],
        *,
        body: str | None = None,
        params: list[dict[str, Any]] | None = None,
        status: str = "200",
    ) -> dict[str, Any]:
        responses = {status: ok, **refused, **guarded}
        return staff_operation(op_id, summary, responses, body=body, params=params)

    case_id = [_id_param("Case id.")]
    case = _json_response("The case after the change.", "CaseRecord")
    paging = [
        _query_param("limit", "Page size (1-500).", {"type": "integer", "default": 50}),
        _query_param("offset", "Offset.", {"type": "integer", "default": 0}),
    ]
    return {
        "/api/cases": {
            "get": op(
                "listCases",
                "Cases, newest first, with filters",
                _json_response("A page.", "CasePage"),
                params=[
                    _query_param("kind", "Kind.", {"type": "string", "enum": list(Kind.ALL)}),
                    _query_param("status", "Statuses, comma separated.", {"type": "string"}),
                    _query_param("owner", "Owner agent id.", {"type": "integer"}),
                    _query_param("resident", "Resident id.", {"type": "integer"}),
                    _query_param("phone", "The number to reply to.", {"type": "string"}),
                    _query_param(
                        "overdue", "With an open deadline past (true/false).", {"type": "boolean"}
                    ),
                    _query_param("since", "Opened at or after (ISO 8601).", {"type": "string"}),
                    _query_param("until", "Opened before (ISO 8601).", {"type": "string"}),
                    *paging,
                ],
            ),
            "post": op(
                "openCase",
                "Log a contact (e-mail, letter, walk-in, chat, or phone by hand)",
                _json_response("The new case.", "CaseRecord"),
                body="CaseOpen",
                status="201",
            ),
        },
        "/api/cases/{id}": {
            "get": op(
                "getCase",
                "One case with all its parts",
                _json_response("The case.", "CaseRecord"),
                params=case_id,
            ),
            "patch": op("updateCase", "Edit a case", case, body="CaseUpdate", params=case_id),
        },
        "/api/cases/{id}/transitions": {
            "post": op(
                "transitionCase",
                "Change status (rules: 409 with reason)",
                case,
                body="CaseTransition",
                params=case_id,
            )
        },
        "/api/cases/{id}/reopen": {
            "post": op(
                "reopenCase",
                "Reopen a resolved or closed case",
                case,
                body="CaseReopen",
                params=case_id,
            )
        },
        "/api/cases/{id}/notes": {
            "post": op("noteCase", "Add a note", case, body="CaseNote", params=case_id)
        },
        "/api/cases/{id}/deadlines/{rule}/met": {
            "post": op(
                "meetDeadline",
                "Mark a reply given (reply) or someone on site (complaint-on-site)",
                case,
                body="DeadlineMet",
                params=[
                    *case_id,
                    {
                        "name": "rule",
                        "in": "path",
                        "required": True,
                        "description": "reply or complaint-on-site; others are met by their work.",
                        "schema": {"type": "string", "enum": list(Rule.ALL)},
                    },
                ],
            )
        },
        "/api/cases/{id}/timeline": {
            "get": op(
                "caseTimeline",
                "Every change, oldest first",
                _json_response("The audit trail.", "Timeline"),
                params=case_id,
            )
        },
        "/api/cases/{id}/work-order": {
            "patch": op(
                "updateWorkOrder",
                "Fill in the work order",
                case,
                body="WorkOrderUpdate",
                params=case_id,
            )
        },
        "/api/cases/{id}/complaint/steps": {
            "post": op(
                "complaintStep",
                "Do the complaint's next step",
                case,
                body="ComplaintStepRequest",
                params=case_id,
            )
        },
        "/api/cases/{id}/callbacks": {
            "post": op(
                "promiseCallBack",
                "Promise a reply call-back",
                _json_response("The case with the call-back.", "CaseRecord"),
                body="CallBackPromise",
                params=case_id,
                status="201",
            )
        },
        "/api/case-callbacks": {
            "get": op(
                "dueCallBacks",
                "Call-backs owed, most urgent first",
                _json_response("A page.", "CallBackPage"),
                params=[
                    _query_param(
                        "overdue", "Only those past due (true/false).", {"type": "boolean"}
                    ),
                    *paging,
                ],
            )
        },
        "/api/case-callbacks/{id}": {
            "get": op(
                "getCallBack",
                "One call-back with its tries",
                _json_response("The call-back.", "CallBackRecord"),
                params=[_id_param("Call-back id.")],
            )
        },
        "/api/case-callbacks/{id}/dial": {
            "post": op(
                "dialCallBack",
                "Dial the call-back: the agent's softphone first, then the resident",
                _json_response("Dialling started (the outbound call's id).", "CallBackDialling"),
                body="CallBackDial",
                params=[_id_param("Call-back id.")],
                status="202",
            )
        },
        "/api/deadlines": {
            "get": op(
                "listDeadlines",
                "Open deadlines of all cases, the earliest due first",
                _json_response("A page.", "DeadlinePage"),
                params=[
                    _query_param(
                        "overdue", "true: passed; false: still in time.", {"type": "boolean"}
                    ),
                    _query_param("rule", "One rule.", {"type": "string", "enum": list(Rule.ALL)}),
                    *paging,
                ],
            )
        },
        "/api/case-callbacks/{id}/attempts": {
            "post": op(
                "callBackAttempt",
                "Record a try and its outcome (unsatisfied reopens the case)",
                _json_response("The case after it.", "CaseRecord"),
                body="CallBackAttemptRequest",
                params=[_id_param("Call-back id.")],
                status="201",
            )
        },
    }
