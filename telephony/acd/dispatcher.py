"""The ACD: match waiting calls with ready agents, ring them, bridge the answer.

Matching is synchronous (``_dispatch`` runs with no ``await`` between choosing an agent
and marking them ringing), so an agent is never offered two calls at once however many
callers arrive together. Each offer then runs as its own task: dial the agent (or, on
an emergency line, every ready agent and the duty phone), wait for the answer, the ring
timeout or the caller leaving, and either bridge caller and agent or put the call back
in line for the next agent.

An answer is final. From the moment an agent picks up, the caller is theirs (``taken``):
out of line before anything is awaited, never offered to anyone else, whatever fails
next. Phones that lost an emergency ring-all race are hung up beside the conversation,
not before it, so a slow hang-up never leaves the one who answered listening to nothing.
If caller and agent cannot be bridged (Asterisk refuses, or does not reply within the ARI
timeout), the call ends rather than going back in line: the agent, who has already
picked up, heard nobody and goes to wrap-up with the caller's number on their screen; the
caller is hung up; the queue entry and the call record say ``connect-failed``. A
call-centre wants that over a second agent ringing for a call the first one took, and
over retrying on an Asterisk that is not answering while both sides hear silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crm.clock import Clock
from crm.queue_callbacks import AttemptOutcome, CallbackBook, CallbackRecord, CallbackStatus
from crm.queue_facts import OfferOutcome, Outcome, QueueFacts
from crm.repository import record_json
from telephony.acd.agent_state import AgentEvent, AgentState
from telephony.acd.announcements import expected_wait_s
from telephony.acd.legs import Leg, OutboundLegs, outcome_of
from telephony.acd.live import LiveEvents
from telephony.acd.queue_view import QueueView
from telephony.acd.roster import AgentRoster, LiveAgent, PauseReason
from telephony.acd.waiting import ConnectFailed, Talk, Waiting
from telephony.ari import AriClient, AriError
from telephony.config import Config, QueueConfig, Strategy
from telephony.prompts import PromptLibrary
from telephony.recording.recorder import CallRecorder

log = logging.getLogger(__name__)

RING_GRACE_S = 2.0  # beyond the originate timeout, in case Asterisk's own timer is late
# A ring Asterisk has confirmed is ended by Asterisk (the originate's timeout), and an answer
# it reports late is still an answer; this long after the ring timeout its end was lost.
RING_LAST_RESORT_S = 60.0
HANDLE_TIMES_KEPT = 20
TALK_BRIDGE_PREFIX = "hotline-talk-"


class Acd:
    def __init__(
        self,
        config: Config,
        ari: AriClient,
        roster: AgentRoster,
        legs: OutboundLegs,
        facts: QueueFacts,
        clock: Clock,
        live: LiveEvents,
        callbacks: CallbackBook,
        prompts: PromptLibrary,
        recorder: CallRecorder,
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.callbacks = callbacks
        self.prompts = prompts
        self.ari = ari
        self.roster = roster
        self.legs = legs
        self.facts = facts
        self.clock = clock
        self.live = live
        self.waiting: list[Waiting] = []
        self._handle_times: dict[str, deque[float]] = {
            name: deque(maxlen=HANDLE_TIMES_KEPT) for name in config.queues
        }
        self._kick: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.stopping = False
        self._timer_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        roster.on_ready = self.kick

    async def start(self) -> None:
        """Load agents and recent handle times; close queue stays a stopped service left."""
        await self.roster.load()
        for name in self.config.queues:
            self._handle_times[name].extend(reversed(await self.facts.recent_handle_times(name)))
        now = self.clock.now()
        for entry in await self.facts.unfinished():
            await self.facts.left(entry.id, outcome=Outcome.SERVICE_STOPPED, at=now)
        # Call-backs live in the database: they keep their place across a restart.
        await self.callbacks.reset_dialling(at=now)
        for record in await self.callbacks.open():
            if record.queue in self.config.queues:
                self._line_up_callback(record)
        self.kick()

    async def stop(self) -> None:
        """Stop deciding; conversations in progress stay up (a restarted service finds
        them and ends the agent's side when the caller hangs up)."""
        self.stopping = True
        if self._kick is not None:
            self._kick.cancel()
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.roster.flush()

    # -- callers in and out ---------------------------------------------------------
    async def join(
        self,
        *,
        call_id: int,
        channel_id: str,
        queue: QueueConfig,
        tag: str | None,
        caller_number: str | None,
        place_at: datetime | None = None,
    ) -> Waiting:
        """Put a caller in line; ``place_at`` keeps an earlier place (after a restart)."""
        now = self.clock.now()
        entry_id = await self.facts.enter(
            call_id=call_id, queue=queue.name, tag=tag, priority=queue.priority, at=now
        )
        waiting = Waiting(entry_id, call_id, channel_id, queue, tag, caller_number, place_at or now)
        self.waiting.append(waiting)
        if queue.emergency:
            self.live.publish(
                "alert",
                alert="emergency",
                call_id=call_id,
                caller_number=caller_number,
                case_id=None,
                case_kind=None,
            )
        self._publish_queue(queue.name)
        self.kick()
        return waiting

    def leave(self, waiting: Waiting, outcome: str = Outcome.ABANDONED) -> None:
        """The caller stopped waiting (hung up, timed out, chose a call-back …)."""
        if waiting.gone:
            return
        waiting.gone = True
        waiting.left.set()
        if waiting in self.waiting:
            self.waiting.remove(waiting)
        if not waiting.connected.done():
            waiting.connected.cancel()
            if not waiting.taken:  # else the conversation's end closes the entry
                self._spawn(self.facts.left(_entry(waiting), outcome=outcome, at=self.clock.now()))
        self._publish_queue(waiting.queue.name)

    def open_now(self, queue: QueueConfig) -> bool:
        if queue.hours.always:
            return True
        local = self.clock.now().astimezone(ZoneInfo(self.config.company.timezone))
        return queue.hours.open_at(local.hour * 60 + local.minute)

    # -- call-backs that keep their place --------------------------------------------
    async def book_callback(self, waiting: Waiting, number: str) -> CallbackRecord:
        """The caller leaves the line; a call-back takes their place (same entry time)."""
        now = self.clock.now()
        expires = now + timedelta(seconds=self.config.callbacks.expire_after_s)
        record = await self.callbacks.request(
            call_id=waiting.call_id,
            queue=waiting.queue.name,
            number=number,
            place_at=waiting.place_at,
            at=now,
            expires_at=expires,
        )
        self.leave(waiting, Outcome.CALLBACK)
        self._line_up_callback(record)
        self.live.publish("callback", callback=record.to_json())
        self.kick()
        return record

    async def cancel_callback(self, callback_id: int) -> bool:
        cancelled = await self.callbacks.close(
            callback_id, status=CallbackStatus.CANCELLED, at=self.clock.now()
        )
        for waiting in list(self.waiting):
            if waiting.callback_id == callback_id:
                self._drop(waiting)
        if cancelled:
            self.live.publish(
                "callback", callback=(await self.callbacks.get(callback_id)).to_json()
            )
        return cancelled

    def _line_up_callback(self, record: CallbackRecord) -> None:
        loop = asyncio.get_running_loop()
        delay = (record.next_attempt_at - self.clock.now()).total_seconds()
        self.waiting.append(
            Waiting(
                entry_id=None,
                call_id=record.call_id,
                channel_id=None,
                queue=self.config.queues[record.queue],
                tag=None,
                caller_number=record.number,
                place_at=record.place_at,
                callback_id=record.id,
                attempts=record.attempts,
                not_before=loop.time() + max(0.0, delay),
                expires_at=record.expires_at,
            )
        )
        self._publish_queue(record.queue)

    def position(self, waiting: Waiting) -> int:
        """How many callers of the same queue are ahead of this one."""
        mine = waiting.order()
        return sum(
            1 for w in self.waiting if w.queue.name == waiting.queue.name and w.order() < mine
        )

    def expected_wait_s(self, waiting: Waiting) -> float:
        name = waiting.queue.name
        times = self._handle_times[name]
        handle = sum(times) / len(times) if times else self.config.acd.default_handle_s
        staffed = len(self.roster.logged_in_for(name))
        return expected_wait_s(self.position(waiting), handle, staffed)

    def snapshot(self) -> list[dict[str, Any]]:
        """Each queue now, as JSON (the API and the live screens)."""
        return [record_json(view) for view in self.queue_views()]

    def queue_views(self) -> list[QueueView]:
        """Each queue now: callers waiting, longest wait, agents by state."""
        now = self.clock.now()
        out = []
        for name, queue in self.config.queues.items():
            waiting = [w for w in self.waiting if w.queue.name == name]
            longest = max(((now - w.place_at).total_seconds() for w in waiting), default=0.0)
            out.append(
                QueueView(
                    queue=name,
                    label=queue.label,
                    waiting=len(waiting),
                    longest_wait_s=round(longest, 1),
                    agents=self.roster.counts(name),
                )
            )
        return out

    # -- matching ---------------------------------------------------------------------
    def kick(self) -> None:
        """Look for matches soon (once, however many changes arrive meanwhile)."""
        if self._kick is None:
            self._kick = asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._kick = None
        now = asyncio.get_running_loop().time()
        for waiting in sorted(self.waiting, key=Waiting.order):
            if waiting.offering or waiting.gone or waiting.held or waiting.taken:
                continue
            if waiting.is_callback and waiting.not_before > now:
                self._kick_at(waiting.not_before)
                continue
            queue = waiting.queue
            ready = self.roster.ready_for(queue.name, any_skill=queue.emergency)
            duty = self.config.acd.duty_endpoint if queue.emergency else None
            if not ready and duty is None:
                continue
            if waiting.is_callback:
                if not ready:
                    continue
                chosen = [min(ready, key=lambda a: (a.idle_since, -a.skills.get(queue.name, 0)))]
                duty = None
            elif queue.strategy == Strategy.RING_ALL or queue.emergency:
                chosen = ready
            else:
                fresh = [a for a in ready if a.id not in waiting.tried] or ready
                chosen = [min(fresh, key=lambda a: (a.idle_since, -a.skills.get(queue.name, 0)))]
            for agent in chosen:
                self.roster.apply(agent, AgentEvent.OFFER, call_id=waiting.call_id)
            waiting.offering = True
            self._spawn(self._offer(waiting, chosen, duty))

    def _kick_at(self, when: float) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is None or self._timer_at > when:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = loop.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.kick()

    # -- one offer --------------------------------------------------------------------
    async def _offer(self, waiting: Waiting, agents: list[LiveAgent], duty: str | None) -> None:
        queue = waiting.queue
        if waiting.is_callback:
            try:
                await self._call_back(waiting, agents[0])
            except Exception:
                log.exception("call-back failed", extra={"call_id": waiting.call_id})
            finally:
                waiting.offering = False
                self.kick()
            return
        try:
            ringing = await self._ring(waiting, agents, duty)
            winner, outcomes = await self._await_answer(waiting, ringing)
            for leg, (agent, offer_id) in ringing.items():
                if leg is winner:
                    continue
                unheard = OfferOutcome.NO_ANSWER if leg.confirmed else OfferOutcome.UNCONFIRMED
                outcome = outcomes.get(leg, unheard)
                if winner is not None or waiting.gone:
                    outcome = OfferOutcome.LOST_RACE if winner else OfferOutcome.CALLER_GONE
                if winner is None:
                    await self._ring_ended(leg, agent, offer_id, outcome, waiting)
                else:  # beside the conversation: the winner must not wait for these
                    self._spawn(self._ring_ended(leg, agent, offer_id, outcome, waiting))
            if winner is not None:
                agent, offer_id = ringing[winner]
                await self._connect(waiting, winner, agent, offer_id)
        except Exception:
            log.exception("offer failed", extra={"call_id": waiting.call_id})
            for agent in agents:
                if agent.state is AgentState.RINGING:
                    self.roster.apply(agent, AgentEvent.CALLER_GONE)
        finally:
            waiting.offering = False
            if not waiting.gone and not waiting.taken:
                self.kick()
            log.debug("offer done", extra={"call_id": waiting.call_id, "queue": queue.name})

    async def _ring_ended(
        self,
        leg: Leg,
        agent: LiveAgent | None,
        offer_id: int,
        outcome: str,
        waiting: Waiting,
    ) -> None:
        """Stop a phone ringing, then free its agent (not before: one call per phone)."""
        await self.legs.hang_up(leg)
        self._offer_ended(agent, offer_id, outcome, waiting)

    async def _ring(
        self, waiting: Waiting, agents: list[LiveAgent], duty: str | None
    ) -> dict[Leg, tuple[LiveAgent | None, int]]:
        queue = waiting.queue
        targets: list[tuple[LiveAgent | None, str]] = [(a, a.endpoint) for a in agents]
        if duty is not None:
            targets.append((None, duty))
        ringing: dict[Leg, tuple[LiveAgent | None, int]] = {}
        for agent, endpoint in targets:
            if waiting.gone:
                if agent is not None:
                    self.roster.apply(agent, AgentEvent.CALLER_GONE)
                continue
            offer_id = await self.facts.offer(
                _entry(waiting),
                agent_id=agent.id if agent else None,
                endpoint=endpoint,
                at=self.clock.now(),
            )
            if agent is not None and not await self._registered(endpoint):
                self._offer_ended(agent, offer_id, OfferOutcome.UNAVAILABLE, waiting)
                continue
            leg = await self.legs.dial(
                endpoint,
                prefix="agent-",
                ring_timeout_s=queue.ring_timeout_s,
                caller_id=_display(waiting, queue),
                purpose="agent",
            )
            ringing[leg] = (agent, offer_id)
        return ringing

    async def _registered(self, endpoint: str) -> bool:
        """A PJSIP softphone that is not registered is skipped (and its agent paused)."""
        technology, _, resource = endpoint.partition("/")
        if technology.upper() != "PJSIP" or "@" in resource:
            return True
        try:
            return await self.ari.endpoint_state("PJSIP", resource) != "offline"
        except AriError:
            return False

    async def _await_answer(
        self, waiting: Waiting, ringing: dict[Leg, tuple[LiveAgent | None, int]]
    ) -> tuple[Leg | None, dict[Leg, str]]:
        """The first leg to answer, or None; and how the others ended meanwhile.

        Asterisk ends each ring at the ring timeout itself. Legs it has confirmed are left
        to that (a loaded Asterisk can be many seconds behind, and giving up on our own
        clock would hang up on an agent picking up); only legs it never confirmed are
        given up at the ring timeout and its grace.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + waiting.queue.ring_timeout_s + RING_GRACE_S
        last_resort = deadline - RING_GRACE_S + RING_LAST_RESORT_S
        outcomes: dict[Leg, str] = {}
        live = set(ringing)
        left = asyncio.ensure_future(waiting.left.wait())
        try:
            while live and not waiting.gone:
                futures: list[asyncio.Future[Any]] = [left]
                for leg in live:
                    futures += [leg.answered, leg.ended]
                now = loop.time()
                until = last_resort if any(leg.confirmed for leg in live) else deadline
                if now >= until:
                    break
                wake = deadline if now < deadline else until  # legs may be confirmed meanwhile
                await asyncio.wait(futures, timeout=wake - now, return_when="FIRST_COMPLETED")
                for leg in list(live):
                    if leg.answered.done() and not leg.answered.cancelled():
                        return leg, outcomes
                    if leg.ended.done():
                        outcomes[leg] = outcome_of(leg.ended.result())
                        live.discard(leg)
            return None, outcomes
        finally:
            left.cancel()

    def _offer_ended(
        self, agent: LiveAgent | None, offer_id: int, outcome: str, waiting: Waiting
    ) -> None:
        self._spawn(self.facts.offer_ended(offer_id, outcome=outcome, at=self.clock.now()))
        if agent is None or agent.state is not AgentState.RINGING:
            return
        if outcome in (OfferOutcome.LOST_RACE, OfferOutcome.CALLER_GONE, OfferOutcome.UNCONFIRMED):
            self.roster.apply(agent, AgentEvent.CALLER_GONE)  # back to ready, no miss
        elif outcome in (OfferOutcome.UNAVAILABLE, OfferOutcome.FAILED):
            reason = (
                PauseReason.SOFTPHONE_OFFLINE
                if outcome == OfferOutcome.UNAVAILABLE
                else "unreachable"
            )
            self.roster.apply(agent, AgentEvent.UNREACHABLE, reason=reason)
        else:
            self._agent_missed(agent, outcome, waiting)

    def _agent_missed(self, agent: LiveAgent, outcome: str, waiting: Waiting) -> None:
        """No answer or busy is a miss; too many in a row pause the agent."""
        if agent.state is not AgentState.RINGING:
            return
        if outcome == OfferOutcome.FAILED:
            self.roster.apply(agent, AgentEvent.UNREACHABLE, reason="unreachable")
            return
        waiting.tried.add(agent.id)
        agent.misses += 1
        if agent.misses >= self.config.acd.max_misses:
            self.roster.apply(agent, AgentEvent.MISSED_TOO_OFTEN, reason=PauseReason.MISSED_CALLS)
        else:
            self.roster.apply(agent, AgentEvent.NO_ANSWER)

    # -- the conversation -------------------------------------------------------------
    async def _connect(
        self, waiting: Waiting, leg: Leg, agent: LiveAgent | None, offer_id: int
    ) -> None:
        now = self.clock.now()
        if waiting.gone:  # the caller hung up just as the phone was picked up
            await self.legs.hang_up(leg)
            self._offer_ended(agent, offer_id, OfferOutcome.CALLER_GONE, waiting)
            return
        # The caller is this agent's from now on (see the module's doc): no await before.
        waiting.taken = True
        if waiting in self.waiting:
            self.waiting.remove(waiting)
        bridge_id = f"{TALK_BRIDGE_PREFIX}{waiting.call_id}-{uuid.uuid4().hex[:6]}"
        try:
            if agent is not None:
                self.roster.apply(agent, AgentEvent.ANSWER, call_id=waiting.call_id)
            self._spawn(self.facts.offer_ended(offer_id, outcome=OfferOutcome.ANSWERED, at=now))
            self._spawn(
                self.facts.answered(_entry(waiting), agent_id=agent.id if agent else None, at=now)
            )
            self._publish_queue(waiting.queue.name)
            await self.ari.create_bridge(bridge_id, bridge_type="mixing", name=bridge_id)
            await self.ari.add_to_bridge(bridge_id, leg.channel_id)
            # Beside the caller joining, not before: recording must not delay the hello.
            self._spawn(
                self.recorder.conversation(
                    waiting.call_id, bridge_id, resident=waiting.channel_id, agent=leg.channel_id
                )
            )
            name = agent.name if agent else "duty"
            if not waiting.connected.done():  # else the caller hung up meanwhile
                waiting.connected.set_result(Talk(bridge_id, agent.id if agent else None, name))
            await self._talk(waiting, leg)
        except AriError as err:
            log.error("caller and agent not bridged: %s", err, extra={"call_id": waiting.call_id})
        finally:
            if not self.stopping:
                if not waiting.connected.done():  # the conversation never started: end it
                    waiting.connect_failed = True
                    waiting.connected.set_exception(ConnectFailed(bridge_id))
                await self._end_talk(waiting, leg, agent, now, bridge_id)

    async def _end_talk(
        self,
        waiting: Waiting,
        leg: Leg,
        agent: LiveAgent | None,
        answered: datetime,
        bridge_id: str,
    ) -> None:
        """The conversation is over: hang up the agent, record it, start their wrap-up."""
        end = self.clock.now()
        await self.legs.hang_up(leg)
        with contextlib.suppress(AriError):
            await self.ari.destroy_bridge(bridge_id)
        outcome = Outcome.CONNECT_FAILED if waiting.connect_failed else Outcome.ANSWERED
        self._spawn(self.facts.talk_ended(_entry(waiting), at=end))
        self._spawn(self.facts.left(_entry(waiting), outcome=outcome, at=end))
        if agent is not None and agent.state is AgentState.ON_CALL:
            self.roster.apply(agent, AgentEvent.HANG_UP, call_id=waiting.call_id)
            self.roster.start_wrap_up(
                agent,
                waiting.queue.wrap_up_s,
                lambda: self._wrapped_up(waiting, answered),
            )

    async def _talk(self, waiting: Waiting, leg: Leg) -> None:
        """Until one side hangs up; the agent hanging up first ends the caller's call."""
        left: asyncio.Future[Any] = asyncio.ensure_future(waiting.left.wait())
        try:
            await asyncio.wait([left, leg.ended], return_when="FIRST_COMPLETED")
        finally:
            left.cancel()
        if leg.ended.done() and not waiting.over.done():
            waiting.over.set_result("agent-hangup")

    def _wrapped_up(self, waiting: Waiting, answered_at: datetime) -> None:
        end = self.clock.now()
        self._handle_times[waiting.queue.name].append((end - answered_at).total_seconds())
        self._spawn(self.facts.wrap_up_ended(_entry(waiting), at=end))

    # -- one call-back: the agent first, then the resident ------------------------------
    async def _call_back(self, waiting: Waiting, agent: LiveAgent) -> None:
        assert waiting.callback_id is not None
        assert waiting.caller_number is not None
        book, queue, cb = self.callbacks, waiting.queue, self.config.callbacks
        now = self.clock.now()
        if waiting.expires_at is not None and now >= waiting.expires_at:
            self.roster.apply(agent, AgentEvent.CALLER_GONE)
            await book.close(waiting.callback_id, status=CallbackStatus.EXPIRED, at=now)
            self._drop(waiting)
            return
        attempt = await book.start_attempt(waiting.callback_id, agent_id=agent.id, at=now)
        self.live.publish("callback-attempt", callback_id=waiting.callback_id, agent_id=agent.id)
        agent_leg = await self.legs.dial(
            agent.endpoint,
            prefix="agent-",
            ring_timeout_s=queue.ring_timeout_s,
            caller_id=f'"回电 {queue.label}" <{waiting.caller_number}>',
            purpose="agent",
        )
        if not await self._answered(agent_leg, queue.ring_timeout_s, waiting):
            await self.legs.hang_up(agent_leg)
            outcome = outcome_of(agent_leg.ended.result() if agent_leg.ended.done() else None)
            self._agent_missed(agent, outcome, waiting)
            await book.finish_attempt(
                waiting.callback_id,
                attempt,
                outcome=AttemptOutcome.AGENT_MISSED,
                at=self.clock.now(),
                counts=False,
                status=CallbackStatus.WAITING,
            )
            self.live.publish(
                "callback-attempt-done",
                callback_id=waiting.callback_id,
                outcome=AttemptOutcome.AGENT_MISSED,
                status=CallbackStatus.WAITING,
            )
            return
        self.roster.apply(agent, AgentEvent.ANSWER, call_id=waiting.call_id)
        resident_leg: Leg | None = None
        outcome = AttemptOutcome.FAILED
        agent_quit = False
        bridge_id = f"hotline-callback-{waiting.callback_id}-{uuid.uuid4().hex[:6]}"
        try:
            # A short whisper first: which queue this call-back is for.
            await self._whisper(agent_leg, f"callback_whisper_{queue.name}")
            resident_leg = await self.legs.dial(
                cb.dial.format(number=waiting.caller_number),
                prefix="dial-",
                ring_timeout_s=cb.ring_timeout_s,
                caller_id=cb.caller_id,
                purpose="callback",
            )
            if await self._answered(resident_leg, cb.ring_timeout_s, waiting, also=agent_leg):
                outcome = AttemptOutcome.REACHED
                await self.ari.create_bridge(bridge_id, bridge_type="mixing", name=bridge_id)
                await self.ari.add_to_bridge(bridge_id, agent_leg.channel_id)
                await self.ari.add_to_bridge(bridge_id, resident_leg.channel_id)
                self._spawn(
                    self.recorder.conversation(
                        waiting.call_id,
                        bridge_id,
                        resident=resident_leg.channel_id,
                        agent=agent_leg.channel_id,
                    )
                )
                await asyncio.wait(
                    [agent_leg.ended, resident_leg.ended], return_when="FIRST_COMPLETED"
                )
            elif agent_leg.ended.done():
                agent_quit = True  # before the resident answered: not the resident's try
            elif resident_leg.ended.done():
                outcome = outcome_of(resident_leg.ended.result())
            else:
                outcome = AttemptOutcome.NO_ANSWER
        finally:
            # On service stop a call-back conversation goes on; the restart closes the attempt.
            if not self.stopping:
                await self._end_call_back(waiting, agent, agent_leg, resident_leg, bridge_id)
                await self._callback_attempt_done(
                    waiting,
                    attempt,
                    AttemptOutcome.FAILED if agent_quit else outcome,
                    not agent_quit,
                )

    async def _end_call_back(
        self,
        waiting: Waiting,
        agent: LiveAgent,
        agent_leg: Leg,
        resident_leg: Leg | None,
        bridge_id: str,
    ) -> None:
        for leg in (resident_leg, agent_leg):
            if leg is not None:
                await self.legs.hang_up(leg)
        with contextlib.suppress(AriError):
            await self.ari.destroy_bridge(bridge_id)
        self.recorder.call_ended(waiting.call_id)
        if agent.state is AgentState.ON_CALL:
            self.roster.apply(agent, AgentEvent.HANG_UP, call_id=waiting.call_id)
            self.roster.start_wrap_up(agent, waiting.queue.wrap_up_s, lambda: None)

    async def _callback_attempt_done(
        self, waiting: Waiting, attempt: int, outcome: str, counts: bool
    ) -> None:
        assert waiting.callback_id is not None
        now = self.clock.now()
        waiting.attempts += 1 if counts else 0
        cb = self.config.callbacks
        retry_at = now + timedelta(seconds=cb.retry_delay_s)
        if outcome == AttemptOutcome.REACHED:
            status = CallbackStatus.REACHED
        elif waiting.attempts >= cb.max_attempts:
            status = CallbackStatus.FAILED
        elif waiting.expires_at is not None and retry_at >= waiting.expires_at:
            status = CallbackStatus.EXPIRED
        else:
            status = CallbackStatus.WAITING
        await self.callbacks.finish_attempt(
            waiting.callback_id,
            attempt,
            outcome=outcome,
            at=now,
            counts=counts,
            status=status,
            next_attempt_at=retry_at if status == CallbackStatus.WAITING else None,
        )
        self.live.publish(
            "callback-attempt-done", callback_id=waiting.callback_id, outcome=outcome, status=status
        )
        if status == CallbackStatus.WAITING:
            waiting.not_before = asyncio.get_running_loop().time() + cb.retry_delay_s
        else:
            self._drop(waiting)

    def _drop(self, waiting: Waiting) -> None:
        waiting.gone = True
        waiting.left.set()
        if waiting in self.waiting:
            self.waiting.remove(waiting)
        self._publish_queue(waiting.queue.name)

    async def _answered(
        self, leg: Leg, ring_timeout_s: float, waiting: Waiting, *, also: Leg | None = None
    ) -> bool:
        """Did ``leg`` answer before its ring timeout (and before ``also`` hung up)?"""
        watch: list[asyncio.Future[Any]] = [leg.answered, leg.ended]
        if also is not None:
            watch.append(also.ended)
        left: asyncio.Future[Any] = asyncio.ensure_future(waiting.left.wait())
        try:
            await asyncio.wait(
                [*watch, left], timeout=ring_timeout_s + RING_GRACE_S, return_when="FIRST_COMPLETED"
            )
        finally:
            left.cancel()
        return leg.answered.done() and not leg.answered.cancelled() and not waiting.gone

    async def _whisper(self, leg: Leg, prompt: str) -> None:
        await self.legs.say(leg, self.prompts.media(prompt), limit_s=10)

    # -- plumbing ---------------------------------------------------------------------
    def _publish_queue(self, name: str) -> None:
        for queue in self.snapshot():
            if queue["queue"] == name:
                self.live.publish("queue", queue=queue)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("ACD task failed: %r", err)


def _entry(waiting: Waiting) -> int:
    """The queue-facts row of a live caller (call-backs have none of their own)."""
    assert waiting.entry_id is not None, "a live caller always has a queue entry"
    return waiting.entry_id


def _display(waiting: Waiting, queue: QueueConfig) -> str:
    """What the agent's phone shows: the queue and the caller's number."""
    number = waiting.caller_number or ""
    return f'"{queue.label} {number}" <{number}>' if number else f'"{queue.label}" <400>'
