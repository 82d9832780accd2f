"""The ACD when Asterisk is slow or does not reply: an answer is final, every record closes.

Under a burst Asterisk has replied to ARI requests after the service's 10 s timeout, and
callers went back in line after an agent had picked up (58 answered rings for 50 calls:
agents who answered heard nobody). These tests make one chosen request fail or stall,
every run, with the fakes of tests/faulty_ari.py against the real sandbox, and check from
the phones' side that no caller is answered by two agents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telephony.ari import AriClient
from telephony.ari.client import Params
from telephony.config import AcdConfig, Config
from telephony.simulator import AgentBehaviour, AgentSimulator, Dtmf, HangUp, ResidentSimulator
from tests.conftest import Hotline, with_queues
from tests.faulty_ari import FailingAri, LateRingAri, SlowAri, agent_leg
from tests.polling import eventually
from tests.test_acd_calls import add_agent, settled_entries, until_agent


def answered_rings(agents: AgentSimulator) -> list[str]:
    return [r.extension for r in agents.rings if r.answered is not None]


async def test_an_agent_answered_call_that_cannot_be_bridged_ends_and_is_never_offered_again(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """Adding the agent's phone to the bridge gets no reply: the call ends (connect-failed)
    for both sides, the agent goes to wrap-up, and the second agent never rings."""

    def bridging_agent(method: str, path: str, params: Params | None) -> bool:
        return path.endswith("/addChannel") and agent_leg(params, "channel")

    faulty: list[FailingAri] = []

    def wrap(ari: AriClient) -> AriClient:
        faulty.append(FailingAri(ari, bridging_agent))
        return faulty[-1]

    cfg = with_queues(config, wrap_up_s=1, announce_every_s=0)
    hotline: Hotline = await make_hotline(cfg, wrap_ari=wrap)
    first = await add_agent(hotline, "1081", {"inquiry": 5})
    await add_agent(hotline, "1082", {"inquiry": 5})
    for ext in ("1081", "1082"):
        agents.behaviour[ext] = AgentBehaviour(answer_after_s=0.3, talk_s=None)
    call = await residents.dial("13800000081")
    await residents.run(call, [Dtmf("1")])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert len(faulty[0].injected) == 1
    assert record["end_reason"] == "connect-failed"
    (ring,) = agents.rings
    assert ring.extension == "1081"

    async def both_down() -> bool:
        return ring.ended is not None and call.ended.is_set()

    await eventually(both_down, timeout_s=10, what="the agent's phone and the caller hung up")
    assert answered_rings(agents) == ["1081"]
    back = await until_agent(hotline, first["id"], "ready")
    states = [h["state"] for h in reversed(back["history"])]
    assert states[-4:] == ["ringing", "on-call", "wrap-up", "ready"]

    (entry,) = await settled_entries(cfg, record["id"])
    assert entry.outcome == "connect-failed"
    assert (entry.agent_id, [o.outcome for o in entry.offers]) == (first["id"], ["answered"])
    assert agents.rings_for("1082") == []


async def test_an_agent_rung_by_an_originate_without_reply_is_connected_when_they_answer(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """Asterisk dials the agent but its reply to the originate never comes: the phone
    answering is still the answer (not a miss), so the caller talks to that agent and
    the next agent never rings for the same caller."""

    def dialling_agent(method: str, path: str, params: Params | None) -> bool:
        return (method, path) == ("POST", "/channels") and agent_leg(params, "channelId")

    faulty: list[FailingAri] = []

    def wrap(ari: AriClient) -> AriClient:
        faulty.append(FailingAri(ari, dialling_agent))
        return faulty[-1]

    cfg = with_queues(config, wrap_up_s=0, announce_every_s=0, acd=AcdConfig(max_misses=1))
    hotline: Hotline = await make_hotline(cfg, wrap_ari=wrap)
    first = await add_agent(hotline, "1083", {"inquiry": 5})  # longest idle: rings first
    await add_agent(hotline, "1084", {"inquiry": 5})
    agents.behaviour["1083"] = AgentBehaviour(answer_after_s=0.3, talk_s=1)
    agents.behaviour["1084"] = AgentBehaviour(answer_after_s=0.3, talk_s=1)
    call = await residents.dial("13800000082")
    await residents.run(call, [Dtmf("1")])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert len(faulty[0].injected) == 1
    assert record["end_reason"] == "agent-hangup"
    assert answered_rings(agents) == ["1083"]
    assert agents.rings_for("1084") == []
    (entry,) = await settled_entries(cfg, record["id"])
    assert (entry.agent_id, [o.outcome for o in entry.offers]) == (first["id"], ["answered"])
    assert (await until_agent(hotline, first["id"], "ready"))["misses"] == 0


async def test_a_ring_asterisk_never_confirmed_is_no_miss_and_the_caller_is_rung_again(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """The originate is lost (no reply, no channel, no event): that is no miss of the
    agent's, who is not paused for it; the caller is offered again and answered."""

    def dialling_agent(method: str, path: str, params: Params | None) -> bool:
        return (method, path) == ("POST", "/channels") and agent_leg(params, "channelId")

    faulty: list[FailingAri] = []

    def wrap(ari: AriClient) -> AriClient:
        faulty.append(FailingAri(ari, dialling_agent, lost=True))
        return faulty[-1]

    cfg = with_queues(
        config, ring_timeout_s=2, wrap_up_s=0, announce_every_s=0, acd=AcdConfig(max_misses=1)
    )
    hotline: Hotline = await make_hotline(cfg, wrap_ari=wrap)
    agent = await add_agent(hotline, "1089", {"inquiry": 5})
    agents.behaviour["1089"] = AgentBehaviour(answer_after_s=0.3, talk_s=1)
    call = await residents.dial("13800000084")
    await residents.run(call, [Dtmf("1")])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert len(faulty[0].injected) == 1
    assert record["end_reason"] == "agent-hangup"
    assert answered_rings(agents) == ["1089"]
    (entry,) = await settled_entries(cfg, record["id"])
    assert [o.outcome for o in entry.offers] == ["unconfirmed", "answered"]
    assert (await until_agent(hotline, agent["id"], "ready"))["misses"] == 0


