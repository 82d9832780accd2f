"""Specification of the ACD records: agents, queue facts, messages and call-backs.

crm.agents (AgentDirectory), crm.queue_facts (QueueFacts), crm.messages (MessageBox) and
crm.queue_callbacks (CallbackBook), on the schema of migration 0002. Runs on a fresh
SQLite file per test, and also on a fresh PostgreSQL database per test when
HOTLINE_TEST_PG_URL names a server. Every time is fixed (UTC); nothing reads the clock.
(That the migrated schema matches the models is checked by tests/test_call_log.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from crm.agents import AgentDirectory
from crm.calls import CallLog
from crm.db import make_sessionmaker
from crm.exceptions import Conflict, InvalidInput, NotFound
from crm.messages import MessageBox, MessageReason
from crm.queue_callbacks import AttemptOutcome, CallbackBook, CallbackStatus
from crm.queue_facts import OfferOutcome, Outcome, QueueFacts
from telephony.acd.agent_state import AgentEvent
from telephony.acd.live import LiveEvents
from telephony.acd.roster import AgentRoster
from tests.clocks import ManualClock
from tests.databases import one_connection_engine

T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))
NAIVE = datetime(2024, 5, 1, 9, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Records:
    """The four ACD repositories and the call log, all on one freshly migrated database."""

    calls: CallLog
    agents: AgentDirectory
    facts: QueueFacts
    messages: MessageBox
    callbacks: CallbackBook

    async def new_call(self, channel: str, started_at: datetime = T0) -> int:
        return await self.calls.open_call(
            channel_id=channel,
            caller_number="13800000000",
            caller_name="张三",
            dialled_number="4008001234",
            started_at=started_at,
        )


@pytest.fixture
async def records(migrated_db_url: str) -> AsyncIterator[Records]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    yield Records(
        calls=CallLog(sessions),
        agents=AgentDirectory(sessions),
        facts=QueueFacts(sessions),
        messages=MessageBox(sessions),
        callbacks=CallbackBook(sessions),
    )
    await engine.dispose()


# --- agents ---


async def test_new_agent_is_logged_out_with_its_skills_and_one_history_entry(
    records: Records,
) -> None:
    """create stores name (trimmed), endpoint and skills; the agent starts logged out, active,
    with that state in its history at the creation time."""
    agent = await records.agents.create(
        name="  王芳  ", endpoint="PJSIP/1001", skills={"repair": 7, "complaint": 3}, at=T0
    )
    assert (agent.name, agent.endpoint, dict(agent.skills)) == (
        "王芳",
        "PJSIP/1001",
        {"repair": 7, "complaint": 3},
    )
    assert (agent.state, agent.state_reason, agent.state_since, agent.active) == (
        "logged-out",
        None,
        T0,
        True,
    )
    assert await records.agents.get(agent.id) == agent
    history = await records.agents.history(agent.id)
    assert [(h.state, h.reason, h.call_id, h.at) for h in history] == [
        ("logged-out", None, None, T0)
    ]


async def test_agent_to_json_has_skills_as_object_and_iso_times(records: Records) -> None:
    """to_json gives skills as a queue → level object and times in ISO 8601 with offset."""
    agent = await records.agents.create(
        name="王芳", endpoint="PJSIP/1001", skills={"repair": 7}, at=T0
    )
    data = agent.to_json()
    assert data["skills"] == {"repair": 7}
    assert data["state_since"] == "2024-05-01T09:00:00+00:00"
    assert data["id"] == agent.id


async def test_duplicate_endpoint_is_a_conflict(records: Records) -> None:
    """Two agents cannot share an endpoint, whether created or renamed onto it."""
    await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    other = await records.agents.create(name="李雷", endpoint="PJSIP/1002", skills={}, at=T0)
    with pytest.raises(Conflict, match="PJSIP/1001"):
        await records.agents.create(name="韩梅梅", endpoint="PJSIP/1001", skills={}, at=at(1))
    with pytest.raises(Conflict, match="PJSIP/1001"):
        await records.agents.update(other.id, endpoint="PJSIP/1001")
    assert (await records.agents.get(other.id)).endpoint == "PJSIP/1002"
    assert len(await records.agents.list(include_inactive=True)) == 2


async def test_concurrent_creates_with_one_endpoint_have_exactly_one_winner(
    records: Records,
) -> None:
    """Of two agents created at once on one endpoint, one is stored, the other is a Conflict."""
    results = await asyncio.gather(
        records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={"repair": 5}, at=T0),
        records.agents.create(name="李雷", endpoint="PJSIP/1001", skills={"repair": 5}, at=T0),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["AgentRecord", "Conflict"]
    assert len(await records.agents.list(include_inactive=True)) == 1


INVALID_AGENT_FIELDS = [
    pytest.param({"endpoint": "1001"}, "endpoint", id="endpoint-no-technology"),
    pytest.param({"endpoint": "PJSIP/"}, "endpoint", id="endpoint-no-resource"),
    pytest.param({"endpoint": "/1001"}, "endpoint", id="endpoint-no-tech-name"),
    pytest.param({"endpoint": "PJSIP/10 01"}, "endpoint", id="endpoint-space"),
    pytest.param({"endpoint": "PJSIP/1001\n"}, "endpoint", id="endpoint-trailing-newline"),
    pytest.param({"endpoint": "PJSIP/" + "1" * 81}, "endpoint", id="endpoint-too-long"),
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"name": "   "}, "name", id="name-blank"),
    pytest.param({"name": "x" * 81}, "name", id="name-too-long"),
    pytest.param({"name": "王\x00芳"}, "name", id="name-nul"),
    pytest.param({"name": "\x1b[31m王芳"}, "name", id="name-escape-sequence"),
    pytest.param({"name": "<b>王芳</b>"}, "name", id="name-markup"),
    pytest.param({"name": "王\u202e芳"}, "name", id="name-bidi-override"),
    pytest.param({"name": "王\u200b芳"}, "name", id="name-zero-width"),
    pytest.param({"name": "王芳\n主管"}, "name", id="name-two-lines"),
    pytest.param({"name": "=HYPERLINK(1)"}, "name", id="name-formula"),
    pytest.param({"skills": {"repair": 0}}, "skills.repair", id="level-0"),
    pytest.param({"skills": {"repair": 11}}, "skills.repair", id="level-11"),
    pytest.param({"skills": {"repair": "5"}}, "skills.repair", id="level-str"),
    pytest.param({"skills": {"repair": 2.5}}, "skills.repair", id="level-float"),
    pytest.param({"skills": {"repair": True}}, "skills.repair", id="level-bool"),
]


@pytest.mark.parametrize(("fields", "field"), INVALID_AGENT_FIELDS)
async def test_create_refuses_invalid_fields_naming_the_field(
    records: Records, fields: dict[str, object], field: str
) -> None:
    """An undiallable endpoint, a name that breaks the rules of names (empty, over-long,
    control or invisible characters, markup, a formula), or a skill level that is not an
    integer 1..10 is refused with InvalidInput naming the field; nothing is stored."""
    arguments: dict[str, object] = {
        "name": "王芳",
        "endpoint": "PJSIP/1001",
        "skills": {"repair": 5},
        **fields,
    }
    with pytest.raises(InvalidInput) as refused:
        await records.agents.create(at=T0, **arguments)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert await records.agents.list(include_inactive=True) == []


@pytest.mark.parametrize(("fields", "field"), INVALID_AGENT_FIELDS)
async def test_update_refuses_invalid_fields_naming_the_field(
    records: Records, fields: dict[str, object], field: str
) -> None:
    """update applies the same rules as create and leaves the agent unchanged when it refuses."""
    agent = await records.agents.create(
        name="王芳", endpoint="PJSIP/1001", skills={"repair": 5}, at=T0
    )
    with pytest.raises(InvalidInput) as refused:
        await records.agents.update(agent.id, **fields)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert await records.agents.get(agent.id) == agent


async def test_update_renames_and_replaces_skills_wholesale(records: Records) -> None:
    """Given skills replace the old set entirely (dropped queues go); name and endpoint change."""
    agent = await records.agents.create(
        name="王芳", endpoint="PJSIP/1001", skills={"repair": 5, "complaint": 2}, at=T0
    )
    updated = await records.agents.update(
        agent.id, name=" 王芳芳 ", endpoint="PJSIP/2001", skills={"repair": 9, "inquiry": 1}
    )
    assert (updated.name, updated.endpoint, dict(updated.skills)) == (
        "王芳芳",
        "PJSIP/2001",
        {"repair": 9, "inquiry": 1},
    )
    assert await records.agents.get(agent.id) == updated


async def test_update_without_skills_keeps_them_and_empty_skills_clears_them(
    records: Records,
) -> None:
    """skills=None leaves the skills alone; skills={} removes every one."""
    agent = await records.agents.create(
        name="王芳", endpoint="PJSIP/1001", skills={"repair": 5}, at=T0
    )
    renamed = await records.agents.update(agent.id, name="王小芳")
    assert dict(renamed.skills) == {"repair": 5}
    cleared = await records.agents.update(agent.id, skills={})
    assert (cleared.name, dict(cleared.skills)) == ("王小芳", {})


async def test_record_state_updates_agent_and_appends_history_newest_first(
    records: Records,
) -> None:
    """record_state sets state, reason and since, and adds a history entry with its call id;
    history lists newest first (equal times: the later change first)."""
    call_id = await records.new_call("chan-1")
    agent = await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    agents = records.agents
    await agents.record_state(agent.id, state="paused", reason="log-in", at=at(10))
    await agents.record_state(agent.id, state="ready", reason=None, at=at(20))
    await agents.record_state(agent.id, state="ringing", reason=None, at=at(30), call_id=call_id)
    await agents.record_state(agent.id, state="on-call", reason=None, at=at(30), call_id=call_id)
    await agents.record_state(agent.id, state="paused", reason="break", at=at(90))

    stored = await agents.get(agent.id)
    assert (stored.state, stored.state_reason, stored.state_since) == ("paused", "break", at(90))
    history = await agents.history(agent.id)
    assert [(h.state, h.reason, h.call_id, h.at) for h in history] == [
        ("paused", "break", None, at(90)),
        ("on-call", None, call_id, at(30)),
        ("ringing", None, call_id, at(30)),
        ("ready", None, None, at(20)),
        ("paused", "log-in", None, at(10)),
        ("logged-out", None, None, T0),
    ]
    assert [h.state for h in await agents.history(agent.id, limit=2)] == ["paused", "on-call"]


class SlowAgentDirectory(AgentDirectory):
    """A fake for fault injection: the real directory, whose state writes wait for
    ``release`` (a database busy with other writes)."""

    def __init__(self, real: AgentDirectory) -> None:
        vars(self).update(vars(real))
        self.holding = asyncio.Event()
        self.released = asyncio.Event()

    async def record_state(self, agent_id: int, **change: Any) -> None:
        self.holding.set()
        await self.released.wait()
        await super().record_state(agent_id, **change)


async def test_a_reader_of_the_history_waits_for_the_state_changes_in_flight(
    records: Records,
) -> None:
    """The roster's state is live and its history is written behind; ``written`` (what the
    agent API awaits before reading the history) returns once the history has caught up,
    so a supervisor never reads a state that the history does not show yet."""
    slow = SlowAgentDirectory(records.agents)
    clock = ManualClock(T0)
    roster = AgentRoster(slow, clock, LiveEvents(clock))
    agent = roster.add(
        await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    )
    clock.advance(seconds=10)
    roster.apply(agent, AgentEvent.LOG_IN)
    roster.apply(agent, AgentEvent.SET_READY)
    reading = asyncio.ensure_future(roster.written(agent.id))
    await slow.holding.wait()
    assert not reading.done()
    slow.released.set()
    await reading
    history = await records.agents.history(agent.id)
    assert [h.state for h in history] == [str(agent.state), "paused", "logged-out"]
    await roster.flush()


async def test_record_state_time_is_stored_as_the_same_instant_in_utc(records: Records) -> None:
    """A state change given in +08:00 comes back as that instant, in UTC."""
    agent = await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    when = datetime(2024, 5, 1, 17, 0, 5, tzinfo=BEIJING)
    await records.agents.record_state(agent.id, state="ready", reason=None, at=when)
    stored = await records.agents.get(agent.id)
    assert stored.state_since == at(5)
    assert stored.state_since.tzinfo is UTC


async def test_inactive_agent_is_hidden_from_the_default_list(records: Records) -> None:
    """set_active(False) hides an agent from list() but not from list(include_inactive=True);
    set_active(True) brings it back."""
    first = await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    second = await records.agents.create(name="李雷", endpoint="PJSIP/1002", skills={}, at=T0)
    hidden = await records.agents.set_active(first.id, False)
    assert hidden.active is False
    assert [a.id for a in await records.agents.list()] == [second.id]
    assert [a.id for a in await records.agents.list(include_inactive=True)] == [
        first.id,
        second.id,
    ]
    assert (await records.agents.set_active(first.id, True)).active is True
    assert [a.id for a in await records.agents.list()] == [first.id, second.id]


@pytest.mark.parametrize(
    "operation",
    [
        lambda r: r.agents.get(999),
        lambda r: r.agents.update(999, name="王芳"),
        lambda r: r.agents.update(999, skills={"repair": 5}),
        lambda r: r.agents.set_active(999, False),
        lambda r: r.agents.record_state(999, state="ready", reason=None, at=T0),
        lambda r: r.agents.history(999),
    ],
    ids=["get", "update-name", "update-skills", "set-active", "record-state", "history"],
)
async def test_unknown_agent_raises_not_found(
    records: Records, operation: Callable[[Records], Awaitable[object]]
) -> None:
    """Every agent method given an id that does not exist raises NotFound."""
    with pytest.raises(NotFound):
        await operation(records)


# --- queue facts ---


async def test_queue_entry_round_trip_keeps_every_fact_and_offers_in_order(
    records: Records,
) -> None:
    """enter, offers, answer, leave, talk end and wrap-up end all come back from for_call."""
    call_id = await records.new_call("chan-1")
    wang = await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    li = await records.agents.create(name="李雷", endpoint="PJSIP/1002", skills={}, at=T0)
    facts = records.facts

    entry_id = await facts.enter(
        call_id=call_id, queue="repair", tag="urgent", priority=5, at=at(1)
    )
    first = await facts.offer(entry_id, agent_id=li.id, endpoint="PJSIP/1002", at=at(3))
    await facts.offer_ended(first, outcome=OfferOutcome.NO_ANSWER, at=at(18))
    second = await facts.offer(entry_id, agent_id=wang.id, endpoint="PJSIP/1001", at=at(19))
    await facts.offer_ended(second, outcome=OfferOutcome.ANSWERED, at=at(25))
    await facts.answered(entry_id, agent_id=wang.id, at=at(25))
    await facts.left(entry_id, outcome=Outcome.ANSWERED, at=at(25))
    await facts.talk_ended(entry_id, at=at(205))
    await facts.wrap_up_ended(entry_id, at=at(265))

    [entry] = await facts.for_call(call_id)
    assert (entry.id, entry.call_id, entry.queue, entry.tag, entry.priority) == (
        entry_id,
        call_id,
        "repair",
        "urgent",
        5,
    )
    assert (entry.entered_at, entry.answered_at, entry.agent_id) == (at(1), at(25), wang.id)
    assert (entry.left_at, entry.outcome) == (at(25), "answered")
    assert (entry.talk_ended_at, entry.wrap_up_ended_at) == (at(205), at(265))
    assert [
        (o.agent_id, o.endpoint, o.ring_started_at, o.ended_at, o.outcome) for o in entry.offers
    ] == [
        (li.id, "PJSIP/1002", at(3), at(18), "no-answer"),
        (wang.id, "PJSIP/1001", at(19), at(25), "answered"),
    ]
    assert entry.to_json()["offers"][1]["ring_started_at"] == "2024-05-01T09:00:19+00:00"


async def test_for_call_lists_only_that_calls_entries_in_entry_order(records: Records) -> None:
    """A call moved between queues has one entry per queue, oldest first; others' are not shown."""
    call_id = await records.new_call("chan-1")
    other_id = await records.new_call("chan-2")
    facts = records.facts
    first = await facts.enter(call_id=call_id, queue="inquiry", tag=None, priority=0, at=at(1))
    await facts.enter(call_id=other_id, queue="repair", tag=None, priority=0, at=at(2))
    second = await facts.enter(call_id=call_id, queue="repair", tag=None, priority=0, at=at(40))
    assert [(e.id, e.queue) for e in await facts.for_call(call_id)] == [
        (first, "inquiry"),
        (second, "repair"),
    ]
    assert await facts.for_call(await records.new_call("chan-3")) == []


