"""From call to case: every call that ends opens a case or joins the caller's open one.

What the call was about is the caller's IVR choice, stored on the call when the key was
pressed (``call.choice``: repair/urgent, complaint, …), so it counts whatever happened
next: answered, timed out in the queue, call-back booked, message left, or hung up
during a prompt. A caller who hung up inside a submenu (报修, no class yet) gets a case
of that kind whose class the agent must still confirm. Only a call that ended before any
choice is an inquiry from the menu; a message asked for from the main menu is a message
case. Who called comes from the directory (an unknown number becomes a contact to
complete; a number several residents share leaves the choice to the agent). The agent
who answered owns the case (首问负责制).

A call nobody answered still gets its reply: the call-back the caller booked, or one
owed within the inquiry reply time. An urgent one (急修, 紧急求助) is not left to wait:
its call-back is due at once, an ``alert`` goes on the live feed, and ``on_urgent`` is
told (the duty phone rings). Minutes later, when the transcript is ready, its words are
read for urgent repairs (crm.rules).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm import models as m
from crm.calls import IvrChoice
from crm.case_records import CaseRecord
from crm.cases import NewRepair
from crm.desk import CrmDesk
from crm.exceptions import NotFound
from crm.phones import normalise_phone
from crm.repository import Repository
from crm.rules import CallBackReason, CallBackStatus, Kind, Outcome, RepairClass
from crm.uncancellable import uncancellable

log = logging.getLogger(__name__)

# Queue name → kind of case; any other queue (e.g. operator, 人工服务) is an inquiry with
# the queue's name as subtype.
QUEUE_KINDS = {
    "inquiry": Kind.INQUIRY,
    "repair": Kind.REPAIR,
    "complaint": Kind.COMPLAINT,
    "emergency": Kind.EMERGENCY,
}
SYSTEM = "system"
CONNECT_FAILED = "connect-failed"  # the call's end reason when caller and agent were never bridged
NO_CLASS_CHOSEN = "the caller chose 报修 but no class (急修 / 一般) in the IVR: confirm the class"

Publish = Callable[..., None]


@dataclass(frozen=True, slots=True)
class CallFacts:
    call_id: int
    number: str | None  # as the caller id came
    phone: str | None  # the same, if it is a number we can call back (digits)
    direction: str
    started_at: datetime
    queue: str | None  # what the caller chose (a submenu's queue counts), else routed to
    tag: str | None  # the IVR's urgent / general for a repair
    agent_id: int | None  # the agent who answered (None: nobody, or the duty phone)
    message_id: int | None
    queue_callback: tuple[int, datetime] | None  # id, expires_at
    talked: bool = True  # False: an agent picked up but the two were never bridged
    # Somebody answered: an agent, or the duty manager's phone (no agent record) that an
    # emergency rings with the agents: nobody is then owed an "unanswered" alarm.
    answered: bool = False

    @property
    def reached(self) -> bool:
        return self.answered and self.talked

    @property
    def urgent(self) -> bool:
        """急修 or 紧急求助: a resident in danger or damage spreading (§3)."""
        return self.queue == "emergency" or (
            self.queue == "repair" and self.tag == RepairClass.URGENT
        )


@dataclass(frozen=True, slots=True)
class UrgentUnanswered:
    """An urgent call nobody took: whoever is on duty must hear of it now."""

    case_id: int
    call_id: int
    kind: str
    phone: str | None  # to call back; None when the caller withheld their number


class CallIntake(Repository):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        desk: CrmDesk,
        publish: Publish,
        departments: Mapping[str, str] | None = None,
        on_urgent: Callable[[UrgentUnanswered], None] = lambda _u: None,
    ) -> None:
        super().__init__(sessions)
        self.desk = desk
        self.publish = publish
        self.departments = departments or {}  # queue → who its messages are for (label)
        self.on_urgent = on_urgent

    @uncancellable
    async def facts(self, call_id: int) -> CallFacts:
        async with self._transaction("call facts") as session:
            call = await session.get(m.Call, call_id)
            if call is None:
                raise NotFound("call", call_id)
            entries = (
                await session.scalars(
                    select(m.QueueEntry)
                    .where(m.QueueEntry.call_id == call_id)
                    .order_by(m.QueueEntry.id)
                )
            ).all()
            message = await session.scalar(
                select(m.Message.id)
                .where(m.Message.call_id == call_id)
                .order_by(m.Message.id.desc())
            )
            callback = (
                await session.execute(
                    select(m.QueueCallback.id, m.QueueCallback.expires_at)
                    .where(m.QueueCallback.call_id == call_id)
                    .order_by(m.QueueCallback.id.desc())
                )
            ).first()
        answered = [e for e in entries if e.answered_at is not None]
        owners = [e for e in answered if e.agent_id is not None]
        last = entries[-1] if entries else None
        # The caller's own choice first; records from before it was stored fall back to
        # the queue entry, then to where the call was routed.
        choice = IvrChoice.parse(call.choice)
        if choice is None and last is not None:
            choice = IvrChoice(last.queue, last.tag or None)
        if choice is None and call.queue is not None:
            choice = IvrChoice(call.queue)
        return CallFacts(
            call_id=call_id,
            number=call.caller_number,
            phone=normalise_phone(call.caller_number) if call.caller_number else None,
            direction=call.direction,
            started_at=call.started_at,
            queue=choice.queue if choice is not None else None,
            tag=choice.tag if choice is not None else None,
            agent_id=owners[-1].agent_id if owners else None,
            answered=bool(answered),
            message_id=message,
            talked=call.end_reason != CONNECT_FAILED,
            queue_callback=(callback[0], callback[1]) if callback is not None else None,
        )

    async def call_ended(self, call_id: int) -> CaseRecord | None:
        """The case of a finished inbound call (opened or joined); None for outbound calls."""
        facts = await self.facts(call_id)
        if facts.direction != "in":
            return None  # a call-back dialled from a case is linked by whoever dialled it
        already = await self._case_of(call_id)
        if already is not None:
            return await self.desk.cases.get(already)  # reconciled twice: nothing new
        kind, subtype = self._kind(facts)
        resident_id, note = await self._resident(facts.phone)
        live = await self.desk.cases.live_case_for(
            kind=kind, resident_id=resident_id, phone=facts.phone
        )
        if live is not None:
            case = await self.desk.cases.attach_call(live.id, call_id, role="follow-up")
            case = await self._escalate(facts, case)
        else:
            case = await self._open(facts, kind, subtype, resident_id)
            if kind == Kind.REPAIR and facts.tag is None:
                note = "; ".join(filter(None, [note, NO_CLASS_CHOSEN]))
            if note:
                case = await self.desk.cases.note(
                    case.id, version=case.version, by=SYSTEM, text=note
                )
        case = await self._owed_reply(facts, case)
        if facts.message_id is not None:
            await self._file_message(facts.message_id, case.id, facts.queue)
        if not facts.answered and facts.urgent:
            self._raise_urgent(facts, case)
        payload = {
            "case_id": case.id,
            "case_kind": case.kind,
            "call_id": call_id,
            "owner_agent_id": case.owner_agent_id,
            "emergency": case.kind == Kind.EMERGENCY,
        }
        if live is None:
            self.publish("case-opened", **payload)
        else:
            self.publish("case-call", **payload)
        return case

    async def transcript_ready(self, call_id: int, texts: tuple[str, ...]) -> None:
        """Read the words for urgent repairs; only unconfirmed classes follow them."""
        case_id = await self._case_of(call_id)
        if case_id is None:
            return
        facts = await self.facts(call_id)
        changed = await self.desk.orders.resuggest(case_id, ivr_tag=facts.tag, texts=texts)
        if changed is not None and changed.repair is not None:
            self.publish(
                "repair-class-suggested",
                case_id=case_id,
                repair_class=changed.repair.repair_class,
                because=changed.repair.suggested_because,
            )

    async def queue_callback_done(self, queue_callback_id: int, outcome: str) -> None:
        """The ACD's try at a queued call-back, onto the case's call-back (by the system)."""
        async with self._transaction("find case call-back") as session:
            callback_id = await session.scalar(
                select(m.CaseCallBack.id).where(
                    m.CaseCallBack.queue_callback_id == queue_callback_id,
                    m.CaseCallBack.status == CallBackStatus.DUE,
                )
            )
        if callback_id is None:
            return
        mapped = outcome if outcome in Outcome.ALL else Outcome.FAILED
        await self.desk.callbacks.record_attempt(
            callback_id, version=None, by=SYSTEM, outcome=mapped, remarks="queued call-back (ACD)"
        )

    @uncancellable
    async def calls_without_case(self, since: datetime) -> list[int]:
        """Inbound calls ended since ``since`` that no case holds: made up for at start."""
        linked = select(m.CaseCall.call_id)
        query = (
            select(m.Call.id)
            .where(
                m.Call.direction == "in",
                m.Call.ended_at.is_not(None),
                m.Call.started_at >= since,
                m.Call.id.not_in(linked),
            )
            .order_by(m.Call.id)
        )
        async with self._transaction("calls without case") as session:
            return list((await session.scalars(query)).all())

    # -- helpers ------------------------------------------------------------------------
    def _kind(self, facts: CallFacts) -> tuple[str, str | None]:
        """The subject the caller chose; a message left in a queue is filed under it."""
        if facts.queue is None:
            return Kind.INQUIRY, "ivr"  # ended in the menu, before choosing
        kind = QUEUE_KINDS.get(facts.queue)
        if kind is not None:
            return kind, None
        if facts.message_id is not None and facts.agent_id is None:
            return Kind.MESSAGE, facts.queue  # 留言 asked for, or left for the operator
        return Kind.INQUIRY, facts.queue

    async def _escalate(self, facts: CallFacts, case: CaseRecord) -> CaseRecord:
        """A resident calling again about an open repair and choosing 急修 this time: an
        unconfirmed class becomes urgent (with its deadlines); the agent's word stands."""
        repair = case.repair
        if repair is None or facts.tag != RepairClass.URGENT:
            return case
        if repair.repair_class == RepairClass.URGENT:
            return case
        changed = await self.desk.orders.resuggest(case.id, ivr_tag=facts.tag, texts=())
        return changed or case

    def _raise_urgent(self, facts: CallFacts, case: CaseRecord) -> None:
        urgent = UrgentUnanswered(case.id, facts.call_id, case.kind, case.phone)
        self.publish(
            "alert",
            alert="urgent-unanswered",
            case_id=case.id,
            call_id=facts.call_id,
            case_kind=case.kind,
            caller_number=case.phone,
        )
        self.on_urgent(urgent)

    async def _resident(self, number: str | None) -> tuple[int | None, str | None]:
        if not number:
            return None, None
        found = await self.desk.residents.find_by_phone(number)
        if len(found) > 1:
            names = ", ".join(
                f"{r.id} {r.name or '?'} {r.building or ''}-{r.room or ''}" for r in found
            )
            return None, f"number shared by residents {names}: the agent picks the resident"
        if found:
            return found[0].id, None
        contact = await self.desk.residents.contact_for(number, at=self.desk.clock.now())
        return contact.id, None

    async def _open(
        self, facts: CallFacts, kind: str, subtype: str | None, resident_id: int | None
    ) -> CaseRecord:
        building = room = None
        if resident_id is not None:
            resident = await self.desk.residents.get(resident_id)
            building, room = resident.building, resident.room
        label = Kind.LABELS[kind]
        summary = f"{label}来电" if facts.answered else f"{label}来电（未接通）"
        return await self.desk.cases.open(
            kind=kind,
            channel="phone",
            summary=summary,
            by=SYSTEM,
            subtype=subtype,
            owner_agent_id=facts.agent_id,
            resident_id=resident_id,
            phone=facts.phone,
            building=building,
            room=room,
            call_id=facts.call_id,
            repair=NewRepair(ivr_tag=facts.tag) if kind == Kind.REPAIR else None,
            at=facts.started_at,
        )

    async def _owed_reply(self, facts: CallFacts, case: CaseRecord) -> CaseRecord:
        """Nobody answered: the resident asked for a call-back, or is owed one anyway."""
        if facts.reached or case.phone is None:
            return case
        now = self.desk.clock.now()
        callback_id = facts.queue_callback[0] if facts.queue_callback is not None else None
        due: datetime | None
        if facts.urgent:
            due = None  # at once, message or not
        elif facts.queue_callback is not None:
            due = max(facts.queue_callback[1], now + timedelta(minutes=1))
        elif facts.message_id is None:
            due = now + timedelta(minutes=self.desk.rules.inquiry_reply_min)
        else:
            return case  # a message is its own to-do (delivered, then replied)
        if any(c.status == CallBackStatus.DUE for c in case.callbacks):
            return case
        return await self.desk.callbacks.promise(
            case.id,
            version=None,
            by=SYSTEM,
            due_at=due,
            at_once=due is None,
            reason=CallBackReason.QUEUED if callback_id else CallBackReason.PROMISED_REPLY,
            queue_callback_id=callback_id,
        )

    async def _file_message(self, message_id: int, case_id: int, queue: str | None) -> None:
        """Filed under its case, for the department of the queue it was left in."""
        for_whom = self.departments.get(queue or "", queue)
        async with self._transaction("file message") as session:
            await session.execute(
                update(m.Message)
                .where(m.Message.id == message_id)
                .values(case_id=case_id, for_whom=for_whom)
            )

    async def _case_of(self, call_id: int) -> int | None:
        async with self._transaction("case of call") as session:
            found: Any = await session.scalar(
                select(m.CaseCall.case_id)
                .where(m.CaseCall.call_id == call_id)
                .order_by(m.CaseCall.id)
            )
        return int(found) if found is not None else None
