"""What a supervisor reviewing calls reads: the call log with who answered and what came
of it, and one call's queue timeline.

The call log of ``crm.calls`` holds what the telephony side wrote about a call; a review
needs more per row (the agent who took it, whether its recording and transcript exist,
the case it opened) and filters on those. Each is one correlated subquery on an indexed
column, so a page of 50 rows costs 50 small lookups whatever the log's size, and the
rows stay one query: no N+1 from the page code.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm import models as m
from crm.recordings import RecordingStatus
from crm.repository import DOCUMENTED_FIELDS, Repository, record_json, require_aware
from crm.transcripts import JobStatus


class Sort(StrEnum):
    """How the call log is ordered: a reviewer hunts the newest, or the slowest answers."""

    NEWEST = "newest"
    OLDEST = "oldest"
    LONGEST_RING = "longest-ring"


@dataclass(frozen=True, slots=True)
class ReviewFilters:
    """Every filter is optional; ``within_rings`` needs ``rings_deadline_ms`` to mean much."""

    since: datetime | None = None
    until: datetime | None = None
    queue: str | None = None
    agent_id: int | None = None
    caller: str | None = None
    direction: str | None = None
    end_reason: str | None = None
    within_rings: bool | None = None
    rings_deadline_ms: int = 11_000
    has_recording: bool | None = None
    has_transcript: bool | None = None
    case_kind: str | None = None


@dataclass(frozen=True, slots=True)
class CallRow:
    """One line of the call log as a reviewer sees it."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Call id."""
    started_at: datetime
    """When the call came in (UTC)."""
    direction: str
    """in: the resident called; out: a call-back (回访)."""
    caller_number: str | None
    """The resident's number (masked by role when shown)."""
    caller_name: str | None
    """Caller id name."""
    queue: str | None
    """Queue it was routed to."""
    choice: str | None
    """The IVR choice, queue or queue/tag."""
    agent_id: int | None
    """The agent who answered (the last answered queue entry)."""
    agent_name: str | None
    """That agent's name."""
    ring_ms: int | None
    """From the call's arrival to the service answering it."""
    within_rings: bool | None
    """Answered within the configured rings (three by the standards); null if never."""
    duration_s: float | None
    """From arrival to hang-up; null while live."""
    end_reason: str | None
    """Why it ended."""
    state: str
    """Last call state."""
    has_recording: bool
    """A stored recording exists."""
    has_transcript: bool
    """A finished transcript exists."""
    case_id: int | None
    """The case the call belongs to (the first linked)."""
    case_kind: str | None
    """That case's kind."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One moment of a call's way through the queues, for the call detail's timeline."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    at: datetime
    """When."""
    what: str
    """entered / offered / offer-ended / answered / left / talk-ended / wrap-up-ended."""
    queue: str
    """Which queue."""
    agent_id: int | None
    """The agent concerned (offers, answer)."""
    agent_name: str | None
    """Their name."""
    outcome: str | None
    """How an offer or the stay ended (no-answer, answered, abandoned …)."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class CallCase:
    """The case a call belongs to, for a link."""

    case_id: int
    kind: str
    status: str
    summary: str
    role: str


_answered = (
    select(m.QueueEntry.agent_id)
    .where(m.QueueEntry.call_id == m.Call.id, m.QueueEntry.answered_at.is_not(None))
    .order_by(m.QueueEntry.answered_at.desc())
    .limit(1)
    .correlate(m.Call)
    .scalar_subquery()
)
_case = (
    select(m.CaseCall.case_id)
    .where(m.CaseCall.call_id == m.Call.id)
    .order_by(m.CaseCall.id)
    .limit(1)
    .correlate(m.Call)
    .scalar_subquery()
)
_recorded = exists().where(
    m.Recording.call_id == m.Call.id,
    m.Recording.status == RecordingStatus.STORED,
    m.Recording.role != "message",
)
_transcribed = exists().where(
    m.TranscriptionJob.call_id == m.Call.id, m.TranscriptionJob.status == JobStatus.DONE
)


