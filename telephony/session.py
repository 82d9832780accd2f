"""One resident's call, from StasisStart to the closed record.

The session's script reads top to bottom as the call goes: write the record, answer,
greet, IVR, route, hold. Events for the channel arrive in ``inbox`` in the order Asterisk
sent them. A hang-up is not an inbox event: it cancels the script wherever it is waiting,
and the ``finally`` block closes the record with the reason, so no prompt, timer or
database write can leave a call without an end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm.calls import CallLog, IvrChoice
from crm.calls import EndReason as EndReason  # re-exported: where the reasons are stored
from crm.clock import Clock
from crm.messages import MessageBox, MessageReason
from crm.phones import normalise_phone
from crm.queue_facts import Outcome
from telephony.acd.announcements import announcement, number_prompts
from telephony.acd.dispatcher import TALK_BRIDGE_PREFIX, Acd
from telephony.acd.waiting import ConnectFailed, Talk, Waiting
from telephony.ari import AriClient, AriError, AriNotFound
from telephony.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Event,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
)
from telephony.ari.models import Channel, Playback
from telephony.call_state import CallEvent, CallState, call_machine
from telephony.config import Config, WhenClosed
from telephony.hangup_causes import cause_text
from telephony.holding import HoldingArea
from telephony.ivr.engine import IvrEngine, IvrStep
from telephony.ivr.menu import Action, Menu
from telephony.prompts import PromptLibrary
from telephony.recording.recorder import CallRecorder

log = logging.getLogger(__name__)


# ast_softhangup() flag Asterisk sets on every channel when it shuts down.
SOFTHANGUP_SHUTDOWN = 0x04


@dataclass(frozen=True)
class SessionDeps:
    """Everything a call needs, built once by the service and shared by all sessions."""

    config: Config
    ari: AriClient
    call_log: CallLog
    menu: Menu
    prompts: PromptLibrary
    holding: HoldingArea
    clock: Clock
    acd: Acd
    messages: MessageBox
    recorder: CallRecorder
    # Told the call id once its record is closed: the CRM opens or joins its case.
    on_closed: Callable[[int], None] = lambda _call_id: None


@dataclass(frozen=True)
class Hangup:
    reason: str
    cause: int | None = None
    cause_text: str | None = None


class CallSession:
    def __init__(
        self,
        channel: Channel,
        deps: SessionDeps,
        *,
        adopted: bool = False,
    ) -> None:
        self.channel = channel
        self.deps = deps
        self.adopted = adopted
        self.call_id: int | None = None
        self.inbox: asyncio.Queue[Event] = asyncio.Queue()
        self.machine = call_machine(channel.id)
        self.hangup: Hangup | None = None
        self.task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()
        self.playing: Playback | None = None
        self._writes: list[asyncio.Future[None]] = []

    @property
    def state(self) -> CallState:
        return self.machine.state

    # -- events in ----------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        """Called by the dispatcher for every event about this channel; never blocks."""
        if isinstance(event, ChannelHangupRequest) and event.soft:
            # A soft request carries Asterisk's reason flags, not a Q.850 cause; the
            # hang-up itself follows. Only "Asterisk is shutting down" matters here.
            if event.cause is not None and event.cause & SOFTHANGUP_SHUTDOWN:
                self.end(Hangup(EndReason.ASTERISK_RESTART))
            return
        if isinstance(event, ChannelHangupRequest | ChannelDestroyed | StasisEnd):
            cause = getattr(event, "cause", None) or None  # 0 means "not given"
            text = getattr(event, "cause_txt", None) or None
            self.end(Hangup(EndReason.CALLER_HANGUP, cause, text))
            return
        self.inbox.put_nowait(event)

    def end(self, hangup: Hangup) -> None:
        """The channel is gone (or must be treated as gone): stop the script now."""
        first = self.hangup is None
        if self.hangup is None:
            self.hangup = hangup
        elif hangup.cause is not None and self.hangup.cause is None:
            self.hangup = Hangup(self.hangup.reason, hangup.cause, hangup.cause_text)
        # Cancel once only: a second cancel (StasisEnd after ChannelHangupRequest) would
        # land in the ``finally`` that closes the record. And until the record exists the
        # script is not interrupted: it checks ``hangup`` right after writing it, so even
        # a call dropped at once leaves a closed record.
        if first and self.call_id is not None and self.task is not None and not self.task.done():
            self.task.cancel()

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name=f"call-{self.channel.id}")
        return self.task

    # -- the call's script ------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._script()
        except asyncio.CancelledError:
            if self.hangup is None:  # service shutdown: leave the record open for re-adoption
                raise
        except AriNotFound:
            self.hangup = self.hangup or Hangup(EndReason.CALLER_HANGUP)
        except Exception:
            log.exception(
                "call failed", extra={"call_id": self.call_id, "channel_id": self.channel.id}
            )
            self.hangup = self.hangup or Hangup(EndReason.SERVICE_ERROR)
            with contextlib.suppress(AriError):
                await self.deps.ari.hangup(self.channel.id)
        finally:
            await self._close()
            self.done.set()

    async def _script(self) -> None:
        d = self.deps
        ch = self.channel
        # The record write starts first and the answer goes out beside it, not after it:
        # under a burst SQLite queues writes, and a resident must not ring while theirs
        # waits. A crash between the two loses nothing: the answered channel stays in
        # Stasis and is re-adopted, record and all, when the service is back.
        opening = asyncio.ensure_future(
            d.call_log.open_call(
                channel_id=ch.id,
                caller_number=ch.caller_number or None,
                caller_name=ch.caller_name or None,
                dialled_number=ch.dialplan_exten or None,
                started_at=ch.creationtime or d.clock.now(),
            )
        )
        answered_at = None
        try:
            if not self.adopted:
                await d.ari.answer(ch.id)
                answered_at = d.clock.now()
        finally:
            self.call_id = await opening
            self.machine.call_id = str(self.call_id)
        if answered_at is not None:  # recorded even if the caller has hung up since
            self._transition(CallEvent.ANSWERED)
            started = ch.creationtime or answered_at
            ring_ms = max(0, round((answered_at - started).total_seconds() * 1000))
            # Written beside the greeting, not before it: the resident hears the company's
            # name while the write waits its turn in a busy database.
            self._write_behind(
                d.call_log.mark_answered(
                    self.call_id, answered_at=answered_at, ring_ms=ring_ms, state=self.state
                )
            )
        if self.hangup is not None:
            return
        if answered_at is None:
            await self._resume()
            return
        if d.config.recording.include_ivr:  # started beside the greeting, not before it
            self._write_behind(d.recorder.caller_from_answer(self.call_id, ch.id))

        greeting = await self.play(d.prompts.media("greeting"))
        digit = await self.until_finished(greeting, barge_in=True)
        await d.call_log.mark_greeting_played(self.call_id)
        self._transition(CallEvent.GREETED)
        await self._ivr_then_hold(first_digit=digit)

    async def _resume(self) -> None:
        """Pick a call back up after a reconnect or a service restart.

        A caller already routed goes back to their holding bridge; anyone else hears the
        menu again from the top, which is what a resident expects after a glitch.
        """
        assert self.call_id is not None
        record = await self.deps.call_log.get(self.call_id)
        if self.channel.state != "Up":
            await self.deps.ari.answer(self.channel.id)
        if record.state == CallState.CONNECTED:
            self.machine = call_machine(str(self.call_id), CallState.CONNECTED)
            await self._stay_in_talk()
            return
        if record.queue and record.queue in self.deps.config.queues:
            self.machine = call_machine(str(self.call_id), CallState.ROUTING)
            choice = IvrChoice.parse(record.choice)
            tag = choice.tag if choice is not None and choice.queue == record.queue else None
            await self._hold(record.queue, tag=tag, place_at=record.queued_at)
        else:
            self.machine = call_machine(str(self.call_id), CallState.IVR)
            await self._ivr_then_hold(first_digit=None)

    async def _stay_in_talk(self) -> None:
        """A caller still talking to an agent when the service restarted stays in the
        conversation; when they hang up, the agent's side of the bridge is ended too."""
        d = self.deps
        bridges = [
            b
            for b in await d.ari.list_bridges()
            if b.id.startswith(TALK_BRIDGE_PREFIX) and self.channel.id in b.channels
        ]
        try:
            while True:  # until the hang-up cancels the script
                await self.next_event(None)
        finally:
            for bridge in bridges:
                for channel_id in bridge.channels:
                    if channel_id != self.channel.id:
                        with contextlib.suppress(AriError):
                            await d.ari.hangup(channel_id)
                with contextlib.suppress(AriError):
                    await d.ari.destroy_bridge(bridge.id)

    async def _ivr_then_hold(self, first_digit: str | None) -> None:
        d = self.deps
        assert self.call_id is not None
        await d.call_log.set_state(self.call_id, CallState.IVR)
        engine = IvrEngine(d.menu, d.prompts, self, self._record_step, call_id=str(self.call_id))
        action: Action = await engine.run(first_digit)
        queue = action.queue or "operator"
        self._transition(CallEvent.CHOSEN)
        await d.call_log.set_queue(self.call_id, queue=queue, at=d.clock.now())
        if queue == "message":
            await self._take_message(None, MessageReason.ASKED)
            return
        config = d.config.queues[queue]
        closed = not d.acd.open_now(config)
        if closed and config.when_closed == WhenClosed.MESSAGE:
            await self._take_message(queue, MessageReason.OUT_OF_HOURS)
            return
        nobody = not d.acd.roster.logged_in_for(queue) and not config.emergency
        if nobody and config.when_nobody_logged_in == WhenClosed.MESSAGE:
            await self._take_message(queue, MessageReason.NO_AGENTS)
            return
        route = await self.play(d.prompts.media(f"route_{queue}"))
        await self.until_finished(route, barge_in=False)
        await self._hold(queue, tag=action.tag or None)

    async def _hold(self, queue: str, *, tag: str | None, place_at: datetime | None = None) -> None:
        """Wait in the queue with music until an agent answers, then talk to them."""
        d = self.deps
        assert self.call_id is not None
        await d.holding.admit(queue, self.channel.id)
        self._transition(CallEvent.HELD)
        await d.call_log.set_state(self.call_id, self.state)
        waiting = await d.acd.join(
            call_id=self.call_id,
            channel_id=self.channel.id,
            queue=d.config.queues[queue],
            tag=tag,
            caller_number=self.channel.caller_number or None,
            place_at=place_at,
        )
        try:
            try:
                talk = await self._wait_for_agent(waiting)
            except ConnectFailed:
                await self._connect_failed(waiting)
                return
            if talk == "callback":
                return
            if not isinstance(talk, Talk):
                # Nobody took the call in time: apologise, promise a reply, and end it.
                d.acd.leave(waiting, Outcome.TIMEOUT)
                self._transition(CallEvent.WAIT_EXPIRED)
                await d.holding.release(queue, self.channel.id)
                bye = await self.play(d.prompts.media("hold_timeout"))
                await self.until_finished(bye, barge_in=False)
                self.hangup = Hangup(EndReason.HOLDING_TIMEOUT)
                await d.ari.hangup(self.channel.id)
                return
            try:
                await d.holding.release(queue, self.channel.id)
                await d.ari.add_to_bridge(talk.bridge_id, self.channel.id)
            except AriError:
                if not waiting.over.done():
                    await self._connect_failed(waiting)
                    return
                # The agent hung up (and the bridge went) before the caller got there.
            self._transition(CallEvent.AGENT_ANSWERED)
            await d.call_log.set_state(self.call_id, self.state)
            await waiting.over  # the agent hung up first; a caller hang-up cancels this
            self.hangup = Hangup(EndReason.AGENT_HANGUP)
            await d.ari.hangup(self.channel.id)
        finally:
            d.acd.leave(waiting)

    async def _connect_failed(self, waiting: Waiting) -> None:
        """An agent answered, but this caller could not be put through to them: end the call
        (never back in line: the agent took it). Leaving tells the ACD to end the agent's
        side and close the queue entry with the same reason."""
        log.error("caller could not join the agent", extra={"call_id": self.call_id})
        waiting.connect_failed = True
        self.hangup = Hangup(EndReason.CONNECT_FAILED)
        with contextlib.suppress(AriError):
            await self.deps.ari.hangup(self.channel.id)

    async def _wait_for_agent(self, waiting: Waiting) -> Talk | str:
        """Music until an agent answers (the ``Talk``), or ``timeout`` / ``callback``.

        Every so often the caller hears their place and the expected wait; after the
        queue's call-back time they are offered 「按1…回电」, and 1 books a call-back
        that keeps their place (the key works before the offer too).
        """
        queue = waiting.queue
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + queue.max_wait_s
        every = queue.announce_every_s or math.inf
        next_announce = start + every
        offer_at = start + queue.callback_after_s if queue.callback_after_s else math.inf
        while not waiting.connected.done():
            now = loop.time()
            if now >= deadline:
                return "timeout"
            key: asyncio.Future[Any] = asyncio.ensure_future(self.inbox.get())
            try:
                await asyncio.wait(
                    [waiting.connected, key],
                    timeout=min(deadline, next_announce, offer_at) - now,
                    return_when="FIRST_COMPLETED",
                )
            finally:
                if not key.done():
                    key.cancel()
            if waiting.connected.done():
                break
            pressed = key.result() if key.done() and not key.cancelled() else None
            if (
                isinstance(pressed, ChannelDtmfReceived)
                and pressed.digit == "1"
                and queue.callback_after_s
                and await self._offer_callback(waiting)
            ):
                return "callback"
            if loop.time() >= offer_at:
                offer_at = math.inf
                await self._say(waiting, ["callback_offer"])
            if loop.time() >= next_announce:
                await self._announce(waiting)
                next_announce = loop.time() + every
        return waiting.connected.result()

    async def _offer_callback(self, waiting: Waiting) -> bool:
        """Confirm the number on file or key another; book the call-back. False: keep waiting.

        The caller is held out of the ACD's offers meanwhile, so no agent rings while they
        are keying digits; their place in line is unchanged either way.
        """
        d = self.deps
        waiting.held = True
        try:
            number = normalise_phone(self.channel.caller_number or "")
            if number is not None:
                await self._say(waiting, ["callback_number_is", *number_prompts(number)])
                choice = await self._say(waiting, ["callback_confirm"], listen_s=8)
                if choice != "1":
                    number = None
            tries = 0
            while number is None and tries < 3 and not waiting.connected.done():
                tries += 1
                keyed = await self._collect_number(waiting)
                number = normalise_phone(keyed) if keyed else None
                if number is None:
                    await self._say(waiting, ["callback_invalid"])
            if number is None or waiting.connected.done():
                await self._say(waiting, ["callback_not_booked"])
                return False
        finally:
            waiting.held = False
            d.acd.kick()
        await d.acd.book_callback(waiting, number)
        await d.holding.release(waiting.queue.name, self.channel.id)
        bye = await self.play(d.prompts.media("callback_booked"))
        await self.until_finished(bye, barge_in=False)
        self.hangup = Hangup(EndReason.CALLBACK_REQUESTED)
        await d.ari.hangup(self.channel.id)
        return True

    async def _collect_number(self, waiting: Waiting) -> str:
        """Digits up to ``#`` (or a pause of a few seconds), after the 「请输入」 prompt."""
        first = await self._say(waiting, ["callback_enter"], listen_s=10)
        digits = first if first and first not in "#*" else ""
        if first == "#":
            return ""
        while len(digits) < 16:
            event = await self.next_event(5)
            if event is None or waiting.connected.done():
                break
            if isinstance(event, ChannelDtmfReceived):
                if event.digit == "#":
                    break
                digits += event.digit
        return digits

    async def _say(self, waiting: Waiting, names: list[str], *, listen_s: float = 0) -> str | None:
        """Play prompts to a waiting caller (a key barges in); an agent answering stops them.

        With ``listen_s`` the first key pressed during or after the prompts is returned.
        """
        d = self.deps
        playback = await self.play([d.prompts.media(n) for n in names])
        heard: asyncio.Future[Any] = asyncio.ensure_future(
            self.until_finished(playback, barge_in=listen_s > 0)
        )
        await asyncio.wait([heard, waiting.connected], return_when="FIRST_COMPLETED")
        if not heard.done():
            heard.cancel()
            await self.stop(playback)
            return None
        digit: str | None = heard.result()
        if digit is None and listen_s > 0:
            event = await self.next_event(listen_s)
            while event is not None and not isinstance(event, ChannelDtmfReceived):
                event = await self.next_event(listen_s)
            digit = event.digit if isinstance(event, ChannelDtmfReceived) else None
        return digit

    async def _announce(self, waiting: Waiting) -> None:
        d = self.deps
        await self._say(
            waiting, announcement(d.acd.position(waiting), d.acd.expected_wait_s(waiting))
        )

    async def _take_message(self, queue: str | None, reason: str) -> None:
        """Record a message (beep, ``#`` or silence ends it) and keep it for follow-up."""
        d = self.deps
        assert self.call_id is not None
        self._transition(CallEvent.TAKE_MESSAGE)
        await d.call_log.set_state(self.call_id, self.state)
        intro = await self.play(d.prompts.media(f"message_{reason.replace('-', '_')}"))
        await self.until_finished(intro, barge_in=False)
        name = f"message-{self.call_id}-{uuid.uuid4().hex[:8]}"
        config = d.config.messages
        await d.recorder.track_message(self.call_id, name, config.format)
        await d.ari.record(
            self.channel.id,
            name,
            fmt=config.format,
            max_duration_s=config.max_length_s,
            max_silence_s=config.max_silence_s,
            terminate_on="#",
            beep=True,
        )
        duration: float | None = None
        while True:
            event = await self.next_event(config.max_length_s + 10)
            if event is None:
                break
            if (
                isinstance(event, RecordingFinished | RecordingFailed)
                and event.recording.name == name
            ):
                duration = event.recording.duration_s
                break
        await d.messages.leave(
            call_id=self.call_id,
            queue=queue,
            reason=reason,
            recording=name,
            duration_s=duration,
            at=d.clock.now(),
        )
        self._transition(CallEvent.MESSAGE_LEFT)
        bye = await self.play(d.prompts.media("message_thanks"))
        await self.until_finished(bye, barge_in=False)
        self.hangup = Hangup(EndReason.MESSAGE_LEFT)
        await d.ari.hangup(self.channel.id)

    async def _record_step(self, step: IvrStep) -> None:
        assert self.call_id is not None
        await self.deps.call_log.add_ivr_step(
            self.call_id,
            node=step.node,
            input=step.input,
            action=step.action,
            at=step.at,
            choice=step.choice,
        )

    def _write_behind(self, write: Awaitable[None]) -> None:
        """Start a record write the call need not wait for; ``_close`` waits for it."""
        self._writes.append(asyncio.ensure_future(write))

    async def _close(self) -> None:
        # Earlier writes land first, so none can overwrite the closed record.
        for failed in await asyncio.gather(*self._writes, return_exceptions=True):
            if isinstance(failed, Exception):
                log.error("call record write failed: %s", failed, extra={"call_id": self.call_id})
        if self.call_id is None or self.hangup is None:
            return
        self.deps.recorder.call_ended(self.call_id)
        if self.machine.can(CallEvent.HANGUP):
            self._transition(CallEvent.HANGUP)
        try:
            await self.deps.call_log.close_call(
                self.call_id,
                ended_at=self.deps.clock.now(),
                reason=self.hangup.reason,
                cause=self.hangup.cause,
                cause_text=self.hangup.cause_text or cause_text(self.hangup.cause),
            )
        except Exception:
            # Left open, the record is closed by the next reconciliation.
            log.exception("could not close call record", extra={"call_id": self.call_id})
            return
        self.deps.on_closed(self.call_id)

    def _transition(self, event: CallEvent) -> None:
        self.machine.apply(event)

    # -- channel I/O the IVR uses -----------------------------------------------------
    def now(self) -> datetime:
        return self.deps.clock.now()

    async def play(self, media: str | list[str]) -> Playback:
        self.playing = await self.deps.ari.play(self.channel.id, media)
        return self.playing

    async def resync(self) -> None:
        """After the event stream was down: learn whether the prompt we wait on ended.

        A PlaybackFinished lost in the gap would leave the script waiting for it forever;
        if Asterisk no longer knows the playback, it has finished, so say so.
        """
        playback = self.playing
        if playback is None:
            return
        try:
            await self.deps.ari.get_playback(playback.id)
        except AriNotFound:
            finished = Playback(
                playback.id,
                playback.media_uri,
                playback.target_uri,
                "done",
                {**playback.raw, "state": "done"},
            )
            self.inbox.put_nowait(
                PlaybackFinished(
                    "PlaybackFinished",
                    self.deps.config.ari.app,
                    self.now(),
                    {"resync": True},
                    playback=finished,
                )
            )

    async def stop(self, playback: Playback) -> None:
        with contextlib.suppress(AriNotFound):  # it may just have finished
            await self.deps.ari.stop_playback(playback.id)

    async def next_event(self, timeout_s: float | None) -> Event | None:
        """The next event for this channel, or None when ``timeout_s`` passes first."""
        if timeout_s is not None and timeout_s <= 0:
            return self.inbox.get_nowait() if not self.inbox.empty() else None
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout_s)
        except TimeoutError:
            return None

    def pending_digit(self) -> str | None:
        """A digit typed ahead before a prompt started; stale playback events are dropped."""
        while not self.inbox.empty():
            event = self.inbox.get_nowait()
            if isinstance(event, ChannelDtmfReceived):
                return event.digit
        return None

    async def until_finished(self, playback: Playback, *, barge_in: bool) -> str | None:
        """Wait for a playback to end; with barge-in a digit stops it and is returned."""
        while True:
            event = await self.next_event(None)
            if isinstance(event, PlaybackFinished) and event.playback.id == playback.id:
                if event.playback.state == "failed":
                    log.error(
                        "prompt failed to play: %s",
                        playback.media_uri,
                        extra={"call_id": self.call_id},
                    )
                return None
            if barge_in and isinstance(event, ChannelDtmfReceived):
                await self.stop(playback)
                return event.digit

    async def drain(self, seconds: float) -> None:
        """Let ``seconds`` pass, discarding events (digits pressed while on hold)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            await self.next_event(left)
