"""A night shift: residents choose 报修 → 急修 and nobody answers. Real calls in the sandbox.

Whatever happens after the key press (the caller hangs up in the message prompt, leaves a
message, hangs up right after choosing, in the queue, waits until the holding timeout, or
books a call-back) the case is an urgent repair with its on-site and fixed deadlines, its
call-back is due at once, the live feed carries an alert, and the duty phone rings and is
told the number to call back. A caller who hung up in the repair menu before choosing a
class gets a repair case for the agent to classify, and no alarm.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import ClientWebSocketResponse

from crm.rules import ServiceRules
from telephony.config import CallbackConfig, Config, WhenClosed
from telephony.simulator import (
    AgentBehaviour,
    AgentSimulator,
    Dtmf,
    HangUp,
    Play,
    ResidentSimulator,
    SimulatedCall,
    Wait,
)
from tests.conftest import Hotline, with_queues
from tests.polling import eventually
from tests.test_acd_calls import add_agent
from tests.test_ivr_calls import wav_seconds

DUTY = "1099"
RULES = ServiceRules()
ON_SITE = timedelta(minutes=RULES.urgent_on_site_min)
FIXED = timedelta(hours=RULES.urgent_fixed_h)


def night(config: Config, **queue_changes: Any) -> Config:
    cfg = with_queues(
        config,
        announce_every_s=0,
        acd=dataclasses.replace(config.acd, duty_endpoint=AgentSimulator.endpoint(DUTY)),
        **queue_changes,
    )
    return dataclasses.replace(
        cfg, callbacks=CallbackConfig(dial="Local/{number}@sim-residents", ring_timeout_s=10)
    )


async def chosen(hotline: Hotline, call: SimulatedCall, choice: str) -> dict[str, Any]:
    """The open call record once the IVR has stored the caller's choice."""

    async def probe() -> dict[str, Any] | None:
        record = await hotline.record(call.hotline_leg, ended=False)
        return record if record["choice"] == choice else None

    return await eventually(probe, timeout_s=30, what=f"choice {choice} on the call")


async def case_of(hotline: Hotline, call_id: int, *, owed: bool = False) -> dict[str, Any]:
    """The case of a call; ``owed``: once its call-back is there too (the case is opened
    first, and what it owes is added in the next transaction)."""

    async def probe() -> dict[str, Any] | None:
        status, body = await hotline.get("/api/cases", limit="100")
        assert status == 200, body
        found = [c for c in body["items"] if call_id in [x["call_id"] for x in c["calls"]]]
        return found[0] if found and (found[0]["callbacks"] or not owed) else None

    return await eventually(probe, timeout_s=30, what=f"the case of call {call_id}")


def assert_urgent_repair(case: dict[str, Any], started_at: str) -> None:
    assert case["kind"] == "repair"
    assert case["repair"]["repair_class"] == "urgent"
    assert case["repair"]["suggested_because"] == "IVR: urgent repair"
    due = {d["rule"]: datetime.fromisoformat(d["due_at"]) for d in case["deadlines"]}
    start = datetime.fromisoformat(started_at)
    assert due["on-site"] == start + ON_SITE
    assert due["fixed"] == start + FIXED


def assert_called_back_at_once(case: dict[str, Any], ended_at: str) -> None:
    (callback,) = case["callbacks"]
    assert callback["status"] == "due"
    # due when the case was made, right after the hang-up: not in inquiry_reply_min
    due = datetime.fromisoformat(callback["due_at"])
    ended = datetime.fromisoformat(ended_at)
    assert ended <= due < ended + timedelta(minutes=RULES.inquiry_reply_min)