async def test_an_agent_answering_after_the_acds_own_ring_timer_is_put_through(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """Asterisk is behind: the agent's phone is still ringing (Asterisk's ring timeout has
    not passed for it) when the ACD's own timer has. The ACD leaves the ring to Asterisk,
    so the agent picking up talks to the caller, and no second agent rings for them."""
    cfg = with_queues(config, ring_timeout_s=2, wrap_up_s=0, announce_every_s=0)
    hotline: Hotline = await make_hotline(cfg, wrap_ari=lambda ari: LateRingAri(ari, 15))
    first = await add_agent(hotline, "1087", {"inquiry": 5})  # longest idle: rings first
    await add_agent(hotline, "1088", {"inquiry": 5})
    agents.behaviour["1087"] = AgentBehaviour(answer_after_s=2 + 2 + 2, talk_s=1)
    agents.behaviour["1088"] = AgentBehaviour(answer_after_s=0.3, talk_s=1)
    call = await residents.dial("13800000083")
    await residents.run(call, [Dtmf("1")])

    record = await hotline.record(call.hotline_leg, timeout_s=40)
    assert record["end_reason"] == "agent-hangup"
    assert answered_rings(agents) == ["1087"]
    assert agents.rings_for("1088") == []
    (entry,) = await settled_entries(cfg, record["id"])
    assert (entry.agent_id, [o.outcome for o in entry.offers]) == (first["id"], ["answered"])


async def test_a_slow_hang_up_of_the_phones_that_lost_the_race_does_not_hold_up_the_answer(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
) -> None:
    """Emergency: every agent and the duty phone ring; the duty phone answers while Asterisk
    sits on the hang-ups of the others. The caller is put through meanwhile, and once the
    hang-ups go through the losers are ready again, no miss, no second answer."""

    def hanging_up_agent(method: str, path: str, params: Params | None) -> bool:
        return method == "DELETE" and path.startswith("/channels/agent-")

    slow: list[SlowAri] = []

    def wrap(ari: AriClient) -> AriClient:
        slow.append(SlowAri(ari, hanging_up_agent))
        return slow[-1]

    duty = AcdConfig(duty_endpoint=AgentSimulator.endpoint("1098"))
    cfg = with_queues(config, announce_every_s=0, wrap_up_s=0, acd=duty)
    hotline: Hotline = await make_hotline(cfg, wrap_ari=wrap)
    losers = [await add_agent(hotline, ext, {"inquiry": 5}) for ext in ("1085", "1086")]
    for ext in ("1085", "1086"):
        agents.behaviour[ext] = AgentBehaviour(answer_after_s=None)
    agents.behaviour["1098"] = AgentBehaviour(answer_after_s=0.3, talk_s=None)
    call = await residents.dial("13911113333")
    await residents.run(call, [Dtmf("9")])

    async def talking() -> dict[str, Any] | None:
        record = await hotline.record(call.hotline_leg, ended=False)
        return record if record["state"] == "connected" else None

    await eventually(talking, timeout_s=30, what="the caller talking to the duty phone")
    assert len(slow[0].held) == 2  # both losers' hang-ups still waiting on Asterisk
    slow[0].release()
    for loser in losers:
        assert (await until_agent(hotline, loser["id"], "ready"))["misses"] == 0
    await residents.run(call, [HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert record["end_reason"] == "caller-hangup"
    assert answered_rings(agents) == ["1098"]
    (entry,) = await settled_entries(cfg, record["id"])
    outcomes = {o.endpoint.split("/")[1].split("@")[0]: o.outcome for o in entry.offers}
    assert outcomes == {"1085": "lost-race", "1086": "lost-race", "1098": "answered"}
