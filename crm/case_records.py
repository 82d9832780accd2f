"""A case as it leaves the CRM: frozen records built from the rows in one transaction.

A case is read whole (its calls, deadlines, work order, complaint steps, call-backs) so the
agent's screen and the API show one consistent moment, and ``version`` tells the client
which moment that was when it sends a change back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm import models as m
from crm.exceptions import NotFound
from crm.repository import DOCUMENTED_FIELDS, OneOf, record_json
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


@dataclass(frozen=True, slots=True)
class CaseCallRecord:
    """A call of a case."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    call_id: int
    """The call (GET /api/calls/{id})."""
    role: str
    """opened / follow-up / call-back."""
    linked_at: datetime
    """When the call was linked."""


@dataclass(frozen=True, slots=True)
class DeadlineRecord:
    """One deadline of the service standards."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Deadline id."""
    case_id: int
    """Its case."""
    rule: Annotated[str, OneOf(Rule.ALL)]
    """One of on-site, fixed, reply, price-review, complaint-on-site, call-back."""
    label: str
    """The rule as staff say it (急修到场, 维修完成, 咨询回复 …)."""
    starts_at: datetime
    """When the time started (for repairs: the call)."""
    due_at: datetime
    """The last moment that is still in time."""
    warn_at: datetime
    """When the deadline counts as near (rules.warn_fraction left)."""
    met_at: datetime | None
    """When it was met; null while open."""
    cancelled_at: datetime | None
    """When it stopped applying (class changed, case cancelled)."""
    overdue: bool
    """Open and past due_at, or met after it."""

    @property
    def open(self) -> bool:
        return self.met_at is None and self.cancelled_at is None


@dataclass(frozen=True, slots=True)
class RepairOrderRecord:
    """维修服务任务单."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Work order id."""
    reporter: str | None
    """申报人."""
    building: str | None
    """栋号."""
    room: str | None
    """房号."""
    phone: str | None
    """The reporter's phone."""
    reported_at: datetime
    """时间 reported (the call)."""
    appointment_at: datetime | None
    """预约时间."""
    key_left: bool
    """留钥匙: a key was left for the technician."""
    fault: str
    """故障描述."""
    work_done: str | None
    """维修内容."""
    materials: str | None
    """所用材料."""
    material_cost: str
    """材料费, yuan as a decimal string."""
    labour_cost: str
    """人工费, yuan as a decimal string."""
    total: str
    """合计 (materials + labour)."""
    technician: str | None
    """维修人."""
    on_site_at: datetime | None
    """When the technician arrived."""
    completed_at: datetime | None
    """完成时间."""
    verdict: Annotated[str, OneOf(Satisfaction.ALL)] | None
    """居民意见: satisfied / unsatisfied."""
    repair_class: Annotated[str, OneOf(RepairClass.ALL)]
    """urgent / general (急修 / 一般): decides the deadlines."""
    suggested_class: Annotated[str, OneOf(RepairClass.ALL)] | None
    """What the IVR choice and the call's words suggested."""
    suggested_because: str | None
    """Why, e.g. 'words: 电梯, 漏水'."""
    class_confirmed_by: str | None
    """Who confirmed the class; null: only suggested."""
    class_confirmed_at: datetime | None
    """When it was confirmed."""
    on_price_list: bool
    """On the standard price list; if not, reviewed in 15 minutes."""
    quoted: str | None
    """The reviewed price for a job off the list."""
    price_reviewed_by: str | None
    """The engineering supervisor who reviewed it."""
    price_reviewed_at: datetime | None
    """When."""
    price_agreed_at: datetime | None
    """When the resident agreed (work cannot start before)."""
    rework_of: int | None
    """Warranty: the order this redoes, free of charge."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One complaint step done."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    step: Annotated[str, OneOf(Step.ORDER)]
    """One of receive, classify, investigate, assign, resolve, call-back, review, archive."""
    label: str
    """接诉 辨诉 析诉 定责 处理 回访 总结 归档."""
    by: str
    """Who did it."""
    at: datetime
    """When."""
    note: str | None
    """What was found, decided or done."""


@dataclass(frozen=True, slots=True)
class ComplaintRecord:
    """A complaint's classification and steps."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Complaint id."""
    nature: Annotated[str, OneOf(Nature.ALL)] | None
    """valid / communication (有效投诉 / 沟通性投诉)."""
    sort: Annotated[str, OneOf(SORTS)] | None
    """For a communication complaint: help, inquiry, suggestion, venting (求助 咨询 建议 发泄)."""
    subject: Annotated[str, OneOf(SUBJECTS)] | None
    """equipment, attitude, quality, incident (设备 服务态度 服务质量 突发事件)."""
    reasonable: bool | None
    """Judged reasonable at 辨诉."""
    on_premises: bool
    """About something happening now: someone on site within 3 minutes."""
    serious: bool
    """Goes to the manager in person."""
    responsible: str | None
    """Department or person made responsible (定责)."""
    step: Annotated[str, OneOf(Step.ORDER)]
    """The step done last."""
    next_step: Annotated[str, OneOf(Step.ORDER)] | None
    """The step to do next; null when archived."""
    causes: str | None
    """总结: causes."""
    prevention: str | None
    """总结: preventive measures."""
    steps: tuple[StepRecord, ...]
    """Every step done, oldest first (a reopening adds rows, never removes)."""


