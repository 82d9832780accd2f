"""The duty phone hears of every urgent call nobody answered.

At night the hotline may have nobody logged in; a resident who chose 急修 or 紧急求助 and
got no agent must not wait for the morning shift to read the call-back list. The duty
manager's phone (``acd.duty_endpoint``) is rung and, once answered, told what happened
and the number to call back, digit by digit. One try per call: the alert on the live
feed and the call-back due at once stay whatever the duty phone does; the outcome is
published (``duty-told``) so a screen can show whether anyone heard it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from crm.intake import UrgentUnanswered
from crm.phones import masked
from crm.rules import Kind
from telephony.acd.announcements import number_prompts
from telephony.acd.legs import Leg, OutboundLegs, outcome_of
from telephony.acd.live import LiveEvents
from telephony.ari import AriError
from telephony.prompts import PromptLibrary

log = logging.getLogger(__name__)

RING_S = 30.0
RING_GRACE_S = 2.0
SAY_LIMIT_S = 60.0  # the message with a number read out takes about 15 s
TIMES_SAID = 2  # the message is said twice: the first time is often missed


def duty_texts() -> dict[str, str]:
    """What the duty phone hears; the number itself is read with the digit prompts."""
    return {
        "duty_urgent_repair": "值班提醒：有一个急修来电无人接听，请尽快回电处理。",
        "duty_urgent_emergency": "值班提醒：有一个紧急求助来电无人接听，请立即回电处理。",
        "duty_call_back_number": "回电号码是",
        "duty_no_number": "来电没有显示号码，请查看工单。",
    }


class DutyPhone:
    def __init__(
        self,
        endpoint: str | None,
        legs: OutboundLegs,
        prompts: PromptLibrary,
        live: LiveEvents,
        *,
        ring_s: float = RING_S,
    ) -> None:
        self.endpoint = endpoint
        self.legs = legs
        self.prompts = prompts
        self.live = live
        self.ring_s = ring_s
        self._tasks: set[asyncio.Task[None]] = set()

    def tell(self, urgent: UrgentUnanswered) -> None:
        """Ring the duty phone in the background; a no-op when none is configured."""
        if self.endpoint is None:
            return
        task = asyncio.create_task(self._tell(self.endpoint, urgent), name="duty-phone")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _tell(self, endpoint: str, urgent: UrgentUnanswered) -> None:
        outcome = "failed"
        try:
            label = "紧急求助" if urgent.kind == Kind.EMERGENCY else "急修"
            number = urgent.phone or ""
            leg = await self.legs.dial(
                endpoint,
                prefix="dial-",
                ring_timeout_s=self.ring_s,
                caller_id=f'"{label}未接 {number}" <{number or 400}>',
                purpose="duty",
            )
            outcome = await self._answered(leg)
            if outcome == "reached":
                await self.legs.say(leg, self._message(urgent), limit_s=SAY_LIMIT_S)
                await self.legs.hang_up(leg)
        except AriError as err:
            log.warning("duty phone for case %s: %s", urgent.case_id, err)
        finally:
            log.info(
                "duty phone told of case %s (%s, %s): %s",
                urgent.case_id,
                urgent.kind,
                masked(urgent.phone),
                outcome,
            )
            self.live.publish(
                "duty-told",
                case_id=urgent.case_id,
                call_id=urgent.call_id,
                endpoint=endpoint,
                outcome=outcome,
            )

    async def _answered(self, leg: Leg) -> str:
        futures: list[asyncio.Future[Any]] = [leg.answered, leg.ended]
        done, _ = await asyncio.wait(
            futures,
            timeout=self.ring_s + RING_GRACE_S,
            return_when="FIRST_COMPLETED",
        )
        if leg.answered.done() and not leg.answered.cancelled():
            return "reached"
        if not done:
            await self.legs.hang_up(leg)
            return "no-answer"
        return outcome_of(leg.ended.result())

    def _message(self, urgent: UrgentUnanswered) -> list[str]:
        what = "duty_urgent_emergency" if urgent.kind == Kind.EMERGENCY else "duty_urgent_repair"
        if urgent.phone:
            said = [what, "duty_call_back_number", *number_prompts(urgent.phone)]
        else:
            said = [what, "duty_no_number"]
        return [self.prompts.media(name) for name in said * TIMES_SAID]