class CallReview(Repository):
    async def page(
        self,
        filters: ReviewFilters,
        *,
        sort: Sort = Sort.NEWEST,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[CallRow], int]:
        """One page of the call log and how many calls match in all."""
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must not be negative: {limit}, {offset}")
        conditions = _conditions(filters)
        agent = _answered.label("agent_id")
        case_id = _case.label("case_id")
        rows: Select[Any] = (
            select(
                m.Call,
                agent,
                _recorded.label("recorded"),
                _transcribed.label("transcribed"),
                case_id,
            )
            .where(*conditions)
            .order_by(*_order(sort))
            .limit(limit)
            .offset(offset)
        )
        async with self._transaction("call review page") as session:
            total = await session.scalar(
                select(func.count()).select_from(m.Call).where(*conditions)
            )
            found = (await session.execute(rows)).all()
            agent_ids = {row.agent_id for row in found if row.agent_id is not None}
            case_ids = {row.case_id for row in found if row.case_id is not None}
            names = await _agent_names(session, agent_ids)
            kinds = await _case_kinds(session, case_ids)
        return [
            _row(r.Call, r.agent_id, names, r.recorded, r.transcribed, r.case_id, kinds, filters)
            for r in found
        ], total or 0

    async def timeline(self, call_id: int) -> builtins.list[TimelineEvent]:
        """The call's queue entries and agent offers as moments in order."""
        entries = select(m.QueueEntry).where(m.QueueEntry.call_id == call_id)
        offers = (
            select(m.AgentOffer, m.QueueEntry.queue)
            .join(m.QueueEntry, m.AgentOffer.entry_id == m.QueueEntry.id)
            .where(m.QueueEntry.call_id == call_id)
        )
        async with self._transaction("call timeline") as session:
            stays = (await session.scalars(entries)).all()
            rung = (await session.execute(offers)).all()
            ids = {s.agent_id for s in stays} | {o.AgentOffer.agent_id for o in rung}
            names = await _agent_names(session, {i for i in ids if i is not None})
        events: list[TimelineEvent] = []

        def add(
            at: datetime | None, what: str, queue: str, agent: int | None, how: str | None
        ) -> None:
            if at is not None:
                name = names.get(agent) if agent is not None else None
                events.append(TimelineEvent(at, what, queue, agent, name, how))

        for stay in stays:
            add(stay.entered_at, "entered", stay.queue, None, stay.tag)
            add(stay.answered_at, "answered", stay.queue, stay.agent_id, None)
            add(stay.left_at, "left", stay.queue, None, stay.outcome)
            add(stay.talk_ended_at, "talk-ended", stay.queue, stay.agent_id, None)
            add(stay.wrap_up_ended_at, "wrap-up-ended", stay.queue, stay.agent_id, None)
        for offer, queue in rung:
            add(offer.ring_started_at, "offered", queue, offer.agent_id, offer.endpoint)
            add(offer.ended_at, "offer-ended", queue, offer.agent_id, offer.outcome)
        order = {"entered": 0, "offered": 1, "offer-ended": 2, "answered": 3, "left": 4}
        events.sort(key=lambda e: (e.at, order.get(e.what, 5)))
        return events

    async def case_of(self, call_id: int) -> CallCase | None:
        """The first case the call is linked to, if any."""
        query = (
            select(m.Case.id, m.Case.kind, m.Case.status, m.Case.summary, m.CaseCall.role)
            .join(m.CaseCall, m.CaseCall.case_id == m.Case.id)
            .where(m.CaseCall.call_id == call_id)
            .order_by(m.CaseCall.id)
            .limit(1)
        )
        async with self._transaction("case of call") as session:
            found = (await session.execute(query)).first()
        return None if found is None else CallCase(*found)


async def _agent_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    query = select(m.Agent.id, m.Agent.name).where(m.Agent.id.in_(ids))
    return {agent_id: name for agent_id, name in (await session.execute(query)).all()}


async def _case_kinds(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    query = select(m.Case.id, m.Case.kind).where(m.Case.id.in_(ids))
    return {case_id: kind for case_id, kind in (await session.execute(query)).all()}


def _conditions(f: ReviewFilters) -> list[ColumnElement[bool]]:
    c: list[ColumnElement[bool]] = []
    if f.since is not None:
        require_aware("since", f.since)
        c.append(m.Call.started_at >= f.since)
    if f.until is not None:
        require_aware("until", f.until)
        c.append(m.Call.started_at < f.until)
    if f.queue is not None:
        c.append(m.Call.queue == f.queue)
    if f.caller is not None:
        c.append(m.Call.caller_number == f.caller)
    if f.direction is not None:
        c.append(m.Call.direction == f.direction)
    if f.end_reason is not None:
        c.append(m.Call.end_reason == f.end_reason)
    if f.agent_id is not None:
        c.append(
            exists().where(
                m.QueueEntry.call_id == m.Call.id,
                m.QueueEntry.agent_id == f.agent_id,
                m.QueueEntry.answered_at.is_not(None),
            )
        )
    if f.within_rings is True:
        c.append(m.Call.ring_ms <= f.rings_deadline_ms)
    elif f.within_rings is False:
        c.append((m.Call.ring_ms > f.rings_deadline_ms) | m.Call.ring_ms.is_(None))
    if f.has_recording is not None:
        c.append(_recorded if f.has_recording else ~_recorded)
    if f.has_transcript is not None:
        c.append(_transcribed if f.has_transcript else ~_transcribed)
    if f.case_kind is not None:
        c.append(
            exists().where(
                m.CaseCall.call_id == m.Call.id,
                m.Case.id == m.CaseCall.case_id,
                m.Case.kind == f.case_kind,
            )
        )
    return c


def _order(sort: Sort) -> list[Any]:
    if sort is Sort.OLDEST:
        return [m.Call.started_at, m.Call.id]
    if sort is Sort.LONGEST_RING:
        return [m.Call.ring_ms.desc().nulls_last(), m.Call.started_at.desc(), m.Call.id.desc()]
    return [m.Call.started_at.desc(), m.Call.id.desc()]


def _row(
    call: m.Call,
    agent_id: int | None,
    names: dict[int, str],
    recorded: bool,
    transcribed: bool,
    case_id: int | None,
    kinds: dict[int, str],
    filters: ReviewFilters,
) -> CallRow:
    ended = call.ended_at
    return CallRow(
        id=call.id,
        started_at=call.started_at,
        direction=call.direction,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        queue=call.queue,
        choice=call.choice,
        agent_id=agent_id,
        agent_name=names.get(agent_id) if agent_id is not None else None,
        ring_ms=call.ring_ms,
        within_rings=None if call.ring_ms is None else call.ring_ms <= filters.rings_deadline_ms,
        duration_s=None if ended is None else (ended - call.started_at).total_seconds(),
        end_reason=call.end_reason,
        state=call.state,
        has_recording=bool(recorded),
        has_transcript=bool(transcribed),
        case_id=case_id,
        case_kind=kinds.get(case_id) if case_id is not None else None,
    )