async def test_left_keeps_the_first_outcome(records: Records) -> None:
    """Once an entry has left the queue, a later left() changes nothing."""
    call_id = await records.new_call("chan-1")
    entry_id = await records.facts.enter(
        call_id=call_id, queue="repair", tag=None, priority=0, at=at(1)
    )
    await records.facts.left(entry_id, outcome=Outcome.CALLBACK, at=at(30))
    await records.facts.left(entry_id, outcome=Outcome.SERVICE_STOPPED, at=at(60))
    [entry] = await records.facts.for_call(call_id)
    assert (entry.left_at, entry.outcome) == (at(30), "callback")


async def test_concurrent_leaves_store_exactly_one_outcome(records: Records) -> None:
    """Two left() racing on one entry: the stored outcome and time are one caller's, whole."""
    call_id = await records.new_call("chan-1")
    entry_id = await records.facts.enter(
        call_id=call_id, queue="repair", tag=None, priority=0, at=at(1)
    )
    await asyncio.gather(
        records.facts.left(entry_id, outcome=Outcome.ABANDONED, at=at(30)),
        records.facts.left(entry_id, outcome=Outcome.TIMEOUT, at=at(31)),
    )
    [entry] = await records.facts.for_call(call_id)
    assert (entry.outcome, entry.left_at) in [("abandoned", at(30)), ("timeout", at(31))]


