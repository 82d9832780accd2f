"""Simulated residents: real calls into the hotline through Asterisk Local channels.

For demos and tests. Each call is ``Local/400@from-residents`` originated into our own
Stasis application: Asterisk runs the hotline's dialplan on the ``;2`` leg exactly as for
a SIP caller, and we hold the ``;1`` leg, from which the resident's script plays audio,
sends DTMF (``POST /channels/{id}/dtmf``) and hangs up. The ``;2`` leg's id is chosen
here, so the caller knows which call record is theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from telephony.ari import AriClient, AriError
from telephony.ari.events import (
    ChannelDestroyed,
    ChannelHangupRequest,
    ChannelStateChange,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Dtmf:
    digits: str
    between_ms: int = 150
    duration_ms: int = 120


@dataclass(frozen=True)
class Play:
    media: str  # e.g. sound:hotline/greeting; waits until it has finished


@dataclass(frozen=True)
class HangUp:
    pass


Step = Wait | Dtmf | Play | HangUp


@dataclass
class SimulatedCall:
    resident_leg: str  # ;1, ours
    hotline_leg: str  # ;2, the channel the hotline answers and records
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)


class ResidentSimulator:
    """Many simulated residents on one ARI application; route events with ``on_event``."""

    def __init__(
        self, ari: AriClient, app: str, *, extension: str = "400", context: str = "from-residents"
    ) -> None:
        self.ari = ari
        self.app = app
        self.endpoint = f"Local/{extension}@{context}"
        self._calls: dict[str, SimulatedCall] = {}

    def on_event(self, event: Event) -> None:
        call = self._calls.get(event.channel_id or "")
        if call is None:
            return
        if isinstance(event, StasisStart):
            call.answered.set()
        elif isinstance(event, ChannelHangupRequest | StasisEnd | ChannelDestroyed):
            call.ended.set()
        call.events.put_nowait(event)

    async def dial(
        self, caller_id: str | None = None, *, ring_timeout_s: int = 30
    ) -> SimulatedCall:
        """Place a call; returns at once, before the hotline answers."""
        ours, theirs = f"sim-{uuid.uuid4().hex[:12]}", f"res-{uuid.uuid4().hex[:12]}"
        call = SimulatedCall(resident_leg=ours, hotline_leg=theirs)
        self._calls[ours] = call
        try:
            await self.ari.originate(
                self.endpoint,
                app=self.app,
                caller_id=caller_id,
                timeout_s=ring_timeout_s,
                channel_id=ours,
                other_channel_id=theirs,
            )
        except AriError:
            del self._calls[ours]
            raise
        return call

    async def run(
        self, call: SimulatedCall, steps: Sequence[Step], *, answer_timeout_s: float = 15.0
    ) -> None:
        """Wait for the answer, then play the resident's part of the conversation."""
        await asyncio.wait_for(call.answered.wait(), answer_timeout_s)
        for step in steps:
            if call.ended.is_set():
                return
            match step:
                case Wait(seconds):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(call.ended.wait(), seconds)
                case Dtmf(digits, between, duration):
                    await self.ari.send_dtmf(
                        call.resident_leg, digits, between_ms=between, duration_ms=duration
                    )
                case Play(media):
                    playback = await self.ari.play(call.resident_leg, media)
                    await self._until_finished(call, playback.id)
                case HangUp():
                    with contextlib.suppress(AriError):
                        await self.ari.hangup(call.resident_leg)
                    await call.ended.wait()

    async def _until_finished(self, call: SimulatedCall, playback_id: str) -> None:
        while not call.ended.is_set():
            event = await call.events.get()
            if isinstance(event, PlaybackFinished) and event.playback.id == playback_id:
                return

    def forget(self, call: SimulatedCall) -> None:
        self._calls.pop(call.resident_leg, None)


