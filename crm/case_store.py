"""One change to a case, inside its transaction: version check, audit trail, deadlines.

Every write to a case or one of its parts (work order, complaint, call-back) starts with
``begin_change``: it moves the case's version on with a conditional UPDATE, so of two
agents editing the same version one wins and the other gets a 409 instead of silently
overwriting (PostgreSQL re-checks the WHERE after the first commits; SQLite serialises
writers). Field changes go through ``CaseChange.set``, which writes the audit entry
(who, when, old → new) in the same transaction, so the trail cannot miss a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm import models as m
from crm import validation as v
from crm.clock import Clock
from crm.exceptions import Conflict, InvalidInput, NotFound
from crm.repository import Repository
from crm.rules import DeadlineSpec, ServiceRules
from crm.search_index import index_case


class CaseRepository(Repository):
    """A book of case work: the same database, clock and rules for all of them."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, rules: ServiceRules
    ) -> None:
        super().__init__(sessions)
        self.clock = clock
        self.rules = rules


class StaleVersion(Conflict):
    """The case changed since the client read it; reload, then try again."""

    def __init__(self, case_id: int, current: int, given: int) -> None:
        super().__init__(
            f"case {case_id} was changed by someone else (now version {current}, "
            f"you sent {given}); reload it and apply your change again"
        )
        self.case_id = case_id
        self.current = current
        self.given = given


def audit_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class CaseChange:
    def __init__(self, session: AsyncSession, case: m.Case, by: str, at: datetime) -> None:
        self.session = session
        self.case = case
        self.by = by
        self.at = at

    def audit(
        self,
        entity: str,
        entity_id: int,
        action: str,
        field: str | None = None,
        old: object = None,
        new: object = None,
    ) -> None:
        self.session.add(
            m.AuditEntry(
                case_id=self.case.id,
                entity=entity,
                entity_id=entity_id,
                action=action,
                field=field,
                old=audit_text(old),
                new=audit_text(new),
                by=self.by,
                at=self.at,
            )
        )

    async def note(self, text: str) -> None:
        """A note on the case: in its timeline, and found by search from now on."""
        self.audit("case", self.case.id, "note", None, None, text)
        await index_case(self.session, self.case.id)

    def set(self, row: Any, entity: str, field: str, value: object) -> bool:
        """Set ``row.field`` and audit it, if it really changes."""
        old = getattr(row, field)
        if old == value:
            return False
        setattr(row, field, value)
        self.audit(entity, row.id, "changed", field, old, value)
        return True

    def add_deadlines(self, specs: Iterable[DeadlineSpec]) -> None:
        for spec in specs:
            self.session.add(
                m.Deadline(
                    case_id=self.case.id,
                    rule=spec.rule,
                    starts_at=spec.starts_at,
                    due_at=spec.due_at,
                    warn_at=spec.warn_at,
                )
            )
            self.audit("deadline", self.case.id, "deadline-set", spec.rule, None, spec.due_at)

    async def open_deadlines(self, rules: Iterable[str] | None = None) -> list[m.Deadline]:
        query = select(m.Deadline).where(
            m.Deadline.case_id == self.case.id,
            m.Deadline.met_at.is_(None),
            m.Deadline.cancelled_at.is_(None),
        )
        if rules is not None:
            query = query.where(m.Deadline.rule.in_(list(rules)))
        await self.session.flush()
        return list((await self.session.scalars(query.order_by(m.Deadline.id))).all())

    async def meet(self, rule: str, at: datetime | None = None) -> int:
        """Mark the open deadlines of ``rule`` met (at ``at``, default now); how many."""
        met = 0
        for d in await self.open_deadlines([rule]):
            d.met_at = at or self.at
            self.audit("deadline", d.id, "deadline-met", rule, None, d.met_at)
            met += 1
        return met

    async def cancel(self, rules: Iterable[str] | None = None) -> None:
        for d in await self.open_deadlines(rules):
            d.cancelled_at = self.at
            self.audit("deadline", d.id, "deadline-cancelled", d.rule)


async def begin_change(
    session: AsyncSession, case_id: int, version: int | None, by: str, at: datetime
) -> CaseChange:
    """Claim the next version of the case (or fail with 404 / 409) and load it.

    ``version`` None is for the system's own writes (a call linked at hang-up, the
    deadline watcher): they need no check but still move the version on, so a client
    holding the old one learns the case changed.
    """
    claim = (
        update(m.Case)
        .where(m.Case.id == case_id)
        .values(version=m.Case.version + 1, updated_at=at)
        .returning(m.Case.version)
    )
    if version is not None:
        claim = claim.where(m.Case.version == version)
    if (await session.execute(claim)).scalar_one_or_none() is None:
        current = await session.scalar(select(m.Case.version).where(m.Case.id == case_id))
        if current is None:
            raise NotFound("case", case_id)
        assert version is not None
        raise StaleVersion(case_id, current, version)
    case = await session.get(m.Case, case_id, populate_existing=True)
    assert case is not None
    return CaseChange(session, case, by, at)


async def find_room(session: AsyncSession, building: object, room: object) -> int | None:
    if building in (None, "") and room in (None, ""):
        return None
    """The room's id; both empty is no room, an unknown one is refused by name."""
    b = v.building("building", building)
    r = v.room("room", room)
    found = await session.scalar(select(m.Room.id).where(m.Room.building == b, m.Room.room == r))
    if found is None:
        raise InvalidInput("room", f"unknown room {b}-{r}: not in the residents' roster")
    return found
