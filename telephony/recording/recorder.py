"""Start and stop a call's recordings in Asterisk: the mix, and each speaker on their own.

A channel inside a bridge cannot be recorded by itself, so each speaker gets a snoop
channel that hears only what that party says (``spy=in``), and the snoop channel is
recorded. The bridge is recorded too, for a reviewer to listen to the call as it was.
Two separate speaker legs are what make 居民 / 坐席 labels trustworthy: nothing has to
guess who was talking.

Every recording gets its row (``crm.recordings``) before Asterisk is asked to start it,
so a failure to start is on the call with its reason. Nothing here may fail a call: a
recording that cannot start is logged and recorded as failed, and the conversation
goes on. When the call ends every recording still running is stopped and handed to the
fetcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from crm.clock import Clock
from crm.exceptions import CrmError
from crm.recordings import RecordingLog, RecordingRole, RecordingStatus
from telephony.ari import AriClient
from telephony.ari.events import (
    Event,
    RecordingEvent,
    RecordingFailed,
    RecordingFinished,
    StasisStart,
)
from telephony.ari.exceptions import AriError
from telephony.config import RecordingConfig

log = logging.getLogger(__name__)

SNOOP_PREFIX = "hotline-snoop-"
FORMAT = "wav"  # 8 kHz 16-bit PCM: what the phone network carries, nothing lost
STOP_WAIT_S = 5.0  # for Asterisk to close a file after it is told to stop
STASIS_WAIT_S = 5.0  # for a new snoop channel to enter our application


@dataclass(eq=False)
class _Live:
    recording_id: int
    role: str
    name: str
    snoop_id: str | None
    finished: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CallRecorder:
    def __init__(
        self,
        config: RecordingConfig,
        ari: AriClient,
        recordings: RecordingLog,
        clock: Clock,
        app: str,
        on_finished: Callable[[], None],
    ) -> None:
        self.config = config
        self.ari = ari
        self.recordings = recordings
        self.clock = clock
        self.app = app
        self.on_finished = on_finished
        self._calls: dict[int, list[_Live]] = {}
        self._by_name: dict[str, _Live] = {}
        self._snoops: set[str] = set()
        self._entering: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- events -------------------------------------------------------------------------
    def owns(self, channel_id: str) -> bool:
        return channel_id.startswith(SNOOP_PREFIX)

    def deliver(self, event: Event) -> bool:
        """Take the events of our snoop channels and recordings; False: not ours."""
        if isinstance(event, StasisStart) and (
            entered := self._entering.pop(event.channel.id, None)
        ):
            if not entered.done():
                entered.set_result(None)
            return True
        if isinstance(event, RecordingEvent):
            live = self._by_name.get(event.recording.name)
            if live is None:
                return event.channel_id is not None and self.owns(event.channel_id)
            if isinstance(event, RecordingFinished | RecordingFailed) and not live.finished.done():
                live.finished.set_result(event.recording.cause or event.recording.state)
            # A message is recorded on the caller's own channel: their session needs it too.
            return event.channel_id is None or self.owns(event.channel_id)
        return event.channel_id is not None and self.owns(event.channel_id)

    # -- starting -----------------------------------------------------------------------
    async def conversation(
        self, call_id: int, bridge_id: str, *, resident: str | None, agent: str
    ) -> None:
        """Record the bridge and each speaker; the resident's leg may be running already."""
        if not self.config.enabled:
            return
        running = {live.role for live in self._calls.get(call_id, [])}
        starts = [self._start_bridge(call_id, bridge_id)]
        if resident is not None and RecordingRole.RESIDENT not in running:
            starts.append(self._start_speaker(call_id, RecordingRole.RESIDENT, resident))
        starts.append(self._start_speaker(call_id, RecordingRole.AGENT, agent))
        await asyncio.gather(*starts)

    async def caller_from_answer(self, call_id: int, channel_id: str) -> None:
        """``include_ivr``: the caller's leg from the answer on, IVR and waiting included."""
        if self.config.enabled and self.config.include_ivr:
            await self._start_speaker(call_id, RecordingRole.RESIDENT, channel_id)

    async def track_message(self, call_id: int, name: str, fmt: str) -> None:
        """A message the session records itself (beep, ``#`` to end): keep and copy it."""
        recording_id = await self.recordings.started(
            call_id=call_id,
            role=RecordingRole.MESSAGE,
            asterisk_name=name,
            fmt=fmt,
            at=self.clock.now(),
        )
        self._add(call_id, _Live(recording_id, RecordingRole.MESSAGE, name, None))

    async def _start_bridge(self, call_id: int, bridge_id: str) -> None:
        name = _name(call_id, RecordingRole.MIXED)
        recording_id = await self._row(call_id, RecordingRole.MIXED, name)
        live = self._add(call_id, _Live(recording_id, RecordingRole.MIXED, name, None))
        try:
            await self.ari.record_bridge(bridge_id, name, fmt=FORMAT)
        except AriError as err:
            await self._could_not_start(live, err)

    async def _start_speaker(self, call_id: int, role: str, channel_id: str) -> None:
        name = _name(call_id, role)
        snoop_id = f"{SNOOP_PREFIX}{call_id}-{role}-{uuid.uuid4().hex[:6]}"
        recording_id = await self._row(call_id, role, name)
        live = self._add(call_id, _Live(recording_id, role, name, snoop_id))
        self._snoops.add(snoop_id)
        entered = self._entering[snoop_id] = asyncio.get_running_loop().create_future()
        try:
            await self.ari.snoop(channel_id, snoop_id, self.app, spy="in")
            # The snoop channel can be recorded only once it is in our application.
            async with asyncio.timeout(STASIS_WAIT_S):
                await entered
            await self.ari.record(snoop_id, name, fmt=FORMAT)
        except (AriError, TimeoutError) as err:
            self._entering.pop(snoop_id, None)
            await self._could_not_start(live, err)

    async def _row(self, call_id: int, role: str, name: str) -> int:
        return await self.recordings.started(
            call_id=call_id, role=role, asterisk_name=name, fmt=FORMAT, at=self.clock.now()
        )

    def _add(self, call_id: int, live: _Live) -> _Live:
        self._calls.setdefault(call_id, []).append(live)
        self._by_name[live.name] = live
        return live

    async def _could_not_start(self, live: _Live, err: Exception) -> None:
        reason = str(err) or f"{type(err).__name__} (no StasisStart from the snoop channel)"
        log.error("recording %s could not start: %s", live.name, reason)
        self._forget(live)
        with contextlib.suppress(CrmError):
            await self.recordings.copy_failed(
                live.recording_id,
                error=f"could not start: {reason}",
                retry_at=None,
                final_status=RecordingStatus.FAILED,
            )
        if live.snoop_id is not None:
            await self._hang_up(live.snoop_id)

    # -- stopping -----------------------------------------------------------------------
    def call_ended(self, call_id: int) -> None:
        """Stop the call's recordings; runs on its own so a cancelled caller cannot cut it."""
        lives = self._calls.pop(call_id, [])
        if lives:
            task = asyncio.create_task(self._finish(lives), name=f"recordings-{call_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _finish(self, lives: list[_Live]) -> None:
        for live in lives:
            if not live.finished.done():
                with contextlib.suppress(AriError):
                    await self.ari.stop_recording(live.name)  # 404: it ended with its channel
        await asyncio.wait([live.finished for live in lives], timeout=STOP_WAIT_S)
        for live in lives:
            if live.snoop_id is not None:
                await self._hang_up(live.snoop_id)
            self._forget(live)
            try:
                await self.recordings.finished(live.recording_id, at=self.clock.now())
            except CrmError:  # the sweep releases it once the call has ended
                log.exception("could not mark recording %s finished", live.name)
        self.on_finished()

    async def _hang_up(self, snoop_id: str) -> None:
        self._snoops.discard(snoop_id)
        with contextlib.suppress(AriError):
            await self.ari.hangup(snoop_id)

    def _forget(self, live: _Live) -> None:
        self._by_name.pop(live.name, None)

    async def stop(self) -> None:
        """Service shutdown: let stops in progress finish (recordings keep running)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_S)


def _name(call_id: int, role: str) -> str:
    return f"call-{call_id}-{role}-{uuid.uuid4().hex[:8]}"