async def test_offer_ended_keeps_the_first_outcome(records: Records) -> None:
    """An offer that has ended keeps its first end time and outcome."""
    call_id = await records.new_call("chan-1")
    entry_id = await records.facts.enter(
        call_id=call_id, queue="repair", tag=None, priority=0, at=at(1)
    )
    offer_id = await records.facts.offer(entry_id, agent_id=None, endpoint="PJSIP/1001", at=at(2))
    await records.facts.offer_ended(offer_id, outcome=OfferOutcome.LOST_RACE, at=at(5))
    await records.facts.offer_ended(offer_id, outcome=OfferOutcome.CALLER_GONE, at=at(9))
    [entry] = await records.facts.for_call(call_id)
    assert [(o.agent_id, o.ended_at, o.outcome) for o in entry.offers] == [
        (None, at(5), "lost-race")
    ]


async def test_unfinished_lists_only_entries_that_have_not_left(records: Records) -> None:
    """unfinished() returns the entries without left_at, oldest first, whatever their answer."""
    facts = records.facts
    calls = [await records.new_call(f"chan-{i}") for i in range(4)]
    waiting = await facts.enter(call_id=calls[0], queue="repair", tag=None, priority=0, at=at(1))
    gone = await facts.enter(call_id=calls[1], queue="repair", tag=None, priority=0, at=at(2))
    talking = await facts.enter(call_id=calls[2], queue="inquiry", tag=None, priority=0, at=at(3))
    answered_and_left = await facts.enter(
        call_id=calls[3], queue="repair", tag=None, priority=0, at=at(4)
    )
    await facts.left(gone, outcome=Outcome.ABANDONED, at=at(20))
    await facts.answered(talking, agent_id=None, at=at(10))
    await facts.answered(answered_and_left, agent_id=None, at=at(11))
    await facts.left(answered_and_left, outcome=Outcome.ANSWERED, at=at(11))
    assert [e.id for e in await facts.unfinished()] == [waiting, talking]


