"""Queued call-backs: a caller leaves the line keeping their place, and is called back.

The agent's phone rings first (with a whisper saying which queue), and only once the
agent has answered is the resident's phone dialled. Both phones are simulated behind
Local channels, so the order is observed from the phones' side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from telephony.config import CallbackConfig, Config
from telephony.simulator import AgentBehaviour, AgentSimulator, Dtmf, ResidentSimulator, Wait
from tests.conftest import Hotline, with_queues
from tests.polling import eventually
from tests.test_acd_calls import add_agent, change, settled_entries
from tests.test_ivr_calls import wav_seconds


def callback_config(config: Config) -> Config:
    cfg = with_queues(config, announce_every_s=0, callback_after_s=1, wrap_up_s=0.5)
    return dataclasses.replace(
        cfg, callbacks=CallbackConfig(dial="Local/{number}@sim-residents", ring_timeout_s=10)
    )


async def test_call_back_keeps_its_place_and_rings_the_agent_first(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
    resident_phones: AgentSimulator,
) -> None:
    cfg = callback_config(config)
    hotline: Hotline = await make_hotline(cfg)
    agent = await add_agent(hotline, "1031", {"inquiry": 5}, ready=False)
    # The agent stays on a call-back until the resident hangs up (whisper, dial, talk).
    agents.behaviour["1031"] = AgentBehaviour(answer_after_s=0.5, talk_s=8.0)
    resident_phones.behaviour["13800000041"] = AgentBehaviour(answer_after_s=0.5, talk_s=1.0)

    # A waits, presses 1 and confirms the number on file: a call-back, and A hangs up.
    first = await residents.dial("13800000041")
    route_s = wav_seconds(cfg.prompts.dir / "route_inquiry.wav")
    keys = [step for _ in range(15) for step in (Dtmf("1"), Wait(1.5))]
    await residents.run(first, [Dtmf("1"), Wait(route_s + 1), *keys])
    booked = await hotline.record(first.hotline_leg, timeout_s=30)
    assert booked["end_reason"] == "callback-requested"
    (entry,) = await settled_entries(cfg, booked["id"])
    assert entry.outcome == "callback"  # not an abandoned call

    # B arrives later and waits on the line.
    second = await residents.dial("13800000042")
    await residents.run(second, [Dtmf("1")])

    async def both_waiting() -> bool:
        _, body = await hotline.get("/api/queues")
        return any(q["queue"] == "inquiry" and q["waiting"] == 2 for q in body["items"])

    await eventually(both_waiting, timeout_s=30, what="the call-back and B in line")
    assert agents.rings == []
    assert resident_phones.rings == []  # no agent free: nobody is dialled

    await change(hotline, agent["id"], "ready")
    second_record = await hotline.record(second.hotline_leg, timeout_s=60)
    assert second_record["end_reason"] == "agent-hangup"

    assert [r.caller for r in agents.rings] == ["13800000041", "13800000042"]
    (dialled,) = resident_phones.rings
    assert dialled.extension == "13800000041"
    # Agent first, then the resident, on Asterisk's clock (see simulator.Ring).
    agent_up = agents.rings[0].up
    assert agent_up is not None
    assert dialled.created is not None
    assert dialled.created >= agent_up

    _, body = await hotline.get("/api/callbacks")
    (callback,) = [c for c in body["items"] if c["call_id"] == booked["id"]]
    assert callback["status"] == "reached", str(callback)
    assert callback["attempts"] == 1
    assert [a["outcome"] for a in callback["attempt_log"]] == ["reached"]
    assert callback["place_at"] < second_record["queued_at"]


async def test_a_number_that_is_no_phone_number_is_asked_for_again(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
    resident_phones: AgentSimulator,
) -> None:
    """No caller id: the caller keys a number; 12345 is refused and asked again, the
    second number is booked. With one attempt allowed and nobody answering, the call-back
    ends as failed with the attempt's outcome stored, and the agent goes back to work."""
    cfg = callback_config(config)
    cfg = dataclasses.replace(
        cfg,
        callbacks=dataclasses.replace(cfg.callbacks, max_attempts=1, ring_timeout_s=5),
    )
    hotline: Hotline = await make_hotline(cfg)
    agent = await add_agent(hotline, "1032", {"inquiry": 5}, ready=False)
    agents.behaviour["1032"] = AgentBehaviour(answer_after_s=0.3, talk_s=None)
    resident_phones.behaviour["13912345678"] = AgentBehaviour(answer_after_s=None)
    call = await residents.dial(None)
    route_s = wav_seconds(cfg.prompts.dir / "route_inquiry.wav")
    enter_s = wav_seconds(cfg.prompts.dir / "callback_enter.wav")
    invalid_s = wav_seconds(cfg.prompts.dir / "callback_invalid.wav")
    await residents.run(
        call,
        [
            Dtmf("1"),
            Wait(route_s + 1),
            Dtmf("1"),
            Wait(enter_s + 1),
            Dtmf("12345#"),
            Wait(invalid_s + enter_s + 1),
            Dtmf("13912345678#"),
            Wait(15),
        ],
    )
    booked = await hotline.record(call.hotline_leg, timeout_s=30)
    assert booked["end_reason"] == "callback-requested"
    await change(hotline, agent["id"], "ready")

    async def finished() -> dict[str, Any] | None:
        _, body = await hotline.get("/api/callbacks", status="failed")
        return next((c for c in body["items"] if c["call_id"] == booked["id"]), None)

    try:
        callback = await eventually(finished, timeout_s=40, what="call-back failed")
    except AssertionError:
        _, body = await hotline.get("/api/callbacks")
        raise AssertionError(f"{body} {agents.rings} {resident_phones.rings}") from None
    assert callback["number"] == "13912345678"
    assert [a["outcome"] for a in callback["attempt_log"]] == ["no-answer"]
    assert [r.extension for r in resident_phones.rings] == ["13912345678"]
    status, _ = await hotline.get("/api/callbacks", status="bogus")
    assert status == 400
