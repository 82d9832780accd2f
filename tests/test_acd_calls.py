"""Queues and agents, end to end: residents call, the ACD rings agents' phones, they talk.

Agents' phones are simulated on the ``sim-agents`` ARI application behind Local
channels (``Local/1001@sim-agents``), so the ACD dials them exactly as it dials a
softphone, and the simulator sees from the phone's side who rang and when.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from crm.db import create_engine, make_sessionmaker
from crm.queue_facts import QueueEntryRecord, QueueFacts
from telephony.ari import AriClient, AriNotFound
from telephony.call_state import CallState
from telephony.config import AcdConfig, Config, WhenClosed
from telephony.simulator import (
    AgentBehaviour,
    AgentSimulator,
    Dtmf,
    HangUp,
    Play,
    ResidentSimulator,
    Wait,
)
from tests.audio import likeness, wav_samples
from tests.conftest import Hotline, with_queues
from tests.polling import eventually
from tests.staff import ADMIN
from tests.test_ivr_calls import wav_seconds
from web.appkeys import STASIS


async def add_agent(
    hotline: Hotline, extension: str, skills: dict[str, int], *, ready: bool = True
) -> dict[str, Any]:
    body = {"name": f"坐席{extension}", "endpoint": AgentSimulator.endpoint(extension)}
    async with hotline.client.post(
        "/api/agents", json={**body, "skills": skills}, headers=ADMIN
    ) as resp:
        assert resp.status == 201, await resp.text()
        agent: dict[str, Any] = await resp.json()
    await change(hotline, agent["id"], "log-in")
    if ready:
        agent = await change(hotline, agent["id"], "ready")
    return agent


async def change(
    hotline: Hotline, agent_id: int, action: str, reason: str | None = None, *, status: int = 200
) -> dict[str, Any]:
    body = {"action": action, **({"reason": reason} if reason else {})}
    async with hotline.client.post(f"/api/agents/{agent_id}/state", json=body) as resp:
        assert resp.status == status, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def agent_state(hotline: Hotline, agent_id: int) -> dict[str, Any]:
    status, body = await hotline.get(f"/api/agents/{agent_id}")
    assert status == 200
    return dict(body)


async def until_agent(
    hotline: Hotline, agent_id: int, state: str, timeout_s: float = 20
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        agent = await agent_state(hotline, agent_id)
        return agent if agent["state"] == state else None

    return await eventually(probe, timeout_s=timeout_s, what=f"agent {agent_id} {state}")


async def queue_entries(config: Config, call_id: int) -> list[QueueEntryRecord]:
    engine = create_engine(config.database.url)
    try:
        return await QueueFacts(make_sessionmaker(engine)).for_call(call_id)
    finally:
        await engine.dispose()


async def settled_entries(
    config: Config, call_id: int, *, wrapped_up: bool = False, timeout_s: float = 20
) -> list[QueueEntryRecord]:
    """The call's queue entries once the ACD has written them down (behind the call, so not
    yet when the call record closes): each left the queue, each offer ended, an answered
    one has its talk's end and, with ``wrapped_up``, the end of the agent's wrap-up."""

    async def probe() -> list[QueueEntryRecord] | None:
        entries = await queue_entries(config, call_id)
        settled = all(
            e.left_at is not None
            and all(o.ended_at is not None for o in e.offers)
            and (e.answered_at is None or e.talk_ended_at is not None)
            and (not wrapped_up or e.answered_at is None or e.wrap_up_ended_at is not None)
            for e in entries
        )
        return entries if entries and settled else None

    return await eventually(probe, timeout_s=timeout_s, what=f"queue entries of call {call_id}")


async def test_repair_caller_talks_to_the_agent_with_the_skill(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """The ready agent with the repair skill rings, answers, and the two talk until the agent
    hangs up; the caller's record says agent-hangup and the agent goes through wrap-up."""
    hotline: Hotline = await make_hotline(with_queues(config, wrap_up_s=2, announce_every_s=0))
    inquiry = await add_agent(hotline, "1001", {"inquiry": 5})
    repair = await add_agent(hotline, "1002", {"repair": 5})
    agents.behaviour["1002"] = AgentBehaviour(answer_after_s=0.5, talk_s=1.5)
    call = await residents.dial("13800000001")
    await residents.run(call, [Dtmf("2"), Dtmf("2")])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert record["end_reason"] == "agent-hangup"
    assert record["queue"] == "repair"
    assert [r.caller for r in agents.rings] == ["13800000001"]
    assert agents.rings_for("1001") == []
    (entry,) = await settled_entries(config, record["id"])
    assert entry.outcome == "answered"
    assert entry.agent_id == repair["id"]
    assert entry.tag == "general"
    assert [o.outcome for o in entry.offers] == ["answered"]
    assert entry.answered_at is not None
    assert (await agent_state(hotline, inquiry["id"]))["state"] == "ready"

    history = (await until_agent(hotline, repair["id"], "ready"))["history"]
    states = [h["state"] for h in reversed(history)]
    assert states[-4:] == ["ringing", "on-call", "wrap-up", "ready"]
    (entry,) = await settled_entries(config, record["id"], wrapped_up=True)
    assert entry.wrap_up_ended_at is not None
    assert entry.talk_ended_at is not None
    assert (entry.wrap_up_ended_at - entry.talk_ended_at).total_seconds() >= 2