async def test_recent_handle_times_are_answer_to_wrap_up_end_for_the_queue_newest_first(
    records: Records,
) -> None:
    """Seconds from answer to end of wrap-up, only for that queue's finished calls, latest
    wrap-up first, at most ``limit``."""
    facts = records.facts

    async def handled(queue: str, answered: float, wrapped: float | None) -> None:
        call_id = await records.new_call(f"chan-{queue}-{answered}")
        entry = await facts.enter(call_id=call_id, queue=queue, tag=None, priority=0, at=at(0))
        await facts.answered(entry, agent_id=None, at=at(answered))
        await facts.left(entry, outcome=Outcome.ANSWERED, at=at(answered))
        if wrapped is not None:
            await facts.wrap_up_ended(entry, at=at(wrapped))

    await handled("repair", 10, 130)  # 120 s, wrap-up ends 2nd latest
    await handled("repair", 20, 320)  # 300 s, latest
    await handled("repair", 30, 90)  # 60 s, 3rd latest
    await handled("repair", 40, None)  # still in wrap-up: no handle time yet
    await handled("complaint", 5, 1000)  # other queue
    call_id = await records.new_call("chan-unanswered")
    unanswered = await facts.enter(call_id=call_id, queue="repair", tag=None, priority=0, at=T0)
    await facts.wrap_up_ended(unanswered, at=at(2000))  # never answered: not a handle time

    assert await facts.recent_handle_times("repair") == [300.0, 120.0, 60.0]
    assert await facts.recent_handle_times("repair", limit=2) == [300.0, 120.0]
    assert await facts.recent_handle_times("complaint") == [995.0]
    assert await facts.recent_handle_times("inquiry") == []


@pytest.mark.parametrize(
    "operation",
    [
        lambda f: f.answered(999, agent_id=None, at=T0),
        lambda f: f.talk_ended(999, at=T0),
        lambda f: f.wrap_up_ended(999, at=T0),
    ],
    ids=["answered", "talk-ended", "wrap-up-ended"],
)
async def test_unknown_queue_entry_raises_not_found(
    records: Records, operation: Callable[[QueueFacts], Awaitable[object]]
) -> None:
    """Setting a fact on an entry that does not exist raises NotFound."""
    with pytest.raises(NotFound):
        await operation(records.facts)


# --- messages ---


async def leave(records: Records, call_id: int, seconds: float, queue: str = "repair") -> int:
    return await records.messages.leave(
        call_id=call_id,
        queue=queue,
        reason=MessageReason.NO_AGENTS,
        recording=f"msg-{call_id}-{seconds}",
        duration_s=12.5,
        at=at(seconds),
    )


