"""The complaint workflow (§4): 接诉→辨诉→析诉→定责→处理→回访→总结→归档.

Each step is done once, in order, by a named person at a recorded time, and asks for what
that step decides: 辨诉 the nature and subject and whether it is reasonable, 析诉 the
findings, 定责 who is responsible, 总结 causes and prevention. 处理 resolves the case and
归档 closes it (crm.case_status); 回访 is recorded by the call-back's outcome, not by hand.
"""

from __future__ import annotations

from crm import validation as v
from crm.case_records import CaseRecord, load_case
from crm.case_status import complaint_of, record_step, transition
from crm.case_store import CaseRepository, begin_change
from crm.exceptions import InvalidInput
from crm.rules import (
    SORTS,
    SUBJECTS,
    IllegalTransition,
    Nature,
    Status,
    Step,
    check_step,
)
from crm.uncancellable import uncancellable


class ComplaintDesk(CaseRepository):
    @uncancellable
    async def step(
        self,
        case_id: int,
        *,
        step: str,
        version: int,
        by: object,
        note: object = None,
        details: dict[str, object] | None = None,
    ) -> CaseRecord:
        """Do the next step; a skipped, repeated or unknown step is refused with 409."""
        actor = v.actor("by", by)
        note_text = v.text("note", note, max_len=2000)
        values = _details(step, details or {}, note_text)
        now = self.clock.now()
        async with self._transaction("complaint step") as session:
            change = await begin_change(session, case_id, version, actor, now)
            complaint = await complaint_of(change)
            if complaint is None:
                raise InvalidInput(
                    "case", f"case {case_id} is a {change.case.kind}, not a complaint"
                )
            check_step(complaint.step, step)
            if step == Step.CALL_BACK:
                raise IllegalTransition(
                    complaint.step,
                    step,
                    "回访 is recorded by the call-back's outcome "
                    "(POST /api/case-callbacks/{id}/attempts)",
                )
            for key, value in values.items():
                change.set(complaint, "complaint", key, value)
            if step == Step.RESOLVE:
                await transition(change, self.rules, Status.RESOLVED, note_text)
            elif step == Step.ARCHIVE:
                await transition(change, self.rules, Status.CLOSED, note_text)
            else:
                record_step(change, complaint, step, note_text)
                if change.case.status == Status.OPEN:
                    change.case.status = Status.IN_PROGRESS
                    change.audit(
                        "case", case_id, "status", "status", Status.OPEN, Status.IN_PROGRESS
                    )
            return await load_case(session, case_id, now)


def _details(step: str, given: dict[str, object], note: str | None) -> dict[str, object]:
    """What each step must decide, checked before anything is written."""
    allowed = {
        Step.CLASSIFY: {"nature", "sort", "subject", "reasonable", "serious"},
        Step.ASSIGN: {"responsible"},
        Step.REVIEW: {"causes", "prevention"},
    }.get(step, set())
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], f"is not decided at step {step}")
    values: dict[str, object] = {}
    if step == Step.CLASSIFY:
        values["nature"] = v.choice("nature", given.get("nature"), Nature.ALL)
        if values["nature"] == Nature.COMMUNICATION:
            values["sort"] = v.choice("sort", given.get("sort"), SORTS)
        elif given.get("sort") is not None:
            raise InvalidInput("sort", "only a communication complaint (沟通性) has a sort")
        values["subject"] = v.choice("subject", given.get("subject"), SUBJECTS)
        values["reasonable"] = v.flag("reasonable", given.get("reasonable"))
        if "serious" in given:
            values["serious"] = v.flag("serious", given["serious"])
    elif step == Step.INVESTIGATE and note is None:
        raise InvalidInput("note", "析诉 needs the findings")
    elif step == Step.ASSIGN:
        values["responsible"] = v.required_name_text(
            "responsible", given.get("responsible"), max_len=80
        )
    elif step == Step.RESOLVE and note is None:
        raise InvalidInput("note", "处理 needs what was done and the resident's sign-off")
    elif step == Step.REVIEW:
        values["causes"] = v.required_text("causes", given.get("causes"), max_len=2000)
        values["prevention"] = v.required_text("prevention", given.get("prevention"), max_len=2000)
    return values
