"""An agent's softphone (baresip, tests/softphone.py) against the sandbox Asterisk.

The phone registers as PJSIP endpoint 1001 (config/asterisk/pjsip.conf). ARI calls it
into a Stasis application of the test's own, so no dialplan and no hotline service take
part: what is checked is the phone, as Asterisk sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from telephony.ari import AriClient, AriError
from telephony.ari.events import Event
from telephony.config import Config
from tests.audio import RATE, likeness, wav_samples
from tests.conftest import app_events
from tests.polling import eventually
from tests.softphone import BARESIP, Softphone, SoftphoneError

AGENT = "1001"
ENDPOINT = f"PJSIP/{AGENT}"
BUSY = 17  # Q.850 cause: user busy

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(BARESIP is None, reason="baresip is not on PATH (Debian baresip-core)"),
]


class StasisCalls:
    """A Stasis application of the test's own: calls it originates and the events on them."""

    def __init__(self, ari: AriClient, app: str) -> None:
        self.ari = ari
        self.app = app
        self.events: list[Event] = []
        self.channel_ids: list[str] = []

    async def originate(self, endpoint: str = ENDPOINT) -> str:
        channel_id = f"softphone-test-{uuid.uuid4().hex[:8]}"
        self.channel_ids.append(channel_id)
        await self.ari.originate(endpoint, app=self.app, channel_id=channel_id, timeout_s=15)
        return channel_id

    def of(self, channel_id: str, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == kind and e.channel_id == channel_id]

    async def wait(self, channel_id: str, kind: str, *, timeout_s: float = 10) -> Event:
        async def seen() -> Event | None:
            found = self.of(channel_id, kind)
            return found[0] if found else None

        return await eventually(seen, timeout_s=timeout_s, what=f"{kind} on {channel_id}")

    async def hang_up_all(self) -> None:
        for channel_id in self.channel_ids:
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id)


@pytest.fixture
async def stasis(asterisk: Config, ari: AriClient) -> AsyncIterator[StasisCalls]:
    calls = StasisCalls(ari, f"softphone-{uuid.uuid4().hex[:6]}")
    async with app_events(asterisk, calls.app, calls.events.append):
        yield calls
        await calls.hang_up_all()