@dataclass(frozen=True, slots=True)
class CallBackAttemptRecord:
    """One try at a call-back."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Attempt id."""
    call_id: int | None
    """The outbound call, when dialled from the case."""
    by: str
    """Who tried."""
    at: datetime
    """When."""
    outcome: Annotated[str, OneOf(Outcome.ALL)] | None
    """One of reached, no-answer, busy, failed."""


@dataclass(frozen=True, slots=True)
class CallBackRecord:
    """A call-back (回访)."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Call-back id."""
    case_id: int
    """Its case."""
    reason: Annotated[str, OneOf(CallBackReason.ALL)]
    """satisfaction (after resolution) / promised-reply / queued."""
    due_at: datetime
    """When it is due (moves on after a try that did not reach the resident)."""
    status: Annotated[str, OneOf(CallBackStatus.ALL)]
    """due, done, unreachable or cancelled."""
    reached: bool | None
    """Whether the resident was reached."""
    satisfaction: Annotated[str, OneOf(Satisfaction.ALL)] | None
    """satisfied / unsatisfied (满意 / 不满意)."""
    remarks: str | None
    """What the resident said."""
    letter: str | None
    """Standard letter sent when unreachable (tried-to-reach)."""
    done_at: datetime | None
    """When it was settled."""
    done_by: str | None
    """Who settled it."""
    queue_callback_id: int | None
    """The queue call-back it came from, if any."""
    created_at: datetime
    """When it was scheduled."""
    attempts: tuple[CallBackAttemptRecord, ...]
    """Every try, oldest first."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A case with all its parts, as one moment."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Case id."""
    kind: Annotated[str, OneOf(Kind.ALL)]
    """One of inquiry, repair, complaint, emergency, message."""
    kind_label: str
    """The kind as staff say it: 咨询 / 报修 / 投诉 / 紧急求助 / 留言."""
    subtype: str | None
    """E.g. 家政 or 代订 for other requests logged as inquiries."""
    channel: Annotated[str, OneOf(Channel.ALL)]
    """How the contact came: phone, email, letter, walk-in, chat."""
    status: Annotated[str, OneOf(Status.ALL)]
    """One of open, in-progress, waiting, resolved, closed, cancelled."""
    owner_agent_id: int | None
    """The agent who took it and follows it up (首问负责制)."""
    resident_id: int | None
    """The resident (or the caller's contact to be completed)."""
    phone: str | None
    """The number to reply to (digits)."""
    building: str | None
    """栋号 of the unit concerned."""
    room: str | None
    """房号 of the unit concerned."""
    summary: str
    """What it is about, in a line."""
    detail: str | None
    """What was said and done."""
    opened_at: datetime
    """When the contact came (deadlines count from here)."""
    resolved_at: datetime | None
    """When it was resolved; null while open or after a reopening."""
    closed_at: datetime | None
    """When it was closed (归档) or cancelled."""
    reopened: int
    """How often it was reopened (an unsatisfied resident reopens it)."""
    updated_at: datetime
    """Last change."""
    version: int
    """Send it back with a change; a stale one is 409 stale-version."""
    overdue: bool
    """An open deadline has passed."""
    calls: tuple[CaseCallRecord, ...]
    """Calls of the case: the one that opened it, later ones, call-backs."""
    deadlines: tuple[DeadlineRecord, ...]
    """Every deadline the case had, met, cancelled or open."""
    repair: RepairOrderRecord | None
    """The work order (维修服务任务单) of a repair case."""
    complaint: ComplaintRecord | None
    """Classification and steps of a complaint case."""
    callbacks: tuple[CallBackRecord, ...]
    """Call-backs (回访) owed or done."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change: who, when, old → new."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Entry id."""
    case_id: int | None
    """The case."""
    entity: str
    """case / repair-order / complaint / call-back / deadline."""
    entity_id: int
    """Which one."""
    action: str
    """opened / changed / status / reopened / note / deadline-met / …"""
    field: str | None
    """The field changed."""
    old: str | None
    """Value before."""
    new: str | None
    """Value after."""
    by: str
    """Who."""
    at: datetime
    """When."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def deadline_record(d: m.Deadline, now: datetime) -> DeadlineRecord:
    # "Within 2 hours" includes the second the 2 hours end: late is strictly after due.
    if d.met_at is not None:
        late = d.met_at > d.due_at
    else:
        late = d.cancelled_at is None and now > d.due_at
    return DeadlineRecord(
        id=d.id,
        case_id=d.case_id,
        rule=d.rule,
        label=Rule.LABELS.get(d.rule, d.rule),
        starts_at=d.starts_at,
        due_at=d.due_at,
        warn_at=d.warn_at,
        met_at=d.met_at,
        cancelled_at=d.cancelled_at,
        overdue=late,
    )


async def rooms_by_id(session: AsyncSession, ids: set[int]) -> dict[int, m.Room]:
    if not ids:
        return {}
    rows = await session.scalars(select(m.Room).where(m.Room.id.in_(ids)))
    return {r.id: r for r in rows}


async def load_callbacks(
    session: AsyncSession, case_ids: list[int]
) -> dict[int, list[CallBackRecord]]:
    found: dict[int, list[CallBackRecord]] = {i: [] for i in case_ids}
    if not case_ids:
        return found
    callbacks = (
        await session.scalars(
            select(m.CaseCallBack)
            .where(m.CaseCallBack.case_id.in_(case_ids))
            .order_by(m.CaseCallBack.id)
        )
    ).all()
    attempts: dict[int, list[CallBackAttemptRecord]] = {c.id: [] for c in callbacks}
    if callbacks:
        rows = await session.scalars(
            select(m.CaseCallBackAttempt)
            .where(m.CaseCallBackAttempt.callback_id.in_(list(attempts)))
            .order_by(m.CaseCallBackAttempt.id)
        )
        for a in rows:
            attempts[a.callback_id].append(
                CallBackAttemptRecord(a.id, a.call_id, a.by, a.at, a.outcome)
            )
    for c in callbacks:
        found[c.case_id].append(
            CallBackRecord(
                id=c.id,
                case_id=c.case_id,
                reason=c.reason,
                due_at=c.due_at,
                status=c.status,
                reached=c.reached,
                satisfaction=c.satisfaction,
                remarks=c.remarks,
                letter=c.letter,
                done_at=c.done_at,
                done_by=c.done_by,
                queue_callback_id=c.queue_callback_id,
                created_at=c.created_at,
                attempts=tuple(attempts[c.id]),
            )
        )
    return found


async def load_cases(session: AsyncSession, cases: list[m.Case], now: datetime) -> list[CaseRecord]:
    """Records for ``cases`` with all their parts, in a handful of queries for the page."""
    ids = [c.id for c in cases]
    if not ids:
        return []
    calls: dict[int, list[CaseCallRecord]] = {i: [] for i in ids}
    for link in await session.scalars(
        select(m.CaseCall).where(m.CaseCall.case_id.in_(ids)).order_by(m.CaseCall.id)
    ):
        calls[link.case_id].append(CaseCallRecord(link.call_id, link.role, link.linked_at))
    deadlines: dict[int, list[DeadlineRecord]] = {i: [] for i in ids}
    for d in await session.scalars(
        select(m.Deadline).where(m.Deadline.case_id.in_(ids)).order_by(m.Deadline.id)
    ):
        deadlines[d.case_id].append(deadline_record(d, now))
    orders = {
        o.case_id: o
        for o in await session.scalars(select(m.RepairOrder).where(m.RepairOrder.case_id.in_(ids)))
    }
    complaints = {
        c.case_id: c
        for c in await session.scalars(select(m.Complaint).where(m.Complaint.case_id.in_(ids)))
    }
    steps: dict[int, list[StepRecord]] = {c.id: [] for c in complaints.values()}
    if complaints:
        for s in await session.scalars(
            select(m.ComplaintStep)
            .where(m.ComplaintStep.complaint_id.in_(list(steps)))
            .order_by(m.ComplaintStep.id)
        ):
            steps[s.complaint_id].append(
                StepRecord(s.step, Step.LABELS.get(s.step, s.step), s.by, s.at, s.note)
            )
    room_ids = {c.room_id for c in cases if c.room_id is not None}
    room_ids |= {o.room_id for o in orders.values() if o.room_id is not None}
    rooms = await rooms_by_id(session, room_ids)
    callbacks = await load_callbacks(session, ids)

    def where(room_id: int | None) -> tuple[str | None, str | None]:
        r = rooms.get(room_id) if room_id is not None else None
        return (r.building, r.room) if r is not None else (None, None)

    records = []
    for c in cases:
        building, room = where(c.room_id)
        case_deadlines = deadlines[c.id]
        records.append(
            CaseRecord(
                id=c.id,
                kind=c.kind,
                kind_label=Kind.LABELS.get(c.kind, c.kind),
                subtype=c.subtype,
                channel=c.channel,
                status=c.status,
                owner_agent_id=c.owner_agent_id,
                resident_id=c.resident_id,
                phone=c.phone,
                building=building,
                room=room,
                summary=c.summary,
                detail=c.detail,
                opened_at=c.opened_at,
                resolved_at=c.resolved_at,
                closed_at=c.closed_at,
                reopened=c.reopened,
                updated_at=c.updated_at,
                version=c.version,
                overdue=any(d.open and d.overdue for d in case_deadlines),
                calls=tuple(calls[c.id]),
                deadlines=tuple(case_deadlines),
                repair=_order(orders[c.id], where) if c.id in orders else None,
                complaint=_complaint(complaints[c.id], steps) if c.id in complaints else None,
                callbacks=tuple(callbacks[c.id]),
            )
        )
    return records


async def load_case(session: AsyncSession, case_id: int, now: datetime) -> CaseRecord:
    case = await session.get(m.Case, case_id, populate_existing=True)
    if case is None:
        raise NotFound("case", case_id)
    return (await load_cases(session, [case], now))[0]


def _order(o: m.RepairOrder, where: Any) -> RepairOrderRecord:
    building, room = where(o.room_id)
    return RepairOrderRecord(
        id=o.id,
        reporter=o.reporter,
        building=building,
        room=room,
        phone=o.phone,
        reported_at=o.reported_at,
        appointment_at=o.appointment_at,
        key_left=o.key_left,
        fault=o.fault,
        work_done=o.work_done,
        materials=o.materials,
        material_cost=yuan(o.material_cost_fen),
        labour_cost=yuan(o.labour_cost_fen),
        total=yuan(o.material_cost_fen + o.labour_cost_fen),
        technician=o.technician,
        on_site_at=o.on_site_at,
        completed_at=o.completed_at,
        verdict=o.verdict,
        repair_class=o.repair_class,
        suggested_class=o.suggested_class,
        suggested_because=o.suggested_because,
        class_confirmed_by=o.class_confirmed_by,
        class_confirmed_at=o.class_confirmed_at,
        on_price_list=o.on_price_list,
        quoted=yuan(o.quoted_fen) if o.quoted_fen is not None else None,
        price_reviewed_by=o.price_reviewed_by,
        price_reviewed_at=o.price_reviewed_at,
        price_agreed_at=o.price_agreed_at,
        rework_of=o.rework_of,
    )


def _complaint(c: m.Complaint, steps: dict[int, list[StepRecord]]) -> ComplaintRecord:
    index = Step.ORDER.index(c.step)
    return ComplaintRecord(
        id=c.id,
        nature=c.nature,
        sort=c.sort,
        subject=c.subject,
        reasonable=c.reasonable,
        on_premises=c.on_premises,
        serious=c.serious,
        responsible=c.responsible,
        step=c.step,
        next_step=Step.ORDER[index + 1] if index + 1 < len(Step.ORDER) else None,
        causes=c.causes,
        prevention=c.prevention,
        steps=tuple(steps[c.id]),
    )
