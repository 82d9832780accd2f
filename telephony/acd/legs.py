"""Outbound legs the ACD originates (agents' phones, residents called back).

Such a channel enters our Stasis application only when it is answered, but ARI sends
us its events from the moment it is originated, so the leg learns "answered" (its
StasisStart) and "gone, with this cause" (ChannelDestroyed) as they happen. The
``OutboundLegs`` registry is how the StasisApp tells these channels from residents.

An originate that Asterisk refuses gives a leg that has already ended. One that gets no
reply in time (a loaded Asterisk answers after the ARI timeout) may well have created the
channel: its id is ours, so the leg stays registered and its own events tell what
happened (the phone answering is a real answer); if none come, hanging it up at the ring
timeout ends it. Dropping it instead would let an agent pick up a call nobody is on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from telephony.ari import AriClient, AriError, AriNotFound, AriUnavailable
from telephony.ari.events import (
    ChannelDestroyed,
    ChannelHangupRequest,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)

# Q.850 causes that mean "rang, nobody took it" rather than "could not ring".
NO_ANSWER_CAUSES = {0, 16, 18, 19, 21, 31}
BUSY_CAUSES = {17}
OUTBOUND_PREFIXES = ("agent-", "dial-")

log = logging.getLogger(__name__)


class Leg:
    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.playbacks: asyncio.Queue[str] = asyncio.Queue()
        self._cause: int | None = None
        # Asterisk said the channel exists (the originate's reply, or any event of it),
        # so Asterisk's own ring timeout will end it.
        self.confirmed = False

    def deliver(self, event: Event) -> None:
        self.confirmed = True
        if isinstance(event, StasisStart):
            if not self.answered.done():
                self.answered.set_result(None)
        elif isinstance(event, ChannelHangupRequest) and not event.soft:
            self._cause = event.cause or self._cause
        elif isinstance(event, ChannelDestroyed | StasisEnd):
            if isinstance(event, ChannelDestroyed):
                self._cause = event.cause or self._cause
            self._end()
        elif isinstance(event, PlaybackFinished):
            self.playbacks.put_nowait(event.playback.id)

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(self._cause)
        if not self.answered.done():
            self.answered.cancel()

    def fail(self) -> None:
        """The originate itself failed: the leg never existed."""
        self._end()


def outcome_of(cause: int | None) -> str:
    if cause in BUSY_CAUSES:
        return "busy"
    if cause is None or cause in NO_ANSWER_CAUSES:
        return "no-answer"
    return "failed"


class OutboundLegs:
    """Registry of our outbound channels by id, shared with the StasisApp."""

    def __init__(self, ari: AriClient, app: str) -> None:
        self._ari = ari
        self._app = app
        self.legs: dict[str, Leg] = {}

    @staticmethod
    def is_outbound(channel_id: str) -> bool:
        return channel_id.startswith(OUTBOUND_PREFIXES)

    def deliver(self, channel_id: str, event: Event) -> bool:
        leg = self.legs.get(channel_id)
        if leg is None:
            return False
        leg.deliver(event)
        return True

    async def dial(
        self,
        endpoint: str,
        *,
        prefix: str,
        ring_timeout_s: float,
        caller_id: str | None,
        purpose: str,
        channel_id: str | None = None,
    ) -> Leg:
        """Originate a leg; a failed originate gives a leg that has already ended.

        ``channel_id`` (with the prefix) when the caller needs it before dialling, e.g.
        for the call record of a case call-back.
        """
        leg = Leg(channel_id or f"{prefix}{uuid.uuid4().hex[:16]}")
        self.legs[leg.channel_id] = leg
        leg.ended.add_done_callback(lambda _f: self.legs.pop(leg.channel_id, None))
        try:
            await self._ari.originate(
                endpoint,
                app=self._app,
                app_args=purpose,
                caller_id=caller_id,
                timeout_s=max(1, round(ring_timeout_s)),
                channel_id=leg.channel_id,
            )
            leg.confirmed = True
        except AriUnavailable as err:
            # Maybe dialled all the same: wait for the leg's events (see the module's doc).
            log.warning("originate unconfirmed: %s", err, extra={"channel_id": leg.channel_id})
        except AriError:
            leg.fail()
        return leg

    async def hang_up(self, leg: Leg) -> None:
        if leg.ended.done():
            return
        try:
            await self._ari.hangup(leg.channel_id)
        except AriNotFound:
            leg.fail()  # never created, or gone already: no event may come to end it
        except AriError as err:
            log.warning("hang-up failed: %s", err, extra={"channel_id": leg.channel_id})

    async def say(self, leg: Leg, media: str | list[str], *, limit_s: float) -> None:
        """Play to a leg and wait until it finished, the leg ended, or ``limit_s`` passed."""
        playback = await self._ari.play(leg.channel_id, media)
        finished: asyncio.Future[None] = asyncio.ensure_future(_played(leg, playback.id))
        waits: list[asyncio.Future[Any]] = [finished, leg.ended]
        try:
            await asyncio.wait(waits, timeout=limit_s, return_when="FIRST_COMPLETED")
        finally:
            finished.cancel()


async def _played(leg: Leg, playback_id: str) -> None:
    while await leg.playbacks.get() != playback_id:
        pass
