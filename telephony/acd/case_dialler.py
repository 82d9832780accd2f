"""A call-back (回访) dialled from a case: the agent's softphone first, then the resident.

The agent clicks "dial" on the case. Their phone rings (caller id: the case), and only
once they have answered is the resident dialled, so a resident never picks up to
silence. The call is a call record of its own (direction "out"), recorded per speaker
and transcribed like any other, and linked to the case. A try that does not reach the
resident is recorded on the call-back at once (no answer, busy, failed); a reached one
waits for the agent to enter what the resident said (满意 / 不满意), because only the
agent knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from crm.calls import CallLog, Direction, EndReason
from crm.desk import CrmDesk
from crm.exceptions import InvalidInput, NotFound
from crm.rules import CallBackStatus, IllegalTransition, Outcome
from telephony.acd.agent_state import AgentEvent, AgentState
from telephony.acd.legs import Leg, OutboundLegs, outcome_of
from telephony.acd.live import LiveEvents
from telephony.acd.roster import AgentRoster, LiveAgent
from telephony.ari import AriClient, AriError
from telephony.config import Config
from telephony.recording.recorder import CallRecorder

log = logging.getLogger(__name__)

WRAP_UP_S = 30.0  # to enter the resident's answer before the next call is offered


@dataclass(frozen=True, slots=True)
class Dialling:
    callback_id: int
    case_id: int
    call_id: int
    agent_id: int
    number: str


class CaseDialler:
    def __init__(
        self,
        config: Config,
        ari: AriClient,
        legs: OutboundLegs,
        roster: AgentRoster,
        call_log: CallLog,
        recorder: CallRecorder,
        crm: CrmDesk,
        live: LiveEvents,
    ) -> None:
        self.config = config
        self.ari = ari
        self.legs = legs
        self.roster = roster
        self.call_log = call_log
        self.recorder = recorder
        self.crm = crm
        self.live = live
        self._tasks: set[asyncio.Task[None]] = set()

    async def dial(self, callback_id: int, *, agent_id: int, by: str) -> Dialling:
        """Check, reserve the agent, open the call record; the dialling runs on its own."""
        callback = await self.crm.callbacks.get(callback_id)
        if callback.status != CallBackStatus.DUE:
            raise IllegalTransition(callback.status, "dial", f"call-back {callback_id} is settled")
        case = await self.crm.cases.get(callback.case_id)
        if case.phone is None:
            raise InvalidInput("phone", f"case {case.id} has no phone number to call back")
        agent = self.roster.agents.get(agent_id)
        if agent is None:
            raise NotFound("agent", agent_id)
        if agent.state is not AgentState.READY:
            raise IllegalTransition(
                agent.state, "dial", "the agent must be ready (not on a call, paused or away)"
            )
        # Reserved before the first await, so the ACD cannot offer them a queue call now.
        self.roster.apply(agent, AgentEvent.OFFER)
        resident_channel = f"dial-{uuid.uuid4().hex[:16]}"
        try:
            call_id = await self.call_log.open_call(
                channel_id=resident_channel,
                caller_number=case.phone,
                caller_name=None,
                dialled_number=case.phone,
                started_at=self.crm.clock.now(),
                direction=Direction.OUT,
            )
        except Exception:
            self.roster.apply(agent, AgentEvent.CALLER_GONE)
            raise
        agent.call_id = call_id
        dialling = Dialling(callback_id, case.id, call_id, agent_id, case.phone)
        await self.crm.cases.attach_call(case.id, call_id, role="call-back", by=by)
        task = asyncio.create_task(self._run(dialling, agent, resident_channel, by))
        self._tasks.add(task)
        task.add_done_callback(self._done)
        self.live.publish("case-callback-dialling", **_json(dialling))
        return dialling

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    async def _run(self, d: Dialling, agent: LiveAgent, resident_channel: str, by: str) -> None:
        cb = self.config.callbacks
        ring_s = cb.ring_timeout_s
        agent_leg = await self.legs.dial(
            agent.endpoint,
            prefix="agent-",
            ring_timeout_s=ring_s,
            caller_id=f'"回访 {d.case_id}" <{d.number}>',
            purpose="agent",
        )
        if not await _answered(agent_leg, ring_s):
            await self.legs.hang_up(agent_leg)
            self.roster.apply(agent, AgentEvent.NO_ANSWER, call_id=d.call_id)
            await self._close(d, EndReason.AGENT_NO_ANSWER)
            return
        self.roster.apply(agent, AgentEvent.ANSWER, call_id=d.call_id)
        resident_leg: Leg | None = None
        bridge_id = f"hotline-revisit-{d.call_id}-{uuid.uuid4().hex[:6]}"
        reason = EndReason.NOT_REACHED
        try:
            resident_leg = await self.legs.dial(
                cb.dial.format(number=d.number),
                prefix="dial-",
                channel_id=resident_channel,
                ring_timeout_s=ring_s,
                caller_id=cb.caller_id,
                purpose="callback",
            )
            if await _answered(resident_leg, ring_s, also=agent_leg):
                reason = EndReason.TALKED
                await self.call_log.mark_answered(
                    d.call_id, answered_at=self.crm.clock.now(), ring_ms=0, state="connected"
                )
                await self.ari.create_bridge(bridge_id, bridge_type="mixing", name=bridge_id)
                await self.ari.add_to_bridge(bridge_id, agent_leg.channel_id)
                await self.ari.add_to_bridge(bridge_id, resident_leg.channel_id)
                await self.recorder.conversation(
                    d.call_id,
                    bridge_id,
                    resident=resident_leg.channel_id,
                    agent=agent_leg.channel_id,
                )
                self.live.publish("case-callback-connected", **_json(d))
                await asyncio.wait(
                    [agent_leg.ended, resident_leg.ended], return_when="FIRST_COMPLETED"
                )
            elif agent_leg.ended.done():
                reason = EndReason.AGENT_QUIT  # not the resident's try
            else:
                cause = resident_leg.ended.result() if resident_leg.ended.done() else None
                outcome = outcome_of(cause) if resident_leg.ended.done() else Outcome.NO_ANSWER
                await self.crm.callbacks.record_attempt(
                    d.callback_id, version=None, by=by, outcome=outcome, call_id=d.call_id
                )
        finally:
            for leg in (resident_leg, agent_leg):
                if leg is not None:
                    await self.legs.hang_up(leg)
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(bridge_id)
            self.recorder.call_ended(d.call_id)
            if agent.state is AgentState.ON_CALL:
                self.roster.apply(agent, AgentEvent.HANG_UP, call_id=d.call_id)
                self.roster.start_wrap_up(agent, WRAP_UP_S, lambda: None)
            await self._close(d, reason)

    async def _close(self, d: Dialling, reason: str) -> None:
        await self.call_log.close_call(d.call_id, ended_at=self.crm.clock.now(), reason=reason)
        self.live.publish("case-callback-ended", **_json(d), reason=reason)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("case call-back failed: %r", err, exc_info=err)


async def _answered(leg: Leg, timeout_s: float, *, also: Leg | None = None) -> bool:
    """Whether ``leg`` answered in time (False at once if it, or ``also``, hung up)."""
    waits: list[asyncio.Future[Any]] = [leg.answered, leg.ended]
    if also is not None:
        waits.append(also.ended)
    await asyncio.wait(waits, timeout=timeout_s + 2, return_when="FIRST_COMPLETED")
    answered = leg.answered.done() and not leg.answered.cancelled()
    return answered and not leg.ended.done() and (also is None or not also.ended.done())


def _json(d: Dialling) -> dict[str, Any]:
    return {
        "callback_id": d.callback_id,
        "case_id": d.case_id,
        "call_id": d.call_id,
        "agent_id": d.agent_id,
    }
