"""Walks one caller through the menu and returns where they chose to go.

Per node: play the prompt, and collect one digit. A digit pressed while a prompt plays
stops it (barge-in) and counts at once, and digits typed ahead are not lost. Silence or
a key the node does not know re-prompts; after ``max_retries`` the caller goes to the
operator, because a resident who cannot use the menu still needs a person. Every step is
recorded (node, input, action, time) before the next one starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from crm.calls import IvrChoice
from telephony.ari.events import ChannelDtmfReceived, Event, PlaybackFinished
from telephony.ari.models import Playback
from telephony.ivr.menu import Action, ActionKind, Menu, MenuNode
from telephony.prompts import PromptLibrary
from telephony.transitions import Machine

log = logging.getLogger(__name__)

# '*' repeats the prompt; a caller leaning on it is sent on after this many repeats.
MAX_REPEATS = 5


class CallChannel(Protocol):
    """What the IVR needs from a call: play, stop, and the channel's next events."""

    def now(self) -> datetime: ...
    async def play(self, media: str | list[str]) -> Playback: ...
    async def stop(self, playback: Playback) -> None: ...
    async def next_event(self, timeout_s: float | None) -> Event | None: ...
    def pending_digit(self) -> str | None: ...


@dataclass(frozen=True)
class IvrStep:
    node: str
    input: str  # a digit, "timeout" or "invalid:<digit>"
    action: str
    at: datetime
    choice: IvrChoice | None = None  # what the caller chose by this step, if anything


class Collect(StrEnum):
    PROMPTING = "prompting"
    WAITING = "waiting"
    GOT_DIGIT = "got-digit"
    TIMED_OUT = "timed-out"


class CollectEvent(StrEnum):
    DIGIT = "digit"
    PROMPT_DONE = "prompt-done"
    SILENCE = "silence"


COLLECT: dict[tuple[Collect, CollectEvent], Collect] = {
    (Collect.PROMPTING, CollectEvent.DIGIT): Collect.GOT_DIGIT,
    (Collect.PROMPTING, CollectEvent.PROMPT_DONE): Collect.WAITING,
    (Collect.WAITING, CollectEvent.DIGIT): Collect.GOT_DIGIT,
    (Collect.WAITING, CollectEvent.SILENCE): Collect.TIMED_OUT,
}


class IvrEngine:
    def __init__(
        self,
        menu: Menu,
        prompts: PromptLibrary,
        channel: CallChannel,
        record: Callable[[IvrStep], Awaitable[None]],
        *,
        call_id: str = "",
    ) -> None:
        self.call_id = call_id
        self.menu = menu
        self.prompts = prompts
        self.channel = channel
        self.record = record

    async def run(self, first_digit: str | None = None) -> Action:
        node = self.menu.node(self.menu.root)
        retries = repeats = 0
        digit = first_digit
        notice: str | None = None  # "invalid" / "no_input" before the re-prompt
        while True:
            if digit is None:
                digit = await self.collect(node, notice)
            notice = None
            if digit is None:
                action = await self._retry(node, "timeout", retries)
                retries += 1
                notice = "no_input"
            elif (chosen := node.options.get(digit)) is None:
                action = await self._retry(node, f"invalid:{digit}", retries)
                retries += 1
                notice = "invalid"
            elif chosen.kind is ActionKind.REPEAT:
                repeats += 1
                action = Action(ActionKind.OPERATOR) if repeats > MAX_REPEATS else chosen
                await self._step(node, digit, action, chosen=action is chosen)
            else:
                action = chosen
                await self._step(node, digit, action)
            digit = None
            if action.kind is ActionKind.SUBMENU:
                node = self.menu.node(action.target)
                retries = repeats = 0
            elif action.queue is not None:
                return action

    async def _retry(self, node: MenuNode, what: str, retries: int) -> Action:
        if retries >= node.max_retries:
            action = Action(ActionKind.OPERATOR)
        else:
            action = Action(ActionKind.REPEAT)
        await self._step(node, what, action, reprompt=True)
        return action

    async def _step(
        self,
        node: MenuNode,
        what: str,
        action: Action,
        *,
        reprompt: bool = False,
        chosen: bool = True,
    ) -> None:
        shown = "reprompt" if reprompt and action.kind is ActionKind.REPEAT else str(action)
        # Only a key the caller pressed is a choice: the operator the engine falls back to
        # (after silence, wrong keys, or '*' held down) keeps what they had chosen so far,
        # e.g. 报修 in the repair menu.
        choice = self._choice(action) if chosen and not reprompt else None
        await self.record(IvrStep(node.id, what, shown, self.channel.now(), choice))

    def _choice(self, action: Action) -> IvrChoice | None:
        if action.kind is ActionKind.SUBMENU:
            stands_for = self.menu.node(action.target).stands_for
            return IvrChoice(stands_for) if stands_for else None
        if action.queue is not None:
            return IvrChoice(action.queue, action.tag or None)
        return None

    async def collect(self, node: MenuNode, notice: str | None) -> str | None:
        """Play the node's prompt (after a notice like 'invalid') and return one digit or None."""
        machine = Machine("ivr-collect", COLLECT, Collect.PROMPTING, call_id=self.call_id)
        typed_ahead = self.channel.pending_digit()
        if typed_ahead is not None:
            machine.apply(CollectEvent.DIGIT)
            return typed_ahead
        media = [self.prompts.media(notice)] if notice else []
        media.append(self.prompts.media(node.prompt))
        playback = await self.channel.play(media)
        while machine.state is Collect.PROMPTING:
            event = await self.channel.next_event(None)
            if isinstance(event, ChannelDtmfReceived):
                await self.channel.stop(playback)
                machine.apply(CollectEvent.DIGIT)
                return event.digit
            if isinstance(event, PlaybackFinished) and event.playback.id == playback.id:
                machine.apply(CollectEvent.PROMPT_DONE)
        digit = await self._digit_within(node.timeout_s)
        machine.apply(CollectEvent.SILENCE if digit is None else CollectEvent.DIGIT)
        return digit

    async def _digit_within(self, seconds: float) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            event = await self.channel.next_event(left)
            if event is None:
                return None
            if isinstance(event, ChannelDtmfReceived):
                return event.digit
        return None
