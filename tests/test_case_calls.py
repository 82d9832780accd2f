"""Cases from real calls in the Asterisk sandbox, and a call-back (回访) dialled from one.

A resident calls the repair line and talks to an agent; the hang-up opens a case owned by
that agent. Resolved, it owes a call-back, which the agent dials from the case: their
softphone rings first, then the resident's, the conversation is recorded per speaker and
transcribed like any call, and the outbound call is linked to the case. The resident is
unsatisfied and the case reopens. Phones are simulated behind Local channels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from telephony.config import CallbackConfig, Config
from telephony.simulator import AgentBehaviour, AgentSimulator, Dtmf, ResidentSimulator
from tests.conftest import Hotline, transcribing, with_queues
from tests.polling import eventually
from tests.test_acd_calls import add_agent, change, until_agent
from tests.test_recording import finished_transcript, stored_recordings

RESIDENT = "13800000077"


async def send(hotline: Hotline, method: str, path: str, body: dict[str, Any], status: int) -> Any:
    async with hotline.client.request(method, path, json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def case_of_call(hotline: Hotline, call_id: int) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status, body = await hotline.get("/api/cases", phone=RESIDENT)
        assert status == 200, body
        found = [c for c in body["items"] if call_id in [x["call_id"] for x in c["calls"]]]
        return found[0] if found else None

    return await eventually(probe, timeout_s=20, what=f"the case of call {call_id}")


async def test_call_case_resolve_call_back_unsatisfied_reopen(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
    resident_phones: AgentSimulator,
) -> None:
    cfg = dataclasses.replace(
        transcribing(with_queues(config, wrap_up_s=0.5, announce_every_s=0)),
        callbacks=CallbackConfig(dial="Local/{number}@sim-residents", ring_timeout_s=10),
    )
    hotline: Hotline = await make_hotline(cfg)
    agent = await add_agent(hotline, "1071", {"repair": 5})
    agents.behaviour["1071"] = AgentBehaviour(answer_after_s=0.3, talk_s=1.5)

    # The resident reports a repair; the agent answers and talks.
    call = await residents.dial(RESIDENT)
    await residents.run(call, [Dtmf("2"), Dtmf("2")])
    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert record["direction"] == "in"
    case = await case_of_call(hotline, record["id"])
    assert (case["kind"], case["channel"], case["owner_agent_id"]) == (
        "repair",
        "phone",
        agent["id"],
    )
    assert case["repair"]["repair_class"] in ("urgent", "general")
    assert {d["rule"] for d in case["deadlines"]} >= {"fixed"}
    path = f"/api/cases/{case['id']}"

    # Fixed and resolved: a call-back (回访) is owed.
    case = await send(
        hotline,
        "PATCH",
        f"{path}/work-order",
        {
            "by": "技师 王",
            "version": case["version"],
            "work_done": "更换灯泡",
            "completed_at": record["ended_at"],
        },
        200,
    )
    case = await send(
        hotline,
        "POST",
        f"{path}/transitions",
        {"to": "resolved", "by": "agent", "version": case["version"]},
        200,
    )
    (callback,) = case["callbacks"]
    assert callback["status"] == "due"

    # Dialled from the case: the agent's phone first, then the resident's.
    await until_agent(hotline, agent["id"], "ready")
    agents.behaviour["1071"] = AgentBehaviour(answer_after_s=0.3, talk_s=None)
    resident_phones.behaviour[RESIDENT] = AgentBehaviour(answer_after_s=0.5, talk_s=2.0)
    rings_before = len(agents.rings)
    dialling = await send(
        hotline,
        "POST",
        f"/api/case-callbacks/{callback['id']}/dial",
        {"agent_id": agent["id"], "by": "agent:1071"},
        202,
    )
    out_call = dialling["call_id"]

    async def ended() -> dict[str, Any] | None:
        status, body = await hotline.get(f"/api/calls/{out_call}")
        assert status == 200, body
        return body if body["ended_at"] else None

    out = await eventually(ended, timeout_s=40, what="the call-back to end")
    assert (out["direction"], out["caller_number"], out["end_reason"]) == (
        "out",
        RESIDENT,
        "talked",
    )
    agent_ring = agents.rings[rings_before]
    (resident_ring,) = resident_phones.rings
    assert resident_ring.extension == RESIDENT
    # Agent first, then the resident, on Asterisk's clock: the phones' own loop times say
    # when each learnt of it (the reply to the agent's answer may be read after the
    # service has already dialled the resident), not in which order it happened.
    assert agent_ring.answered is not None
    assert agent_ring.up is not None
    assert resident_ring.created is not None
    assert resident_ring.created >= agent_ring.up

    # Recorded per speaker and transcribed like any call; linked to the case.
    recordings = await stored_recordings(hotline, out_call, 3)
    assert sorted(r["role"] for r in recordings) == ["agent", "mixed", "resident"]
    assert all(r["status"] == "stored" for r in recordings)
    transcript = await finished_transcript(hotline, out_call)
    assert transcript["job"]["status"] == "done", transcript["job"]
    status, case = await hotline.get(path)
    assert status == 200
    assert {(c["call_id"], c["role"]) for c in case["calls"]} == {
        (record["id"], "opened"),
        (out_call, "call-back"),
    }
    # Reached: the outcome waits for the agent.
    assert case["callbacks"][0]["status"] == "due"

    # The agent enters it: unsatisfied, which reopens the case.
    case = await send(
        hotline,
        "POST",
        f"/api/case-callbacks/{callback['id']}/attempts",
        {
            "by": "agent:1071",
            "version": case["version"],
            "outcome": "reached",
            "satisfaction": "unsatisfied",
            "remarks": "灯还是不亮",
            "call_id": out_call,
        },
        201,
    )
    assert (case["status"], case["reopened"]) == ("in-progress", 1)
    attempt = case["callbacks"][0]["attempts"][0]
    assert (attempt["call_id"], attempt["outcome"]) == (out_call, "reached")
    await change(hotline, agent["id"], "pause", "done")


async def test_a_call_back_the_resident_does_not_answer_is_recorded_as_a_try(
    make_hotline: Callable[..., Any],
    config: Config,
    agents: AgentSimulator,
    resident_phones: AgentSimulator,
) -> None:
    cfg = dataclasses.replace(
        with_queues(config, wrap_up_s=0.5, announce_every_s=0),
        callbacks=CallbackConfig(dial="Local/{number}@sim-residents", ring_timeout_s=5),
    )
    hotline: Hotline = await make_hotline(cfg)
    agent = await add_agent(hotline, "1072", {"inquiry": 5})
    agents.behaviour["1072"] = AgentBehaviour(answer_after_s=0.3, talk_s=None)
    resident_phones.behaviour[RESIDENT] = AgentBehaviour(answer_after_s=None)
    case = await send(
        hotline,
        "POST",
        "/api/cases",
        {
            "kind": "inquiry",
            "channel": "letter",
            "summary": "来信询问停车费",
            "by": "前台",
            "phone": RESIDENT,
        },
        201,
    )
    case = await send(
        hotline,
        "POST",
        f"/api/cases/{case['id']}/callbacks",
        {"by": "前台", "version": case["version"]},
        201,
    )
    (callback,) = case["callbacks"]
    # A paused agent cannot be rung: 409, nothing dialled.
    await change(hotline, agent["id"], "pause", "break")
    refused = await send(
        hotline,
        "POST",
        f"/api/case-callbacks/{callback['id']}/dial",
        {"agent_id": agent["id"], "by": "agent:1072"},
        409,
    )
    assert "must be ready" in refused["details"]["reason"]
    await change(hotline, agent["id"], "ready")
    dialling = await send(
        hotline,
        "POST",
        f"/api/case-callbacks/{callback['id']}/dial",
        {"agent_id": agent["id"], "by": "agent:1072"},
        202,
    )

    async def tried() -> dict[str, Any] | None:
        status, body = await hotline.get(f"/api/case-callbacks/{callback['id']}")
        assert status == 200, body
        return body if body["attempts"] else None

    settled = await eventually(tried, timeout_s=40, what="the try to be recorded")
    (attempt,) = settled["attempts"]
    assert (attempt["outcome"], attempt["call_id"]) == ("no-answer", dialling["call_id"])
    assert settled["status"] == "due"  # tried again later
    status, out = await hotline.get(f"/api/calls/{dialling['call_id']}")
    assert status == 200
    assert (out["direction"], out["end_reason"]) == ("out", "not-reached")
    await until_agent(hotline, agent["id"], "wrap-up")
