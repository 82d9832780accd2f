"""The call log: what the telephony side writes about each call, and reads back.

Every method is one short transaction on its own session, so a slow API reader never holds
a lock a live call is waiting for. Writes are single statements wherever a race matters:
SQLite cannot safely turn a read transaction into a write one under concurrency, and a
single statement is also what makes "first close wins" hold on PostgreSQL.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from sqlalchemy import ColumnElement, String, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm.exceptions import NotFound, StorageError
from crm.models import Call, IvrStep, UTCDateTime
from crm.repository import DOCUMENTED_FIELDS, OneOf, Repository, record_json, require_aware
from crm.uncancellable import uncancellable


class CallState(StrEnum):
    """The states of one hotline call, as stored in ``state`` (telephony/call_state.py
    has the machine that moves a call between them)."""

    RINGING = "ringing"  # in Stasis, not yet answered
    GREETING = "greeting"  # answered, company greeting playing
    IVR = "ivr"  # walking the menu
    ROUTING = "routing"  # choice made, routing announcement playing
    HOLDING = "holding"  # waiting in the queue's holding bridge with music
    CONNECTED = "connected"  # talking to an agent in a mixing bridge
    MESSAGE = "message"  # leaving a message (留言)
    FAREWELL = "farewell"  # we are ending the call politely (e.g. waited too long)
    ENDED = "ended"


INITIAL_STATE = CallState.RINGING
ENDED_STATE = CallState.ENDED


class Direction:
    IN = "in"  # the resident called
    OUT = "out"  # we called them: a case's call-back (回访)

    ALL = (IN, OUT)


class EndReason:
    """Why a call ended, as stored in ``end_reason``."""

    CALLER_HANGUP = "caller-hangup"
    AGENT_HANGUP = "agent-hangup"  # the agent ended the conversation
    HOLDING_TIMEOUT = "holding-timeout"
    MESSAGE_LEFT = "message-left"
    CALLBACK_REQUESTED = "callback-requested"  # left the line keeping their place
    SERVICE_ERROR = "service-error"
    CONNECT_FAILED = "connect-failed"  # an agent answered; caller and agent could not be bridged
    ASTERISK_RESTART = "asterisk-restart"  # Asterisk stopped or restarted under the call
    CHANNEL_LOST = "channel-lost"
    SERVICE_RESTART = "service-restart"
    # A call-back dialled from a case (telephony/acd/case_dialler.py).
    AGENT_NO_ANSWER = "agent-no-answer"
    NOT_REACHED = "not-reached"
    TALKED = "talked"
    AGENT_QUIT = "agent-hung-up-first"

    ALL = (
        CALLER_HANGUP,
        AGENT_HANGUP,
        HOLDING_TIMEOUT,
        MESSAGE_LEFT,
        CALLBACK_REQUESTED,
        SERVICE_ERROR,
        CONNECT_FAILED,
        ASTERISK_RESTART,
        CHANNEL_LOST,
        SERVICE_RESTART,
        AGENT_NO_ANSWER,
        NOT_REACHED,
        TALKED,
        AGENT_QUIT,
    )


@dataclass(frozen=True, slots=True)
class IvrChoice:
    """What a caller chose in the IVR: a queue and, for some, a tag (repair/urgent).

    Stored on the call as text (``queue`` or ``queue/tag``) the moment the key is
    pressed, so whatever happens next the case knows what the call was about.
    """

    queue: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"{self.queue}/{self.tag}" if self.tag else self.queue

    @classmethod
    def parse(cls, text: str | None) -> IvrChoice | None:
        if not text:
            return None
        queue, _, tag = text.partition("/")
        return cls(queue, tag or None)


@dataclass(frozen=True, slots=True)
class IvrStepRecord:
    """One key press or timeout in the caller's walk through the IVR."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    seq: int
    """Order within the call, from 0."""
    node: str
    """Menu node the caller was in, e.g. main, repair."""
    input: str
    """Digit pressed, or timeout, invalid:<digit>, hangup."""
    action: str
    """What the IVR did, e.g. submenu:repair, queue:repair, reprompt."""
    at: datetime
    """When the input arrived (UTC)."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call, from channel creation to hang-up; detached from the database."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Call id."""
    channel_id: str
    """Asterisk channel id."""
    direction: Annotated[str, OneOf(Direction.ALL)]
    """in: the resident called; out: we called them back (回访)."""
    caller_number: str | None
    """Caller id number; null when absent."""
    caller_name: str | None
    """Caller id name; null when absent."""
    dialled_number: str | None
    """Number the caller dialled (the hotline)."""
    started_at: datetime
    """Channel creation time (UTC)."""
    answered_at: datetime | None
    """When the service answered."""
    ring_ms: int | None
    """Milliseconds from started_at to answered_at."""
    greeting_played: bool
    """Whether the caller heard the whole greeting."""
    queue: str | None
    """Queue the call was routed to: inquiry, repair, complaint, operator, emergency or
    message."""
    choice: str | None
    """What the caller chose in the IVR, as queue or queue/tag (e.g. repair/urgent), stored
    when the key was pressed; a submenu standing for one queue gives the queue alone (报修
    chosen, no class yet). The case reads it (see IvrChoice)."""
    queued_at: datetime | None
    """When the call was queued."""
    state: Annotated[str, OneOf(tuple(CallState))]
    """Last call state: ringing, greeting, ivr, routing, holding, connected, message,
    farewell or ended."""
    ended_at: datetime | None
    """When it ended; null while live."""
    end_reason: Annotated[str, OneOf(EndReason.ALL)] | None
    """Why it ended: caller-hangup, agent-hangup, holding-timeout, callback-requested,
    message-left, asterisk-restart, channel-lost, service-restart, service-error or
    connect-failed; a call-back dialled from a case: agent-no-answer, not-reached, talked
    or agent-hung-up-first."""
    hangup_cause: int | None
    """Q.850 cause code reported by Asterisk."""
    hangup_cause_text: str | None
    """Asterisk's text for the hang-up cause."""
    ivr_path: tuple[IvrStepRecord, ...]
    """IVR steps in order."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


class CallLog(Repository):
    """Repository of call records; the only code that touches the call tables."""

    @uncancellable
    async def open_call(
        self,
        *,
        channel_id: str,
        caller_number: str | None,
        caller_name: str | None,
        dialled_number: str | None,
        started_at: datetime,
        direction: str = "in",
    ) -> int:
        """Record a new call and return its id, or the id already recorded for the channel.

        ``direction`` "out" is a call we placed (a case call-back, 回访): its
        ``caller_number`` is the resident we called.

        Idempotent so the service can re-adopt live channels after reconnecting to
        Asterisk without knowing which ones it had already recorded. The insert is tried
        first (a write needs no read snapshot) and the duplicate is looked up afterwards.
        Asterisk sends an empty caller id when there is none; that is stored as None.
        """
        require_aware("started_at", started_at)
        statement = (
            insert(Call)
            .values(
                channel_id=channel_id,
                caller_number=caller_number or None,
                caller_name=caller_name or None,
                dialled_number=dialled_number or None,
                started_at=started_at,
                direction=direction,
                greeting_played=False,
                state=INITIAL_STATE,
            )
            .returning(Call.id)
        )
        try:
            async with self._transaction("open_call") as session:
                return (await session.execute(statement)).scalar_one()
        except StorageError as err:
            if not isinstance(err.__cause__, IntegrityError):
                raise
            duplicate = err.__cause__
        async with self._transaction("open_call") as session:
            existing = await session.scalar(select(Call.id).where(Call.channel_id == channel_id))
        if existing is None:
            raise StorageError("open_call failed") from duplicate
        return existing

    @uncancellable
    async def mark_answered(
        self, call_id: int, *, answered_at: datetime, ring_ms: int, state: str | None = None
    ) -> None:
        """Store the answer; ``state`` too in the same write (one fewer under a burst)."""
        require_aware("answered_at", answered_at)
        values: dict[str, Any] = {"answered_at": answered_at, "ring_ms": ring_ms}
        if state is not None:
            values["state"] = state
        await self._update("mark_answered", call_id, **values)

    @uncancellable
    async def mark_greeting_played(self, call_id: int) -> None:
        await self._update("mark_greeting_played", call_id, greeting_played=True)

    @uncancellable
    async def add_ivr_step(
        self,
        call_id: int,
        *,
        node: str,
        input: str,
        action: str,
        at: datetime,
        choice: IvrChoice | None = None,
    ) -> None:
        """Append a step to the call's IVR path; a ``choice`` made by it is stored with it.

        The next ``seq`` is computed by the INSERT itself, so no read precedes the write;
        two concurrent appends to one call cannot share a number (the unique
        ``(call_id, seq)`` constraint rejects the loser on PostgreSQL). The choice goes
        in the same transaction: a caller who hangs up a moment later has it on record.
        """
        require_aware("at", at)
        next_seq = (
            select(func.coalesce(func.max(IvrStep.seq) + 1, 0))
            .where(IvrStep.call_id == call_id)
            .correlate(None)
            .scalar_subquery()
        )
        source = select(
            Call.id,
            next_seq,
            literal(node, String()),
            literal(input, String()),
            literal(action, String()),
            literal(at, UTCDateTime()),
        ).where(Call.id == call_id)
        statement = (
            insert(IvrStep)
            .from_select(["call_id", "seq", "node", "input", "action", "at"], source)
            .returning(IvrStep.id)
        )
        async with self._transaction("add_ivr_step") as session:
            if (await session.execute(statement)).scalar_one_or_none() is None:
                raise NotFound("call", call_id)
            if choice is not None:
                await session.execute(
                    update(Call).where(Call.id == call_id).values(choice=str(choice))
                )

    @uncancellable
    async def set_queue(self, call_id: int, *, queue: str, at: datetime) -> None:
        require_aware("at", at)
        await self._update("set_queue", call_id, queue=queue, queued_at=at)

    @uncancellable
    async def set_state(self, call_id: int, state: str) -> None:
        """Record the call's current state; ignored once the call is closed.

        Telephony events can arrive after the hang-up that closed the call; letting them
        through would make an ended call look live again.
        """
        statement = (
            update(Call)
            .where(Call.id == call_id, Call.ended_at.is_(None))
            .values(state=state)
            .returning(Call.id)
        )
        async with self._transaction("set_state") as session:
            if (await session.execute(statement)).scalar_one_or_none() is None:
                await _require_call(session, call_id)

    @uncancellable
    async def close_call(
        self,
        call_id: int,
        *,
        ended_at: datetime,
        reason: str,
        cause: int | None = None,
        cause_text: str | None = None,
    ) -> bool:
        """Mark the call ended; return False if something else had already closed it.

        A hang-up event, a restart reconciliation and a holding timeout can all try to
        close the same call; the first one's reason is the true one, so the update only
        matches a row that is still open and only one closer can match it.
        """
        require_aware("ended_at", ended_at)
        statement = (
            update(Call)
            .where(Call.id == call_id, Call.ended_at.is_(None))
            .values(
                ended_at=ended_at,
                end_reason=reason,
                hangup_cause=cause,
                hangup_cause_text=cause_text,
                state=ENDED_STATE,
            )
            .returning(Call.id)
        )
        async with self._transaction("close_call") as session:
            if (await session.execute(statement)).scalar_one_or_none() is not None:
                return True
            await _require_call(session, call_id)
            return False

    @uncancellable
    async def find_open_by_channel(self, channel_id: str) -> CallRecord | None:
        found = await self._select(
            "find_open_by_channel", Call.channel_id == channel_id, Call.ended_at.is_(None)
        )
        return found[0] if found else None

    @uncancellable
    async def open_calls(self) -> builtins.list[CallRecord]:
        """Calls not yet closed, oldest first; after a restart each is live or lost."""
        return await self._select("open_calls", Call.ended_at.is_(None))

    @uncancellable
    async def get(self, call_id: int) -> CallRecord:
        found = await self._select("get", Call.id == call_id)
        if not found:
            raise NotFound("call", call_id)
        return found[0]

    @uncancellable
    async def of_ids(self, call_ids: builtins.list[int]) -> dict[int, CallRecord]:
        """The calls of a page of other records (messages), in one query."""
        if not call_ids:
            return {}
        return {c.id: c for c in await self._select("calls by id", Call.id.in_(call_ids))}

    async def list(
        self,
        *,
        caller: str | None = None,
        queue: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[CallRecord], int]:
        """One page of calls, newest first, and how many calls match in all.

        ``since`` is inclusive and ``until`` exclusive, so consecutive windows neither
        overlap nor leave gaps.
        """
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must not be negative: {limit}, {offset}")
        conditions: builtins.list[ColumnElement[bool]] = []
        if caller is not None:
            conditions.append(Call.caller_number == caller)
        if queue is not None:
            conditions.append(Call.queue == queue)
        if since is not None:
            require_aware("since", since)
            conditions.append(Call.started_at >= since)
        if until is not None:
            require_aware("until", until)
            conditions.append(Call.started_at < until)
        page = (
            select(Call)
            .where(*conditions)
            .options(selectinload(Call.ivr_steps))
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._transaction("list") as session:
            total = await session.scalar(select(func.count()).select_from(Call).where(*conditions))
            calls = (await session.scalars(page)).all()
        return [_record(call) for call in calls], total or 0

    async def _update(self, operation: str, call_id: int, **values: Any) -> None:
        statement = update(Call).where(Call.id == call_id).values(**values).returning(Call.id)
        async with self._transaction(operation) as session:
            if (await session.execute(statement)).scalar_one_or_none() is None:
                raise NotFound("call", call_id)

    async def _select(
        self, operation: str, *conditions: ColumnElement[bool]
    ) -> builtins.list[CallRecord]:
        statement = (
            select(Call)
            .where(*conditions)
            .options(selectinload(Call.ivr_steps))
            .order_by(Call.started_at, Call.id)
        )
        async with self._transaction(operation) as session:
            calls = (await session.scalars(statement)).all()
        return [_record(call) for call in calls]


async def _require_call(session: AsyncSession, call_id: int) -> None:
    if await session.scalar(select(Call.id).where(Call.id == call_id)) is None:
        raise NotFound("call", call_id)


def _record(call: Call) -> CallRecord:
    return CallRecord(
        id=call.id,
        channel_id=call.channel_id,
        direction=call.direction,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        dialled_number=call.dialled_number,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ring_ms=call.ring_ms,
        greeting_played=call.greeting_played,
        queue=call.queue,
        choice=call.choice,
        queued_at=call.queued_at,
        state=call.state,
        ended_at=call.ended_at,
        end_reason=call.end_reason,
        hangup_cause=call.hangup_cause,
        hangup_cause_text=call.hangup_cause_text,
        ivr_path=tuple(
            IvrStepRecord(seq=s.seq, node=s.node, input=s.input, action=s.action, at=s.at)
            for s in call.ivr_steps
        ),
    )
