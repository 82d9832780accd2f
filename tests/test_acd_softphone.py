"""An agent on a real SIP softphone (baresip registered to the sandbox's PJSIP endpoint).

The ACD dials ``PJSIP/1001`` as it would any agent's desk phone; baresip answers by
itself, and what it hears is recorded on its side, so the test checks the conversation
from the agent's ear, not from anything our service reports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from telephony.ari import AriClient
from telephony.config import AcdConfig, Config
from telephony.simulator import Dtmf, Play, ResidentSimulator
from tests.audio import likeness, wav_samples
from tests.conftest import Hotline, with_queues
from tests.polling import eventually
from tests.softphone import Softphone
from tests.staff import ADMIN
from tests.test_acd_calls import agent_state, change, settled_entries, until_agent


async def add_softphone_agent(hotline: Hotline, extension: str) -> dict[str, Any]:
    body = {"name": f"坐席{extension}", "endpoint": f"PJSIP/{extension}", "skills": {"repair": 5}}
    async with hotline.client.post("/api/agents", json=body, headers=ADMIN) as resp:
        assert resp.status == 201, await resp.text()
        agent: dict[str, Any] = await resp.json()
    await change(hotline, agent["id"], "log-in")
    return await change(hotline, agent["id"], "ready")


async def test_an_agent_on_a_sip_softphone_takes_the_call_and_hears_the_resident(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    ari: AriClient,
    tmp_path: Path,
) -> None:
    """The longest-idle agent's softphone is not registered: they are skipped and paused
    (softphone-offline) and the next agent's real softphone rings, answers, and hears
    what the resident says; the agent hangs up and the caller's record says so."""
    cfg = with_queues(config, announce_every_s=0, wrap_up_s=1, acd=AcdConfig(max_misses=2))
    hotline: Hotline = await make_hotline(cfg)
    offline = await add_softphone_agent(hotline, "1002")  # nobody registered; longest idle
    said = cfg.prompts.dir / "route_complaint.wav"
    async with Softphone("1001", "1001", workdir=tmp_path, record_dir=tmp_path, ari=ari) as phone:
        online = await add_softphone_agent(hotline, "1001")
        call = await residents.dial("13800000031")
        await residents.run(call, [Dtmf("2"), Dtmf("2")])
        await until_agent(hotline, online["id"], "on-call", timeout_s=40)
        await phone.wait_answered(1)
        await residents.run(call, [Play(cfg.prompts.media_prefix + "route_complaint")])
        await phone.hang_up()

        record = await hotline.record(call.hotline_leg)
        heard = phone.heard()
    assert record["end_reason"] == "agent-hangup"
    skipped = await agent_state(hotline, offline["id"])
    assert (skipped["state"], skipped["reason"]) == ("paused", "softphone-offline")
    (entry,) = await settled_entries(cfg, record["id"])
    assert [(o.endpoint, o.outcome) for o in entry.offers] == [
        ("PJSIP/1002", "unavailable"),
        ("PJSIP/1001", "answered"),
    ]
    decoded = [p for p in heard if p.name.endswith("-dec.wav")]
    assert decoded, f"the softphone recorded nothing: {heard}"
    assert likeness(wav_samples(decoded[-1]), said, max_lag_s=15) > 0.8

    async def wrapped_up() -> bool:
        return (await agent_state(hotline, online["id"]))["state"] == "ready"

    await eventually(wrapped_up, timeout_s=15, what="agent ready after wrap-up")
