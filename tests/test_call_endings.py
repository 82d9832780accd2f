"""However a call ends, it leaves a complete, closed record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from telephony.config import Config
from telephony.simulator import Dtmf, HangUp, ResidentSimulator, Wait
from tests.conftest import Hotline, with_queues


async def test_hanging_up_during_the_greeting_closes_the_record(
    hotline: Hotline, residents: ResidentSimulator
) -> None:
    """A caller gone after half a second still gets a record: answered, no choice, caller-hangup."""
    call = await residents.dial("13800000010")
    await residents.run(call, [Wait(0.5), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert record["answered_at"] is not None
    assert record["ivr_path"] == []
    assert record["queue"] is None
    assert record["state"] == "ended"
    assert record["end_reason"] == "caller-hangup"
    assert record["hangup_cause"] == 16
    assert record["hangup_cause_text"] == "Normal Clearing"


async def test_hanging_up_inside_a_submenu_keeps_the_path_so_far(
    hotline: Hotline, residents: ResidentSimulator
) -> None:
    """The steps taken before the hang-up stay in the record."""
    call = await residents.dial("13800000011")
    await residents.run(call, [Wait(1), Dtmf("2"), Wait(1.5), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert [(s["node"], s["input"], s["action"]) for s in record["ivr_path"]] == [
        ("main", "2", "submenu:repair")
    ]
    assert record["queue"] is None
    assert record["end_reason"] == "caller-hangup"


async def test_a_caller_without_caller_id_is_served_and_recorded(
    hotline: Hotline, residents: ResidentSimulator
) -> None:
    """No caller ID is no reason to drop a resident: the call is answered and routed."""
    call = await residents.dial(None)
    await residents.run(call, [Wait(1), Dtmf("1"), Wait(3), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert record["caller_number"] in (None, "")
    assert record["queue"] == "inquiry"
    assert record["end_reason"] == "caller-hangup"


async def test_fifty_callers_at_once_are_all_answered_routed_and_recorded(
    hotline: Hotline, residents: ResidentSimulator
) -> None:
    """Fifty simultaneous residents: every one answered, routed to their queue, and closed."""
    calls = await asyncio.gather(*(residents.dial(f"1390000{i:04d}") for i in range(50)))
    await asyncio.gather(
        *(
            residents.run(c, [Wait(1), Dtmf("1" if i % 2 else "3"), Wait(4), HangUp()])
            for i, c in enumerate(calls)
        )
    )
    records = [await hotline.record(c.hotline_leg) for c in calls]
    assert len({r["id"] for r in records}) == 50
    for i, record in enumerate(records):
        assert record["caller_number"] == f"1390000{i:04d}"
        assert record["answered_at"] is not None
        assert record["queue"] == ("inquiry" if i % 2 else "complaint")
        assert record["end_reason"] == "caller-hangup"
    status, page = await hotline.get("/api/calls", limit="10")
    assert status == 200
    assert page["total"] == 50


async def test_a_caller_nobody_takes_is_told_so_and_the_call_closed(
    make_hotline: Callable[[Config], Any], config: Config, residents: ResidentSimulator
) -> None:
    """Past the holding limit the caller hears an apology with a promise to reply, then the
    hotline hangs up: the record says holding-timeout, not a caller hang-up."""
    short = with_queues(config, max_wait_s=2)
    hotline: Hotline = await make_hotline(short)
    call = await residents.dial("13800000012")
    await residents.run(call, [Wait(1), Dtmf("1"), Wait(60)])
    assert call.ended.is_set()  # the hotline ended it, well before the caller would have
    record = await hotline.record(call.hotline_leg)
    assert record["queue"] == "inquiry"
    assert record["end_reason"] == "holding-timeout"
