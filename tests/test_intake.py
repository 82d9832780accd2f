"""From call to case, and the deadline watcher, over real call records (SQLite and
PostgreSQL). Calls are written through the same books the telephony side uses (CallLog,
QueueFacts, MessageBox, CallbackBook); the cases are read back through the CRM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from crm.agents import AgentDirectory
from crm.calls import CallLog
from crm.cases import CaseQuery
from crm.db import make_sessionmaker
from crm.deadlines import DeadlineBook, Moment
from crm.desk import CrmDesk
from crm.intake import CallIntake
from crm.messages import MessageBox
from crm.queue_callbacks import CallbackBook
from crm.queue_facts import QueueFacts
from crm.rules import CallBackReason, Kind, RepairClass, Rule, ServiceRules, Status
from telephony.deadline_watcher import DeadlineWatcher
from tests.clocks import T0, ManualClock
from tests.databases import one_connection_engine

MOBILE = "13800138000"
SHARED = "02162345678"


@dataclass
class Desk:
    clock: ManualClock
    crm: CrmDesk
    intake: CallIntake
    calls: CallLog
    facts: QueueFacts
    messages: MessageBox
    queued: CallbackBook
    deadlines: DeadlineBook
    agent_id: int
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    serial: int = 0

    async def call(
        self,
        number: str | None = MOBILE,
        *,
        queue: str | None = "repair",
        tag: str | None = None,
        answered: bool = True,
        message: bool = False,
        callback: bool = False,
    ) -> int:
        """One inbound call as the telephony side records it, ended now."""
        self.serial += 1
        now = self.clock.now()
        call_id = await self.calls.open_call(
            channel_id=f"chan-{self.serial}",
            caller_number=number,
            caller_name=None,
            dialled_number="4008001234",
            started_at=now,
        )
        if queue is not None:
            entry = await self.facts.enter(
                call_id=call_id, queue=queue, tag=tag, priority=0, at=now
            )
            if answered:
                await self.facts.answered(entry, agent_id=self.agent_id, at=now)
        if message:
            await self.messages.leave(
                call_id=call_id, queue=queue, reason="asked", recording="m1", duration_s=9.0, at=now
            )
        if callback:
            await self.queued.request(
                call_id=call_id,
                queue=queue or "inquiry",
                number=number or "",
                place_at=now,
                at=now,
                expires_at=now + timedelta(hours=2),
            )
        await self.calls.close_call(call_id, ended_at=now, reason="caller-hangup")
        return call_id


@pytest.fixture
async def desk(migrated_db_url: str) -> AsyncIterator[Desk]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    clock = ManualClock()
    crm = CrmDesk.open(sessions, clock, ServiceRules())
    published: list[tuple[str, dict[str, Any]]] = []
    agent = await AgentDirectory(sessions).create(
        name="王敏", endpoint="PJSIP/1001", skills={"repair": 1}, at=T0
    )
    for building, room in (("3", "201"), ("3", "202")):
        await crm.residents.add_room(building, room)
    await crm.residents.create(name="张伟", building="3", room="201", phones=[MOBILE], by="import")
    for name, room in (("李娜", "201"), ("李强", "202")):
        await crm.residents.create(name=name, building="3", room=room, phones=[SHARED], by="import")
    yield Desk(
        clock,
        crm,
        CallIntake(
            sessions,
            crm,
            lambda kind, **data: published.append((kind, data)),
            {"complaint": "投诉"},
        ),
        CallLog(sessions),
        QueueFacts(sessions),
        MessageBox(sessions),
        CallbackBook(sessions),
        DeadlineBook(sessions),
        agent.id,
        published,
    )
    await engine.dispose()


async def test_an_answered_repair_call_opens_a_case_owned_by_its_agent(desk: Desk) -> None:
    call_id = await desk.call(tag="urgent")
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert (case.kind, case.channel, case.status) == (Kind.REPAIR, "phone", Status.OPEN)
    assert case.owner_agent_id == desk.agent_id  # 首问负责制
    resident = (await desk.crm.residents.find_by_phone(MOBILE))[0]
    assert (case.resident_id, case.building, case.room) == (resident.id, "3", "201")
    assert [(c.call_id, c.role) for c in case.calls] == [(call_id, "opened")]
    assert case.repair is not None
    assert case.repair.suggested_because == "IVR: urgent repair"
    assert {d.rule for d in case.deadlines} == {Rule.ON_SITE, Rule.FIXED}
    assert case.callbacks == ()  # answered: nothing owed yet
    assert desk.published[-1][0] == "case-opened"


async def test_a_second_call_joins_the_open_case_of_the_same_kind(desk: Desk) -> None:
    first = await desk.intake.call_ended(await desk.call())
    desk.clock.advance(minutes=30)
    second_call = await desk.call()
    joined = await desk.intake.call_ended(second_call)
    assert joined is not None
    assert first is not None
    assert joined.id == first.id
    assert [c.role for c in joined.calls] == ["opened", "follow-up"]
    other_kind = await desk.intake.call_ended(await desk.call(queue="complaint"))
    assert other_kind is not None
    assert other_kind.id != first.id
    # the same call reconciled twice: no second link, no second case
    again = await desk.intake.call_ended(second_call)
    assert again is not None
    assert [c.role for c in again.calls] == ["opened", "follow-up"]


async def test_a_resolved_case_is_not_joined_a_new_one_opens(desk: Desk) -> None:
    first = await desk.intake.call_ended(await desk.call(queue="inquiry"))
    assert first is not None
    await desk.crm.cases.transition(first.id, to=Status.RESOLVED, version=first.version, by="a")
    second = await desk.intake.call_ended(await desk.call(queue="inquiry"))
    assert second is not None
    assert second.id != first.id


async def test_an_unknown_number_becomes_a_contact_to_complete(desk: Desk) -> None:
    case = await desk.intake.call_ended(await desk.call("13911112222", queue="inquiry"))
    assert case is not None
    assert case.resident_id is not None
    contact = await desk.crm.residents.get(case.resident_id)
    assert (contact.complete, contact.source, contact.phones) == (False, "call", ("13911112222",))
    again = await desk.intake.call_ended(await desk.call("13911112222", queue="complaint"))
    assert again is not None
    assert again.resident_id == contact.id


async def test_a_number_shared_by_two_residents_leaves_the_choice_to_the_agent(
    desk: Desk,
) -> None:
    case = await desk.intake.call_ended(await desk.call(SHARED))
    assert case is not None
    assert (case.resident_id, case.phone) == (None, SHARED)
    timeline = await desk.crm.cases.timeline(case.id)
    (note,) = [a.new for a in timeline if a.action == "note"]
    assert note is not None
    assert "李娜" in note
    assert "李强" in note
    # the next call from that phone still finds the case, by its number
    joined = await desk.intake.call_ended(await desk.call(SHARED))
    assert joined is not None
    assert joined.id == case.id


async def test_a_missed_call_is_owed_a_reply_call_back(desk: Desk) -> None:
    case = await desk.intake.call_ended(await desk.call(queue="inquiry", answered=False))
    assert case is not None
    assert case.summary == "咨询来电（未接通）"
    assert case.owner_agent_id is None
    (callback,) = case.callbacks
    assert callback.reason == CallBackReason.PROMISED_REPLY
    assert callback.due_at == T0 + timedelta(minutes=5)
    # a withheld number: the case is still there, just nobody to call
    anonymous = await desk.intake.call_ended(await desk.call(None, queue="inquiry", answered=False))
    assert anonymous is not None
    assert (anonymous.phone, anonymous.callbacks) == (None, ())


async def test_queued_call_backs_and_messages_become_case_work(desk: Desk) -> None:
    asked = await desk.call(queue="repair", answered=False, callback=True)
    case = await desk.intake.call_ended(asked)
    assert case is not None
    (callback,) = case.callbacks
    assert callback.reason == CallBackReason.QUEUED
    assert callback.queue_callback_id is not None
    assert callback.due_at == T0 + timedelta(hours=2)
    await desk.intake.queue_callback_done(callback.queue_callback_id, "reached")
    done = await desk.crm.cases.get(case.id)
    assert (done.callbacks[0].status, done.callbacks[0].attempts[0].by) == ("done", "system")

    left = await desk.call("13911113333", queue="complaint", answered=False, message=True)
    message_case = await desk.intake.call_ended(left)
    assert message_case is not None
    assert (message_case.kind, message_case.subtype) == (Kind.MESSAGE, "complaint")
    (filed,), _ = await desk.messages.list(call_id=left)
    assert (filed.case_id, filed.for_whom) == (message_case.id, "投诉")


async def test_the_transcript_suggests_urgent_until_the_agent_decides(desk: Desk) -> None:
    call_id = await desk.call()
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert case.repair is not None
    assert case.repair.repair_class == RepairClass.GENERAL
    await desk.intake.transcript_ready(call_id, ("您好", "我们楼的电梯困人了"))
    case = await desk.crm.cases.get(case.id)
    assert case.repair is not None
    assert (case.repair.repair_class, case.repair.suggested_because) == (
        "urgent",
        "words: 电梯, 困人",
    )
    assert Rule.ON_SITE in {d.rule for d in case.deadlines if d.open}
    assert desk.published[-1][0] == "repair-class-suggested"
    # the agent overrules; a later transcript does not undo the agent's word
    case = await desk.crm.orders.update(
        case.id, version=case.version, by="agent:1", changes={"repair_class": "general"}
    )
    await desk.intake.transcript_ready(call_id, ("漏电", "火"))
    case = await desk.crm.cases.get(case.id)
    assert case.repair is not None
    assert (case.repair.repair_class, case.repair.suggested_class) == ("general", "urgent")


async def test_calls_without_a_case_are_found_for_the_start_up_sweep(desk: Desk) -> None:
    handled = await desk.call()
    await desk.intake.call_ended(handled)
    missed = await desk.call(queue="inquiry")
    assert await desk.intake.calls_without_case(T0 - timedelta(days=1)) == [missed]


# -- the deadline watcher ---------------------------------------------------------------------


async def test_the_watcher_announces_near_and_passed_once_each(desk: Desk) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    watcher = DeadlineWatcher(desk.deadlines, desk.clock, lambda k, **d: events.append((k, d)))
    case = await desk.intake.call_ended(await desk.call(queue="inquiry"))
    assert case is not None
    assert await watcher.tick() == []
    assert await desk.deadlines.next_moment() == T0 + timedelta(minutes=4)  # 1 of 5 min left
    desk.clock.set(T0 + timedelta(minutes=4))
    await watcher.tick()
    assert [(k, d["rule"], d["case_id"]) for k, d in events] == [(Moment.NEAR, Rule.REPLY, case.id)]
    desk.clock.set(T0 + timedelta(minutes=5))
    assert await watcher.tick() == []  # at the due second it is still in time
    desk.clock.set(T0 + timedelta(minutes=5, seconds=1))
    await watcher.tick()
    assert [k for k, _ in events] == [Moment.NEAR, Moment.PASSED]
    assert events[-1][1]["label"] == "咨询回复"
    desk.clock.advance(hours=1)
    assert await watcher.tick() == []  # announced once
    overdue, total = await desk.deadlines.list(desk.clock.now(), overdue=True)
    assert total == 1
    assert overdue[0].deadline.case_id == case.id


async def test_a_restarted_watcher_announces_what_passed_while_it_was_down(desk: Desk) -> None:
    case = await desk.intake.call_ended(await desk.call(tag="urgent"))
    assert case is not None
    first: list[str] = []
    before = DeadlineWatcher(desk.deadlines, desk.clock, lambda k, **d: first.append(d["rule"]))
    await before.tick()
    # down for three hours; a new watcher (a restarted service) reads the database
    desk.clock.advance(hours=3)
    after: list[tuple[str, str]] = []
    restarted = DeadlineWatcher(
        desk.deadlines, desk.clock, lambda k, **d: after.append((k, d["rule"]))
    )
    await restarted.tick()
    assert sorted(after) == [
        (Moment.NEAR, Rule.ON_SITE),
        (Moment.PASSED, Rule.ON_SITE),
    ]
    assert first == []


async def test_the_watcher_loop_runs_on_its_own_and_stops(desk: Desk) -> None:
    """Started, it announces a moment already due without being ticked by hand."""
    await desk.intake.call_ended(await desk.call(queue="inquiry"))
    desk.clock.advance(minutes=10)
    seen: list[str] = []
    watcher = DeadlineWatcher(desk.deadlines, desk.clock, lambda k, **d: seen.append(k))
    watcher.start()
    try:
        from tests.polling import eventually

        async def both() -> bool:
            return len(seen) == 2

        await eventually(both, timeout_s=10, what="near and passed announced")
    finally:
        await watcher.stop()
    assert sorted(seen) == [Moment.NEAR, Moment.PASSED]


async def test_the_hang_up_and_a_sweep_together_make_one_case(desk: Desk) -> None:
    """The feed makes the case once however often it hears of the call; the sweep makes
    the cases of calls ended without one (closed by a reconciliation, or while down)."""
    from crm.transcripts import TranscriptBook
    from telephony.acd.live import LiveEvents
    from telephony.case_feed import CaseFeed

    sessions = desk.calls._sessions
    live = LiveEvents(desk.clock)
    watcher = DeadlineWatcher(desk.deadlines, desk.clock, live.publish)
    feed = CaseFeed(desk.intake, TranscriptBook(sessions), live, watcher)
    hung_up = await desk.call()
    unnoticed = await desk.call(queue="complaint")
    feed.call_closed(hung_up)
    feed.call_closed(hung_up)
    assert await feed.sweep() == 1  # the one nobody told the feed about
    await feed.stop()
    cases, total = await desk.crm.cases.list(CaseQuery())
    assert total == 2
    assert sorted(c.calls[0].call_id for c in cases) == [hung_up, unnoticed]
    assert await feed.sweep() == 0
    await feed.stop()
