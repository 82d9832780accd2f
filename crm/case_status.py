"""Status changes of a case and what each one brings with it.

Resolving, closing, cancelling and reopening are reached from several doors (the
transitions API, a complaint's 处理 and 归档 steps, an unsatisfied call-back), so the
consequences live here once: resolving a repair or complaint schedules its call-back
(回访); closing needs that call-back settled; reopening keeps every earlier row and
counts the reopening.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from crm import models as m
from crm.case_store import CaseChange
from crm.rules import (
    REOPENABLE,
    CallBackReason,
    CallBackStatus,
    IllegalTransition,
    Kind,
    Rule,
    ServiceRules,
    Status,
    Step,
    check_transition,
    deadline,
    deadline_at,
    needs_callback,
    repair_deadlines,
)


async def order_of(change: CaseChange) -> m.RepairOrder | None:
    return await change.session.scalar(
        select(m.RepairOrder).where(m.RepairOrder.case_id == change.case.id)
    )


async def complaint_of(change: CaseChange) -> m.Complaint | None:
    return await change.session.scalar(
        select(m.Complaint).where(m.Complaint.case_id == change.case.id)
    )


def record_step(change: CaseChange, complaint: m.Complaint, step: str, note: str | None) -> None:
    change.session.add(
        m.ComplaintStep(complaint_id=complaint.id, step=step, by=change.by, at=change.at, note=note)
    )
    change.set(complaint, "complaint", "step", step)


async def callbacks_of(change: CaseChange, *statuses: str) -> list[m.CaseCallBack]:
    query = select(m.CaseCallBack).where(m.CaseCallBack.case_id == change.case.id)
    if statuses:
        query = query.where(m.CaseCallBack.status.in_(statuses))
    return list((await change.session.scalars(query.order_by(m.CaseCallBack.id))).all())


async def add_callback(
    change: CaseChange,
    rules: ServiceRules,
    reason: str,
    *,
    due_at: datetime | None = None,
    queue_callback_id: int | None = None,
) -> m.CaseCallBack:
    """A call-back owed, with its 回访 deadline (default: ``callback_due_h`` from now)."""
    if due_at is None:
        spec = deadline(rules, Rule.CALL_BACK, change.at)
    else:
        spec = deadline_at(rules, Rule.CALL_BACK, change.at, due_at)
    callback = m.CaseCallBack(
        case_id=change.case.id,
        reason=reason,
        due_at=spec.due_at,
        status=CallBackStatus.DUE,
        queue_callback_id=queue_callback_id,
        created_at=change.at,
    )
    change.session.add(callback)
    await change.session.flush()
    change.audit("call-back", callback.id, "scheduled", "due_at", None, spec.due_at)
    change.add_deadlines([spec])
    return callback


async def transition(
    change: CaseChange, rules: ServiceRules, wanted: str, note: str | None = None
) -> None:
    case = change.case
    check_transition(case.status, wanted)
    if wanted == Status.RESOLVED:
        await _resolve(change, rules, note)
    elif wanted == Status.CLOSED:
        await _close(change, note)
    elif wanted == Status.CANCELLED:
        await change.cancel()
        for callback in await callbacks_of(change, CallBackStatus.DUE):
            change.set(callback, "call-back", "status", CallBackStatus.CANCELLED)
        change.set(case, "case", "closed_at", change.at)
    old = case.status
    case.status = wanted
    change.audit("case", case.id, "status", "status", old, wanted)
    if note:
        await change.note(note)


async def _resolve(change: CaseChange, rules: ServiceRules, note: str | None) -> None:
    case = change.case
    done_at = change.at
    if case.kind == Kind.REPAIR:
        order = await order_of(change)
        if order is None or order.completed_at is None:
            raise IllegalTransition(
                case.status, Status.RESOLVED, "the work order has no completion time yet"
            )
        done_at = order.completed_at
    if case.kind == Kind.COMPLAINT:
        complaint = await complaint_of(change)
        assert complaint is not None
        if complaint.step != Step.ASSIGN:
            missing = Step.ORDER[Step.ORDER.index(complaint.step) + 1]
            raise IllegalTransition(
                case.status,
                Status.RESOLVED,
                f"the complaint's next step is {missing} ({Step.LABELS[missing]}); "
                "a complaint is resolved by its 处理 step after 定责",
            )
        record_step(change, complaint, Step.RESOLVE, note)
    # Whatever is still open was done by now at the latest: counting it met at the
    # resolution (the latest moment possible) never reports a deadline kept that was not.
    for d in await change.open_deadlines():
        if d.rule != Rule.CALL_BACK:
            d.met_at = max(done_at, d.starts_at)
            change.audit("deadline", d.id, "deadline-met", d.rule, None, d.met_at)
    change.set(case, "case", "resolved_at", change.at)
    if needs_callback(case.kind):
        await add_callback(change, rules, CallBackReason.SATISFACTION)


async def _close(change: CaseChange, note: str | None) -> None:
    case = change.case
    if needs_callback(case.kind):
        satisfaction = [
            c
            for c in await callbacks_of(change)
            if c.reason == CallBackReason.SATISFACTION and c.status != CallBackStatus.CANCELLED
        ]
        if not satisfaction or satisfaction[-1].status not in CallBackStatus.SETTLED:
            raise IllegalTransition(
                case.status,
                Status.CLOSED,
                "the call-back (回访) outcome is required first: reach the resident and "
                "record satisfied or unsatisfied (or every try failing)",
            )
    if case.kind == Kind.COMPLAINT:
        complaint = await complaint_of(change)
        assert complaint is not None
        if complaint.step != Step.REVIEW:
            raise IllegalTransition(
                case.status,
                Status.CLOSED,
                "a complaint is archived (归档) after its review (总结): causes and prevention",
            )
        record_step(change, complaint, Step.ARCHIVE, note)
    change.set(case, "case", "closed_at", change.at)


async def reopen(change: CaseChange, rules: ServiceRules, reason: str) -> None:
    """Back to work, keeping every earlier row; the deadline to fix runs again from now."""
    case = change.case
    if case.status not in REOPENABLE:
        raise IllegalTransition(
            case.status, Status.IN_PROGRESS, "only a resolved or closed case can be reopened"
        )
    old = case.status
    case.status = Status.IN_PROGRESS
    change.audit("case", case.id, "reopened", "status", old, Status.IN_PROGRESS)
    await change.note(reason)
    change.set(case, "case", "reopened", case.reopened + 1)
    change.set(case, "case", "resolved_at", None)
    change.set(case, "case", "closed_at", None)
    for callback in await callbacks_of(change, CallBackStatus.DUE):
        change.set(callback, "call-back", "status", CallBackStatus.CANCELLED)
    await change.cancel([Rule.CALL_BACK])
    if case.kind == Kind.REPAIR:
        order = await order_of(change)
        assert order is not None
        change.set(order, "repair-order", "completed_at", None)
        change.add_deadlines(
            [
                s
                for s in repair_deadlines(rules, order.repair_class, change.at)
                if s.rule == Rule.FIXED
            ]
        )
    elif case.kind == Kind.COMPLAINT:
        complaint = await complaint_of(change)
        assert complaint is not None
        change.set(complaint, "complaint", "step", Step.ASSIGN)  # 处理 again, then 回访
