"""Queued call-backs: a caller who left the line keeps their place and is called back.

``place_at`` is the caller's original entry time, so the ACD orders call-backs with live
callers by it. Every attempt is stored with its outcome; the status says where the
call-back stands: waiting (for its turn or its retry time), dialling, reached, failed
(attempts used up), expired or cancelled.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import selectinload

from crm.exceptions import Conflict, NotFound
from crm.models import QueueCallback, QueueCallbackAttempt
from crm.repository import DOCUMENTED_FIELDS, OneOf, Repository, record_json, require_aware
from crm.uncancellable import uncancellable


class CallbackStatus:
    WAITING = "waiting"
    DIALLING = "dialling"
    REACHED = "reached"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    OPEN = (WAITING, DIALLING)
    ALL = (WAITING, DIALLING, REACHED, FAILED, EXPIRED, CANCELLED)


class AttemptOutcome:
    REACHED = "reached"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    AGENT_MISSED = "agent-missed"  # the agent did not pick up: not the resident's attempt

    ALL = (REACHED, NO_ANSWER, BUSY, FAILED, AGENT_MISSED)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One try at a call-back: the agent is rung first, then the resident."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    agent_id: int | None
    """The agent rung."""
    started_at: datetime
    """When the attempt started."""
    ended_at: datetime | None
    """When it ended; null while in progress."""
    outcome: Annotated[str, OneOf(AttemptOutcome.ALL)] | None
    """reached, no-answer, busy, failed, or agent-missed (the agent did not pick up: does not count
    as one of the resident's attempts); null while in progress."""


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """A queued call-back: a caller who left the line keeps their place and is called back."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Call-back id."""
    call_id: int
    """The call in which the resident asked for it."""
    queue: str
    """Queue it waits in."""
    number: str
    """Number to call back."""
    place_at: datetime
    """The caller's original entry time: their place in line."""
    requested_at: datetime
    """When the call-back was booked."""
    status: Annotated[str, OneOf(CallbackStatus.ALL)]
    """waiting (for its turn or retry time), dialling, reached, failed (attempts used up), expired
    or cancelled."""
    attempts: int
    """Attempts counted against the resident."""
    next_attempt_at: datetime
    """Not tried before this time (retry delay)."""
    expires_at: datetime
    """Given up after this time."""
    finished_at: datetime | None
    """When it reached a final status; null while open."""
    attempt_log: tuple[AttemptRecord, ...]
    """Every attempt, oldest first."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


class CallbackBook(Repository):
    @uncancellable
    async def request(
        self,
        *,
        call_id: int,
        queue: str,
        number: str,
        place_at: datetime,
        at: datetime,
        expires_at: datetime,
    ) -> CallbackRecord:
        for name, value in (("place_at", place_at), ("at", at), ("expires_at", expires_at)):
            require_aware(name, value)
        statement = (
            insert(QueueCallback)
            .values(
                call_id=call_id,
                queue=queue,
                number=number,
                place_at=place_at,
                requested_at=at,
                status=CallbackStatus.WAITING,
                attempts=0,
                next_attempt_at=at,
                expires_at=expires_at,
            )
            .returning(QueueCallback.id)
        )
        async with self._transaction("request call-back") as session:
            callback_id = (await session.execute(statement)).scalar_one()
        return await self.get(callback_id)

    @uncancellable
    async def start_attempt(self, callback_id: int, *, agent_id: int | None, at: datetime) -> int:
        """Mark the call-back dialling and open an attempt; only a waiting one can start."""
        require_aware("at", at)
        async with self._transaction("start attempt") as session:
            claimed = await session.execute(
                update(QueueCallback)
                .where(
                    QueueCallback.id == callback_id,
                    QueueCallback.status == CallbackStatus.WAITING,
                )
                .values(status=CallbackStatus.DIALLING)
                .returning(QueueCallback.id)
            )
            if claimed.scalar_one_or_none() is None:
                if await session.get(QueueCallback, callback_id) is None:
                    raise NotFound("call-back", callback_id)
                raise Conflict(f"call-back {callback_id} is not waiting")
            return (
                await session.execute(
                    insert(QueueCallbackAttempt)
                    .values(callback_id=callback_id, agent_id=agent_id, started_at=at)
                    .returning(QueueCallbackAttempt.id)
                )
            ).scalar_one()

    @uncancellable
    async def finish_attempt(
        self,
        callback_id: int,
        attempt_id: int,
        *,
        outcome: str,
        at: datetime,
        counts: bool,
        status: str,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Close an attempt and move the call-back on.

        ``counts`` is False when the resident was never dialled (the agent missed the
        ring): that try does not use up one of the resident's attempts.
        """
        require_aware("at", at)
        if next_attempt_at is not None:
            require_aware("next_attempt_at", next_attempt_at)
        values: dict[str, Any] = {"status": status}
        if counts:
            values["attempts"] = QueueCallback.attempts + 1
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if status not in CallbackStatus.OPEN:
            values["finished_at"] = at
        async with self._transaction("finish attempt") as session:
            await session.execute(
                update(QueueCallbackAttempt)
                .where(QueueCallbackAttempt.id == attempt_id)
                .values(ended_at=at, outcome=outcome)
            )
            # Only a call-back still dialling moves on: one cancelled meanwhile stays so.
            await session.execute(
                update(QueueCallback)
                .where(
                    QueueCallback.id == callback_id,
                    QueueCallback.status == CallbackStatus.DIALLING,
                )
                .values(values)
            )

    @uncancellable
    async def close(self, callback_id: int, *, status: str, at: datetime) -> bool:
        """Cancel or expire a call-back that is still open; False if it was not open."""
        require_aware("at", at)
        async with self._transaction("close call-back") as session:
            result = await session.execute(
                update(QueueCallback)
                .where(
                    QueueCallback.id == callback_id,
                    QueueCallback.status.in_(CallbackStatus.OPEN),
                )
                .values(status=status, finished_at=at)
                .returning(QueueCallback.id)
            )
            if result.scalar_one_or_none() is not None:
                return True
            if await session.get(QueueCallback, callback_id) is None:
                raise NotFound("call-back", callback_id)
            return False

    @uncancellable
    async def reset_dialling(self, *, at: datetime) -> int:
        """After a restart: attempts cut short end as failed (not counted); back to waiting."""
        require_aware("at", at)
        async with self._transaction("reset dialling") as session:
            cut = select(QueueCallback.id).where(QueueCallback.status == CallbackStatus.DIALLING)
            await session.execute(
                update(QueueCallbackAttempt)
                .where(
                    QueueCallbackAttempt.callback_id.in_(cut),
                    QueueCallbackAttempt.ended_at.is_(None),
                )
                .values(ended_at=at, outcome=AttemptOutcome.FAILED)
            )
            result = await session.execute(
                update(QueueCallback)
                .where(QueueCallback.status == CallbackStatus.DIALLING)
                .values(status=CallbackStatus.WAITING)
                .returning(QueueCallback.id)
            )
            return len(result.all())

    @uncancellable
    async def get(self, callback_id: int) -> CallbackRecord:
        found = await self._select("get call-back", QueueCallback.id == callback_id)
        if not found:
            raise NotFound("call-back", callback_id)
        return found[0]

    @uncancellable
    async def list(self, *, status: str | None = None) -> builtins.list[CallbackRecord]:
        if status is None:
            return await self._select("list call-backs")
        return await self._select("list call-backs", QueueCallback.status == status)

    @uncancellable
    async def open(self) -> builtins.list[CallbackRecord]:
        """Call-backs still to make, in place order (a restart puts them back in line)."""
        return await self._select("open call-backs", QueueCallback.status.in_(CallbackStatus.OPEN))

    async def _select(self, operation: str, *conditions: Any) -> builtins.list[CallbackRecord]:
        statement = (
            select(QueueCallback)
            .where(*conditions)
            .options(selectinload(QueueCallback.attempt_log))
            .order_by(QueueCallback.place_at, QueueCallback.id)
        )
        async with self._transaction(operation) as session:
            rows = (await session.scalars(statement)).all()
        return [
            CallbackRecord(
                id=c.id,
                call_id=c.call_id,
                queue=c.queue,
                number=c.number,
                place_at=c.place_at,
                requested_at=c.requested_at,
                status=c.status,
                attempts=c.attempts,
                next_attempt_at=c.next_attempt_at,
                expires_at=c.expires_at,
                finished_at=c.finished_at,
                attempt_log=tuple(
                    AttemptRecord(a.agent_id, a.started_at, a.ended_at, a.outcome)
                    for a in c.attempt_log
                ),
            )
            for c in rows
        ]
