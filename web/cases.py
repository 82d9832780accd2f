"""HTTP API of the CRM: cases, work orders, complaint steps, call-backs, deadlines.

Writes carry ``by`` (who does it, for the audit trail) and ``version`` (the case version
the client read: a stale one is refused with 409 ``stale-version`` instead of silently
overwriting a colleague). Bad input is 400 naming the field, a change the rules forbid is
409 ``illegal-transition`` with the reason, and every refusal writes nothing. Residents'
data is for staff only (service standards §6).

The bodies declare the JSON types of their fields; what a value may say (a name, a
phone, a time and its bounds, money) is the CRM's to check (``crm.validation``), which
names the field the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from pydantic import ConfigDict, Field

from crm import validation as v
from crm.case_records import AuditRecord, CallBackRecord, CaseRecord
from crm.cases import CaseQuery, NewComplaint, NewRepair
from crm.deadlines import DeadlineBook, DeadlineItem
from crm.desk import CrmDesk
from crm.exceptions import InvalidInput, InvalidQuery
from crm.repository import DOCUMENTED_FIELDS
from crm.rules import (
    Channel,
    Kind,
    Outcome,
    RepairClass,
    Rule,
    Satisfaction,
    Status,
    Step,
)
from telephony.acd.case_dialler import CaseDialler
from web.actors import ACTOR_RULE, acting
from web.bodies import Body
from web.errors import ErrorId
from web.params import (
    DEFAULT_LIMIT,
    MAX_INT,
    AwareInstant,
    Limit,
    Offset,
    Params,
    PositiveId,
    RecordId,
    TrueOrFalse,
)
from web.replies import json_reply
from web.routes import Reply, add_routes, route

CRM: web.AppKey[CrmDesk] = web.AppKey("crm", CrmDesk)
DEADLINES: web.AppKey[DeadlineBook] = web.AppKey("deadlines", DeadlineBook)
DIALLER: web.AppKey[CaseDialler] = web.AppKey("case_dialler", CaseDialler)

BY = ACTOR_RULE
VERSION = "The case version you read; a stale one is 409 stale-version."
TIME = "ISO 8601 with its zone, e.g. 2026-11-24T09:30:00+08:00."


def _enum(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"enum": list(values)}


# -- inputs ----------------------------------------------------------------------------


class CasePath(Params):
    id: RecordId = Field(description="Case id.")


class DeadlinePath(Params):
    id: RecordId = Field(description="Case id.")
    rule: str = Field(
        description="reply or complaint-on-site; others are met by their work.",
        json_schema_extra=_enum(Rule.ALL),
    )


class CallBackPath(Params):
    id: RecordId = Field(description="Call-back id.")


class CaseListQuery(Params):
    kind: str | None = Field(None, description="Kind.", json_schema_extra=_enum(Kind.ALL))
    status: str | None = Field(None, description="Statuses, comma separated.")
    owner: PositiveId | None = Field(None, description="Owner agent id.")
    resident: PositiveId | None = Field(None, description="Resident id.")
    phone: str | None = Field(None, description="The number to reply to.")
    overdue: TrueOrFalse | None = Field(None, description="With an open deadline past.")
    since: AwareInstant | None = Field(None, description="Opened at or after (ISO 8601).")
    until: AwareInstant | None = Field(None, description="Opened before (ISO 8601).")
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0

    def to_crm(self) -> CaseQuery:
        phone = None
        if self.phone is not None:
            try:
                phone = v.phone("phone", self.phone)
            except InvalidInput as err:
                raise InvalidQuery("phone", err.reason) from None
        return CaseQuery(
            kind=self.kind,
            status=tuple(s for s in (self.status or "").split(",") if s),
            owner_agent_id=self.owner,
            resident_id=self.resident,
            phone=phone,
            overdue=self.overdue,
            since=self.since,
            until=self.until,
            limit=self.limit,
            offset=self.offset,
        )


class CallBackQuery(Params):
    overdue: TrueOrFalse | None = Field(None, description="Only those past due.")
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


class DeadlineQuery(Params):
    overdue: TrueOrFalse | None = Field(None, description="true: passed; false: still in time.")
    rule: str | None = Field(None, description="One rule.", json_schema_extra=_enum(Rule.ALL))
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


class RepairOpening(Body):
    """For a repair: the start of its work order."""

    model_config = ConfigDict(extra="forbid")
    unknown: ClassVar[str] = "is not a work order field at opening"

    fault: str | None = Field(None, description="故障描述; default: the summary.")
    reporter: str | None = Field(None, description="申报人.")
    appointment_at: str | None = Field(
        None, description="预约时间; " + TIME, json_schema_extra={"format": "date-time"}
    )
    key_left: bool | None = Field(None, description="留钥匙.")
    on_price_list: bool | None = Field(None, description="Default true.")
    repair_class: str | None = Field(
        None, description="Confirmed class.", json_schema_extra=_enum(RepairClass.ALL)
    )
    rework_of: int | None = Field(None, ge=1, le=MAX_INT, description="Warranty rework of.")

    def to_crm(self) -> NewRepair:
        return NewRepair(
            fault=self.fault,
            reporter=self.reporter,
            appointment_at=v.when("repair.appointment_at", self.appointment_at),
            key_left=bool(self.key_left),
            on_price_list=True if self.on_price_list is None else self.on_price_list,
            repair_class=self.repair_class,
            rework_of=self.rework_of,
        )


class ComplaintOpening(Body):
    """For a complaint."""

    on_premises: bool | None = Field(None, description="Someone on site within 3 minutes.")
    serious: bool | None = Field(None, description="To the manager in person.")


class CaseOpen(Body):
    """A contact by any channel (phone calls open cases themselves). Unknown fields are
    refused."""

    model_config = ConfigDict(extra="forbid")
    unknown: ClassVar[str] = "is not a case field"

    kind: str = Field(description="Kind.", json_schema_extra=_enum(Kind.ALL))
    channel: str = Field(description="Channel.", json_schema_extra=_enum(Channel.ALL))
    summary: str = Field(description="1-200 characters.")
    detail: str | None = Field(None, description="Up to 5000 characters.")
    subtype: str | None = Field(None, description="Up to 40 characters.")
    by: str | None = Field(None, description=BY)
    owner_agent_id: int | None = Field(None, ge=1, le=MAX_INT, description="Owner.")
    resident_id: int | None = Field(None, ge=1, le=MAX_INT, description="The resident.")
    phone: str | None = Field(None, description="A mainland mobile or landline.")
    building: str | None = Field(None, description="栋号; with room, a known unit.")
    room: str | None = Field(None, description="房号.")
    answered: bool | None = Field(None, description="An inquiry answered on the spot.")
    repair: RepairOpening | None = Field(None, description="For a repair: its work order.")
    complaint: ComplaintOpening | None = Field(None, description="For a complaint.")


class _Change(Body):
    """Every change carries the version it was made on; who makes it is the sign-in's."""

    version: int = Field(ge=1, le=MAX_INT, description=VERSION)
    by: str | None = Field(None, description=BY)