@dataclass
class Ring:
    """One ring of a simulated agent's phone, as the phone saw it.

    ``started``/``answered``/``ended`` are this process's loop time when the phone learnt
    it (an event read, a request's reply), so they say how long things took for the phone,
    not in which order Asterisk did them: the reply to our answer can be read after
    Asterisk has told the service, and the service acted on it. For order, compare
    Asterisk's own times: ``created`` (the channel) and ``up`` (it was answered).
    """

    extension: str
    channel_id: str
    caller: str
    started: float
    answered: float | None = None
    ended: float | None = None
    created: datetime | None = None  # Asterisk's clock (millisecond resolution)
    up: datetime | None = None  # Asterisk's clock: ChannelStateChange to Up


@dataclass
class AgentBehaviour:
    answer_after_s: float | None = 0.5  # None: never picks up
    talk_s: float | None = None  # hang up after this long; None: wait for the other side
    play: str | None = None  # media the agent "says" on answer
    say_after_s: float = 0.0  # pause between answering and saying it


class AgentSimulator:
    """Simulated phones: ARI application ``sim-agents`` behind ``Local/NNNN@sim-agents``.

    Agents' desk phones by default; with ``app="sim-residents"`` the residents' phones
    that call-backs dial (``Local/NUMBER@sim-residents``).

    The ACD dials an agent exactly as it dials a softphone; the simulator is the phone.
    It records every ring, so tests can check from the phone's side what the ACD did
    (who rang, when, for which caller, and never two calls at once).
    """

    APP = "sim-agents"

    def __init__(self, ari: AriClient, app: str = APP) -> None:
        self.ari = ari
        self.app = app
        self.behaviour: dict[str, AgentBehaviour] = {}
        self.rings: list[Ring] = []
        self.max_concurrent: dict[str, int] = {}
        self._active: dict[str, Ring] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.loop_time = asyncio.get_running_loop().time

    @staticmethod
    def endpoint(extension: str, app: str = APP) -> str:
        return f"Local/{extension}@{app}"

    def on_event(self, event: Event) -> None:
        if isinstance(event, StasisStart):
            extension = event.channel.dialplan_exten or "?"
            ring = Ring(
                extension,
                event.channel.id,
                event.channel.caller_number,
                self.loop_time(),
                created=event.channel.creationtime,
            )
            self.rings.append(ring)
            self._active[ring.channel_id] = ring
            busy = sum(1 for r in self._active.values() if r.extension == extension)
            self.max_concurrent[extension] = max(self.max_concurrent.get(extension, 0), busy)
            task = asyncio.create_task(self._pick_up(ring))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(event, ChannelStateChange) and event.channel.state == "Up":
            if (up := self._active.get(event.channel.id)) is not None and up.up is None:
                up.up = event.timestamp
        elif isinstance(event, StasisEnd | ChannelDestroyed):
            ring_ = self._active.pop(event.channel_id or "", None)
            if ring_ is not None and ring_.ended is None:
                ring_.ended = self.loop_time()

    async def _pick_up(self, ring: Ring) -> None:
        behaviour = self.behaviour.get(ring.extension, AgentBehaviour())
        if behaviour.answer_after_s is None:
            return
        await asyncio.sleep(behaviour.answer_after_s)
        if ring.ended is not None:
            return
        with contextlib.suppress(AriError):
            await self.ari.answer(ring.channel_id)
            ring.answered = self.loop_time()
            if behaviour.play:
                await asyncio.sleep(behaviour.say_after_s)
                await self.ari.play(ring.channel_id, behaviour.play)
            if behaviour.talk_s is not None:
                await asyncio.sleep(behaviour.talk_s)
                # On hook from now, as a phone sees it: Asterisk may tell the service the
                # call is over (and the next offer may ring) before this half's StasisEnd.
                ring.ended = self.loop_time()
                self._active.pop(ring.channel_id, None)
                await self.ari.hangup(ring.channel_id)

    def rings_for(self, extension: str) -> list[Ring]:
        return [r for r in self.rings if r.extension == extension]
