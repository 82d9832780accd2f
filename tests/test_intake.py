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
from crm.calls import CallLog, IvrChoice
from crm.cases import CaseQuery
from crm.db import make_sessionmaker
from crm.deadlines import DeadlineBook, Moment
from crm.desk import CrmDesk
from crm.intake import CallIntake, UrgentUnanswered
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
    duty_told: list[UrgentUnanswered] = field(default_factory=list)
    serial: int = 0

    def alerts(self) -> list[dict[str, Any]]:
        return [data for kind, data in self.published if kind == "alert"]

    async def call(
        self,
        number: str | None = MOBILE,
        *,
        queue: str | None = "repair",
        tag: str | None = None,
        answered: bool = True,
        message: bool = False,
        callback: bool = False,
        entered: bool = True,
        submenu_only: bool = False,
        end_reason: str = "caller-hangup",
    ) -> int:
        """One inbound call as the telephony side records it, ended now.

        The IVR step stores the choice with the key press, then the call is routed;
        ``entered=False``: it never reached the queue (nobody logged in, out of hours, a
        hang-up during the route or message prompt). ``submenu_only``: the caller hung
        up in the queue's submenu, before choosing a class.
        """
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
            chosen = IvrChoice(queue) if submenu_only else IvrChoice(queue, tag)
            action = f"submenu:{queue}" if submenu_only else f"queue:{chosen}"
            await self.calls.add_ivr_step(
                call_id, node="main", input="2", action=action, at=now, choice=chosen
            )
            if submenu_only:
                queue = None
            else:
                await self.calls.set_queue(call_id, queue=queue, at=now)
        if queue is not None and entered:
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
        await self.calls.close_call(call_id, ended_at=now, reason=end_reason)
        return call_id


@pytest.fixture
async def desk(migrated_db_url: str) -> AsyncIterator[Desk]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    clock = ManualClock()
    crm = CrmDesk.open(sessions, clock, ServiceRules())
    published: list[tuple[str, dict[str, Any]]] = []
    duty_told: list[UrgentUnanswered] = []
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
            on_urgent=duty_told.append,
        ),
        CallLog(sessions),
        QueueFacts(sessions),
        MessageBox(sessions),
        CallbackBook(sessions),
        DeadlineBook(sessions),
        agent.id,
        published,
        duty_told,
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

    # a message left in the complaint queue is a complaint, the message filed under it
    left = await desk.call(
        "13911113333", queue="complaint", answered=False, message=True, entered=False
    )
    complaint = await desk.intake.call_ended(left)
    assert complaint is not None
    assert (complaint.kind, complaint.subtype) == (Kind.COMPLAINT, None)
    assert complaint.callbacks == ()  # the message is its own to-do
    (filed,), _ = await desk.messages.list(call_id=left)
    assert (filed.case_id, filed.for_whom) == (complaint.id, "投诉")
    # a message asked for from the main menu (or left for the operator) is a message case
    asked_for = await desk.call(
        "13911114444", queue="message", answered=False, message=True, entered=False
    )
    message_case = await desk.intake.call_ended(asked_for)
    assert message_case is not None
    assert (message_case.kind, message_case.subtype) == (Kind.MESSAGE, "message")


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


# -- the caller's choice, whatever happened next (issue 12) ---------------------------------
URGENT_ENDINGS = {
    "answered": {"answered": True},
    "holding timeout": {"answered": False},
    "call-back booked": {"answered": False, "callback": True},
    "message left": {"answered": False, "message": True, "entered": False},
    "hung up in the route prompt": {"answered": False, "entered": False},
    "hung up in the message prompt": {"answered": False, "entered": False},
    "hung up in the queue": {"answered": False},
}


@pytest.mark.parametrize("ending", URGENT_ENDINGS)
async def test_an_urgent_repair_choice_makes_an_urgent_case_on_every_path(
    desk: Desk, ending: str
) -> None:
    """报修 → 急修 is on the call from the key press: on site in 2 h, fixed in 24 h, however
    the call ended; unanswered, the call-back is due at once and the duty phone told."""
    call_id = await desk.call(queue="repair", tag="urgent", **URGENT_ENDINGS[ending])
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert case.kind == Kind.REPAIR
    assert case.repair is not None
    assert (case.repair.repair_class, case.repair.suggested_because) == (
        RepairClass.URGENT,
        "IVR: urgent repair",
    )
    due = {d.rule: d.due_at for d in case.deadlines if d.open}
    assert due[Rule.ON_SITE] == T0 + timedelta(hours=2)
    assert due[Rule.FIXED] == T0 + timedelta(hours=24)
    if ending == "answered":
        assert (case.callbacks, desk.alerts(), desk.duty_told) == ((), [], [])
        return
    (callback,) = case.callbacks
    assert callback.due_at == T0  # at once, not in 5 minutes
    assert callback.reason == (
        CallBackReason.QUEUED if ending == "call-back booked" else CallBackReason.PROMISED_REPLY
    )
    (alert,) = desk.alerts()
    assert (alert["alert"], alert["case_id"], alert["call_id"]) == (
        "urgent-unanswered",
        case.id,
        call_id,
    )
    assert desk.duty_told == [UrgentUnanswered(case.id, call_id, Kind.REPAIR, MOBILE)]


