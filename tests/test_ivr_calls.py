"""A resident calls the hotline: answer, greeting, menu, routing, and the call record.

Every test places real calls through the Asterisk sandbox (Local channels into
extension 400 of from-residents, the same dialplan a SIP trunk reaches).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import wave
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from telephony.config import Config, IvrConfig
from telephony.simulator import Dtmf, HangUp, ResidentSimulator, Wait
from tests.audio import likeness, wav_samples
from tests.conftest import ROOT, Hotline
from tests.polling import eventually


async def test_call_is_answered_within_the_first_ring_and_greeted(
    hotline: Hotline, residents: ResidentSimulator, base_config: Config
) -> None:
    """Answered before the first ring ended; the first thing the caller hears is the greeting."""
    greeting = base_config.prompts.dir / "greeting.wav"
    greeting_s = wav_seconds(greeting)
    call = await residents.dial('"张三" <13912345678>')
    await asyncio.wait_for(call.answered.wait(), 10)
    # What the resident's phone receives, recorded on their leg of the call.
    heard = f"heard-{call.resident_leg}"
    await residents.ari.record(
        call.resident_leg, heard, max_duration_s=math.ceil(greeting_s) + 1, if_exists="overwrite"
    )
    await residents.run(call, [Wait(greeting_s + 1.5), HangUp()])
    audio = await residents.ari.stored_recording(heard)
    await residents.ari.delete_stored_recording(heard)
    assert likeness(wav_samples(audio), greeting) > 0.8
    assert likeness(wav_samples(audio), base_config.prompts.dir / "main.wav") < 0.5

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


@pytest.fixture
def quick_menu_config(config: Config, tmp_path: Path) -> Config:
    """The shipped menu with a 1-second silence timeout, so retries are quick to test."""
    text = (ROOT / "config" / "ivr.toml").read_text()
    text = re.sub(r"(?m)^timeout_s = \d+", "timeout_s = 1", text)
    menu = tmp_path / "ivr.toml"
    menu.write_text(text)
    return dataclasses.replace(config, ivr=IvrConfig(menu=menu))


async def wait_routed(hotline: Hotline, channel_id: str) -> dict[str, Any]:
    async def routed() -> dict[str, Any] | None:
        record = await hotline.record(channel_id, ended=False)
        return record if record["queue"] else None

    return await eventually(routed, timeout_s=120, what="caller routed to a queue")


async def test_silence_reprompts_then_reaches_the_operator(
    make_hotline: Callable[[Config], Any], quick_menu_config: Config, residents: ResidentSimulator
) -> None:
    """A caller who presses nothing hears the menu again, twice, then goes to the operator."""
    hotline = await make_hotline(quick_menu_config)
    call = await residents.dial("13800000002")
    caller = asyncio.create_task(residents.run(call, [Wait(90), HangUp()]))
    record = await wait_routed(hotline, call.hotline_leg)
    caller.cancel()
    assert record["queue"] == "operator"
    assert [(s["node"], s["input"], s["action"]) for s in record["ivr_path"]] == [
        ("main", "timeout", "reprompt"),
        ("main", "timeout", "reprompt"),
        ("main", "timeout", "operator"),
    ]


async def test_unknown_key_is_refused_and_the_menu_asks_again(
    hotline: Hotline, residents: ResidentSimulator
) -> None:
    """A key the menu does not offer gets 'invalid' and a re-prompt; the next valid key routes."""
    call = await residents.dial("13800000003")
    await residents.run(call, [Wait(1), Dtmf("5"), Wait(1.5), Dtmf("3"), Wait(2), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert [(s["node"], s["input"], s["action"]) for s in record["ivr_path"]] == [
        ("main", "invalid:5", "reprompt"),
        ("main", "3", "queue:complaint"),
    ]
    assert record["queue"] == "complaint"


async def test_repeated_wrong_keys_reach_the_operator(
    hotline: Hotline, residents: ResidentSimulator
) -> None:
    """After the allowed retries, wrong keys send the caller to a person instead of looping."""
    call = await residents.dial("13800000004")
    steps: list[Any] = []
    for digit in "578":
        steps += [Wait(1.2), Dtmf(digit)]
    await residents.run(call, [*steps, Wait(3), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert [s["input"] for s in record["ivr_path"]] == ["invalid:5", "invalid:7", "invalid:8"]
    assert record["ivr_path"][-1]["action"] == "operator"
    assert record["queue"] == "operator"


async def test_star_repeats_the_menu(hotline: Hotline, residents: ResidentSimulator) -> None:
    """'*' replays the current menu without counting as a mistake."""
    call = await residents.dial("13800000005")
    await residents.run(call, [Wait(1), Dtmf("*"), Wait(1.5), Dtmf("1"), Wait(2), HangUp()])
    record = await hotline.record(call.hotline_leg)
    assert [(s["input"], s["action"]) for s in record["ivr_path"]] == [
        ("*", "repeat"),
        ("1", "queue:inquiry"),
    ]


async def test_a_key_during_the_greeting_cuts_it_short(
    hotline: Hotline, residents: ResidentSimulator, base_config: Config
) -> None:
    """Barge-in: a key pressed while a prompt plays is acted on at once, not after the prompt."""
    greeting_s = wav_seconds(base_config.prompts.dir / "greeting.wav")
    call = await residents.dial("13800000006")
    await residents.run(call, [Wait(0.3), Dtmf("1"), Wait(2), HangUp()])
    record = await hotline.record(call.hotline_leg)
    answered = datetime.fromisoformat(record["answered_at"])
    chosen = datetime.fromisoformat(record["ivr_path"][0]["at"])
    assert record["ivr_path"][0]["input"] == "1"
    # Without barge-in the choice could not be taken before greeting and menu had played.
    assert (chosen - answered).total_seconds() < greeting_s


async def test_a_flood_of_hash_and_star_keys_ends_with_a_person(
    hotline: Hotline, residents: ResidentSimulator
) -> None:
    """A caller hammering '#' and '*' is neither stuck nor crashes the call: they reach a person."""
    call = await residents.dial("13800000007")
    await residents.run(
        call, [Wait(1), Dtmf("#*#*#*##**#*#", between_ms=80, duration_ms=80), Wait(4), HangUp()]
    )
    record = await hotline.record(call.hotline_leg)
    assert record["queue"] == "operator"
    inputs = [s["input"] for s in record["ivr_path"]]
    assert inputs[0] == "invalid:#"
    assert record["ivr_path"][-1]["action"] == "operator"
    assert record["end_reason"] == "caller-hangup"


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()
