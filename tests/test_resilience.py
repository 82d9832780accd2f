"""Asterisk and the service come and go; calls and their records survive it.

These tests stop and start the real sandbox Asterisk and the service itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from telephony.config import Config
from telephony.simulator import Dtmf, HangUp, ResidentSimulator, Wait
from tests.conftest import Hotline, app_registered, sandbox
from tests.polling import eventually
from web.appkeys import STASIS, STREAM


@pytest.fixture
def fast_reconnect(config: Config) -> Config:
    ari = dataclasses.replace(config.ari, reconnect_initial_s=0.1, reconnect_max_s=0.5)
    return dataclasses.replace(config, ari=ari)


async def routed(hotline: Hotline, channel_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        record = await hotline.record(channel_id, ended=False)
        return record if record["state"] == "holding" else None

    return await eventually(probe, timeout_s=30, what="caller waiting in the holding bridge")


async def test_events_socket_closed_mid_call_the_call_goes_on(
    make_hotline: Callable[[Config], Any], fast_reconnect: Config, residents: ResidentSimulator
) -> None:
    """The websocket drops during the menu; after the reconnect the caller's key still routes."""
    hotline: Hotline = await make_hotline(fast_reconnect)
    stream = hotline.app[STREAM]
    call = await residents.dial("13800000020")
    await asyncio.wait_for(call.answered.wait(), 10)
    await stream.close_socket()

    async def reconnected() -> bool:
        return stream.status.connected and stream.status.connects >= 2

    await eventually(reconnected, timeout_s=10, what="event stream reconnected")
    await residents.run(call, [Wait(0.5), Dtmf("3"), Wait(3), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert record["queue"] == "complaint"
    assert record["end_reason"] == "caller-hangup"
    assert record["ended_at"] is not None


async def test_a_restarted_service_readopts_a_waiting_caller(
    make_hotline: Callable[[Config], Any], config: Config, residents: ResidentSimulator
) -> None:
    """A caller on hold while the service restarts stays on hold, in the same record."""
    first: Hotline = await make_hotline(config)
    call = await residents.dial("13800000021")
    runner = asyncio.create_task(residents.run(call, [Wait(1), Dtmf("1"), Wait(120)]))
    before = await routed(first, call.hotline_leg)
    await first.client.close()  # the service stops; Asterisk keeps the caller in Stasis

    second: Hotline = await make_hotline(config, fresh=False)
    after = await routed(second, call.hotline_leg)
    assert after["id"] == before["id"]
    assert call.hotline_leg in second.app[STASIS].sessions
    runner.cancel()
    await residents.ari.hangup(call.resident_leg)
    record = await second.record(call.hotline_leg)
    assert record["end_reason"] == "caller-hangup"
    assert record["queue"] == "inquiry"


async def test_a_call_that_ended_while_the_service_was_down_is_closed_at_start(
    make_hotline: Callable[[Config], Any], config: Config, residents: ResidentSimulator
) -> None:
    """A record the service could not close (it was stopped) is closed on its next start."""
    first: Hotline = await make_hotline(config)
    call = await residents.dial("13800000022")
    await asyncio.wait_for(call.answered.wait(), 10)
    await first.record(call.hotline_leg, ended=False)
    await first.client.close()
    await residents.ari.hangup(call.resident_leg)
    await asyncio.wait_for(call.ended.wait(), 10)

    second: Hotline = await make_hotline(config, fresh=False)
    record = await second.record(call.hotline_leg)
    assert record["end_reason"] == "service-restart"


async def test_asterisk_restarting_under_the_service_closes_the_cut_calls(
    make_hotline: Callable[[Config], Any], fast_reconnect: Config, residents: ResidentSimulator
) -> None:
    """Calls cut by an Asterisk restart are closed as such; new calls are answered after it."""
    hotline: Hotline = await make_hotline(fast_reconnect)
    call = await residents.dial("13800000023")
    runner = asyncio.create_task(residents.run(call, [Wait(1), Dtmf("9"), Wait(120)]))
    await routed(hotline, call.hotline_leg)
    try:
        await asyncio.to_thread(sandbox, "restart")
    finally:
        runner.cancel()
    record = await hotline.record(call.hotline_leg)
    assert record["end_reason"] == "asterisk-restart"
    assert record["queue"] == "emergency"

    async def ready() -> bool:
        status, _ = await hotline.get("/healthz")
        return status == 200

    await eventually(ready, timeout_s=30, what="service ready again")
    await app_registered(residents.ari, residents.app)
    again = await residents.dial("13800000024")
    await residents.run(again, [Wait(1), Dtmf("1"), Wait(3), HangUp()])
    assert (await hotline.record(again.hotline_leg))["queue"] == "inquiry"


async def test_service_started_without_asterisk_reports_not_ready_then_recovers(
    make_hotline: Callable[[Config], Any], fast_reconnect: Config
) -> None:
    """With Asterisk down the service starts, /healthz says not ready, and it connects later."""
    await asyncio.to_thread(sandbox, "down")
    try:
        hotline: Hotline = await make_hotline(fast_reconnect, fresh=False, ready=False)
        status, body = await hotline.get("/healthz")
        assert status == 503
        assert body["status"] == "not-ready"
        assert body["ari"]["connected"] is False
        assert body["ari"]["last_error"]
    finally:
        await asyncio.to_thread(sandbox, "up")

    async def ready() -> bool:
        status, _ = await hotline.get("/healthz")
        return status == 200

    await eventually(ready, timeout_s=30, what="service connected after Asterisk came up")
