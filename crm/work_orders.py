"""The repair work order (维修服务任务单): filled in as the job goes, checked as it goes.

The order's times meet the repair deadlines (on site, fixed), the class the agent confirms
resets them (counted from the call, as the standards count them), and a job not on the
price list cannot start before it was reviewed within its 15 minutes and the resident
agreed to the price (§3).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from crm import models as m
from crm import validation as v
from crm.case_records import CaseRecord, load_case
from crm.case_status import order_of
from crm.case_store import CaseChange, CaseRepository, begin_change, find_room
from crm.exceptions import InvalidInput
from crm.rules import (
    IllegalTransition,
    RepairClass,
    Rule,
    Satisfaction,
    Status,
    deadline,
    repair_deadlines,
    suggest_repair_class,
)
from crm.uncancellable import uncancellable

TEXT_FIELDS = {"fault": 500, "work_done": 2000, "materials": 1000}
TIME_FIELDS = ("appointment_at", "on_site_at", "completed_at")
FIELDS = {
    *TEXT_FIELDS,
    *TIME_FIELDS,
    "reporter",
    "technician",
    "phone",
    "building",
    "room",
    "key_left",
    "material_cost",
    "labour_cost",
    "verdict",
    "repair_class",
    "on_price_list",
    "quoted",
    "price_reviewed",
    "price_agreed",
}
# Recording these means the work has started: not before the resident agreed the price.
WORK_FIELDS = ("on_site_at", "work_done", "materials", "completed_at")


class WorkOrders(CaseRepository):
    @uncancellable
    async def update(
        self, case_id: int, *, version: int, by: object, changes: dict[str, object]
    ) -> CaseRecord:
        """Change fields of the order; every field is checked before anything is written."""
        actor = v.actor("by", by)
        unknown = sorted(set(changes) - FIELDS)
        if unknown:
            raise InvalidInput(unknown[0], "is not a work order field")
        values = _checked(changes)
        now = self.clock.now()
        for key in TIME_FIELDS:
            when = values.get(key)
            if key != "appointment_at" and isinstance(when, datetime) and when > now:
                raise InvalidInput(key, "must not be in the future")
        if ("building" in changes) != ("room" in changes):
            raise InvalidInput("room", "building and room are changed together")
        async with self._transaction("update work order") as session:
            if "room" in changes:
                values["room_id"] = await find_room(session, changes["building"], changes["room"])
                del values["building"], values["room"]
            change = await begin_change(session, case_id, version, actor, now)
            order = await order_of(change)
            if order is None:
                raise InvalidInput("case", f"case {case_id} is a {change.case.kind}, not a repair")
            if change.case.status in (Status.CLOSED, Status.CANCELLED):
                raise IllegalTransition(
                    change.case.status, "edit", "a closed or cancelled case's order is final"
                )
            await self._apply(change, order, values)
            return await load_case(session, case_id, now)

    @uncancellable
    async def resuggest(
        self, case_id: int, *, ivr_tag: str | None, texts: tuple[str, ...]
    ) -> CaseRecord | None:
        """Suggest again once the call's transcript is ready (minutes after hang-up).

        Only an unconfirmed class follows the new suggestion; the agent's word stands.
        None: not a repair, or nothing changed.
        """
        now = self.clock.now()
        suggestion = suggest_repair_class(
            ivr_tag=ivr_tag, texts=texts, keywords=self.rules.urgent_keywords
        )
        async with self._transaction("resuggest repair class") as session:
            order = await session.scalar(
                select(m.RepairOrder).where(m.RepairOrder.case_id == case_id)
            )
            if order is None or order.suggested_because == suggestion.because:
                return None
            change = await begin_change(session, case_id, None, "system", now)
            change.set(order, "repair-order", "suggested_class", suggestion.repair_class)
            change.set(order, "repair-order", "suggested_because", suggestion.because)
            if order.class_confirmed_at is None and change.case.status in Status.LIVE:
                await self._reclassify(change, order, suggestion.repair_class)
            return await load_case(session, case_id, now)

    async def _apply(
        self, change: CaseChange, order: m.RepairOrder, values: dict[str, object]
    ) -> None:
        if order.rework_of is not None:
            for key in ("material_cost_fen", "labour_cost_fen"):
                if values.get(key, 0) != 0:
                    field = key.removesuffix("_fen")
                    raise InvalidInput(field, "a warranty rework is free of charge (§3)")
        if "on_price_list" in values:
            change.set(order, "repair-order", "on_price_list", values.pop("on_price_list"))
            review_owed = not order.on_price_list and order.price_reviewed_at is None
            if review_owed and not await change.open_deadlines([Rule.PRICE_REVIEW]):
                change.add_deadlines([deadline(self.rules, Rule.PRICE_REVIEW, change.at)])
        if "quoted_fen" in values:
            change.set(order, "repair-order", "quoted_fen", values.pop("quoted_fen"))
        if values.pop("price_reviewed", False):
            if order.on_price_list:
                raise InvalidInput("price_reviewed", "the job is on the price list: no review")
            if order.quoted_fen is None:
                raise InvalidInput("quoted", "a price review needs the quoted price")
            change.set(order, "repair-order", "price_reviewed_by", change.by)
            change.set(order, "repair-order", "price_reviewed_at", change.at)
            await change.meet(Rule.PRICE_REVIEW)
        if values.pop("price_agreed", False):
            if order.price_reviewed_at is None:
                raise IllegalTransition(
                    "quoted", "agreed", "the price must be reviewed before the resident agrees"
                )
            change.set(order, "repair-order", "price_agreed_at", change.at)
        starting = [k for k in WORK_FIELDS if values.get(k) is not None]
        if starting and not order.on_price_list and order.price_agreed_at is None:
            raise IllegalTransition(
                "quoted",
                starting[0],
                "the job is not on the price list: the resident must agree to the reviewed "
                "price before work starts",
            )
        if "repair_class" in values:
            await self._confirm_class(change, order, str(values.pop("repair_class")))
        for key, value in values.items():
            change.set(order, "repair-order", key, value)
        if order.on_site_at is not None:
            await change.meet(Rule.ON_SITE, order.on_site_at)
        if order.completed_at is not None:
            if order.on_site_at is not None and order.completed_at < order.on_site_at:
                raise InvalidInput("completed_at", "must not be before on_site_at")
            await change.meet(Rule.ON_SITE, order.completed_at)
            await change.meet(Rule.FIXED, order.completed_at)

    async def _confirm_class(self, change: CaseChange, order: m.RepairOrder, wanted: str) -> None:
        """The agent's word on urgency; the deadlines are counted again from the call."""
        change.set(order, "repair-order", "class_confirmed_by", change.by)
        change.set(order, "repair-order", "class_confirmed_at", change.at)
        await self._reclassify(change, order, wanted)

    async def _reclassify(self, change: CaseChange, order: m.RepairOrder, wanted: str) -> None:
        if change.set(order, "repair-order", "repair_class", wanted):
            await change.cancel([Rule.ON_SITE, Rule.FIXED])
            specs = repair_deadlines(self.rules, wanted, order.reported_at)
            change.add_deadlines(
                s for s in specs if s.rule == Rule.FIXED or order.on_site_at is None
            )


