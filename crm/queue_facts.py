"""Queue facts per call: entered, each agent offer, answered, left, wrap-up end.

Written as the call goes, never summarised: reports compute service level (answered
within N seconds), ASA, abandon rate and AHT from these rows later, whatever N is.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlalchemy.orm import selectinload

from crm.exceptions import NotFound
from crm.models import AgentOffer, QueueEntry
from crm.repository import Repository, record_json, require_aware
from crm.uncancellable import uncancellable


class Outcome:
    """How a stay in a queue ended (``queue_entry.outcome``)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"  # the caller hung up while waiting or while an agent rang
    CALLBACK = "callback"  # left the line keeping their place: not an abandon
    MESSAGE = "message"  # left a message instead of waiting
    TIMEOUT = "timeout"  # waited the queue's maximum
    SERVICE_STOPPED = "service-stopped"
    # An agent answered but caller and agent could not be bridged: the call was ended
    # (both sides hung up), never offered to a second agent.
    CONNECT_FAILED = "connect-failed"


class OfferOutcome:
    ANSWERED = "answered"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"  # softphone not registered
    CALLER_GONE = "caller-gone"
    LOST_RACE = "lost-race"  # ring-all: another phone answered first
    # Asterisk never confirmed the ring (no reply to the originate, no event): not a miss.
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True, slots=True)
class OfferRecord:
    agent_id: int | None
    endpoint: str
    ring_started_at: datetime
    ended_at: datetime | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class QueueEntryRecord:
    id: int
    call_id: int
    queue: str
    tag: str | None
    priority: int
    entered_at: datetime
    answered_at: datetime | None
    agent_id: int | None
    left_at: datetime | None
    outcome: str | None
    talk_ended_at: datetime | None
    wrap_up_ended_at: datetime | None
    offers: tuple[OfferRecord, ...]

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


def took_call(agent_id: int) -> ColumnElement[bool]:
    """Which queue entries make a call the agent's: the ones they answered.

    The one statement of "the calls an agent took" (standards §6): theirs to hear, to see
    numbers in full, to find in a search.
    """
    return and_(QueueEntry.agent_id == agent_id, QueueEntry.answered_at.is_not(None))


class QueueFacts(Repository):
    @uncancellable
    async def enter(
        self, *, call_id: int, queue: str, tag: str | None, priority: int, at: datetime
    ) -> int:
        require_aware("at", at)
        statement = (
            insert(QueueEntry)
            .values(call_id=call_id, queue=queue, tag=tag, priority=priority, entered_at=at)
            .returning(QueueEntry.id)
        )
        async with self._transaction("enter queue") as session:
            return (await session.execute(statement)).scalar_one()

    @uncancellable
    async def offer(
        self, entry_id: int, *, agent_id: int | None, endpoint: str, at: datetime
    ) -> int:
        require_aware("at", at)
        statement = (
            insert(AgentOffer)
            .values(entry_id=entry_id, agent_id=agent_id, endpoint=endpoint, ring_started_at=at)
            .returning(AgentOffer.id)
        )
        async with self._transaction("offer") as session:
            return (await session.execute(statement)).scalar_one()

    @uncancellable
    async def offer_ended(self, offer_id: int, *, outcome: str, at: datetime) -> None:
        require_aware("at", at)
        statement = (
            update(AgentOffer)
            .where(AgentOffer.id == offer_id, AgentOffer.ended_at.is_(None))
            .values(ended_at=at, outcome=outcome)
        )
        async with self._transaction("offer ended") as session:
            await session.execute(statement)

    @uncancellable
    async def answered(self, entry_id: int, *, agent_id: int | None, at: datetime) -> None:
        await self._set(entry_id, "answered", answered_at=at, agent_id=agent_id)

    @uncancellable
    async def left(self, entry_id: int, *, outcome: str, at: datetime) -> None:
        """The call left the queue; the first outcome stored is kept."""
        require_aware("at", at)
        statement = (
            update(QueueEntry)
            .where(QueueEntry.id == entry_id, QueueEntry.left_at.is_(None))
            .values(left_at=at, outcome=outcome)
        )
        async with self._transaction("left queue") as session:
            await session.execute(statement)

    @uncancellable
    async def talk_ended(self, entry_id: int, *, at: datetime) -> None:
        await self._set(entry_id, "talk ended", talk_ended_at=at)

    @uncancellable
    async def wrap_up_ended(self, entry_id: int, *, at: datetime) -> None:
        await self._set(entry_id, "wrap-up ended", wrap_up_ended_at=at)

    @uncancellable
    async def for_call(self, call_id: int) -> builtins.list[QueueEntryRecord]:
        return await self._select("entries for call", QueueEntry.call_id == call_id)

    @uncancellable
    async def answered_by(self, agent_id: int, call_ids: builtins.list[int]) -> set[int]:
        """Which of ``call_ids`` the agent answered: the calls that are theirs to see."""
        if not call_ids:
            return set()
        query = select(QueueEntry.call_id).where(
            took_call(agent_id), QueueEntry.call_id.in_(call_ids)
        )
        async with self._transaction("calls answered by agent") as session:
            return set((await session.scalars(query)).all())

    @uncancellable
    async def unfinished(self) -> builtins.list[QueueEntryRecord]:
        """Entries a stopped service left without an outcome (closed at the next start)."""
        return await self._select("unfinished entries", QueueEntry.left_at.is_(None))

    @uncancellable
    async def recent_handle_times(self, queue: str, *, limit: int = 20) -> builtins.list[float]:
        """Seconds from answer to the end of wrap-up, for the queue's latest calls."""
        statement = (
            select(QueueEntry.answered_at, QueueEntry.wrap_up_ended_at)
            .where(
                QueueEntry.queue == queue,
                QueueEntry.answered_at.is_not(None),
                QueueEntry.wrap_up_ended_at.is_not(None),
            )
            .order_by(QueueEntry.wrap_up_ended_at.desc())
            .limit(limit)
        )
        async with self._transaction("handle times") as session:
            rows = (await session.execute(statement)).all()
        return [(end - start).total_seconds() for start, end in rows if start and end]

    async def _set(self, entry_id: int, operation: str, **values: Any) -> None:
        for name, value in values.items():
            if isinstance(value, datetime):
                require_aware(name, value)
        statement = (
            update(QueueEntry)
            .where(QueueEntry.id == entry_id)
            .values(**values)
            .returning(QueueEntry.id)
        )
        async with self._transaction(operation) as session:
            if (await session.execute(statement)).scalar_one_or_none() is None:
                raise NotFound("queue entry", entry_id)

    async def _select(self, operation: str, *conditions: Any) -> builtins.list[QueueEntryRecord]:
        statement = (
            select(QueueEntry)
            .where(*conditions)
            .options(selectinload(QueueEntry.offers))
            .order_by(QueueEntry.entered_at, QueueEntry.id)
        )
        async with self._transaction(operation) as session:
            rows = (await session.scalars(statement)).all()
        return [
            QueueEntryRecord(
                id=e.id,
                call_id=e.call_id,
                queue=e.queue,
                tag=e.tag,
                priority=e.priority,
                entered_at=e.entered_at,
                answered_at=e.answered_at,
                agent_id=e.agent_id,
                left_at=e.left_at,
                outcome=e.outcome,
                talk_ended_at=e.talk_ended_at,
                wrap_up_ended_at=e.wrap_up_ended_at,
                offers=tuple(
                    OfferRecord(o.agent_id, o.endpoint, o.ring_started_at, o.ended_at, o.outcome)
                    for o in e.offers
                ),
            )
            for e in rows
        ]