class CaseUpdate(_Change):
    """Fields to change; status has its own endpoint. The CRM refuses a field it does not
    know, naming it."""

    model_config = ConfigDict(extra="allow")

    summary: str | None = Field(None, description="1-200 characters.")
    detail: str | None = Field(None, description="Up to 5000 characters.")
    subtype: str | None = Field(None, description="Up to 40 characters.")
    phone: str | None = Field(None, description="The number to reply to.")
    building: str | None = Field(None, description="栋号.")
    room: str | None = Field(None, description="房号.")
    owner_agent_id: int | None = Field(None, description="New owner.")
    resident_id: int | None = Field(None, description="The resident.")

    def changes(self) -> dict[str, Any]:
        """What was sent besides version and by (unknown fields too: the CRM names them)."""
        return self.model_dump(exclude_unset=True, exclude={"version", "by"})


Money = str | int | float


class WorkOrderUpdate(_Change):
    """Work order fields to change; money in yuan (at most 2 decimals, 0 to 100000); times
    ISO 8601 with zone, not in the future. price_reviewed and price_agreed record the
    review and the resident's agreement. The CRM refuses a field it does not know."""

    model_config = ConfigDict(extra="allow")

    reporter: str | None = Field(None, description="申报人.")
    phone: str | None = Field(None, description="The reporter's phone.")
    building: str | None = Field(None, description="栋号.")
    room: str | None = Field(None, description="房号.")
    fault: str | None = Field(None, description="故障描述.")
    work_done: str | None = Field(None, description="维修内容.")
    materials: str | None = Field(None, description="所用材料.")
    technician: str | None = Field(None, description="维修人.")
    appointment_at: str | None = Field(None, description="预约时间; " + TIME)
    on_site_at: str | None = Field(None, description="When the technician arrived; " + TIME)
    completed_at: str | None = Field(None, description="完成时间; " + TIME)
    material_cost: Money | None = Field(None, description="材料费, yuan.")
    labour_cost: Money | None = Field(None, description="人工费, yuan.")
    quoted: Money | None = Field(None, description="The reviewed price for a job off the list.")
    key_left: bool | None = Field(None, description="留钥匙.")
    on_price_list: bool | None = Field(None, description="On the standard price list.")
    price_reviewed: bool | None = Field(None, description="The price was reviewed.")
    price_agreed: bool | None = Field(None, description="The resident agreed the price.")
    verdict: str | None = Field(
        None, description="居民意见.", json_schema_extra=_enum(Satisfaction.ALL)
    )
    repair_class: str | None = Field(
        None, description="Confirm or overrule the class.", json_schema_extra=_enum(RepairClass.ALL)
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"version", "by"})


