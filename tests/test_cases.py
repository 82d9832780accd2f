"""Cases as the service standards define them (§2-5), on SQLite and PostgreSQL.

Every time comes from a hand-moved clock, so each deadline is checked one second before
and exactly at its boundary; every status change the rules forbid is refused; the audit
trail and the case's parts are read back through the books, never taken from the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from crm import models as m
from crm.case_callbacks import CallBackBook
from crm.case_records import CaseRecord
from crm.case_store import StaleVersion
from crm.cases import CaseBook, CaseQuery, NewComplaint, NewRepair
from crm.complaints import ComplaintDesk
from crm.db import make_sessionmaker
from crm.exceptions import InvalidInput, NotFound
from crm.rules import (
    CallBackStatus,
    IllegalTransition,
    Kind,
    Outcome,
    RepairClass,
    Rule,
    Satisfaction,
    ServiceRules,
    Status,
    Step,
)
from crm.work_orders import WorkOrders
from tests.clocks import T0, ManualClock
from tests.databases import one_connection_engine

AGENT = "agent:7 王敏"


@dataclass
class Crm:
    clock: ManualClock
    cases: CaseBook
    orders: WorkOrders
    complaints: ComplaintDesk
    callbacks: CallBackBook
    sessions: object

    async def count(self, model: type[m.Base]) -> int:
        async with self.sessions() as session:  # type: ignore[operator]
            return int(await session.scalar(select(func.count()).select_from(model)))


async def make_crm(db_url: str, rules: ServiceRules) -> AsyncIterator[Crm]:
    engine = one_connection_engine(db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(
            insert(m.Room), [{"building": "3", "room": "201"}, {"building": "12", "room": "1502"}]
        )
    clock = ManualClock()
    yield Crm(
        clock,
        CaseBook(sessions, clock, rules),
        WorkOrders(sessions, clock, rules),
        ComplaintDesk(sessions, clock, rules),
        CallBackBook(sessions, clock, rules),
        sessions,
    )
    await engine.dispose()


@pytest.fixture
async def crm(migrated_db_url: str) -> AsyncIterator[Crm]:
    async for books in make_crm(migrated_db_url, ServiceRules()):
        yield books


async def repair(crm: Crm, **kw: object) -> CaseRecord:
    details = NewRepair(**kw)  # type: ignore[arg-type]
    return await crm.cases.open(
        kind=Kind.REPAIR,
        channel="phone",
        summary="厨房水管漏水",
        by=AGENT,
        phone="13800138000",
        building="3",
        room="201",
        repair=details,
    )


def deadline(case: CaseRecord, rule: str) -> tuple[object, ...]:
    found = [d for d in case.deadlines if d.rule == rule and d.cancelled_at is None]
    assert len(found) == 1, case.deadlines
    d = found[0]
    return (d.due_at - d.starts_at, d.met_at, d.overdue)


async def overdue_ids(crm: Crm) -> list[int]:
    found, _ = await crm.cases.list(CaseQuery(overdue=True))
    return [c.id for c in found]


async def at_boundary(crm: Crm, case_id: int, due: timedelta) -> None:
    """In time at the very second ``due`` ends (counted from now), overdue one second later."""
    start = crm.clock.now()
    crm.clock.set(start + due)
    assert case_id not in await overdue_ids(crm)
    assert not (await crm.cases.get(case_id)).overdue
    crm.clock.set(start + due + timedelta(seconds=1))
    assert case_id in await overdue_ids(crm)
    assert (await crm.cases.get(case_id)).overdue


# -- deadlines at their boundaries ---------------------------------------------------------


async def test_urgent_repair_must_be_on_site_in_2_hours_and_fixed_in_24(crm: Crm) -> None:
    case = await repair(crm, repair_class=RepairClass.URGENT)
    assert deadline(case, Rule.ON_SITE)[0] == timedelta(hours=2)
    assert deadline(case, Rule.FIXED)[0] == timedelta(hours=24)
    await at_boundary(crm, case.id, timedelta(hours=2))
    # On site late: the deadline shows it was missed; the case is still due to be fixed.
    case = await crm.orders.update(
        case.id,
        version=case.version,
        by="技师 李强",
        changes={"on_site_at": crm.clock.now().isoformat()},
    )
    assert deadline(case, Rule.ON_SITE)[1:] == (T0 + timedelta(hours=2, seconds=1), True)
    assert not case.overdue
    crm.clock.set(T0)
    await at_boundary(crm, case.id, timedelta(hours=24))


async def test_general_repair_must_be_fixed_in_72_hours(crm: Crm) -> None:
    case = await repair(crm, repair_class=RepairClass.GENERAL)
    assert [d.rule for d in case.deadlines] == [Rule.FIXED]
    await at_boundary(crm, case.id, timedelta(hours=72))


async def test_fixed_in_time_is_not_overdue_even_after_the_deadline(crm: Crm) -> None:
    case = await repair(crm, repair_class=RepairClass.GENERAL)
    crm.clock.advance(hours=71)
    case = await crm.orders.update(
        case.id,
        version=case.version,
        by=AGENT,
        changes={"work_done": "换阀门", "completed_at": crm.clock.now().isoformat()},
    )
    crm.clock.advance(hours=10)
    assert case.id not in await overdue_ids(crm)
    assert deadline(await crm.cases.get(case.id), Rule.FIXED)[2] is False


async def test_inquiry_not_answered_on_the_call_gets_a_reply_within_5_minutes(crm: Crm) -> None:
    case = await crm.cases.open(
        kind=Kind.INQUIRY, channel="phone", summary="物业费怎么交", by=AGENT, phone="13800138000"
    )
    assert deadline(case, Rule.REPLY)[0] == timedelta(minutes=5)
    await at_boundary(crm, case.id, timedelta(minutes=5))
    answered = await crm.cases.open(
        kind=Kind.INQUIRY, channel="phone", summary="停车", by=AGENT, answered=True
    )
    assert answered.status == Status.RESOLVED
    assert answered.deadlines[0].met_at == crm.clock.now()
    assert answered.callbacks == ()  # an inquiry gets no satisfaction call-back


async def test_job_off_the_price_list_is_reviewed_within_15_minutes(crm: Crm) -> None:
    case = await repair(crm, repair_class=RepairClass.GENERAL, on_price_list=False)
    assert deadline(case, Rule.PRICE_REVIEW)[0] == timedelta(minutes=15)
    await at_boundary(crm, case.id, timedelta(minutes=15))


async def test_complaint_about_an_event_on_the_premises_needs_someone_there_in_3_minutes(
    crm: Crm,
) -> None:
    case = await crm.cases.open(
        kind=Kind.COMPLAINT,
        channel="phone",
        summary="楼下装修噪音",
        by=AGENT,
        complaint=NewComplaint(on_premises=True),
    )
    assert deadline(case, Rule.COMPLAINT_ON_SITE)[0] == timedelta(minutes=3)
    await at_boundary(crm, case.id, timedelta(minutes=3))
    case = await crm.cases.meet(
        case.id, rule=Rule.COMPLAINT_ON_SITE, version=case.version, by="保安 赵刚"
    )
    assert not case.overdue
    assert deadline(case, Rule.COMPLAINT_ON_SITE)[1:] == (
        T0 + timedelta(minutes=3, seconds=1),
        True,
    )


async def test_call_back_is_due_24_hours_after_resolution(crm: Crm) -> None:
    case = await fixed_repair(crm)
    crm.clock.advance(hours=1)
    case = await crm.cases.transition(case.id, to=Status.RESOLVED, version=case.version, by=AGENT)
    (callback,) = case.callbacks
    assert callback.due_at == crm.clock.now() + timedelta(hours=24)
    assert deadline(case, Rule.CALL_BACK)[0] == timedelta(hours=24)
    await at_boundary(crm, case.id, timedelta(hours=24))
    due, _ = await crm.callbacks.due(overdue=True)
    assert [c.id for c in due] == [callback.id]


async def test_deadlines_come_from_the_rules_in_the_config(migrated_db_url: str) -> None:
    rules = dataclasses.replace(ServiceRules(), inquiry_reply_min=10, urgent_on_site_min=30)
    async for crm in make_crm(migrated_db_url, rules):
        case = await repair(crm, repair_class=RepairClass.URGENT)
        assert deadline(case, Rule.ON_SITE)[0] == timedelta(minutes=30)
        inquiry = await crm.cases.open(kind=Kind.INQUIRY, channel="chat", summary="?", by=AGENT)
        assert deadline(inquiry, Rule.REPLY)[0] == timedelta(minutes=10)
        # "near" is when a fifth of the time is left
        (reply,) = inquiry.deadlines
        assert reply.warn_at == reply.due_at - timedelta(minutes=2)


# -- urgency: suggested from the IVR and the words, confirmed by the agent ---------------------


async def test_urgent_words_in_the_transcript_suggest_an_urgent_repair(crm: Crm) -> None:
    case = await repair(crm, texts=("您好 我家 电梯 坏了", "楼道 漏水 了"))
    order = case.repair
    assert order is not None
    assert (order.repair_class, order.suggested_class) == (RepairClass.URGENT, RepairClass.URGENT)
    assert order.suggested_because == "words: 电梯, 漏水"
    assert order.class_confirmed_by is None  # only suggested
    assert {d.rule for d in case.deadlines} == {Rule.ON_SITE, Rule.FIXED}

    by_ivr = await repair(crm, ivr_tag="urgent", texts=("水龙头有点滴水",))
    assert by_ivr.repair is not None
    assert by_ivr.repair.suggested_because == "IVR: urgent repair"

    plain = await repair(crm, texts=("门把手松了",))
    assert plain.repair is not None
    assert plain.repair.repair_class == RepairClass.GENERAL


async def test_the_agent_overrules_a_suggestion_and_the_deadlines_follow(crm: Crm) -> None:
    case = await repair(crm, ivr_tag="urgent")
    crm.clock.advance(minutes=10)
    case = await crm.orders.update(
        case.id, version=case.version, by=AGENT, changes={"repair_class": RepairClass.GENERAL}
    )
    assert case.repair is not None
    assert (case.repair.repair_class, case.repair.suggested_class) == ("general", "urgent")
    assert case.repair.class_confirmed_by == AGENT
    live = [d for d in case.deadlines if d.open]
    # counted from the call, not from the confirmation
    assert [(d.rule, d.due_at) for d in live] == [(Rule.FIXED, T0 + timedelta(hours=72))]
    timeline = await crm.cases.timeline(case.id)
    assert ("repair_class", "urgent", "general", AGENT) in [
        (a.field, a.old, a.new, a.by) for a in timeline
    ]


# -- statuses ----------------------------------------------------------------------------------


async def fixed_repair(crm: Crm) -> CaseRecord:
    case = await repair(crm, repair_class=RepairClass.GENERAL)
    return await crm.orders.update(
        case.id,
        version=case.version,
        by="技师 李强",
        changes={
            "technician": "李强",
            "work_done": "更换角阀",
            "materials": "角阀 1 个",
            "material_cost": "12.50",
            "labour_cost": 30,
            "completed_at": crm.clock.now().isoformat(),
        },
    )


async def test_illegal_transitions_are_refused_with_the_reason(crm: Crm) -> None:
    case = await repair(crm)
    with pytest.raises(IllegalTransition, match="no completion time"):
        await crm.cases.transition(case.id, to=Status.RESOLVED, version=case.version, by=AGENT)
    with pytest.raises(IllegalTransition, match="allowed next"):
        await crm.cases.transition(case.id, to=Status.CLOSED, version=case.version, by=AGENT)
    with pytest.raises(IllegalTransition, match="unknown status"):
        await crm.cases.transition(case.id, to="done", version=case.version, by=AGENT)
    with pytest.raises(IllegalTransition, match="only a resolved or closed"):
        await crm.cases.reopen(case.id, version=case.version, by=AGENT, reason="?")
    assert (await crm.cases.get(case.id)).version == case.version  # nothing written
    case = await crm.cases.transition(case.id, to=Status.CANCELLED, version=case.version, by=AGENT)
    assert all(not d.open for d in case.deadlines)
    with pytest.raises(IllegalTransition, match="stays cancelled"):
        await crm.cases.transition(case.id, to=Status.IN_PROGRESS, version=case.version, by=AGENT)


async def test_a_case_cannot_close_before_its_call_back_outcome(crm: Crm) -> None:
    case = await fixed_repair(crm)
    case = await crm.cases.transition(case.id, to=Status.RESOLVED, version=case.version, by=AGENT)
    with pytest.raises(IllegalTransition, match="call-back"):
        await crm.cases.transition(case.id, to=Status.CLOSED, version=case.version, by=AGENT)
    (callback,) = case.callbacks
    case = await crm.callbacks.record_attempt(
        callback.id,
        version=case.version,
        by=AGENT,
        outcome=Outcome.REACHED,
        satisfaction=Satisfaction.SATISFIED,
        remarks="很满意，谢谢",
    )
    assert await crm.callbacks.get(callback.id) == case.callbacks[0]
    case = await crm.cases.transition(case.id, to=Status.CLOSED, version=case.version, by=AGENT)
    assert case.status == Status.CLOSED
    assert case.closed_at == crm.clock.now()


async def test_call_resolve_call_back_unsatisfied_reopens_and_keeps_history(crm: Crm) -> None:
    case = await fixed_repair(crm)
    assert case.repair is not None
    assert case.repair.total == "42.50"
    crm.clock.advance(hours=2)
    case = await crm.cases.transition(case.id, to=Status.RESOLVED, version=case.version, by=AGENT)
    crm.clock.advance(hours=20)
    (callback,) = case.callbacks
    case = await crm.callbacks.record_attempt(
        callback.id,
        version=case.version,
        by=AGENT,
        outcome=Outcome.REACHED,
        satisfaction=Satisfaction.UNSATISFIED,
        remarks="还在漏",
    )
    assert (case.status, case.reopened, case.resolved_at) == (Status.IN_PROGRESS, 1, None)
    assert case.repair is not None
    assert case.repair.completed_at is None
    (first,) = case.callbacks
    assert (first.status, first.satisfaction, first.remarks) == ("done", "unsatisfied", "还在漏")
    # to be fixed again, counted from the reopening
    fixed = [d for d in case.deadlines if d.rule == Rule.FIXED]
    assert [d.open for d in fixed] == [False, True]
    assert fixed[1].due_at == crm.clock.now() + timedelta(hours=72)
    timeline = await crm.cases.timeline(case.id)
    statuses = [(a.old, a.new) for a in timeline if a.field == "status" and a.entity == "case"]
    assert statuses == [
        (None, "open"),
        ("open", "resolved"),
        ("resolved", "in-progress"),
    ]
    assert all(a.by for a in timeline)
    assert all(a.at >= T0 for a in timeline)

    # fixed again, resolved again, satisfied this time: closes
    crm.clock.advance(hours=3)
    case = await crm.orders.update(
        case.id,
        version=case.version,
        by="技师 李强",
        changes={"completed_at": crm.clock.now().isoformat()},
    )
    case = await crm.cases.transition(case.id, to=Status.RESOLVED, version=case.version, by=AGENT)
    second = case.callbacks[-1]
    assert second.status == CallBackStatus.DUE
    assert second.id != first.id
    case = await crm.callbacks.record_attempt(
        second.id, version=case.version, by=AGENT, outcome="reached", satisfaction="satisfied"
    )
    case = await crm.cases.transition(case.id, to=Status.CLOSED, version=case.version, by=AGENT)
    assert (case.status, case.reopened) == (Status.CLOSED, 1)


async def test_unreachable_residents_get_retries_then_the_letter(crm: Crm) -> None:
    case = await fixed_repair(crm)
    case = await crm.cases.transition(case.id, to=Status.RESOLVED, version=case.version, by=AGENT)
    callback_id = case.callbacks[0].id
    for attempt in range(1, 4):
        crm.clock.advance(hours=1)
        case = await crm.callbacks.record_attempt(
            callback_id, version=case.version, by=AGENT, outcome=Outcome.NO_ANSWER
        )
        callback = case.callbacks[0]
        if attempt < 3:
            assert callback.status == CallBackStatus.DUE
            assert callback.due_at == crm.clock.now() + timedelta(hours=4)
            open_callbacks = [d for d in case.deadlines if d.rule == Rule.CALL_BACK and d.open]
            assert [d.due_at for d in open_callbacks] == [callback.due_at]
    assert (callback.status, callback.reached, callback.letter) == (
        CallBackStatus.UNREACHABLE,
        False,
        "tried-to-reach",
    )
    assert [a.outcome for a in callback.attempts] == ["no-answer"] * 3
    case = await crm.cases.transition(case.id, to=Status.CLOSED, version=case.version, by=AGENT)
    assert case.status == Status.CLOSED
    with pytest.raises(IllegalTransition, match="already unreachable"):
        await crm.callbacks.record_attempt(callback_id, version=None, by=AGENT, outcome="busy")


# -- complaints: the eight steps ----------------------------------------------------------------


async def complaint(crm: Crm) -> CaseRecord:
    return await crm.cases.open(
        kind=Kind.COMPLAINT,
        channel="walk-in",
        summary="保安态度差",
        by=AGENT,
        phone="13912345678",
        owner_agent_id=None,
    )


async def test_a_complaint_walks_the_eight_steps_with_who_and_when(crm: Crm) -> None:
    case = await complaint(crm)
    steps = [
        (
            Step.CLASSIFY,
            "客服主管 陈",
            None,
            {"nature": "valid", "subject": "attitude", "reasonable": True},
        ),
        (Step.INVESTIGATE, "客服主管 陈", "调取监控，属实", {}),
        (Step.ASSIGN, "客服主管 陈", None, {"responsible": "保安部 刘队长"}),
        (Step.RESOLVE, AGENT, "当面道歉，居民签字确认", {}),
    ]
    for step, by, note, details in steps:
        crm.clock.advance(minutes=30)
        case = await crm.complaints.step(
            case.id, step=step, version=case.version, by=by, note=note, details=details
        )
    assert case.status == Status.RESOLVED
    assert case.complaint is not None
    assert case.complaint.responsible == "保安部 刘队长"
    crm.clock.advance(hours=5)
    case = await crm.callbacks.record_attempt(
        case.callbacks[0].id,
        version=case.version,
        by=AGENT,
        outcome="reached",
        satisfaction="satisfied",
    )
    crm.clock.advance(hours=1)
    case = await crm.complaints.step(
        case.id,
        step=Step.REVIEW,
        version=case.version,
        by="经理 周",
        details={"causes": "新保安未培训", "prevention": "上岗前礼仪培训"},
    )
    crm.clock.advance(minutes=1)
    case = await crm.complaints.step(case.id, step=Step.ARCHIVE, version=case.version, by="经理 周")
    assert case.status == Status.CLOSED
    assert case.complaint is not None
    done = [(s.step, s.label, s.by, s.at - T0) for s in case.complaint.steps]
    assert done == [
        ("receive", "接诉", AGENT, timedelta(0)),
        ("classify", "辨诉", "客服主管 陈", timedelta(minutes=30)),
        ("investigate", "析诉", "客服主管 陈", timedelta(minutes=60)),
        ("assign", "定责", "客服主管 陈", timedelta(minutes=90)),
        ("resolve", "处理", AGENT, timedelta(minutes=120)),
        ("call-back", "回访", AGENT, timedelta(hours=7)),
        ("review", "总结", "经理 周", timedelta(hours=8)),
        ("archive", "归档", "经理 周", timedelta(hours=8, minutes=1)),
    ]


@pytest.mark.parametrize(
    "responsible", ["保安部\n刘队长", "保安部\u202e", "<b>保安部</b>", "@保安部"]
)
async def test_the_department_held_responsible_follows_the_rules_of_names(
    crm: Crm, responsible: str
) -> None:
    case = await complaint(crm)
    details = {"nature": "valid", "subject": "attitude", "reasonable": True}
    case = await crm.complaints.step(
        case.id, step=Step.CLASSIFY, version=case.version, by=AGENT, details=details
    )
    case = await crm.complaints.step(
        case.id, step=Step.INVESTIGATE, version=case.version, by=AGENT, note="属实"
    )
    audit_before = await crm.count(m.AuditEntry)
    with pytest.raises(InvalidInput) as refused:
        await crm.complaints.step(
            case.id,
            step=Step.ASSIGN,
            version=case.version,
            by=AGENT,
            details={"responsible": responsible},
        )
    assert refused.value.field == "responsible"
    assert await crm.count(m.AuditEntry) == audit_before
    assert (await crm.cases.get(case.id)).version == case.version


async def test_complaint_steps_cannot_be_skipped_repeated_or_faked(crm: Crm) -> None:
    case = await complaint(crm)
    with pytest.raises(IllegalTransition, match="next step is classify"):
        await crm.complaints.step(
            case.id, step=Step.ASSIGN, version=case.version, by=AGENT, details={"responsible": "x"}
        )
    with pytest.raises(IllegalTransition, match="next step is classify"):
        await crm.complaints.step(case.id, step=Step.RECEIVE, version=case.version, by=AGENT)
    with pytest.raises(IllegalTransition, match="处理 step"):
        await crm.cases.transition(case.id, to=Status.RESOLVED, version=case.version, by=AGENT)
    with pytest.raises(InvalidInput, match="sort"):  # a communication complaint needs its sort
        await crm.complaints.step(
            case.id,
            step=Step.CLASSIFY,
            version=case.version,
            by=AGENT,
            details={"nature": "communication", "subject": "quality", "reasonable": False},
        )
    case = await crm.complaints.step(
        case.id,
        step=Step.CLASSIFY,
        version=case.version,
        by=AGENT,
        details={
            "nature": "communication",
            "sort": "venting",
            "subject": "quality",
            "reasonable": False,
        },
    )
    for step, note, details in (
        (Step.INVESTIGATE, "查明", {}),
        (Step.ASSIGN, None, {"responsible": "客服部"}),
        (Step.RESOLVE, "已解释", {}),
    ):
        case = await crm.complaints.step(
            case.id, step=step, version=case.version, by=AGENT, note=note, details=details
        )
    with pytest.raises(IllegalTransition, match="call-back's outcome"):
        await crm.complaints.step(case.id, step=Step.CALL_BACK, version=case.version, by=AGENT)
    with pytest.raises(IllegalTransition, match="next step is call-back"):
        await crm.complaints.step(
            case.id,
            step=Step.REVIEW,
            version=case.version,
            by=AGENT,
            details={"causes": "a", "prevention": "b"},
        )
    with pytest.raises(IllegalTransition, match="call-back"):
        await crm.cases.transition(case.id, to=Status.CLOSED, version=case.version, by=AGENT)
    # unsatisfied: back to 处理, history kept
    case = await crm.callbacks.record_attempt(
        case.callbacks[0].id,
        version=case.version,
        by=AGENT,
        outcome="reached",
        satisfaction="unsatisfied",
    )
    assert case.status == Status.IN_PROGRESS
    assert case.complaint is not None
    assert case.complaint.next_step == Step.RESOLVE
    assert [s.step for s in case.complaint.steps][-2:] == [Step.RESOLVE, Step.CALL_BACK]


# -- many hands on one case -------------------------------------------------------------------


async def test_concurrent_edits_of_one_case_lose_no_update(crm: Crm) -> None:
    case = await repair(crm)
    results = await asyncio.gather(
        crm.cases.update(case.id, version=case.version, by="agent:1", changes={"summary": "甲"}),
        crm.cases.update(case.id, version=case.version, by="agent:2", changes={"summary": "乙"}),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, CaseRecord)]
    lost = [r for r in results if isinstance(r, StaleVersion)]
    assert len(won) == 1, results
    assert len(lost) == 1, results
    stored = await crm.cases.get(case.id)
    assert stored.summary == won[0].summary
    assert stored.version == case.version + 1
    assert f"now version {case.version + 1}" in str(lost[0])
    changes = [a for a in await crm.cases.timeline(case.id) if a.field == "summary"]
    assert len(changes) == 1  # the loser left no trace
    # the loser reloads and applies again: both edits are in the history
    again = await crm.cases.update(
        case.id, version=stored.version, by="agent:x", changes={"detail": "补充"}
    )
    assert (again.summary, again.detail) == (stored.summary, "补充")


async def test_many_writers_each_see_every_other_change(crm: Crm) -> None:
    """Twenty agents add a note at once, each retrying on 409: all twenty notes land."""
    case = await repair(crm)

    async def add_note(n: int) -> None:
        while True:
            current = await crm.cases.get(case.id)
            try:
                await crm.cases.note(
                    case.id, version=current.version, by=f"agent:{n}", text=f"n{n}"
                )
                return
            except StaleVersion:
                await asyncio.sleep(0)

    await asyncio.gather(*(add_note(n) for n in range(20)))
    notes = [a.new for a in await crm.cases.timeline(case.id) if a.action == "note"]
    assert sorted(notes, key=lambda s: int(s[1:])) == [f"n{n}" for n in range(20)]  # type: ignore[index, arg-type]
    assert (await crm.cases.get(case.id)).version == case.version + 20


# -- bad input: a clear reason, nothing half-written ------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"material_cost": -5}, "material_cost", "negative"),
        ({"labour_cost": 10_000_000}, "labour_cost", "at most"),
        ({"labour_cost": "12.345"}, "labour_cost", "2 decimals"),
        ({"labour_cost": "NaN"}, "labour_cost", "finite"),
        ({"labour_cost": "十元"}, "labour_cost", "amount"),
        ({"technician": "<script>alert(1)</script>"}, "technician", "name"),
        ({"completed_at": "2026-11-24 09:00"}, "completed_at", "time zone"),
        ({"completed_at": "2030-01-01T00:00:00+08:00"}, "completed_at", "future"),
        ({"completed_at": "0001-01-01T00:00:00+14:00"}, "completed_at", "from 1900 to 9998"),
        ({"appointment_at": "9999-12-31T23:59:59-14:00"}, "appointment_at", "from 1900 to 9998"),
        ({"phone": "12345"}, "phone", "not a phone number"),
        ({"building": "3", "room": "999"}, "room", "unknown room 3-999"),
        ({"verdict": "ok"}, "verdict", "one of"),
        ({"colour": "red"}, "colour", "not a work order field"),
        ({"work_done": "x\x00y"}, "work_done", "control"),
    ],
)
async def test_bad_work_order_input_is_refused_naming_the_field(
    crm: Crm, changes: dict[str, object], field: str, reason: str
) -> None:
    case = await repair(crm)
    audit_before = await crm.count(m.AuditEntry)
    with pytest.raises(InvalidInput) as refused:
        await crm.orders.update(
            case.id, version=case.version, by=AGENT, changes={"work_done": "修好", **changes}
        )
    assert refused.value.field == field
    assert reason in refused.value.reason
    after = await crm.cases.get(case.id)
    assert after.version == case.version
    assert after.repair == case.repair
    assert await crm.count(m.AuditEntry) == audit_before


async def test_bad_case_input_is_refused_and_nothing_is_written(crm: Crm) -> None:
    attempts: list[tuple[dict[str, object], str]] = [
        ({"summary": ""}, "summary"),
        ({"kind": "gossip"}, "kind"),
        ({"channel": "fax"}, "channel"),
        ({"phone": "call me"}, "phone"),
        ({"building": "3", "room": "404"}, "room"),
        ({"building": "<b>3</b>", "room": "201"}, "building"),
        ({"owner_agent_id": 999}, "owner_agent_id"),
        ({"by": ""}, "by"),
        ({"summary": "x" * 201}, "summary"),
    ]
    for bad, field in attempts:
        args: dict[str, object] = {
            "kind": Kind.INQUIRY,
            "channel": "phone",
            "summary": "问",
            "by": AGENT,
        }
        with pytest.raises(InvalidInput) as refused:
            await crm.cases.open(**{**args, **bad})  # type: ignore[arg-type]
        assert refused.value.field == field, (bad, refused.value)
    assert await crm.count(m.Case) == 0
    assert await crm.count(m.AuditEntry) == 0
    # SQL in free text is only text
    sneaky = '\'; DROP TABLE "case"; --'
    case = await crm.cases.open(kind=Kind.INQUIRY, channel="email", summary=sneaky, by=AGENT)
    assert (await crm.cases.get(case.id)).summary == sneaky
    with pytest.raises(NotFound):
        await crm.cases.get(case.id + 1)


async def test_work_off_the_price_list_waits_for_review_and_agreement(crm: Crm) -> None:
    case = await repair(crm, repair_class=RepairClass.GENERAL, on_price_list=False)
    with pytest.raises(IllegalTransition, match="agree"):
        await crm.orders.update(
            case.id, version=case.version, by="技师", changes={"work_done": "改水管"}
        )
    with pytest.raises(InvalidInput, match="quoted price"):
        await crm.orders.update(
            case.id, version=case.version, by="工程主管", changes={"price_reviewed": True}
        )
    crm.clock.advance(minutes=12)
    case = await crm.orders.update(
        case.id,
        version=case.version,
        by="工程主管 孙",
        changes={"quoted": "180", "price_reviewed": True},
    )
    assert case.repair is not None
    assert (case.repair.quoted, case.repair.price_reviewed_by) == ("180.00", "工程主管 孙")
    assert deadline(case, Rule.PRICE_REVIEW)[1:] == (T0 + timedelta(minutes=12), False)
    case = await crm.orders.update(
        case.id, version=case.version, by=AGENT, changes={"price_agreed": True}
    )
    case = await crm.orders.update(
        case.id, version=case.version, by="技师", changes={"work_done": "改水管"}
    )
    assert case.repair is not None
    assert case.repair.work_done == "改水管"


async def test_a_warranty_rework_is_free_of_charge(crm: Crm) -> None:
    first = await fixed_repair(crm)
    assert first.repair is not None
    again = await repair(crm, rework_of=first.repair.id, repair_class=RepairClass.GENERAL)
    with pytest.raises(InvalidInput, match="free of charge"):
        await crm.orders.update(
            again.id, version=again.version, by=AGENT, changes={"labour_cost": 30}
        )
    with pytest.raises(InvalidInput, match="rework_of"):
        await repair(crm, rework_of=999)
