"""A resident calls the hotline: answer, greeting, menu, routing, and the call record.

Every test places real calls through the Asterisk sandbox (Local channels into
extension 400 of from-residents, the same dialplan a SIP trunk reaches).
"""

from __future__ import annotations

import pytest

from telephony.simulator import Dtmf, HangUp, ResidentSimulator, Wait
from tests.conftest import Hotline


async def test_call_is_answered_within_the_first_ring_and_greeted(
    hotline: Hotline, residents: ResidentSimulator, base_config
) -> None:
    """The record shows the call answered before the first ring ended and the greeting played."""
    call = await residents.dial('"张三" <13912345678>')
    await residents.run(call, [Wait(8), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert record["answered_at"] is not None
    assert 0 <= record["ring_ms"] < base_config.ring.first_ring_ends_ms
    assert record["greeting_played"] is True
    assert record["caller_number"] == "13912345678"
    assert record["caller_name"] == "张三"
    assert record["dialled_number"] == "400"
    assert record["end_reason"] == "caller-hangup"
    assert record["state"] == "ended"


@pytest.mark.parametrize(
    ("digits", "queue", "path"),
    [
        ("1", "inquiry", [("main", "1", "queue:inquiry")]),
        (
            "2,1",
            "repair",
            [("main", "2", "submenu:repair"), ("repair", "1", "queue:repair/urgent")],
        ),
        (
            "2,2",
            "repair",
            [("main", "2", "submenu:repair"), ("repair", "2", "queue:repair/general")],
        ),
        ("2,0", "operator", [("main", "2", "submenu:repair"), ("repair", "0", "operator")]),
        ("3", "complaint", [("main", "3", "queue:complaint")]),
        ("9", "emergency", [("main", "9", "emergency")]),
        ("0", "operator", [("main", "0", "operator")]),
    ],
)
async def test_each_menu_choice_routes_to_its_queue(
    hotline: Hotline,
    residents: ResidentSimulator,
    digits: str,
    queue: str,
    path: list[tuple[str, str, str]],
) -> None:
    """Keys pressed during the prompts (barge-in) route the caller, and the path is recorded."""
    steps = []
    for digit in digits.split(","):
        steps += [Wait(1.0), Dtmf(digit)]
    call = await residents.dial("13800000001")
    await residents.run(call, [*steps, Wait(4), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert record["queue"] == queue
    assert [(s["node"], s["input"], s["action"]) for s in record["ivr_path"]] == path
    assert record["queued_at"] is not None
    assert record["end_reason"] == "caller-hangup"