class CaseTransition(_Change):
    """A status change."""

    to: str = Field(description="The status to go to.", json_schema_extra=_enum(Status.ALL))
    note: str | None = Field(None, description="Why.")


class CaseReopen(_Change):
    """Back to work."""

    reason: str | None = Field(None, description="Why.")


class CaseNote(_Change):
    """A note on the timeline."""

    text: str | None = Field(None, description="The note.")


class DeadlineMet(_Change):
    """A reply given or someone on site."""

    at: str | None = Field(None, description="When (default now); " + TIME)


class ComplaintStepRequest(_Change):
    """The next step. classify needs details nature, subject, reasonable (and sort for a
    communication complaint); investigate and resolve need a note; assign needs
    details.responsible; review needs details.causes and prevention."""

    step: str = Field(description="The step.", json_schema_extra=_enum(Step.ORDER))
    note: str | None = Field(None, description="Findings, decision or what was done.")
    details: dict[str, Any] | None = Field(None, description="What the step decides.")


class CallBackPromise(_Change):
    """A promised reply (default due: the inquiry reply time)."""

    due_at: str | None = Field(None, description="When; " + TIME)


class CallBackAttemptRequest(_Change):
    """One try: reached needs satisfaction for a satisfaction call-back."""

    outcome: str = Field(description="How it went.", json_schema_extra=_enum(Outcome.ALL))
    satisfaction: str | None = Field(
        None, description="满意 / 不满意.", json_schema_extra=_enum(Satisfaction.ALL)
    )
    remarks: str | None = Field(None, description="What the resident said.")
    call_id: int | None = Field(None, ge=1, le=MAX_INT, description="The call of the try.")


class CallBackDial(Body):
    """Who dials: the agent must be ready; their phone rings first."""

    agent_id: int = Field(ge=1, le=MAX_INT, description="The agent whose softphone rings.")
    by: str | None = Field(None, description=BY)


