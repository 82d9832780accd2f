"""Call-backs (回访) owed on cases, and each try at one (§5).

A reached resident's answer settles it: satisfied thanks them and lets the case close,
unsatisfied reopens the case. A try that does not reach them is counted; the call-back is
due again after ``callback_retry_h``, and after ``callback_max_attempts`` the standard
"we tried to reach you" letter is recorded as sent and the call-back is settled as
unreachable, so a case cannot wait forever on a phone nobody answers.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crm import models as m
from crm import validation as v
from crm.case_records import CallBackRecord, CaseRecord, load_callbacks, load_case
from crm.case_status import add_callback, complaint_of, record_step, reopen
from crm.case_store import CaseChange, CaseRepository, begin_change
from crm.exceptions import InvalidInput, NotFound
from crm.rules import (
    CallBackReason,
    CallBackStatus,
    IllegalTransition,
    Kind,
    Outcome,
    Rule,
    Satisfaction,
    Status,
    Step,
    deadline_at,
)
from crm.uncancellable import uncancellable

UNREACHABLE_LETTER = "tried-to-reach"


class CallBackBook(CaseRepository):
    @uncancellable
    async def promise(
        self,
        case_id: int,
        *,
        version: int | None,
        by: object,
        due_at: datetime | None = None,
        reason: str = CallBackReason.PROMISED_REPLY,
        queue_callback_id: int | None = None,
        at_once: bool = False,
    ) -> CaseRecord:
        """'We will call you back' (对不起，请您留下联系方式…) is a call-back too.

        ``at_once``: due now, for an urgent call nobody answered (it is overdue the moment
        it exists, so every list and the deadline feed put it first).
        """
        actor = v.actor("by", by)
        v.choice("reason", reason, (CallBackReason.PROMISED_REPLY, CallBackReason.QUEUED))
        now = self.clock.now()
        if due_at is not None and due_at <= now:
            raise InvalidInput("due_at", "must be in the future")
        if at_once:
            due_at = now
        async with self._transaction("promise call-back") as session:
            change = await begin_change(session, case_id, version, actor, now)
            if change.case.status in (Status.CLOSED, Status.CANCELLED):
                raise IllegalTransition(change.case.status, "call-back", "the case is closed")
            if change.case.phone is None:
                raise InvalidInput("phone", "the case has no phone number to call back")
            await add_callback(
                change,
                self.rules,
                reason,
                due_at=due_at or now + timedelta(minutes=self.rules.inquiry_reply_min),
                queue_callback_id=queue_callback_id,
            )
            return await load_case(session, case_id, now)

    @uncancellable
    async def record_attempt(
        self,
        callback_id: int,
        *,
        version: int | None,
        by: object,
        outcome: str,
        satisfaction: str | None = None,
        remarks: object = None,
        call_id: int | None = None,
    ) -> CaseRecord:
        """One try and what came of it; the case moves with the answer."""
        actor = v.actor("by", by)
        v.choice("outcome", outcome, Outcome.ALL)
        remarks_text = v.text("remarks", remarks, max_len=2000)
        v.choice("satisfaction", satisfaction, Satisfaction.ALL, required=False)
        if outcome != Outcome.REACHED and satisfaction is not None:
            raise InvalidInput("satisfaction", "only a resident who was reached can say it")
        now = self.clock.now()
        async with self._transaction("call-back attempt") as session:
            callback = await session.get(m.CaseCallBack, callback_id)
            if callback is None:
                raise NotFound("call-back", callback_id)
            asks = callback.reason == CallBackReason.SATISFACTION
            if outcome == Outcome.REACHED and satisfaction is None and asks:
                raise InvalidInput("satisfaction", "is required: 满意 (satisfied) or 不满意")
            change = await begin_change(session, callback.case_id, version, actor, now)
            if callback.status != CallBackStatus.DUE:
                raise IllegalTransition(
                    callback.status,
                    "attempt",
                    f"call-back {callback_id} is already {callback.status}",
                )
            session.add(
                m.CaseCallBackAttempt(
                    callback_id=callback_id, call_id=call_id, by=actor, at=now, outcome=outcome
                )
            )
            change.audit("call-back", callback_id, "attempt", "outcome", None, outcome)
            if outcome == Outcome.REACHED:
                await self._reached(change, callback, satisfaction, remarks_text)
            else:
                await self._missed(change, callback, remarks_text)
            return await load_case(session, callback.case_id, now)

    async def _reached(
        self,
        change: CaseChange,
        callback: m.CaseCallBack,
        satisfaction: str | None,
        remarks: str | None,
    ) -> None:
        for key, value in (
            ("status", CallBackStatus.DONE),
            ("reached", True),
            ("satisfaction", satisfaction),
            ("remarks", remarks),
            ("done_at", change.at),
            ("done_by", change.by),
        ):
            change.set(callback, "call-back", key, value)
        await change.meet(Rule.CALL_BACK)
        if callback.reason == CallBackReason.PROMISED_REPLY:
            await change.meet(Rule.REPLY)  # the promised answer was given
        if callback.reason != CallBackReason.SATISFACTION:
            return
        if change.case.kind == Kind.COMPLAINT:
            complaint = await complaint_of(change)
            assert complaint is not None
            if complaint.step == Step.RESOLVE:
                record_step(change, complaint, Step.CALL_BACK, f"{satisfaction}: {remarks or ''}")
        if satisfaction == Satisfaction.UNSATISFIED:
            await reopen(change, self.rules, f"resident unsatisfied at call-back: {remarks or ''}")

    async def _missed(
        self, change: CaseChange, callback: m.CaseCallBack, remarks: str | None
    ) -> None:
        missed = await change.session.scalar(
            select(func.count())
            .select_from(m.CaseCallBackAttempt)
            .where(
                m.CaseCallBackAttempt.callback_id == callback.id,
                m.CaseCallBackAttempt.outcome != Outcome.REACHED,
            )
        )
        change.set(callback, "call-back", "remarks", remarks)
        await change.cancel([Rule.CALL_BACK])
        if (missed or 0) >= self.rules.callback_max_attempts:
            for key, value in (
                ("status", CallBackStatus.UNREACHABLE),
                ("reached", False),
                ("letter", UNREACHABLE_LETTER),
                ("done_at", change.at),
                ("done_by", change.by),
            ):
                change.set(callback, "call-back", key, value)
            if (
                change.case.kind == Kind.COMPLAINT
                and callback.reason == CallBackReason.SATISFACTION
            ):
                complaint = await complaint_of(change)
                assert complaint is not None
                if complaint.step == Step.RESOLVE:
                    record_step(change, complaint, Step.CALL_BACK, "not reached; letter sent")
            return
        retry = change.at + timedelta(hours=self.rules.callback_retry_h)
        change.set(callback, "call-back", "due_at", retry)
        change.add_deadlines([deadline_at(self.rules, Rule.CALL_BACK, change.at, retry)])

    @uncancellable
    async def get(self, callback_id: int) -> CallBackRecord:
        async with self._transaction("get call-back") as session:
            callback = await session.get(m.CaseCallBack, callback_id)
            if callback is None:
                raise NotFound("call-back", callback_id)
            records = (await load_callbacks(session, [callback.case_id]))[callback.case_id]
        return next(c for c in records if c.id == callback_id)

    @uncancellable
    async def due(
        self, *, overdue: bool = False, limit: int = 50, offset: int = 0
    ) -> tuple[builtins.list[CallBackRecord], int]:
        """Call-backs still owed, the most urgent first; ``overdue``: past their time."""
        now = self.clock.now()
        conditions = [m.CaseCallBack.status == CallBackStatus.DUE]
        if overdue:
            conditions.append(m.CaseCallBack.due_at < now)
        async with self._transaction("due call-backs") as session:
            total = await session.scalar(
                select(func.count()).select_from(m.CaseCallBack).where(*conditions)
            )
            rows = (
                await session.execute(
                    select(m.CaseCallBack.id, m.CaseCallBack.case_id)
                    .where(*conditions)
                    .order_by(m.CaseCallBack.due_at, m.CaseCallBack.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            by_case = await load_callbacks(session, sorted({case for _, case in rows}))
        wanted = {callback for callback, _ in rows}
        found = {c.id: c for cs in by_case.values() for c in cs if c.id in wanted}
        return [found[callback] for callback, _ in rows], total or 0