async def test_hanging_up_in_the_repair_menu_leaves_the_class_to_the_agent(desk: Desk) -> None:
    """报修 pressed, no class yet: a repair case (not an inquiry), class unconfirmed and
    noted for the agent; not urgent, so the usual reply time."""
    call_id = await desk.call(queue="repair", answered=False, submenu_only=True)
    assert (await desk.calls.get(call_id)).choice == "repair"
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert case.kind == Kind.REPAIR
    assert case.repair is not None
    assert case.repair.class_confirmed_by is None
    notes = [a.new or "" for a in await desk.crm.cases.timeline(case.id) if a.action == "note"]
    assert any("confirm the class" in note for note in notes)
    (callback,) = case.callbacks
    assert callback.due_at == T0 + timedelta(minutes=5)
    assert desk.alerts() == []


async def test_a_general_repair_message_is_a_repair_case_without_an_alert(desk: Desk) -> None:
    call_id = await desk.call(
        queue="repair", tag="general", answered=False, message=True, entered=False
    )
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert case.repair is not None
    assert (case.kind, case.repair.repair_class) == (Kind.REPAIR, RepairClass.GENERAL)
    assert {d.rule for d in case.deadlines if d.open} == {Rule.FIXED}
    assert (case.callbacks, desk.alerts(), desk.duty_told) == ((), [], [])


async def test_an_unanswered_emergency_is_called_back_at_once_even_without_a_number(
    desk: Desk,
) -> None:
    call_id = await desk.call(queue="emergency", answered=False)
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert case.kind == Kind.EMERGENCY
    (callback,) = case.callbacks
    assert callback.due_at == T0
    withheld = await desk.call(None, queue="emergency", answered=False)
    anonymous = await desk.intake.call_ended(withheld)
    assert anonymous is not None
    assert anonymous.callbacks == ()  # nobody to call, but the duty phone still hears of it
    assert [u.phone for u in desk.duty_told] == [MOBILE, None]
    assert len(desk.alerts()) == 2


async def test_calls_recorded_before_the_choice_was_stored_fall_back_to_the_queue_entry(
    desk: Desk,
) -> None:
    """Records from an older version have no choice: the queue entry's tag still counts."""
    now = desk.clock.now()
    call_id = await desk.calls.open_call(
        channel_id="old",
        caller_number=MOBILE,
        caller_name=None,
        dialled_number=None,
        started_at=now,
    )
    await desk.facts.enter(call_id=call_id, queue="repair", tag="urgent", priority=0, at=now)
    await desk.calls.close_call(call_id, ended_at=now, reason="caller-hangup")
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert case.repair is not None
    assert case.repair.repair_class == RepairClass.URGENT


async def test_calling_again_with_the_urgent_choice_makes_an_open_repair_urgent(
    desk: Desk,
) -> None:
    """A general repair reported by day; at night the leak is worse and the resident keys
    急修: the open case joins the call and, its class not yet confirmed, becomes urgent."""
    first = await desk.intake.call_ended(await desk.call(queue="repair", tag="general"))
    assert first is not None
    assert first.repair is not None
    assert first.repair.repair_class == RepairClass.GENERAL
    desk.clock.advance(hours=10)
    again = await desk.intake.call_ended(
        await desk.call(queue="repair", tag="urgent", answered=False)
    )
    assert again is not None
    assert again.id == first.id
    assert again.repair is not None
    assert again.repair.repair_class == RepairClass.URGENT
    assert Rule.ON_SITE in {d.rule for d in again.deadlines if d.open}
    assert desk.duty_told[0].case_id == first.id


async def test_a_call_whose_agent_never_reached_the_caller_is_still_owed_a_reply(
    desk: Desk,
) -> None:
    """The agent picked up but Asterisk could not bridge them (connect-failed): the case is
    the agent's, and the resident, who heard nobody, is owed a call-back."""
    call_id = await desk.call(queue="inquiry", end_reason="connect-failed")
    case = await desk.intake.call_ended(call_id)
    assert case is not None
    assert case.owner_agent_id == desk.agent_id
    (callback,) = case.callbacks
    assert callback.reason == CallBackReason.PROMISED_REPLY