# -- replies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CasePage:
    """A page of cases, newest first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[CaseRecord, ...]
    """The cases on this page."""
    total: int
    """Matches in all pages."""
    limit: int
    """Page size used."""
    offset: int
    """Offset used."""


@dataclass(frozen=True, slots=True)
class CallBackPage:
    """A page of call-backs owed, most urgent first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[CallBackRecord, ...]
    """The call-backs on this page."""
    total: int
    """Matches in all pages."""
    limit: int
    """Page size used."""
    offset: int
    """Offset used."""


@dataclass(frozen=True, slots=True)
class DeadlinePage:
    """A page of open deadlines, the earliest due first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[DeadlineItem, ...]
    """The deadlines on this page."""
    total: int
    """Matches in all pages."""
    limit: int
    """Page size used."""
    offset: int
    """Offset used."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """Every change to the case, oldest first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[AuditRecord, ...]
    """The audit trail."""


@dataclass(frozen=True, slots=True)
class CallBackDialling:
    """A call-back being dialled. Its call is linked to the case, recorded and transcribed;
    a try that does not reach the resident is recorded by itself, a reached one waits for
    the agent's POST .../attempts with this call_id. (The number is not sent.)"""

    __pydantic_config__ = DOCUMENTED_FIELDS

    callback_id: int
    """The call-back."""
    case_id: int
    """Its case."""
    call_id: int
    """The outbound call (GET /api/calls/{id})."""
    agent_id: int
    """The agent rung first."""


# -- routes ----------------------------------------------------------------------------

# What a change may be refused with besides a bad body: the case is unknown, the rules
# forbid it, or someone changed the case since it was read.
CHANGE = [
    ErrorId.NOT_FOUND,
    ErrorId.ILLEGAL_TRANSITION,
    ErrorId.STALE_VERSION,
    ErrorId.CONFLICT,
    ErrorId.STORAGE_UNAVAILABLE,
]
READ = [ErrorId.NOT_FOUND, ErrorId.STORAGE_UNAVAILABLE]
THE_CASE = Reply("The case after the change.", CaseRecord)