async def test_left_message_is_on_the_unhandled_list_with_its_details(records: Records) -> None:
    """A new message is unhandled, keeps what was given, and is not on the handled list."""
    call_id = await records.new_call("chan-1")
    message_id = await records.messages.leave(
        call_id=call_id,
        queue=None,
        reason=MessageReason.OUT_OF_HOURS,
        recording="msg-1",
        duration_s=12.5,
        at=at(60),
    )
    unhandled, total = await records.messages.list(handled=False)
    assert total == 1
    [message] = unhandled
    assert (message.id, message.call_id, message.queue, message.reason) == (
        message_id,
        call_id,
        None,
        "out-of-hours",
    )
    assert (message.recording, message.duration_s, message.recorded_at) == ("msg-1", 12.5, at(60))
    assert (message.handled_at, message.handled_by, message.note) == (None, None, None)
    assert await records.messages.list(handled=True) == ([], 0)
    assert await records.messages.get(message_id) == message


async def test_messages_list_newest_first_with_total(records: Records) -> None:
    """list orders by recording time descending, ties by id descending, and counts all."""
    call_id = await records.new_call("chan-1")
    oldest = await leave(records, call_id, 10)
    newest = await leave(records, call_id, 100)
    tie_first = await leave(records, call_id, 50)
    tie_second = await leave(records, call_id, 50)
    page, total = await records.messages.list()
    assert ([m.id for m in page], total) == ([newest, tie_second, tie_first, oldest], 4)


async def test_messages_list_pages_with_limit_and_offset(records: Records) -> None:
    """Pages slice the newest-first order; total counts every match, not just the page."""
    call_id = await records.new_call("chan-1")
    newest_first = [await leave(records, call_id, i) for i in range(5)][::-1]
    messages = records.messages
    for limit, offset, expected in [
        (2, 0, newest_first[0:2]),
        (2, 4, newest_first[4:]),
        (2, 9, []),
    ]:
        page, total = await messages.list(limit=limit, offset=offset)
        assert ([m.id for m in page], total) == (expected, 5)


async def test_messages_list_filters_by_call(records: Records) -> None:
    """call_id keeps only that call's messages, and total counts only those."""
    call_id = await records.new_call("chan-1")
    other_id = await records.new_call("chan-2")
    mine = await leave(records, call_id, 1)
    await leave(records, other_id, 2)
    page, total = await records.messages.list(call_id=call_id)
    assert ([m.id for m in page], total) == ([mine], 1)


async def test_mark_handled_stores_who_when_and_note_and_moves_it_to_handled(
    records: Records,
) -> None:
    """mark_handled records handler (trimmed), note and time; the message leaves the to-do list."""
    call_id = await records.new_call("chan-1")
    handled_id = await leave(records, call_id, 10)
    open_id = await leave(records, call_id, 20)
    record = await records.messages.mark_handled(
        handled_id, by=" 客服小王 ", note="已转告维修部", at=at(600)
    )
    assert (record.id, record.handled_by, record.note, record.handled_at) == (
        handled_id,
        "客服小王",
        "已转告维修部",
        at(600),
    )
    assert await records.messages.get(handled_id) == record
    unhandled, unhandled_total = await records.messages.list(handled=False)
    handled, handled_total = await records.messages.list(handled=True)
    assert ([m.id for m in unhandled], unhandled_total) == ([open_id], 1)
    assert ([m.id for m in handled], handled_total) == ([handled_id], 1)


@pytest.mark.parametrize(
    ("by", "note", "field"),
    [
        ("客服小王\n客服小李", None, "handled_by"),
        ("客服\u202e小王", None, "handled_by"),
        ("<i>客服小王</i>", None, "handled_by"),
        ("客服小王", "已转告\x00维修部", "note"),
        ("客服小王", "已转告\u202e维修部", "note"),
    ],
)
async def test_mark_handled_refuses_a_bad_handler_or_note_and_leaves_it_open(
    records: Records, by: str, note: str | None, field: str
) -> None:
    """Who handled it follows the rules of names; the note those of free text."""
    call_id = await records.new_call("chan-1")
    message_id = await leave(records, call_id, 10)
    with pytest.raises(InvalidInput) as refused:
        await records.messages.mark_handled(message_id, by=by, note=note, at=at(60))
    assert refused.value.field == field
    assert (await records.messages.get(message_id)).handled_at is None


async def test_second_mark_handled_is_a_conflict_naming_who_handled_it(records: Records) -> None:
    """Handling a handled message is refused, naming the first handler; the first stays."""
    call_id = await records.new_call("chan-1")
    message_id = await leave(records, call_id, 10)
    first = await records.messages.mark_handled(message_id, by="客服小王", note=None, at=at(60))
    with pytest.raises(Conflict, match="客服小王"):
        await records.messages.mark_handled(message_id, by="客服小李", note="again", at=at(90))
    assert await records.messages.get(message_id) == first