async def test_unanswered_agent_is_paused_and_the_next_one_rings(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """The longest-idle agent lets it ring out: the next agent rings, and the first is
    paused after the configured number of misses (1 here)."""
    cfg = with_queues(config, ring_timeout_s=3, announce_every_s=0, acd=AcdConfig(max_misses=1))
    hotline: Hotline = await make_hotline(cfg)
    sleepy = await add_agent(hotline, "1003", {"inquiry": 5})  # ready first: longest idle
    awake = await add_agent(hotline, "1004", {"inquiry": 5})
    agents.behaviour["1003"] = AgentBehaviour(answer_after_s=None)
    agents.behaviour["1004"] = AgentBehaviour(answer_after_s=0.3, talk_s=0.5)
    call = await residents.dial("13800000002")
    await residents.run(call, [Dtmf("1")])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert record["end_reason"] == "agent-hangup"
    assert [r.extension for r in agents.rings] == ["1003", "1004"]
    (entry,) = await settled_entries(config, record["id"])
    assert [(o.agent_id, o.outcome) for o in entry.offers] == [
        (sleepy["id"], "no-answer"),
        (awake["id"], "answered"),
    ]
    paused = await agent_state(hotline, sleepy["id"])
    assert (paused["state"], paused["reason"]) == ("paused", "missed-calls")


async def test_caller_hanging_up_while_the_agent_rings_cancels_the_ring(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """An abandoned call stops the agent's phone ringing; it is no miss for the agent."""
    hotline: Hotline = await make_hotline(
        with_queues(config, ring_timeout_s=20, announce_every_s=0)
    )
    agent = await add_agent(hotline, "1005", {"complaint": 5})
    agents.behaviour["1005"] = AgentBehaviour(answer_after_s=None)
    call = await residents.dial("13800000003")
    await residents.run(call, [Dtmf("3")])

    async def ringing() -> bool:
        return bool(agents.rings_for("1005"))

    await eventually(ringing, timeout_s=20, what="agent phone ringing")
    await residents.run(call, [HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert record["end_reason"] == "caller-hangup"

    async def ring_stopped() -> bool:
        return agents.rings_for("1005")[0].ended is not None

    await eventually(ring_stopped, timeout_s=10, what="agent phone stopped ringing")
    back = await until_agent(hotline, agent["id"], "ready")
    assert back["misses"] == 0
    entries = await settled_entries(config, record["id"])
    assert [(e.outcome, [o.outcome for o in e.offers]) for e in entries] == [
        ("abandoned", ["caller-gone"])
    ]


async def test_no_agent_is_offered_two_calls_at_once(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """50 callers, 5 agents: every call is answered, and no phone ever has two calls.

    Recording is off: 50 Local callers with three recordings each overload Asterisk on a
    2-core machine (ARI replies after the 10 s timeout, rings run seconds late). What the
    ACD does then is tests/test_acd_faults.py, one fault at a time, so this test stays
    about the matching. The ACD bench measures load with recording on.
    """
    cfg = with_queues(config, wrap_up_s=0, announce_every_s=0)
    cfg = dataclasses.replace(cfg, recording=dataclasses.replace(cfg.recording, enabled=False))
    hotline: Hotline = await make_hotline(cfg)
    extensions = [f"10{n:02d}" for n in range(11, 16)]
    for ext in extensions:
        await add_agent(hotline, ext, {"inquiry": 5})
        agents.behaviour[ext] = AgentBehaviour(answer_after_s=0.2, talk_s=0.3)
    calls = [await residents.dial(f"1390000{n:04d}") for n in range(50)]
    await asyncio.gather(*(residents.run(c, [Dtmf("1")], answer_timeout_s=60) for c in calls))
    records = [await hotline.record(c.hotline_leg, timeout_s=240) for c in calls]

    assert {r["end_reason"] for r in records} == {"agent-hangup"}
    assert max(agents.max_concurrent.values()) == 1
    assert len([r for r in agents.rings if r.answered is not None]) == 50


async def test_emergency_jumps_the_queue_and_raises_an_alert(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """Callers wait for inquiry; an emergency call arrives last but rings first, on an agent
    without any emergency skill, and the live feed carries an alert."""
    hotline: Hotline = await make_hotline(with_queues(config, announce_every_s=0))
    agent = await add_agent(hotline, "1006", {"inquiry": 5}, ready=False)
    agents.behaviour["1006"] = AgentBehaviour(answer_after_s=0.3, talk_s=0.5)
    async with hotline.client.ws_connect("/api/live") as ws:
        snapshot = await ws.receive_json(timeout=10)
        assert snapshot["type"] == "snapshot"
        waiting = [await residents.dial(f"1370000000{n}") for n in range(2)]
        for call in waiting:
            await residents.run(call, [Dtmf("1")])
        urgent = await residents.dial("13911111111")
        await residents.run(urgent, [Dtmf("9")])

        async def alert() -> dict[str, Any] | None:
            event = await ws.receive_json(timeout=20)
            return event if event["type"] == "alert" else None

        raised = await eventually(alert, timeout_s=30, what="emergency alert")
        # A wall display is seen by everyone: the live feed never carries a full number.
        assert raised["caller_number"] == "139****1111"

        async def all_waiting() -> bool:
            _, body = await hotline.get("/api/queues")
            by_name = {q["queue"]: q["waiting"] for q in body["items"]}
            return bool(by_name["inquiry"] == 2 and by_name["emergency"] == 1)

        await eventually(all_waiting, timeout_s=30, what="three callers waiting")
        await change(hotline, agent["id"], "ready")
        await hotline.record(urgent.hotline_leg, timeout_s=30)
    assert agents.rings[0].caller == "13911111111"


async def test_with_nobody_logged_in_the_caller_leaves_a_message(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    ari: AriClient,
) -> None:
    """The shipped behaviour: no complaint agent logged in → a beep, the caller speaks and
    presses #, the message is kept with the call, unhandled until someone handles it."""
    shipped = with_queues(config, when_nobody_logged_in=WhenClosed.MESSAGE)
    hotline: Hotline = await make_hotline(shipped)
    call = await residents.dial("13800000009")
    speech = shipped.prompts.media_prefix + "repair"  # any few seconds of speech
    intro_s = wav_seconds(shipped.prompts.dir / "message_no_agents.wav")
    await residents.run(call, [Dtmf("3"), Wait(intro_s + 2), Play(speech), Dtmf("#"), Wait(8)])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert record["end_reason"] == "message-left"
    status, body = await hotline.get("/api/messages", handled="false")
    assert status == 200
    (message,) = [m for m in body["items"] if m["call_id"] == record["id"]]
    assert (message["queue"], message["reason"]) == ("complaint", "no-agents")
    assert message["duration_s"] >= 2

    async def copied() -> list[dict[str, Any]] | None:  # out of Asterisk, into our store
        _, body = await hotline.get(f"/api/calls/{record['id']}/recordings")
        items: list[dict[str, Any]] = body["items"]
        return items if items and items[0]["status"] == "stored" else None

    (recording,) = await eventually(copied, timeout_s=30, what="message recording stored")
    assert recording["asterisk_name"] == message["recording"]
    assert recording["size_bytes"] > 8000 * 2  # over a second of 8 kHz 16-bit audio

    async with hotline.client.post(
        f"/api/messages/{message['id']}/handled", json={"handled_by": "王经理", "note": "已转告"}
    ) as resp:
        assert resp.status == 200
    async with hotline.client.post(
        f"/api/messages/{message['id']}/handled", json={"handled_by": "李"}
    ) as resp:
        assert resp.status == 409
    _, body = await hotline.get("/api/messages", handled="false")
    assert record["id"] not in [m["call_id"] for m in body["items"]]


async def test_agent_requests_that_make_no_sense_are_refused(
    make_hotline: Callable[..., Any], config: Config
) -> None:
    """409 with the reason for an impossible state change; 400 naming the field for bad input."""
    hotline: Hotline = await make_hotline(config)
    agent = await add_agent(hotline, "1020", {"inquiry": 3}, ready=False)
    refused = await change(hotline, agent["id"], "log-in", status=409)
    assert refused["error_id"] == "illegal-transition"
    assert "paused" in refused["message"]
    missing_reason = await change(hotline, agent["id"], "pause", status=400)
    assert missing_reason["details"]["field"] == "reason"
    for body, field in [
        ({"name": "x", "endpoint": "not an endpoint", "skills": {"inquiry": 1}}, "endpoint"),
        ({"name": "x", "endpoint": "PJSIP/1099", "skills": {"parking": 1}}, "skills.parking"),
        ({"name": "x", "endpoint": "PJSIP/1099", "skills": {"inquiry": 11}}, "skills.inquiry"),
        ({"endpoint": "PJSIP/1099", "skills": {}}, "name"),
    ]:
        async with hotline.client.post("/api/agents", json=body, headers=ADMIN) as resp:
            assert resp.status == 400
            assert (await resp.json())["details"]["field"] == field
    async with hotline.client.post(
        "/api/agents", json={**body, "name": "dup", "endpoint": agent["endpoint"]}, headers=ADMIN
    ) as resp:
        assert resp.status == 409
    async with hotline.client.delete(f"/api/agents/{agent['id']}", headers=ADMIN) as resp:
        assert resp.status == 409  # still logged in
    await change(hotline, agent["id"], "log-out")
    async with hotline.client.delete(f"/api/agents/{agent['id']}", headers=ADMIN) as resp:
        assert resp.status == 204
    status, _ = await hotline.get(f"/api/agents/{agent['id']}")
    assert status == 404


async def test_emergency_rings_every_ready_agent_and_the_duty_phone_first_answer_wins(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """All ready agents (whatever their skills) and the duty manager ring at once; the duty
    phone answers first, the others stop ringing and are back to ready with no miss."""
    duty = AcdConfig(duty_endpoint=AgentSimulator.endpoint("1099"))
    hotline: Hotline = await make_hotline(with_queues(config, announce_every_s=0, acd=duty))
    inquiry = await add_agent(hotline, "1041", {"inquiry": 5})
    repair = await add_agent(hotline, "1042", {"repair": 5})
    agents.behaviour["1041"] = AgentBehaviour(answer_after_s=4)
    agents.behaviour["1042"] = AgentBehaviour(answer_after_s=4)
    agents.behaviour["1099"] = AgentBehaviour(answer_after_s=0.5, talk_s=1)
    call = await residents.dial("13911112222")
    await residents.run(call, [Dtmf("9")])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert record["end_reason"] == "agent-hangup"

    async def case() -> dict[str, Any] | None:
        _, body = await hotline.get("/api/cases", phone="13911112222")
        found = [c for c in body["items"] if record["id"] in [x["call_id"] for x in c["calls"]]]
        return found[0] if found else None

    # The duty manager talked to the resident: the case owes no call-back, and the duty
    # phone is not rung a second time as if nobody had answered (it once was).
    opened = await eventually(case, timeout_s=20, what="the emergency's case")
    assert [c for c in opened["callbacks"] if c["status"] == "due"] == []
    assert "未接通" not in opened["summary"]
    assert sorted(r.extension for r in agents.rings) == ["1041", "1042", "1099"]
    assert {r.caller for r in agents.rings} == {"13911112222"}
    (entry,) = await settled_entries(config, record["id"])
    outcomes = {o.endpoint.split("/")[1].split("@")[0]: o.outcome for o in entry.offers}
    assert outcomes == {"1041": "lost-race", "1042": "lost-race", "1099": "answered"}
    for agent in (inquiry, repair):
        back = await until_agent(hotline, agent["id"], "ready")
        assert back["misses"] == 0


async def test_a_waiting_caller_hears_their_place_in_line(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    base_config: Config,
) -> None:
    """With nobody free, the second caller in line hears 「您前面还有一位」 every period."""
    hotline: Hotline = await make_hotline(with_queues(config, announce_every_s=10))
    await add_agent(hotline, "1050", {"inquiry": 5}, ready=False)  # logged in, on a break
    first = await residents.dial("13800000051")
    await residents.run(first, [Dtmf("1")])
    second = await residents.dial("13800000052")
    await residents.run(second, [Dtmf("1")])
    await hotline.record(second.hotline_leg, ended=False)

    async def waiting() -> bool:
        _, body = await hotline.get("/api/queues")
        return any(q["queue"] == "inquiry" and q["waiting"] == 2 for q in body["items"])

    await eventually(waiting, timeout_s=30, what="two callers in line")
    heard = f"heard-{second.resident_leg}"
    # Two announcement periods and a prompt's length: a whole 「您前面还有一位」 lies in the
    # recording wherever in its period the recording starts (a loaded machine once started
    # it just after one, and 14 s held only the next one's beginning).
    await residents.ari.record(second.resident_leg, heard, max_duration_s=24, if_exists="overwrite")

    async def recorded() -> bool:  # 24 s of what the caller hears, then Asterisk stops it
        try:
            await residents.ari.request("GET", f"/recordings/live/{heard}")
        except AriNotFound:
            return True
        return False

    await eventually(recorded, timeout_s=40, what="24 s of the caller's line recorded")
    audio = wav_samples(await residents.ari.stored_recording(heard))
    await residents.ari.delete_stored_recording(heard)
    ahead_one = base_config.prompts.dir / "ahead_1.wav"
    assert likeness(audio, ahead_one, max_lag_s=23) > 0.8
    _, body = await hotline.get("/api/queues")
    (inquiry,) = [q for q in body["items"] if q["queue"] == "inquiry"]
    assert inquiry["longest_wait_s"] >= 24  # both were in line through the recording
    assert inquiry["agents"]["paused"] == 1


async def test_agents_keep_their_state_across_a_service_restart(
    make_hotline: Callable[..., Any], config: Config
) -> None:
    """A ready agent is ready again after a restart, with every change in the history."""
    first: Hotline = await make_hotline(config)
    agent = await add_agent(first, "1060", {"repair": 2})
    await change(first, agent["id"], "pause", "午休")
    await change(first, agent["id"], "ready")
    await first.client.close()

    second: Hotline = await make_hotline(config)
    again = await agent_state(second, agent["id"])
    assert again["state"] == "ready"
    assert again["skills"] == {"repair": 2}
    assert [(h["state"], h["reason"]) for h in reversed(again["history"])] == [
        ("logged-out", None),
        ("paused", "logged-in"),
        ("ready", None),
        ("paused", "午休"),
        ("ready", None),
    ]


async def test_a_conversation_goes_on_through_a_service_restart(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """Caller and agent keep talking while the service restarts; the new service leaves them
    in their bridge, and when the caller hangs up the agent's phone is hung up too."""
    cfg = with_queues(config, announce_every_s=0)
    first: Hotline = await make_hotline(cfg)
    await add_agent(first, "1070", {"inquiry": 5})
    agents.behaviour["1070"] = AgentBehaviour(answer_after_s=0.3, talk_s=None)
    call = await residents.dial("13800000071")
    await residents.run(call, [Dtmf("1")])

    async def talking() -> dict[str, Any] | None:
        record = await first.record(call.hotline_leg, ended=False)
        return record if record["state"] == "connected" else None

    await eventually(talking, timeout_s=30, what="caller talking to the agent")
    await first.client.close()

    second: Hotline = await make_hotline(cfg, fresh=False)

    async def readopted() -> bool:  # the new service has the call, back in its conversation
        session = second.app[STASIS].sessions.get(call.hotline_leg)
        return session is not None and session.state is CallState.CONNECTED

    await eventually(readopted, timeout_s=30, what="the call re-adopted in its conversation")
    assert not call.ended.is_set()
    (ring,) = agents.rings_for("1070")
    assert ring.ended is None  # still talking
    still = await second.record(call.hotline_leg, ended=False)
    assert still["state"] == "connected"
    await residents.run(call, [HangUp()])
    record = await second.record(call.hotline_leg)
    assert record["end_reason"] == "caller-hangup"

    async def agent_hung_up() -> bool:
        return ring.ended is not None

    await eventually(agent_hung_up, timeout_s=10, what="agent's phone hung up")
