"""A case as it leaves the CRM: frozen records built from the rows in one transaction.

A case is read whole (its calls, deadlines, work order, complaint steps, call-backs) so the
agent's screen and the API show one consistent moment, and ``version`` tells the client
which moment that was when it sends a change back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm import models as m
from crm.exceptions import NotFound
from crm.repository import record_json
from crm.rules import Kind, Rule, Step


@dataclass(frozen=True, slots=True)
class CaseCallRecord:
    call_id: int
    role: str
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class DeadlineRecord:
    id: int
    case_id: int
    rule: str
    label: str
    starts_at: datetime
    due_at: datetime
    warn_at: datetime
    met_at: datetime | None
    cancelled_at: datetime | None
    overdue: bool  # open and past due, or met after it

    @property
    def open(self) -> bool:
        return self.met_at is None and self.cancelled_at is None


@dataclass(frozen=True, slots=True)
class RepairOrderRecord:
    id: int
    reporter: str | None
    building: str | None
    room: str | None
    phone: str | None
    reported_at: datetime
    appointment_at: datetime | None
    key_left: bool
    fault: str
    work_done: str | None
    materials: str | None
    material_cost: str  # yuan, "12.50": exact, never a float
    labour_cost: str
    total: str
    technician: str | None
    on_site_at: datetime | None
    completed_at: datetime | None
    verdict: str | None
    repair_class: str
    suggested_class: str | None
    suggested_because: str | None
    class_confirmed_by: str | None
    class_confirmed_at: datetime | None
    on_price_list: bool
    quoted: str | None
    price_reviewed_by: str | None
    price_reviewed_at: datetime | None
    price_agreed_at: datetime | None
    rework_of: int | None


@dataclass(frozen=True, slots=True)
class StepRecord:
    step: str
    label: str
    by: str
    at: datetime
    note: str | None


@dataclass(frozen=True, slots=True)
class ComplaintRecord:
    id: int
    nature: str | None
    sort: str | None
    subject: str | None
    reasonable: bool | None
    on_premises: bool
    serious: bool
    responsible: str | None
    step: str
    next_step: str | None
    causes: str | None
    prevention: str | None
    steps: tuple[StepRecord, ...]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: int
    call_id: int | None
    by: str
    at: datetime
    outcome: str | None


@dataclass(frozen=True, slots=True)
class CallBackRecord:
    id: int
    case_id: int
    reason: str
    due_at: datetime
    status: str
    reached: bool | None
    satisfaction: str | None
    remarks: str | None
    letter: str | None
    done_at: datetime | None
    done_by: str | None
    queue_callback_id: int | None
    created_at: datetime
    attempts: tuple[AttemptRecord, ...]

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class CaseRecord:
    id: int
    kind: str
    kind_label: str
    subtype: str | None
    channel: str
    status: str
    owner_agent_id: int | None
    resident_id: int | None
    phone: str | None
    building: str | None
    room: str | None
    summary: str
    detail: str | None
    opened_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened: int
    updated_at: datetime
    version: int
    overdue: bool
    calls: tuple[CaseCallRecord, ...]
    deadlines: tuple[DeadlineRecord, ...]
    repair: RepairOrderRecord | None
    complaint: ComplaintRecord | None
    callbacks: tuple[CallBackRecord, ...]

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    case_id: int | None
    entity: str
    entity_id: int
    action: str
    field: str | None
    old: str | None
    new: str | None
    by: str
    at: datetime

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
    attempts: dict[int, list[AttemptRecord]] = {c.id: [] for c in callbacks}
    if callbacks:
        rows = await session.scalars(
            select(m.CaseCallBackAttempt)
            .where(m.CaseCallBackAttempt.callback_id.in_(list(attempts)))
            .order_by(m.CaseCallBackAttempt.id)
        )
        for a in rows:
            attempts[a.callback_id].append(AttemptRecord(a.id, a.call_id, a.by, a.at, a.outcome))
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