async def test_concurrent_mark_handled_has_exactly_one_winner(records: Records) -> None:
    """Of two people marking one message at once, one succeeds and the other gets Conflict."""
    call_id = await records.new_call("chan-1")
    message_id = await leave(records, call_id, 10)
    results = await asyncio.gather(
        records.messages.mark_handled(message_id, by="客服小王", note=None, at=at(60)),
        records.messages.mark_handled(message_id, by="客服小李", note=None, at=at(61)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "MessageRecord"]
    winner = next(r for r in results if not isinstance(r, BaseException))
    assert await records.messages.get(message_id) == winner


@pytest.mark.parametrize(
    ("by", "note", "field"),
    [
        ("", None, "handled_by"),
        ("   ", None, "handled_by"),
        ("x" * 81, None, "handled_by"),
        ("客服小王", "x" * 2001, "note"),
    ],
    ids=["empty-handler", "blank-handler", "long-handler", "long-note"],
)
async def test_mark_handled_refuses_invalid_input_and_changes_nothing(
    records: Records, by: str, note: str | None, field: str
) -> None:
    """A blank or over-long handler, or a note over 2000 characters, is InvalidInput naming the
    field; the message stays unhandled."""
    call_id = await records.new_call("chan-1")
    message_id = await leave(records, call_id, 10)
    with pytest.raises(InvalidInput) as refused:
        await records.messages.mark_handled(message_id, by=by, note=note, at=at(60))
    assert refused.value.field == field
    assert (await records.messages.get(message_id)).handled_at is None


@pytest.mark.parametrize(
    "operation",
    [
        lambda m: m.get(999),
        lambda m: m.mark_handled(999, by="客服小王", note=None, at=T0),
    ],
    ids=["get", "mark-handled"],
)
async def test_unknown_message_raises_not_found(
    records: Records, operation: Callable[[MessageBox], Awaitable[object]]
) -> None:
    """Getting or handling a message that does not exist raises NotFound, not Conflict."""
    with pytest.raises(NotFound):
        await operation(records.messages)


# --- call-backs ---


async def request(
    records: Records, call_id: int, *, place: float, requested: float, queue: str = "repair"
) -> int:
    record = await records.callbacks.request(
        call_id=call_id,
        queue=queue,
        number="13800000000",
        place_at=at(place),
        at=at(requested),
        expires_at=at(requested + 3600),
    )
    return record.id


async def test_requested_call_back_waits_with_no_attempts_due_at_once(records: Records) -> None:
    """A new call-back is waiting, with 0 attempts, due at the request time, keeping its place."""
    call_id = await records.new_call("chan-1")
    record = await records.callbacks.request(
        call_id=call_id,
        queue="repair",
        number="13800000000",
        place_at=at(5),
        at=at(65),
        expires_at=at(7265),
    )
    assert (record.call_id, record.queue, record.number) == (call_id, "repair", "13800000000")
    assert (record.place_at, record.requested_at, record.expires_at) == (at(5), at(65), at(7265))
    assert (record.status, record.attempts, record.next_attempt_at) == ("waiting", 0, at(65))
    assert (record.finished_at, record.attempt_log) == (None, ())
    assert await records.callbacks.get(record.id) == record


async def test_start_attempt_marks_dialling_and_opens_an_attempt(records: Records) -> None:
    """start_attempt moves a waiting call-back to dialling and logs an open attempt."""
    call_id = await records.new_call("chan-1")
    agent = await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    callback_id = await request(records, call_id, place=5, requested=65)
    await records.callbacks.start_attempt(callback_id, agent_id=agent.id, at=at(120))
    record = await records.callbacks.get(callback_id)
    assert (record.status, record.attempts) == ("dialling", 0)
    assert [(a.agent_id, a.started_at, a.ended_at, a.outcome) for a in record.attempt_log] == [
        (agent.id, at(120), None, None)
    ]


async def test_start_attempt_while_dialling_is_a_conflict(records: Records) -> None:
    """Only a waiting call-back can start an attempt; a second start opens no second attempt."""
    call_id = await records.new_call("chan-1")
    callback_id = await request(records, call_id, place=5, requested=65)
    await records.callbacks.start_attempt(callback_id, agent_id=None, at=at(120))
    with pytest.raises(Conflict):
        await records.callbacks.start_attempt(callback_id, agent_id=None, at=at(121))
    assert len((await records.callbacks.get(callback_id)).attempt_log) == 1


async def test_concurrent_start_attempts_have_exactly_one_winner(records: Records) -> None:
    """Two dialers claiming one waiting call-back at once: one gets an attempt, one a Conflict."""
    call_id = await records.new_call("chan-1")
    callback_id = await request(records, call_id, place=5, requested=65)
    results = await asyncio.gather(
        records.callbacks.start_attempt(callback_id, agent_id=None, at=at(120)),
        records.callbacks.start_attempt(callback_id, agent_id=None, at=at(120)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "int"]
    record = await records.callbacks.get(callback_id)
    assert (record.status, len(record.attempt_log)) == ("dialling", 1)


async def test_counted_failed_attempt_returns_to_waiting_with_a_retry_time(
    records: Records,
) -> None:
    """A resident's no-answer counts: attempts 1, waiting again until next_attempt_at, the
    attempt closed in the log; then the call-back can be started again."""
    call_id = await records.new_call("chan-1")
    callbacks = records.callbacks
    callback_id = await request(records, call_id, place=5, requested=65)
    attempt_id = await callbacks.start_attempt(callback_id, agent_id=None, at=at(120))
    await callbacks.finish_attempt(
        callback_id,
        attempt_id,
        outcome=AttemptOutcome.NO_ANSWER,
        at=at(150),
        counts=True,
        status=CallbackStatus.WAITING,
        next_attempt_at=at(450),
    )
    record = await callbacks.get(callback_id)
    assert (record.status, record.attempts, record.next_attempt_at, record.finished_at) == (
        "waiting",
        1,
        at(450),
        None,
    )
    assert [(a.started_at, a.ended_at, a.outcome) for a in record.attempt_log] == [
        (at(120), at(150), "no-answer")
    ]
    await callbacks.start_attempt(callback_id, agent_id=None, at=at(450))
    assert (await callbacks.get(callback_id)).status == "dialling"


async def test_agent_missed_attempt_does_not_use_up_a_resident_attempt(records: Records) -> None:
    """finish_attempt(counts=False) logs the attempt but leaves the attempt count alone."""
    call_id = await records.new_call("chan-1")
    callbacks = records.callbacks
    callback_id = await request(records, call_id, place=5, requested=65)
    attempt_id = await callbacks.start_attempt(callback_id, agent_id=None, at=at(120))
    await callbacks.finish_attempt(
        callback_id,
        attempt_id,
        outcome=AttemptOutcome.AGENT_MISSED,
        at=at(135),
        counts=False,
        status=CallbackStatus.WAITING,
    )
    record = await callbacks.get(callback_id)
    assert (record.status, record.attempts, record.next_attempt_at) == ("waiting", 0, at(65))
    assert [a.outcome for a in record.attempt_log] == ["agent-missed"]


async def test_reached_call_back_is_finished_and_no_longer_open(records: Records) -> None:
    """A finishing status (reached) sets finished_at; the call-back leaves open()."""
    call_id = await records.new_call("chan-1")
    callbacks = records.callbacks
    callback_id = await request(records, call_id, place=5, requested=65)
    attempt_id = await callbacks.start_attempt(callback_id, agent_id=None, at=at(120))
    await callbacks.finish_attempt(
        callback_id,
        attempt_id,
        outcome=AttemptOutcome.REACHED,
        at=at(140),
        counts=True,
        status=CallbackStatus.REACHED,
    )
    record = await callbacks.get(callback_id)
    assert (record.status, record.attempts, record.finished_at) == ("reached", 1, at(140))
    assert await callbacks.open() == []
    assert [c.id for c in await callbacks.list(status=CallbackStatus.REACHED)] == [callback_id]


async def test_close_cancels_an_open_call_back_but_not_a_finished_one(records: Records) -> None:
    """close() on a waiting or dialling call-back returns True and finishes it; on a finished
    one it returns False and changes nothing."""
    callbacks = records.callbacks
    waiting = await request(records, await records.new_call("chan-1"), place=1, requested=60)
    dialling = await request(records, await records.new_call("chan-2"), place=2, requested=60)
    await callbacks.start_attempt(dialling, agent_id=None, at=at(100))

    assert await callbacks.close(waiting, status=CallbackStatus.CANCELLED, at=at(200)) is True
    assert await callbacks.close(dialling, status=CallbackStatus.EXPIRED, at=at(201)) is True
    for callback_id, status, finished in [
        (waiting, "cancelled", at(200)),
        (dialling, "expired", at(201)),
    ]:
        record = await callbacks.get(callback_id)
        assert (record.status, record.finished_at) == (status, finished)

    assert await callbacks.close(waiting, status=CallbackStatus.EXPIRED, at=at(300)) is False
    record = await callbacks.get(waiting)
    assert (record.status, record.finished_at) == ("cancelled", at(200))
    assert await callbacks.open() == []


async def test_call_back_closed_while_dialling_stays_closed_when_the_attempt_ends(
    records: Records,
) -> None:
    """Cancelling a dialling call-back (allowed: it is open) is final: the attempt that was
    under way is logged when it ends, but it cannot put the call-back back in line."""
    call_id = await records.new_call("chan-1")
    callbacks = records.callbacks
    callback_id = await request(records, call_id, place=5, requested=65)
    attempt_id = await callbacks.start_attempt(callback_id, agent_id=None, at=at(120))
    assert await callbacks.close(callback_id, status=CallbackStatus.CANCELLED, at=at(130)) is True
    await callbacks.finish_attempt(
        callback_id,
        attempt_id,
        outcome=AttemptOutcome.NO_ANSWER,
        at=at(150),
        counts=True,
        status=CallbackStatus.WAITING,
        next_attempt_at=at(450),
    )
    record = await callbacks.get(callback_id)
    assert [(a.ended_at, a.outcome) for a in record.attempt_log] == [(at(150), "no-answer")]
    assert (record.status, record.finished_at) == ("cancelled", at(130))
    assert await callbacks.open() == []


async def test_open_lists_waiting_and_dialling_in_place_order(records: Records) -> None:
    """open() returns waiting and dialling call-backs ordered by place_at (original entry time),
    not by request time; finished ones are left out."""
    callbacks = records.callbacks
    calls = [await records.new_call(f"chan-{i}") for i in range(4)]
    late_place = await request(records, calls[0], place=50, requested=100)
    early_place_requested_later = await request(records, calls[1], place=10, requested=200)
    dialling = await request(records, calls[2], place=30, requested=300, queue="complaint")
    cancelled = await request(records, calls[3], place=5, requested=50)
    await callbacks.start_attempt(dialling, agent_id=None, at=at(310))
    await callbacks.close(cancelled, status=CallbackStatus.CANCELLED, at=at(320))

    assert [(c.id, c.status) for c in await callbacks.open()] == [
        (early_place_requested_later, "waiting"),
        (dialling, "dialling"),
        (late_place, "waiting"),
    ]
    assert [c.id for c in await callbacks.list()] == [
        cancelled,
        early_place_requested_later,
        dialling,
        late_place,
    ]
    assert [c.id for c in await callbacks.list(status=CallbackStatus.WAITING)] == [
        early_place_requested_later,
        late_place,
    ]


async def test_call_back_to_json_nests_the_attempt_log(records: Records) -> None:
    """to_json gives ISO times and the attempts as a list of objects."""
    call_id = await records.new_call("chan-1")
    callback_id = await request(records, call_id, place=5, requested=65)
    await records.callbacks.start_attempt(callback_id, agent_id=None, at=at(120))
    data = (await records.callbacks.get(callback_id)).to_json()
    assert data["place_at"] == "2024-05-01T09:00:05+00:00"
    assert data["attempt_log"] == [
        {
            "agent_id": None,
            "started_at": "2024-05-01T09:02:00+00:00",
            "ended_at": None,
            "outcome": None,
        }
    ]


@pytest.mark.parametrize(
    "operation",
    [
        lambda c: c.get(999),
        lambda c: c.close(999, status=CallbackStatus.CANCELLED, at=T0),
        lambda c: c.start_attempt(999, agent_id=None, at=T0),
    ],
    ids=["get", "close", "start-attempt"],
)
async def test_unknown_call_back_raises_not_found(
    records: Records, operation: Callable[[CallbackBook], Awaitable[object]]
) -> None:
    """A call-back id that does not exist raises NotFound (not Conflict, not False)."""
    with pytest.raises(NotFound):
        await operation(records.callbacks)


# --- naive datetimes, everywhere ---


@dataclass
class Seeded:
    call_id: int
    agent_id: int
    entry_id: int
    offer_id: int
    message_id: int
    callback_id: int
    attempt_id: int


async def seed(records: Records) -> Seeded:
    call_id = await records.new_call("chan-1")
    agent = await records.agents.create(name="王芳", endpoint="PJSIP/1001", skills={}, at=T0)
    entry_id = await records.facts.enter(
        call_id=call_id, queue="repair", tag=None, priority=0, at=T0
    )
    offer_id = await records.facts.offer(entry_id, agent_id=agent.id, endpoint="PJSIP/1001", at=T0)
    message_id = await leave(records, call_id, 0)
    callback_id = await request(records, call_id, place=0, requested=0)
    attempt_id = await records.callbacks.start_attempt(callback_id, agent_id=None, at=T0)
    return Seeded(call_id, agent.id, entry_id, offer_id, message_id, callback_id, attempt_id)


NaiveCase = Callable[[Records, Seeded], Awaitable[object]]
NAIVE_CASES: list[tuple[str, NaiveCase]] = [
    (
        "agent-create",
        lambda r, s: r.agents.create(name="李雷", endpoint="PJSIP/1002", skills={}, at=NAIVE),
    ),
    (
        "agent-record-state",
        lambda r, s: r.agents.record_state(s.agent_id, state="ready", reason=None, at=NAIVE),
    ),
    (
        "facts-enter",
        lambda r, s: r.facts.enter(
            call_id=s.call_id, queue="repair", tag=None, priority=0, at=NAIVE
        ),
    ),
    (
        "facts-offer",
        lambda r, s: r.facts.offer(s.entry_id, agent_id=None, endpoint="PJSIP/1001", at=NAIVE),
    ),
    (
        "facts-offer-ended",
        lambda r, s: r.facts.offer_ended(s.offer_id, outcome=OfferOutcome.BUSY, at=NAIVE),
    ),
    ("facts-answered", lambda r, s: r.facts.answered(s.entry_id, agent_id=None, at=NAIVE)),
    (
        "facts-left",
        lambda r, s: r.facts.left(s.entry_id, outcome=Outcome.ABANDONED, at=NAIVE),
    ),
    ("facts-talk-ended", lambda r, s: r.facts.talk_ended(s.entry_id, at=NAIVE)),
    ("facts-wrap-up-ended", lambda r, s: r.facts.wrap_up_ended(s.entry_id, at=NAIVE)),
    (
        "message-leave",
        lambda r, s: r.messages.leave(
            call_id=s.call_id,
            queue=None,
            reason=MessageReason.ASKED,
            recording=None,
            duration_s=None,
            at=NAIVE,
        ),
    ),
    (
        "message-mark-handled",
        lambda r, s: r.messages.mark_handled(s.message_id, by="客服小王", note=None, at=NAIVE),
    ),
    (
        "callback-request-place-at",
        lambda r, s: r.callbacks.request(
            call_id=s.call_id, queue="repair", number="1", place_at=NAIVE, at=T0, expires_at=T0
        ),
    ),
    (
        "callback-request-at",
        lambda r, s: r.callbacks.request(
            call_id=s.call_id, queue="repair", number="1", place_at=T0, at=NAIVE, expires_at=T0
        ),
    ),
    (
        "callback-request-expires-at",
        lambda r, s: r.callbacks.request(
            call_id=s.call_id, queue="repair", number="1", place_at=T0, at=T0, expires_at=NAIVE
        ),
    ),
    (
        "callback-finish-attempt-at",
        lambda r, s: r.callbacks.finish_attempt(
            s.callback_id,
            s.attempt_id,
            outcome=AttemptOutcome.BUSY,
            at=NAIVE,
            counts=True,
            status=CallbackStatus.WAITING,
            next_attempt_at=T0,
        ),
    ),
    (
        "callback-finish-attempt-next-attempt-at",
        lambda r, s: r.callbacks.finish_attempt(
            s.callback_id,
            s.attempt_id,
            outcome=AttemptOutcome.BUSY,
            at=T0,
            counts=True,
            status=CallbackStatus.WAITING,
            next_attempt_at=NAIVE,
        ),
    ),
    (
        "callback-close",
        lambda r, s: r.callbacks.close(s.callback_id, status=CallbackStatus.CANCELLED, at=NAIVE),
    ),
]


@pytest.mark.parametrize("operation", [c for _, c in NAIVE_CASES], ids=[n for n, _ in NAIVE_CASES])
async def test_naive_datetime_is_refused_with_value_error(
    records: Records, operation: NaiveCase
) -> None:
    """Every time given to these repositories must be timezone-aware: a naive one is a
    ValueError (a caller's mistake), not a storage failure and not a guessed zone."""
    seeded = await seed(records)
    with pytest.raises(ValueError, match=r"timezone|naive"):
        await operation(records, seeded)