def _checked(changes: dict[str, object]) -> dict[str, object]:
    """Every field validated, as stored (money in fen); raises on the first bad one."""
    values: dict[str, object] = {}
    for key, limit in TEXT_FIELDS.items():
        if key in changes:
            values[key] = v.text(key, changes[key], max_len=limit, required=key == "fault")
    for key in TIME_FIELDS:
        if key in changes:
            values[key] = v.when(key, changes[key])
    for key in ("reporter", "technician"):
        if key in changes:
            values[key] = v.name(key, changes[key], required=False)
    if "phone" in changes:
        raw = changes["phone"]
        values["phone"] = v.phone("phone", raw) if raw not in (None, "") else None
    if "building" in changes:
        values["building"], values["room"] = changes["building"], changes["room"]
    for key in ("key_left", "on_price_list", "price_reviewed", "price_agreed"):
        if key in changes:
            values[key] = v.flag(key, changes[key])
    for key in ("material_cost", "labour_cost"):
        if key in changes:
            values[f"{key}_fen"] = v.money_fen(key, changes[key])
    if "quoted" in changes:
        values["quoted_fen"] = v.money_fen("quoted", changes["quoted"])
    if "verdict" in changes:
        values["verdict"] = v.choice(
            "verdict", changes["verdict"], Satisfaction.ALL, required=False
        )
    if "repair_class" in changes:
        values["repair_class"] = v.choice("repair_class", changes["repair_class"], RepairClass.ALL)
    return values