async def live_events(ws: ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    async for message in ws:
        into.append(message.json())


async def test_at_night_an_urgent_repair_with_nobody_logged_in_is_not_left_to_wait(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """Nobody logged in (the shipped behaviour takes a message): one caller hangs up during
    the message prompt, one leaves a message, one hangs up in the repair menu."""
    cfg = night(config, when_nobody_logged_in=WhenClosed.MESSAGE)
    hotline: Hotline = await make_hotline(cfg)
    # The duty manager picks up, hears the start of the message and hangs up.
    agents.behaviour[DUTY] = AgentBehaviour(answer_after_s=0.5, talk_s=3)
    events: list[dict[str, Any]] = []
    async with hotline.client.ws_connect("/api/live") as ws:
        listening = asyncio.create_task(live_events(ws, events))
        try:
            in_prompt = await residents.dial("13800000101")
            leaves_message = await residents.dial("13800000102")
            in_menu = await residents.dial("13800000103")
            intro_s = wav_seconds(cfg.prompts.dir / "message_no_agents.wav")
            speech = cfg.prompts.media_prefix + "repair"
            for call in (in_prompt, leaves_message):
                await residents.run(call, [Dtmf("2"), Dtmf("1")])
            await residents.run(in_menu, [Dtmf("2")])
            await chosen(hotline, in_prompt, "repair/urgent")
            await residents.run(in_prompt, [HangUp()])
            await chosen(hotline, in_menu, "repair")
            await residents.run(in_menu, [HangUp()])
            await residents.run(
                leaves_message, [Wait(intro_s + 1), Play(speech), Dtmf("#"), Wait(10)]
            )

            hung_up = await hotline.record(in_prompt.hotline_leg)
            left = await hotline.record(leaves_message.hotline_leg, timeout_s=40)
            menu = await hotline.record(in_menu.hotline_leg)
            assert (hung_up["end_reason"], hung_up["queue"]) == ("caller-hangup", "repair")
            assert left["end_reason"] == "message-left"
            assert (menu["queue"], menu["choice"]) == (None, "repair")

            for record in (hung_up, left):
                case = await case_of(hotline, record["id"], owed=True)
                assert_urgent_repair(case, record["started_at"])
                assert_called_back_at_once(case, record["ended_at"])
            message_case = await case_of(hotline, left["id"])
            _, messages = await hotline.get("/api/messages")
            (message,) = [m for m in messages["items"] if m["call_id"] == left["id"]]
            assert message["case_id"] == message_case["id"]

            classify = await case_of(hotline, menu["id"], owed=True)
            assert classify["kind"] == "repair"
            assert classify["repair"]["class_confirmed_by"] is None
            assert classify["callbacks"][0]["reason"] == "promised-reply"

            async def duty_told_twice() -> list[dict[str, Any]] | None:
                told = [e for e in events if e["type"] == "duty-told"]
                return told if len(told) == 2 else None

            told = await eventually(duty_told_twice, timeout_s=60, what="the duty phone told twice")
        finally:
            listening.cancel()
    assert {e["call_id"] for e in told} == {hung_up["id"], left["id"]}
    assert {e["outcome"] for e in told} == {"reached"}
    alerts = [e for e in events if e["type"] == "alert"]
    assert {(a["alert"], a["call_id"]) for a in alerts} == {
        ("urgent-unanswered", hung_up["id"]),
        ("urgent-unanswered", left["id"]),
    }
    duty_rings = agents.rings_for(DUTY)
    assert sorted(r.caller for r in duty_rings) == ["13800000101", "13800000102"]
    assert all(r.answered is not None for r in duty_rings)


async def test_an_urgent_repair_nobody_takes_from_the_queue_is_called_back_at_once(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """An agent is logged in but on a break: one caller hangs up as soon as the choice is
    made, one while waiting in the queue, one books a call-back (which keeps its place)."""
    cfg = night(config, callback_after_s=1, max_wait_s=120)
    hotline: Hotline = await make_hotline(cfg)
    await add_agent(hotline, "1081", {"repair": 5}, ready=False)
    agents.behaviour[DUTY] = AgentBehaviour(answer_after_s=None)  # nobody at the duty phone
    at_once, in_queue, books = [await residents.dial(f"1380000011{n}") for n in range(3)]
    for call in (at_once, in_queue, books):
        await residents.run(call, [Dtmf("2"), Dtmf("1")])
    await chosen(hotline, at_once, "repair/urgent")
    await residents.run(at_once, [HangUp()])

    async def two_waiting() -> bool:
        _, body = await hotline.get("/api/queues")
        return any(q["queue"] == "repair" and q["waiting"] == 2 for q in body["items"])

    await eventually(two_waiting, timeout_s=30, what="two urgent callers in line")
    await residents.run(in_queue, [HangUp()])
    keys = [step for _ in range(15) for step in (Dtmf("1"), Wait(1.5))]
    await residents.run(books, keys)

    records = [await hotline.record(c.hotline_leg, timeout_s=40) for c in (at_once, in_queue)]
    booked = await hotline.record(books.hotline_leg, timeout_s=60)
    assert booked["end_reason"] == "callback-requested"
    for record in (*records, booked):
        assert record["choice"] == "repair/urgent"
        case = await case_of(hotline, record["id"], owed=True)
        assert_urgent_repair(case, record["started_at"])
        assert_called_back_at_once(case, record["ended_at"])
    booked_case = await case_of(hotline, booked["id"], owed=True)
    assert booked_case["callbacks"][0]["reason"] == "queued"

    async def duty_rang_thrice() -> bool:
        return len(agents.rings_for(DUTY)) == 3

    await eventually(duty_rang_thrice, timeout_s=30, what="the duty phone rung for each")


async def test_a_holding_timeout_is_urgent_too_and_an_answered_one_is_the_agents(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    cfg = night(config, max_wait_s=2)
    hotline: Hotline = await make_hotline(cfg)
    agents.behaviour[DUTY] = AgentBehaviour(answer_after_s=0.3)
    waits = await residents.dial("13800000121")
    await residents.run(waits, [Dtmf("2"), Dtmf("1")])
    timed_out = await hotline.record(waits.hotline_leg, timeout_s=40)
    assert timed_out["end_reason"] == "holding-timeout"
    case = await case_of(hotline, timed_out["id"], owed=True)
    assert_urgent_repair(case, timed_out["started_at"])
    assert_called_back_at_once(case, timed_out["ended_at"])

    async def duty_rang() -> bool:
        return len(agents.rings_for(DUTY)) == 1

    await eventually(duty_rang, timeout_s=30, what="the duty phone rung")

    agent = await add_agent(hotline, "1082", {"repair": 5})
    agents.behaviour["1082"] = AgentBehaviour(answer_after_s=0.3, talk_s=1)
    answered_call = await residents.dial("13800000122")
    await residents.run(answered_call, [Dtmf("2"), Dtmf("1")])
    answered = await hotline.record(answered_call.hotline_leg, timeout_s=40)
    assert answered["end_reason"] == "agent-hangup"
    taken = await case_of(hotline, answered["id"])
    assert_urgent_repair(taken, answered["started_at"])
    assert taken["owner_agent_id"] == agent["id"]
    assert taken["callbacks"] == []
    assert [r.caller for r in agents.rings_for(DUTY)] == ["13800000121"]
