"""Deadlines across all cases: which are near, which have passed, which to announce.

The watcher asks ``claim`` what to announce now. Claiming marks the deadline (warned_at,
breached_at) in the same statement that selects it, so an announcement happens once, also
across a restart or with two watchers, and one whose moment passed while the service was
down is announced when it comes back.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import ColumnElement, func, select, update

from crm import models as m
from crm.case_records import DeadlineRecord, deadline_record
from crm.exceptions import InvalidQuery
from crm.repository import DOCUMENTED_FIELDS, OneOf, Repository, record_json
from crm.rules import Kind, Rule, Status
from crm.uncancellable import uncancellable


class Moment:
    NEAR = "deadline-near"
    PASSED = "deadline-passed"


@dataclass(frozen=True, slots=True)
class DeadlineItem:
    """A deadline with what a supervisor needs to act on it."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    deadline: DeadlineRecord
    """The deadline."""
    case_kind: Annotated[str, OneOf(Kind.ALL)]
    """Its case's kind."""
    case_status: Annotated[str, OneOf(Status.ALL)]
    """Its case's status."""
    case_summary: str
    """Its case's summary."""
    owner_agent_id: int | None
    """Who follows the case up."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class DeadlineEvent:
    moment: str  # Moment.NEAR / Moment.PASSED
    item: DeadlineItem


def _open() -> list[ColumnElement[bool]]:
    return [m.Deadline.met_at.is_(None), m.Deadline.cancelled_at.is_(None)]


class DeadlineBook(Repository):
    @uncancellable
    async def claim(self, now: datetime) -> builtins.list[DeadlineEvent]:
        """The near and passed moments due by ``now`` not yet announced, marked announced."""
        events: builtins.list[DeadlineEvent] = []
        async with self._transaction("claim deadline events") as session:
            for moment, when, flag in (
                (Moment.NEAR, m.Deadline.warn_at, m.Deadline.warned_at),
                (Moment.PASSED, m.Deadline.due_at, m.Deadline.breached_at),
            ):
                claimed = (
                    await session.scalars(
                        update(m.Deadline)
                        .where(
                            *_open(),
                            flag.is_(None),
                            when < now if moment == Moment.PASSED else when <= now,
                        )
                        .values({flag.key: now})
                        .returning(m.Deadline.id)
                    )
                ).all()
                events += [
                    DeadlineEvent(moment, item)
                    for item in await _items(session, list(claimed), now)
                ]
        return events

    @uncancellable
    async def next_moment(self) -> datetime | None:
        """The earliest near or passed moment still to announce (None: nothing open)."""
        async with self._transaction("next deadline moment") as session:
            warn = await session.scalar(
                select(func.min(m.Deadline.warn_at)).where(*_open(), m.Deadline.warned_at.is_(None))
            )
            due = await session.scalar(
                select(func.min(m.Deadline.due_at)).where(
                    *_open(), m.Deadline.breached_at.is_(None)
                )
            )
        moments = [t for t in (warn, due) if t is not None]
        return min(moments) if moments else None

    @uncancellable
    async def list(
        self,
        now: datetime,
        *,
        overdue: bool | None = None,
        rule: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[DeadlineItem], int]:
        """Open deadlines, the earliest due first; ``overdue``: only those already passed."""
        conditions = _open()
        if overdue is not None:
            conditions.append(m.Deadline.due_at < now if overdue else m.Deadline.due_at >= now)
        if rule is not None:
            if rule not in Rule.ALL:
                raise InvalidQuery("rule", f"must be one of {', '.join(Rule.ALL)}")
            conditions.append(m.Deadline.rule == rule)
        async with self._transaction("list deadlines") as session:
            total = await session.scalar(
                select(func.count()).select_from(m.Deadline).where(*conditions)
            )
            ids = (
                await session.scalars(
                    select(m.Deadline.id)
                    .where(*conditions)
                    .order_by(m.Deadline.due_at, m.Deadline.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            return await _items(session, list(ids), now), total or 0


async def _items(
    session: Any, ids: builtins.list[int], now: datetime
) -> builtins.list[DeadlineItem]:
    if not ids:
        return []
    rows = (
        await session.execute(
            select(m.Deadline, m.Case)
            .join(m.Case, m.Case.id == m.Deadline.case_id)
            .where(m.Deadline.id.in_(ids))
            .order_by(m.Deadline.due_at, m.Deadline.id)
        )
    ).all()
    return [
        DeadlineItem(deadline_record(d, now), c.kind, c.status, c.summary, c.owner_agent_id)
        for d, c in rows
    ]