@route(
    "GET",
    "/api/cases",
    operation_id="listCases",
    summary="Cases, newest first, with filters",
    replies={200: Reply("A page.", CasePage)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def list_cases(request: web.Request, query: CaseListQuery) -> web.StreamResponse:
    records, total = await request.app[CRM].cases.list(query.to_crm())
    return json_reply(CasePage(tuple(records), total, query.limit, query.offset))


@route(
    "POST",
    "/api/cases",
    operation_id="openCase",
    summary="Log a contact (e-mail, letter, walk-in, chat, or phone by hand)",
    replies={201: Reply("The new case.", CaseRecord)},
    errors=CHANGE,
)
async def open_case(request: web.Request, body: CaseOpen) -> web.StreamResponse:
    """A contact by any channel: phone cases open themselves at hang-up, others here."""
    v.choice("kind", body.kind, Kind.ALL)
    # Given for another kind, the book refuses it (400 naming repair), never drops it.
    given_repair = body.repair is not None and bool(body.repair.model_fields_set)
    repair = None
    if body.kind == Kind.REPAIR or given_repair:
        repair = (body.repair or RepairOpening.model_validate({})).to_crm()
    complaint = None
    if body.complaint is not None:
        complaint = NewComplaint(
            on_premises=bool(body.complaint.on_premises), serious=bool(body.complaint.serious)
        )
    record = await request.app[CRM].cases.open(
        kind=body.kind,
        channel=body.channel,
        summary=body.summary,
        by=acting(request, body.by),
        detail=body.detail,
        subtype=body.subtype,
        owner_agent_id=body.owner_agent_id,
        resident_id=body.resident_id,
        phone=body.phone,
        building=body.building,
        room=body.room,
        repair=repair,
        complaint=complaint,
        answered=bool(body.answered),
    )
    return json_reply(record, status=201)


@route(
    "GET",
    "/api/cases/{id}",
    operation_id="getCase",
    summary="One case with all its parts",
    replies={200: Reply("The case.", CaseRecord)},
    errors=READ,
)
async def get_case(request: web.Request, path: CasePath) -> web.StreamResponse:
    return json_reply(await request.app[CRM].cases.get(path.id))


@route(
    "PATCH",
    "/api/cases/{id}",
    operation_id="updateCase",
    summary="Edit a case",
    replies={200: THE_CASE},
    errors=CHANGE,
)
async def update_case(request: web.Request, path: CasePath, body: CaseUpdate) -> web.StreamResponse:
    record = await request.app[CRM].cases.update(
        path.id, version=body.version, by=acting(request, body.by), changes=body.changes()
    )
    return json_reply(record)


@route(
    "POST",
    "/api/cases/{id}/transitions",
    operation_id="transitionCase",
    summary="Change status (rules: 409 with reason)",
    replies={200: THE_CASE},
    errors=CHANGE,
)
async def transition(
    request: web.Request, path: CasePath, body: CaseTransition
) -> web.StreamResponse:
    record = await request.app[CRM].cases.transition(
        path.id, to=body.to, version=body.version, by=acting(request, body.by), note=body.note
    )
    return json_reply(record)


@route(
    "POST",
    "/api/cases/{id}/reopen",
    operation_id="reopenCase",
    summary="Reopen a resolved or closed case",
    replies={200: THE_CASE},
    errors=CHANGE,
)
async def reopen(request: web.Request, path: CasePath, body: CaseReopen) -> web.StreamResponse:
    record = await request.app[CRM].cases.reopen(
        path.id, version=body.version, by=acting(request, body.by), reason=body.reason
    )
    return json_reply(record)


@route(
    "POST",
    "/api/cases/{id}/notes",
    operation_id="noteCase",
    summary="Add a note",
    replies={200: THE_CASE},
    errors=CHANGE,
)
async def note(request: web.Request, path: CasePath, body: CaseNote) -> web.StreamResponse:
    record = await request.app[CRM].cases.note(
        path.id, version=body.version, by=acting(request, body.by), text=body.text
    )
    return json_reply(record)


@route(
    "POST",
    "/api/cases/{id}/deadlines/{rule}/met",
    operation_id="meetDeadline",
    summary="Mark a reply given (reply) or someone on site (complaint-on-site)",
    replies={200: THE_CASE},
    errors=CHANGE,
)
async def meet(request: web.Request, path: DeadlinePath, body: DeadlineMet) -> web.StreamResponse:
    record = await request.app[CRM].cases.meet(
        path.id,
        rule=path.rule,
        version=body.version,
        by=acting(request, body.by),
        at=v.when("at", body.at),
    )
    return json_reply(record)


@route(
    "GET",
    "/api/cases/{id}/timeline",
    operation_id="caseTimeline",
    summary="Every change, oldest first",
    replies={200: Reply("The audit trail.", Timeline)},
    errors=READ,
)
async def timeline(request: web.Request, path: CasePath) -> web.StreamResponse:
    entries = await request.app[CRM].cases.timeline(path.id)
    return json_reply(Timeline(tuple(entries)))


@route(
    "PATCH",
    "/api/cases/{id}/work-order",
    operation_id="updateWorkOrder",
    summary="Fill in the work order",
    replies={200: THE_CASE},
    errors=CHANGE,
)
async def update_order(
    request: web.Request, path: CasePath, body: WorkOrderUpdate
) -> web.StreamResponse:
    record = await request.app[CRM].orders.update(
        path.id, version=body.version, by=acting(request, body.by), changes=body.changes()
    )
    return json_reply(record)


@route(
    "POST",
    "/api/cases/{id}/complaint/steps",
    operation_id="complaintStep",
    summary="Do the complaint's next step",
    replies={200: THE_CASE},
    errors=CHANGE,
)
async def complaint_step(
    request: web.Request, path: CasePath, body: ComplaintStepRequest
) -> web.StreamResponse:
    record = await request.app[CRM].complaints.step(
        path.id,
        step=body.step,
        version=body.version,
        by=acting(request, body.by),
        note=body.note,
        details=body.details,
    )
    return json_reply(record)


@route(
    "POST",
    "/api/cases/{id}/callbacks",
    operation_id="promiseCallBack",
    summary="Promise a reply call-back",
    replies={201: Reply("The case with the call-back.", CaseRecord)},
    errors=CHANGE,
)
async def promise_callback(
    request: web.Request, path: CasePath, body: CallBackPromise
) -> web.StreamResponse:
    record = await request.app[CRM].callbacks.promise(
        path.id,
        version=body.version,
        by=acting(request, body.by),
        due_at=v.when("due_at", body.due_at),
    )
    return json_reply(record, status=201)


@route(
    "GET",
    "/api/case-callbacks",
    operation_id="dueCallBacks",
    summary="Call-backs owed, most urgent first",
    replies={200: Reply("A page.", CallBackPage)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def due_callbacks(request: web.Request, query: CallBackQuery) -> web.StreamResponse:
    records, total = await request.app[CRM].callbacks.due(
        overdue=query.overdue or False, limit=query.limit, offset=query.offset
    )
    return json_reply(CallBackPage(tuple(records), total, query.limit, query.offset))


@route(
    "GET",
    "/api/case-callbacks/{id}",
    operation_id="getCallBack",
    summary="One call-back with its tries",
    replies={200: Reply("The call-back.", CallBackRecord)},
    errors=READ,
)
async def get_callback(request: web.Request, path: CallBackPath) -> web.StreamResponse:
    return json_reply(await request.app[CRM].callbacks.get(path.id))


@route(
    "POST",
    "/api/case-callbacks/{id}/attempts",
    operation_id="callBackAttempt",
    summary="Record a try and its outcome (unsatisfied reopens the case)",
    replies={201: Reply("The case after it.", CaseRecord)},
    errors=CHANGE,
)
async def callback_attempt(
    request: web.Request, path: CallBackPath, body: CallBackAttemptRequest
) -> web.StreamResponse:
    record = await request.app[CRM].callbacks.record_attempt(
        path.id,
        version=body.version,
        by=acting(request, body.by),
        outcome=body.outcome,
        satisfaction=body.satisfaction,
        remarks=body.remarks,
        call_id=body.call_id,
    )
    return json_reply(record, status=201)


@route(
    "GET",
    "/api/deadlines",
    operation_id="listDeadlines",
    summary="Open deadlines of all cases, the earliest due first",
    replies={200: Reply("A page.", DeadlinePage)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def deadlines(request: web.Request, query: DeadlineQuery) -> web.StreamResponse:
    """Open deadlines of every case, the earliest due first: the supervisor's to-do."""
    items, total = await request.app[DEADLINES].list(
        request.app[CRM].clock.now(),
        overdue=query.overdue,
        rule=query.rule,
        limit=query.limit,
        offset=query.offset,
    )
    return json_reply(DeadlinePage(tuple(items), total, query.limit, query.offset))


@route(
    "POST",
    "/api/case-callbacks/{id}/dial",
    operation_id="dialCallBack",
    summary="Dial the call-back: the agent's softphone first, then the resident",
    replies={202: Reply("Dialling started (the outbound call's id).", CallBackDialling)},
    errors=CHANGE,
)
async def dial(request: web.Request, path: CallBackPath, body: CallBackDial) -> web.StreamResponse:
    """The agent's phone rings first, then the resident's; 202 while that happens."""
    dialling = await request.app[DIALLER].dial(
        path.id, agent_id=body.agent_id, by=acting(request, body.by)
    )
    reply = CallBackDialling(
        dialling.callback_id, dialling.case_id, dialling.call_id, dialling.agent_id
    )
    return json_reply(reply, status=202)


ROUTES = (
    list_cases,
    open_case,
    get_case,
    update_case,
    transition,
    reopen,
    note,
    meet,
    timeline,
    update_order,
    complaint_step,
    promise_callback,
    due_callbacks,
    get_callback,
    callback_attempt,
    deadlines,
    dial,
)


def add_case_routes(app: web.Application) -> None:
    add_routes(app, ROUTES)
