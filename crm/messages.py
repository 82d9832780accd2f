"""Messages (留言) callers leave, tracked until someone handles them (转告).

A message is stored the moment the recording stops, linked to its call, and stays
"unhandled" on the supervisor's list until a person marks it handled (passed on, 转告)
with a note. When the call ends it is filed under a message case, addressed to the
queue's department, so it is tracked with the rest of the resident's matters.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import func, insert, select, update

from crm import validation
from crm.exceptions import Conflict, NotFound
from crm.models import Message
from crm.repository import DOCUMENTED_FIELDS, OneOf, Repository, record_json, require_aware
from crm.uncancellable import uncancellable


class MessageReason:
    ASKED = "asked"  # chose to leave a message in the menu
    NO_AGENTS = "no-agents"  # nobody of that queue is logged in
    OUT_OF_HOURS = "out-of-hours"

    ALL = (ASKED, NO_AGENTS, OUT_OF_HOURS)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message (留言) a caller left, and whether someone has passed it on."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Message id."""
    call_id: int
    """The call it was left in (see GET /api/calls/{id})."""
    queue: str | None
    """Queue the caller had chosen; null if none."""
    reason: Annotated[str, OneOf(MessageReason.ALL)]
    """asked (chose it in the menu), no-agents (nobody of the queue logged in) or out-of-hours."""
    recording: str | None
    """Name of the Asterisk stored recording; null if none."""
    duration_s: float | None
    """Recording length in seconds, if known."""
    recorded_at: datetime
    """When the message was stored."""
    handled_at: datetime | None
    """When it was handled; null if not yet."""
    handled_by: str | None
    """Who handled it."""
    note: str | None
    """What was done about it."""
    for_whom: str | None
    """Whom it is for: the department of its queue."""
    case_id: int | None
    """The case it is filed under (GET /api/cases/{id})."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


class MessageBox(Repository):
    @uncancellable
    async def leave(
        self,
        *,
        call_id: int,
        queue: str | None,
        reason: str,
        recording: str | None,
        duration_s: float | None,
        at: datetime,
    ) -> int:
        require_aware("at", at)
        statement = (
            insert(Message)
            .values(
                call_id=call_id,
                queue=queue,
                reason=reason,
                recording=recording,
                duration_s=duration_s,
                recorded_at=at,
            )
            .returning(Message.id)
        )
        async with self._transaction("leave message") as session:
            return (await session.execute(statement)).scalar_one()

    @uncancellable
    async def mark_handled(
        self, message_id: int, *, by: str, note: str | None, at: datetime
    ) -> MessageRecord:
        """Mark a message handled; handling it twice is a conflict, not a silent overwrite."""
        require_aware("at", at)
        by = validation.actor("handled_by", by)
        note = validation.text("note", note, max_len=2000)
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.handled_at.is_(None))
            .values(handled_at=at, handled_by=by, note=note)
            .returning(Message.id)
        )
        async with self._transaction("mark handled") as session:
            if (await session.execute(statement)).scalar_one_or_none() is None:
                existing = await session.get(Message, message_id)
                if existing is None:
                    raise NotFound("message", message_id)
                raise Conflict(f"message {message_id} was already handled by {existing.handled_by}")
        return await self.get(message_id)

    @uncancellable
    async def get(self, message_id: int) -> MessageRecord:
        found, _ = await self._page("get message", [Message.id == message_id], 1, 0)
        if not found:
            raise NotFound("message", message_id)
        return found[0]

    @uncancellable
    async def list(
        self,
        *,
        handled: bool | None = None,
        call_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[MessageRecord], int]:
        """Newest first; ``handled=False`` is the to-do list."""
        conditions: builtins.list[Any] = []
        if handled is not None:
            conditions.append(
                Message.handled_at.is_not(None) if handled else Message.handled_at.is_(None)
            )
        if call_id is not None:
            conditions.append(Message.call_id == call_id)
        return await self._page("list messages", conditions, limit, offset)

    async def _page(
        self, operation: str, conditions: builtins.list[Any], limit: int, offset: int
    ) -> tuple[builtins.list[MessageRecord], int]:
        page = (
            select(Message)
            .where(*conditions)
            .order_by(Message.recorded_at.desc(), Message.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._transaction(operation) as session:
            total = await session.scalar(
                select(func.count()).select_from(Message).where(*conditions)
            )
            rows = (await session.scalars(page)).all()
        return [
            MessageRecord(
                id=m.id,
                call_id=m.call_id,
                queue=m.queue,
                reason=m.reason,
                recording=m.recording,
                duration_s=m.duration_s,
                recorded_at=m.recorded_at,
                handled_at=m.handled_at,
                handled_by=m.handled_by,
                note=m.note,
                for_whom=m.for_whom,
                case_id=m.case_id,
            )
            for m in rows
        ], total or 0
