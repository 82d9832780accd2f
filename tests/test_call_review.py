"""What the call log page can ask of the review query, on SQLite and PostgreSQL: each filter
keeps exactly the calls it names, rows carry who answered and what exists of the call,
and sorting and paging are stable."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from crm.agents import AgentDirectory
from crm.call_review import CallReview, ReviewFilters, Sort
from crm.calls import CallLog
from crm.clock import SystemClock
from crm.db import make_sessionmaker
from crm.desk import CrmDesk
from crm.messages import MessageBox
from crm.queue_facts import QueueFacts
from crm.recordings import RecordingLog, StoredAudio
from crm.rules import ServiceRules
from crm.transcripts import TranscriptBook
from tests.clocks import T0
from tests.databases import one_connection_engine


@dataclasses.dataclass
class Floor:
    calls: CallLog
    facts: QueueFacts
    recordings: RecordingLog
    transcripts: TranscriptBook
    agents: AgentDirectory
    desk: CrmDesk
    review: CallReview
    messages: MessageBox


@pytest.fixture
async def floor(migrated_db_url: str) -> AsyncIterator[Floor]:
    engine = one_connection_engine(migrated_db_url)
    s = make_sessionmaker(engine)
    yield Floor(
        CallLog(s), QueueFacts(s), RecordingLog(s), TranscriptBook(s), AgentDirectory(s),
        CrmDesk.open(s, SystemClock(), ServiceRules()), CallReview(s), MessageBox(s),
    )  # fmt: skip
    await engine.dispose()


async def call(
    floor: Floor,
    n: int,
    *,
    ring_ms: int | None = 1000,
    agent: int | None = None,
    direction: str = "in",
    recorded: bool = False,
    transcribed: bool = False,
    end: str = "caller-hangup",
) -> int:
    """Call ``n``, ``n`` hours after T0, from 1380000000n."""
    start = T0 + timedelta(hours=n)
    call_id = await floor.calls.open_call(
        channel_id=f"c{n}", caller_number=f"1380000000{n}", caller_name=None,
        dialled_number="400", started_at=start, direction=direction,
    )  # fmt: skip
    if ring_ms is not None:
        answered = start + timedelta(milliseconds=ring_ms)
        await floor.calls.mark_answered(call_id, answered_at=answered, ring_ms=ring_ms)
    if agent is not None:
        entry = await floor.facts.enter(
            call_id=call_id, queue="repair", tag=None, priority=0, at=start
        )
        await floor.facts.answered(entry, agent_id=agent, at=start + timedelta(seconds=5))
    if recorded:
        rec = await floor.recordings.started(
            call_id=call_id, role="mixed", asterisk_name=f"r{n}", fmt="wav", at=start
        )
        await floor.recordings.stored(rec, StoredAudio(f"r{n}.wav", 10, 1.0, 8000, "x"), at=start)
    if transcribed:
        job = await floor.transcripts.enqueue(call_id, at=start)
        await floor.transcripts.done(job.id, [], model="m", audio_s=1, decode_s=1, at=start)
    await floor.calls.close_call(call_id, ended_at=start + timedelta(minutes=2), reason=end)
    return call_id


async def ids(floor: Floor, sort: Sort = Sort.NEWEST, **filters: object) -> list[int]:
    rows, total = await floor.review.page(ReviewFilters(**filters), sort=sort)  # type: ignore[arg-type]
    assert total == len(rows)
    return [row.id for row in rows]


async def test_each_filter_keeps_only_the_calls_it_names(floor: Floor) -> None:
    agent = (await floor.agents.create(name="李娜", endpoint="PJSIP/1001", skills={}, at=T0)).id
    plain = await call(floor, 1)
    taken = await call(floor, 2, agent=agent, recorded=True, transcribed=True)
    slow = await call(floor, 3, ring_ms=12_000, end="holding-timeout")
    unanswered = await call(floor, 4, ring_ms=None)
    back = await call(floor, 5, direction="out")
    everyone = [back, unanswered, slow, taken, plain]
    assert await ids(floor) == everyone
    assert await ids(floor, agent_id=agent) == [taken]
    assert await ids(floor, has_recording=True) == [taken]
    assert await ids(floor, has_recording=False) == [back, unanswered, slow, plain]
    assert await ids(floor, has_transcript=True) == [taken]
    assert await ids(floor, direction="out") == [back]
    assert await ids(floor, end_reason="holding-timeout") == [slow]
    assert await ids(floor, caller="13800000003") == [slow]
    assert await ids(floor, within_rings=True, rings_deadline_ms=11_000) == [back, taken, plain]
    assert await ids(floor, within_rings=False, rings_deadline_ms=11_000) == [unanswered, slow]
    window = {"since": T0 + timedelta(hours=2), "until": T0 + timedelta(hours=4)}
    assert await ids(floor, **window) == [slow, taken]  # until is exclusive
    assert await ids(floor, sort=Sort.OLDEST) == everyone[::-1]
    assert (await ids(floor, sort=Sort.LONGEST_RING))[0] == slow

    rows, _ = await floor.review.page(ReviewFilters(agent_id=agent))
    row = rows[0]
    assert (row.agent_id, row.agent_name, row.has_recording, row.has_transcript) == (
        agent, "李娜", True, True,
    )  # fmt: skip
    assert row.duration_s == 120
    assert row.within_rings is True


async def test_a_case_kind_filter_and_the_case_on_each_row(floor: Floor) -> None:
    repair = await call(floor, 1)
    other = await call(floor, 2)
    opened = await floor.desk.cases.open(kind="repair", channel="phone", summary="漏水", by="t")
    await floor.desk.cases.attach_call(opened.id, repair, role="opened")
    assert await ids(floor, case_kind="repair") == [repair]
    assert await ids(floor, case_kind="complaint") == []
    rows, _ = await floor.review.page(ReviewFilters())
    assert {(r.id, r.case_id, r.case_kind) for r in rows} == {
        (repair, opened.id, "repair"), (other, None, None),
    }  # fmt: skip
    found = await floor.review.case_of(repair)
    assert found is not None
    assert (found.case_id, found.kind, found.role) == (opened.id, "repair", "opened")


async def test_paging_is_stable_and_counts_all(floor: Floor) -> None:
    made = [await call(floor, n) for n in range(1, 8)]
    first, total = await floor.review.page(ReviewFilters(), limit=3, offset=0)
    second, _ = await floor.review.page(ReviewFilters(), limit=3, offset=3)
    assert total == 7
    assert [r.id for r in first + second] == made[::-1][:6]
    with pytest.raises(ValueError, match="negative"):
        await floor.review.page(ReviewFilters(), limit=-1)


async def test_the_timeline_has_every_offer_and_the_answer_in_order(floor: Floor) -> None:
    li = (await floor.agents.create(name="李娜", endpoint="PJSIP/1001", skills={}, at=T0)).id
    call_id = await call(floor, 1)
    entry = await floor.facts.enter(
        call_id=call_id, queue="repair", tag="urgent", priority=1, at=T0
    )
    offer = await floor.facts.offer(
        entry, agent_id=li, endpoint="PJSIP/1001", at=T0 + timedelta(seconds=1)
    )
    await floor.facts.offer_ended(offer, outcome="answered", at=T0 + timedelta(seconds=4))
    await floor.facts.answered(entry, agent_id=li, at=T0 + timedelta(seconds=4))
    await floor.facts.left(entry, outcome="answered", at=T0 + timedelta(seconds=4))
    events = await floor.review.timeline(call_id)
    assert [(e.what, e.agent_name) for e in events] == [
        ("entered", None), ("offered", "李娜"), ("offer-ended", "李娜"),
        ("answered", "李娜"), ("left", None),
    ]  # fmt: skip
