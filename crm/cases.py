"""Cases: every contact a resident makes, by any channel, and what was done about it.

The agent who takes a contact owns its case (首问负责制: 谁受理、谁跟进、谁回复). A case is
opened with the deadlines its kind brings (crm.rules), edited under optimistic locking
(crm.case_store), moved through its statuses by crm.case_status, and read whole as a
``CaseRecord``. Work orders, complaint steps and call-backs have their own modules; this
one holds what every kind shares.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm import models as m
from crm import validation as v
from crm.case_records import AuditRecord, CaseRecord, load_case, load_cases
from crm.case_status import reopen, transition
from crm.case_store import CaseChange, CaseRepository, begin_change, find_room
from crm.exceptions import InvalidInput, InvalidQuery, NotFound
from crm.rules import (
    Channel,
    IllegalTransition,
    Kind,
    RepairClass,
    Rule,
    Status,
    Step,
    deadline,
    repair_deadlines,
    suggest_repair_class,
)
from crm.search_index import index_case
from crm.uncancellable import uncancellable


@dataclass(frozen=True)
class NewRepair:
    """What a repair case starts with; the rest of the work order is filled in later."""

    fault: str | None = None  # default: the case summary
    reporter: str | None = None
    appointment_at: datetime | None = None
    key_left: bool = False
    on_price_list: bool = True
    repair_class: str | None = None  # given: confirmed by the agent; None: suggested
    ivr_tag: str | None = None  # the IVR's choice (urgent / general)
    texts: tuple[str, ...] = ()  # what was said (transcript), for the urgent words
    rework_of: int | None = None  # warranty: the order this redoes, free of charge


@dataclass(frozen=True)
class NewComplaint:
    on_premises: bool = False  # about something happening now: someone there in 3 min
    serious: bool = False  # goes to the manager in person


@dataclass(frozen=True)
class CaseQuery:
    kind: str | None = None
    status: tuple[str, ...] = ()
    owner_agent_id: int | None = None
    resident_id: int | None = None
    phone: str | None = None
    overdue: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


class CaseBook(CaseRepository):
    # -- opening ------------------------------------------------------------------------
    @uncancellable
    async def open(
        self,
        *,
        kind: str,
        channel: object,
        summary: object,
        by: object,
        detail: object = None,
        subtype: object = None,
        owner_agent_id: int | None = None,
        resident_id: int | None = None,
        phone: object = None,
        building: object = None,
        room: object = None,
        call_id: int | None = None,
        repair: NewRepair | None = None,
        complaint: NewComplaint | None = None,
        answered: bool = False,
        at: datetime | None = None,
    ) -> CaseRecord:
        """Open a case with its deadlines; ``answered``: an inquiry answered on the spot."""
        v.choice("kind", kind, Kind.ALL)
        channel_name = v.choice("channel", channel, Channel.ALL)
        assert channel_name is not None
        actor = v.actor("by", by)
        summary_text = v.required_text("summary", summary, max_len=200)
        detail_text = v.text("detail", detail, max_len=5000)
        subtype_text = v.text("subtype", subtype, max_len=40)
        phone_digits = v.phone("phone", phone) if phone not in (None, "") else None
        if answered and kind != Kind.INQUIRY:
            raise InvalidInput("answered", "only an inquiry can be answered on the spot")
        if repair is not None and kind != Kind.REPAIR:
            raise InvalidInput("repair", f"only a repair case has a work order, not {kind}")
        if complaint is not None and kind != Kind.COMPLAINT:
            raise InvalidInput("complaint", "only a complaint case has complaint details")
        if kind == Kind.REPAIR and repair is None:
            repair = NewRepair()
        if repair is not None:
            fault = v.required_text("repair.fault", repair.fault or summary_text, max_len=500)
            reporter = v.name("repair.reporter", repair.reporter, required=False)
            v.choice("repair.repair_class", repair.repair_class, RepairClass.ALL, required=False)
        opened_at = at or self.clock.now()
        async with self._transaction("open case") as session:
            room_id = await find_room(session, building, room)
            await _check_refs(session, owner_agent_id, resident_id, call_id)
            case = m.Case(
                kind=kind,
                subtype=subtype_text,
                channel=channel_name,
                status=Status.OPEN,
                owner_agent_id=owner_agent_id,
                resident_id=resident_id,
                phone=phone_digits,
                room_id=room_id,
                summary=summary_text,
                detail=detail_text,
                opened_at=opened_at,
                updated_at=opened_at,
            )
            session.add(case)
            await session.flush()
            change = CaseChange(session, case, actor, opened_at)
            change.audit("case", case.id, "opened", "status", None, Status.OPEN)
            if call_id is not None:
                session.add(
                    m.CaseCall(case_id=case.id, call_id=call_id, role="opened", linked_at=opened_at)
                )
            if kind == Kind.INQUIRY:
                change.add_deadlines([deadline(self.rules, Rule.REPLY, opened_at)])
                if answered:
                    await transition(change, self.rules, Status.RESOLVED, "answered on the call")
            elif repair is not None:
                await self._open_order(
                    session, change, repair, fault, reporter, room_id, phone_digits
                )
            elif kind == Kind.COMPLAINT:
                details = complaint or NewComplaint()
                row = m.Complaint(
                    case_id=case.id,
                    on_premises=details.on_premises,
                    serious=details.serious,
                    step=Step.RECEIVE,
                )
                session.add(row)
                await session.flush()
                session.add(
                    m.ComplaintStep(
                        complaint_id=row.id,
                        step=Step.RECEIVE,
                        by=actor,
                        at=opened_at,
                        note=summary_text,
                    )
                )
                if details.on_premises:
                    change.add_deadlines([deadline(self.rules, Rule.COMPLAINT_ON_SITE, opened_at)])
            await index_case(session, case.id)
            return await load_case(session, case.id, self.clock.now())

    async def _open_order(
        self,
        session: AsyncSession,
        change: CaseChange,
        repair: NewRepair,
        fault: str,
        reporter: str | None,
        room_id: int | None,
        phone: str | None,
    ) -> None:
        if (
            repair.rework_of is not None
            and await session.get(m.RepairOrder, repair.rework_of) is None
        ):
            raise InvalidInput("repair.rework_of", f"no work order {repair.rework_of}")
        suggestion = suggest_repair_class(
            ivr_tag=repair.ivr_tag, texts=repair.texts, keywords=self.rules.urgent_keywords
        )
        confirmed = repair.repair_class is not None
        order = m.RepairOrder(
            case_id=change.case.id,
            reporter=reporter,
            room_id=room_id,
            phone=phone,
            reported_at=change.at,
            appointment_at=repair.appointment_at,
            key_left=repair.key_left,
            fault=fault,
            repair_class=repair.repair_class or suggestion.repair_class,
            suggested_class=suggestion.repair_class,
            suggested_because=suggestion.because,
            class_confirmed_by=change.by if confirmed else None,
            class_confirmed_at=change.at if confirmed else None,
            on_price_list=repair.on_price_list,
            rework_of=repair.rework_of,
        )
        session.add(order)
        await session.flush()
        change.audit("repair-order", order.id, "opened", "repair_class", None, order.repair_class)
        specs = repair_deadlines(self.rules, order.repair_class, change.at)
        if not repair.on_price_list:
            specs.append(deadline(self.rules, Rule.PRICE_REVIEW, change.at))
        change.add_deadlines(specs)

    # -- changes ------------------------------------------------------------------------
    @uncancellable
    async def update(
        self, case_id: int, *, version: int, by: object, changes: dict[str, object]
    ) -> CaseRecord:
        """Edit what the agent wrote down; status has its own door (``transition``)."""
        actor = v.actor("by", by)
        allowed = {
            "summary",
            "detail",
            "subtype",
            "owner_agent_id",
            "resident_id",
            "phone",
            "building",
            "room",
        }
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise InvalidInput(unknown[0], "cannot be changed here (status: use a transition)")
        values: dict[str, object] = {}
        if "summary" in changes:
            values["summary"] = v.required_text("summary", changes["summary"], max_len=200)
        if "detail" in changes:
            values["detail"] = v.text("detail", changes["detail"], max_len=5000)
        if "subtype" in changes:
            values["subtype"] = v.text("subtype", changes["subtype"], max_len=40)
        if "phone" in changes:
            raw = changes["phone"]
            values["phone"] = v.phone("phone", raw) if raw not in (None, "") else None
        for key in ("owner_agent_id", "resident_id"):
            if key in changes:
                value = changes[key]
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise InvalidInput(key, "must be an id (integer) or null")
                values[key] = value
        if ("building" in changes) != ("room" in changes):
            raise InvalidInput("room", "building and room are changed together")
        now = self.clock.now()
        async with self._transaction("update case") as session:
            if "room" in changes:
                values["room_id"] = await find_room(session, changes["building"], changes["room"])
            owner = values.get("owner_agent_id")
            resident = values.get("resident_id")
            await _check_refs(
                session,
                owner if isinstance(owner, int) else None,
                resident if isinstance(resident, int) else None,
                None,
            )
            change = await begin_change(session, case_id, version, actor, now)
            for key, value in values.items():
                change.set(change.case, "case", key, value)
            if {"summary", "detail"} & values.keys():
                await index_case(session, case_id)
            return await load_case(session, case_id, now)

    @uncancellable
    async def transition(
        self, case_id: int, *, to: str, version: int, by: object, note: object = None
    ) -> CaseRecord:
        actor = v.actor("by", by)
        note_text = v.text("note", note, max_len=2000)
        now = self.clock.now()
        async with self._transaction("case transition") as session:
            change = await begin_change(session, case_id, version, actor, now)
            await transition(change, self.rules, to, note_text)
            return await load_case(session, case_id, now)

    @uncancellable
    async def reopen(
        self, case_id: int, *, version: int | None, by: object, reason: object
    ) -> CaseRecord:
        actor = v.actor("by", by)
        why = v.required_text("reason", reason, max_len=2000)
        now = self.clock.now()
        async with self._transaction("reopen case") as session:
            change = await begin_change(session, case_id, version, actor, now)
            await reopen(change, self.rules, why)
            return await load_case(session, case_id, now)

    @uncancellable
    async def meet(
        self, case_id: int, *, rule: str, version: int, by: object, at: datetime | None = None
    ) -> CaseRecord:
        """Mark a reply given or someone on site; other deadlines are met by their work."""
        actor = v.actor("by", by)
        doors = {
            Rule.ON_SITE: "set on_site_at on the work order",
            Rule.FIXED: "set completed_at on the work order",
            Rule.PRICE_REVIEW: "record the price review on the work order",
            Rule.CALL_BACK: "record the call-back's outcome",
        }
        if rule in doors:
            raise IllegalTransition(
                "open", rule, f"this deadline is met by its work: {doors[rule]}"
            )
        v.choice("rule", rule, (Rule.REPLY, Rule.COMPLAINT_ON_SITE))
        now = self.clock.now()
        if at is not None and at > now:
            raise InvalidInput("at", "must not be in the future")
        async with self._transaction("meet deadline") as session:
            change = await begin_change(session, case_id, version, actor, now)
            if not await change.meet(rule, at):
                raise IllegalTransition(
                    change.case.status, rule, f"no open {rule} deadline on this case"
                )
            return await load_case(session, case_id, now)

    @uncancellable
    async def note(self, case_id: int, *, version: int, by: object, text: object) -> CaseRecord:
        actor = v.actor("by", by)
        body = v.required_text("text", text, max_len=2000)
        now = self.clock.now()
        async with self._transaction("case note") as session:
            change = await begin_change(session, case_id, version, actor, now)
            await change.note(body)
            return await load_case(session, case_id, now)

    @uncancellable
    async def attach_call(
        self, case_id: int, call_id: int, *, role: str, by: str = "system"
    ) -> CaseRecord:
        """Link a call to a case (the system does this at hang-up; no version check)."""
        now = self.clock.now()
        async with self._transaction("attach call") as session:
            change = await begin_change(session, case_id, None, by, now)
            linked = await session.scalar(
                select(m.CaseCall.id).where(
                    m.CaseCall.case_id == case_id, m.CaseCall.call_id == call_id
                )
            )
            if linked is None:
                session.add(m.CaseCall(case_id=case_id, call_id=call_id, role=role, linked_at=now))
                change.audit("case", case_id, "call-linked", role, None, call_id)
            return await load_case(session, case_id, now)

    # -- reading ------------------------------------------------------------------------
    @uncancellable
    async def get(self, case_id: int) -> CaseRecord:
        async with self._transaction("get case") as session:
            return await load_case(session, case_id, self.clock.now())

    @uncancellable
    async def list(self, query: CaseQuery) -> tuple[builtins.list[CaseRecord], int]:
        """Newest first; ``overdue``: with an open deadline already past."""
        now = self.clock.now()
        conditions = self._conditions(query, now)
        page = (
            select(m.Case)
            .where(*conditions)
            .order_by(m.Case.opened_at.desc(), m.Case.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
        async with self._transaction("list cases") as session:
            total = await session.scalar(
                select(func.count()).select_from(m.Case).where(*conditions)
            )
            rows = list((await session.scalars(page)).all())
            return await load_cases(session, rows, now), total or 0

    def _conditions(self, query: CaseQuery, now: datetime) -> builtins.list[ColumnElement[bool]]:
        c: builtins.list[ColumnElement[bool]] = []
        if query.kind is not None:
            if query.kind not in Kind.ALL:
                raise InvalidQuery("kind", f"must be one of {', '.join(Kind.ALL)}")
            c.append(m.Case.kind == query.kind)
        if query.status:
            for status in query.status:
                if status not in Status.ALL:
                    raise InvalidQuery("status", f"must be one of {', '.join(Status.ALL)}")
            c.append(m.Case.status.in_(query.status))
        if query.owner_agent_id is not None:
            c.append(m.Case.owner_agent_id == query.owner_agent_id)
        if query.resident_id is not None:
            c.append(m.Case.resident_id == query.resident_id)
        if query.phone is not None:
            c.append(m.Case.phone == query.phone)
        if query.since is not None:
            c.append(m.Case.opened_at >= query.since)
        if query.until is not None:
            c.append(m.Case.opened_at < query.until)
        if query.overdue is not None:
            late = exists().where(
                m.Deadline.case_id == m.Case.id,
                m.Deadline.met_at.is_(None),
                m.Deadline.cancelled_at.is_(None),
                m.Deadline.due_at < now,
            )
            c.append(late if query.overdue else ~late)
        return c

    @uncancellable
    async def live_case_for(
        self, *, kind: str, resident_id: int | None, phone: str | None
    ) -> CaseRecord | None:
        """The caller's newest open case of ``kind``: a new call of that kind joins it."""
        if resident_id is None and phone is None:
            return None
        who = (
            m.Case.resident_id == resident_id if resident_id is not None else m.Case.phone == phone
        )
        query = (
            select(m.Case)
            .where(m.Case.kind == kind, m.Case.status.in_(Status.LIVE), who)
            .order_by(m.Case.opened_at.desc(), m.Case.id.desc())
            .limit(1)
        )
        async with self._transaction("live case") as session:
            rows = list((await session.scalars(query)).all())
            found = await load_cases(session, rows, self.clock.now())
        return found[0] if found else None

    @uncancellable
    async def timeline(self, case_id: int) -> builtins.list[AuditRecord]:
        """Every change to the case and its parts, oldest first: who, when, old → new."""
        async with self._transaction("case timeline") as session:
            if await session.get(m.Case, case_id) is None:
                raise NotFound("case", case_id)
            rows = await session.scalars(
                select(m.AuditEntry)
                .where(m.AuditEntry.case_id == case_id)
                .order_by(m.AuditEntry.id)
            )
            return [
                AuditRecord(
                    a.id,
                    a.case_id,
                    a.entity,
                    a.entity_id,
                    a.action,
                    a.field,
                    a.old,
                    a.new,
                    a.by,
                    a.at,
                )
                for a in rows
            ]


async def _check_refs(
    session: AsyncSession, owner_agent_id: int | None, resident_id: int | None, call_id: int | None
) -> None:
    refs: tuple[tuple[str, str, type[m.Base], int | None], ...] = (
        ("owner_agent_id", "agent", m.Agent, owner_agent_id),
        ("resident_id", "resident", m.Resident, resident_id),
        ("call_id", "call", m.Call, call_id),
    )
    for key, what, model, value in refs:
        if value is not None and await session.get(model, value) is None:
            raise InvalidInput(key, f"no {what} with id {value}")