@pytest.fixture
async def make_phone(
    ari: AriClient, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Softphone]]]:
    """Start softphones for the test; each is stopped (and baresip gone) at its end."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(extension: str = AGENT, **options: Any) -> Softphone:
            workdir = tmp_path / f"phone-{extension}-{uuid.uuid4().hex[:4]}"
            workdir.mkdir()
            phone = Softphone(extension, extension, workdir=workdir, ari=ari, **options)
            return await stack.enter_async_context(phone)

        yield start


async def endpoint_state(ari: AriClient, extension: str = AGENT) -> str:
    endpoint = await ari.request("GET", f"/endpoints/PJSIP/{extension}")
    return str(endpoint["state"])


async def test_the_phone_registers_and_unregisters_when_it_stops(
    ari: AriClient, tmp_path: Path
) -> None:
    async with Softphone(AGENT, AGENT, workdir=tmp_path) as phone:
        assert phone.registered, phone.report()

        async def online() -> bool:
            return await endpoint_state(ari) == "online"

        await eventually(online, timeout_s=5, what=f"{ENDPOINT} online")
    assert not phone.running

    async def offline() -> bool:
        return await endpoint_state(ari) != "online"

    await eventually(offline, timeout_s=5, what=f"{ENDPOINT} no longer online")
    assert await endpoint_state(ari) == "offline"


async def test_a_wrong_password_is_refused(ari: AriClient, tmp_path: Path) -> None:
    phone = Softphone(AGENT, "not-the-password", workdir=tmp_path, start_timeout_s=5)
    with pytest.raises(SoftphoneError, match="registration of 1001 failed"):
        async with phone:
            pass
    assert not phone.running


async def test_a_call_is_answered_at_once_and_the_phone_hears_what_asterisk_plays(
    stasis: StasisCalls,
    make_phone: Callable[..., Awaitable[Softphone]],
    ari: AriClient,
    base_config: Config,
    tmp_path: Path,
) -> None:
    phone = await make_phone(record_dir=tmp_path / "heard")
    channel_id = await stasis.originate()
    await stasis.wait(channel_id, "StasisStart")
    assert (await ari.get_channel(channel_id)).state == "Up"
    await phone.wait_answered(1)

    playback = await ari.play(channel_id, "sound:hotline/greeting")
    await eventually(lambda: _finished(stasis, playback.id), timeout_s=15, what="greeting played")
    await ari.hangup(channel_id)
    await phone.wait_ended(1)  # the hang-up reached the phone
    assert phone.calls_answered == 1
    assert not phone.active_calls

    [heard] = phone.heard()
    greeting = base_config.prompts.dir / "greeting.wav"
    match = likeness(wav_samples(heard), greeting, max_lag_s=0.5)
    assert match > 0.9, f"the phone did not hear the greeting ({match:.2f})\n{phone.report()}"


async def _finished(stasis: StasisCalls, playback_id: str) -> bool:
    return any(
        e.type == "PlaybackFinished" and e.raw.get("playback", {}).get("id") == playback_id
        for e in stasis.events
    )


async def test_the_phone_hangs_up_and_asterisk_sees_it_call_after_call(
    stasis: StasisCalls, make_phone: Callable[..., Awaitable[Softphone]], ari: AriClient
) -> None:
    phone = await make_phone()
    for n in (1, 2):
        channel_id = await stasis.originate()
        await stasis.wait(channel_id, "StasisStart")
        await phone.wait_answered(n)
        await phone.hang_up()
        # the test never hangs up: the BYE came from the phone
        await stasis.wait(channel_id, "ChannelHangupRequest")
        await stasis.wait(channel_id, "StasisEnd")
        await stasis.wait(channel_id, "ChannelDestroyed")

        async def gone(channel_id: str = channel_id) -> bool:
            return channel_id not in {c.id for c in await ari.list_channels()}

        await eventually(gone, timeout_s=5, what=f"{channel_id} gone")
    assert (phone.calls_answered, phone.calls_ended) == (2, 2)


async def test_answer_after_lets_the_call_ring_first(
    stasis: StasisCalls, make_phone: Callable[..., Awaitable[Softphone]]
) -> None:
    phone = await make_phone(answer_after_s=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    channel_id = await stasis.originate()
    await stasis.wait(channel_id, "StasisStart")
    rang_s = loop.time() - started
    assert 1.0 <= rang_s < 3.0, f"answered after {rang_s:.2f}s\n{phone.report()}"
    assert phone.calls_events("CALL_INCOMING"), phone.report()
    await phone.wait_answered(1)


async def test_asterisk_hears_the_wav_the_phone_plays(
    stasis: StasisCalls,
    make_phone: Callable[..., Awaitable[Softphone]],
    ari: AriClient,
    base_config: Config,
    tmp_path: Path,
) -> None:
    greeting = base_config.prompts.dir / "greeting.wav"
    # a second of silence first, so the recording starts before the speech does
    play = tmp_path / "play.wav"
    with wave.open(str(greeting)) as src, wave.open(str(play), "wb") as out:
        out.setparams(src.getparams())
        out.writeframes(bytes(2 * RATE) + src.readframes(src.getnframes()))
    phone = await make_phone(play=play)

    channel_id = await stasis.originate()
    await stasis.wait(channel_id, "StasisStart")
    name = f"softphone-{uuid.uuid4().hex[:8]}"
    seconds = len(wav_samples(play)) // RATE + 1
    await ari.record(channel_id, name, max_duration_s=seconds)
    await eventually(
        lambda: _recorded(stasis, name), timeout_s=seconds + 10, what="recording finished"
    )
    try:
        audio = await ari.stored_recording(name)
    finally:
        with contextlib.suppress(AriError):
            await ari.delete_stored_recording(name)
    match = likeness(wav_samples(audio), greeting, max_lag_s=1.5)
    assert match > 0.9, f"Asterisk did not hear the phone's WAV ({match:.2f})\n{phone.report()}"


async def _recorded(stasis: StasisCalls, name: str) -> bool:
    return any(
        e.type == "RecordingFinished" and e.raw.get("recording", {}).get("name") == name
        for e in stasis.events
    )


async def test_a_phone_on_a_call_is_busy_for_a_second_one(
    stasis: StasisCalls, make_phone: Callable[..., Awaitable[Softphone]]
) -> None:
    phone = await make_phone()
    first = await stasis.originate()
    await stasis.wait(first, "StasisStart")
    second = await stasis.originate()
    destroyed = await stasis.wait(second, "ChannelDestroyed")
    assert destroyed.raw["cause"] == BUSY, destroyed.raw
    assert not stasis.of(second, "StasisStart")
    assert phone.calls_answered == 1
    assert len(phone.active_calls) == 1
