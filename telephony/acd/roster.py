"""The agents as the ACD sees them, live: state machine, idle time, misses.

The roster is the one authority on an agent's state. Decisions (who is ready, who rings)
are taken here synchronously, so no two offers can see the same agent as ready; the
change is then written to the agent directory behind it, in order, with its time and
reason, and published to the live screens. A reader of the history waits for the
agent's writes in flight (``written``), so it never sees a state the history lacks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crm.agents import AgentDirectory, AgentRecord
from crm.clock import Clock
from crm.repository import DOCUMENTED_FIELDS, record_json
from telephony.acd.agent_state import AgentEvent, AgentState, agent_machine, can_take_calls
from telephony.acd.live import LiveEvents
from telephony.transitions import Machine

log = logging.getLogger(__name__)


class PauseReason:
    """Reasons the ACD itself pauses an agent (agents give their own for breaks)."""

    LOGGED_IN = "logged-in"  # logged in, not yet ready
    MISSED_CALLS = "missed-calls"
    SOFTPHONE_OFFLINE = "softphone-offline"
    SERVICE_RESTART = "service-restart"


@dataclass(frozen=True, slots=True)
class AgentView:
    """An agent as the ACD sees them now: what the API and the live screens are sent."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Agent id."""
    name: str
    """Display name."""
    endpoint: str
    """What Asterisk dials to ring the agent, e.g. PJSIP/1001."""
    skills: dict[str, int]
    """Queues served: {queue name: level 1-10}."""
    state: AgentState
    """Current state."""
    reason: str | None
    """Why the agent is paused (their own reason, or logged-in, missed-calls,
    softphone-offline, unreachable, service-restart); null in other states."""
    since: datetime
    """When the agent entered this state."""
    misses: int
    """Offers not answered in a row (reset by answering); too many pause the agent."""
    call_id: int | None
    """The call ringing, taken or being wrapped up; null otherwise."""
    wrap_up_until: datetime | None
    """When wrap-up ends by itself (ready again, unless ended early); null outside it."""


@dataclass(eq=False)
class LiveAgent:
    id: int
    name: str
    endpoint: str
    skills: dict[str, int]
    machine: Machine[AgentState, AgentEvent]
    reason: str | None
    since: datetime
    idle_since: float  # loop time the agent last became ready: longest idle rings first
    misses: int = 0
    call_id: int | None = None
    wrap_up: asyncio.TimerHandle | None = field(default=None, repr=False)
    wrap_up_until: datetime | None = None

    @property
    def state(self) -> AgentState:
        return self.machine.state

    @property
    def ready(self) -> bool:
        return can_take_calls(self.state)

    def serves(self, queue: str) -> bool:
        return queue in self.skills

    def view(self) -> AgentView:
        return AgentView(
            id=self.id,
            name=self.name,
            endpoint=self.endpoint,
            skills=dict(self.skills),
            state=self.state,
            reason=self.reason,
            since=self.since,
            misses=self.misses,
            call_id=self.call_id,
            wrap_up_until=self.wrap_up_until if self.state is AgentState.WRAP_UP else None,
        )

    def to_json(self) -> dict[str, object]:
        return record_json(self.view())


class AgentRoster:
    def __init__(self, directory: AgentDirectory, clock: Clock, live: LiveEvents) -> None:
        self.directory = directory
        self._clock = clock
        self._live = live
        self.agents: dict[int, LiveAgent] = {}
        self._write_locks: dict[int, asyncio.Lock] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._writing: dict[int, set[asyncio.Task[None]]] = {}  # by agent
        self.on_ready: Callable[[], None] = lambda: None  # the ACD looks for waiting calls

    async def load(self) -> None:
        """Agents as stored. Anyone caught mid-call by a restart starts paused, with why."""
        for record in await self.directory.list():
            agent = self._live_agent(record)
            self.agents[agent.id] = agent
            if agent.state in (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP):
                agent.machine = agent_machine(str(agent.id), AgentState.PAUSED)
                self._changed(agent, PauseReason.SERVICE_RESTART)

    def add(self, record: AgentRecord) -> LiveAgent:
        agent = self._live_agent(record)
        self.agents[agent.id] = agent
        self._live.publish("agent", agent=agent.to_json())
        return agent

    def update(self, record: AgentRecord) -> None:
        agent = self.agents.get(record.id)
        if agent is None:
            return
        agent.name, agent.endpoint, agent.skills = record.name, record.endpoint, dict(record.skills)
        self._live.publish("agent", agent=agent.to_json())
        self.on_ready()

    def remove(self, agent_id: int) -> None:
        self.agents.pop(agent_id, None)
        self._live.publish("agent-removed", agent_id=agent_id)

    def apply(
        self,
        agent: LiveAgent,
        event: AgentEvent,
        *,
        reason: str | None = None,
        call_id: int | None = None,
    ) -> AgentState:
        """Move the agent; raises ``IllegalTransition`` (HTTP 409) if that makes no sense."""
        agent.machine.apply(event)
        if event is AgentEvent.ANSWER:
            agent.misses = 0
        if agent.state is AgentState.PAUSED and reason is None:
            reason = PauseReason.LOGGED_IN if event is AgentEvent.LOG_IN else agent.reason
        agent.call_id = (
            call_id
            if agent.state in (AgentState.RINGING, AgentState.ON_CALL)
            else (agent.call_id if agent.state is AgentState.WRAP_UP else None)
        )
        if agent.wrap_up is not None and agent.state is not AgentState.WRAP_UP:
            agent.wrap_up.cancel()
            agent.wrap_up = None
        self._changed(agent, reason if agent.state is AgentState.PAUSED else None, call_id)
        if agent.ready:
            agent.idle_since = asyncio.get_running_loop().time()
            self.on_ready()
        return agent.state

    def start_wrap_up(self, agent: LiveAgent, seconds: float, done: Callable[[], None]) -> None:
        """After a call: wrap-up for ``seconds``, then ready (unless they moved on first)."""
        if agent.state is not AgentState.WRAP_UP:
            return

        def finish() -> None:
            agent.wrap_up = None
            if agent.state is AgentState.WRAP_UP:
                self.apply(agent, AgentEvent.WRAP_UP_DONE)
                done()

        agent.wrap_up = asyncio.get_running_loop().call_later(seconds, finish)
        # The hang-up's change was published before the length was known: the agent's
        # screen counts down from this one.
        agent.wrap_up_until = self._clock.now() + timedelta(seconds=seconds)
        self._live.publish("agent", agent=agent.to_json())

    def ready_for(self, queue: str, *, any_skill: bool = False) -> list[LiveAgent]:
        return [a for a in self.agents.values() if a.ready and (any_skill or a.serves(queue))]

    def logged_in_for(self, queue: str) -> list[LiveAgent]:
        return [
            a
            for a in self.agents.values()
            if a.serves(queue) and a.state is not AgentState.LOGGED_OUT
        ]

    def counts(self, queue: str | None = None) -> dict[str, int]:
        counts = {str(state): 0 for state in AgentState}
        for agent in self.agents.values():
            if queue is None or agent.serves(queue):
                counts[str(agent.state)] += 1
        return counts

    async def written(self, agent_id: int) -> None:
        """Wait until the agent's changes so far are stored, so that what the directory
        says (their history) is at least as new as the state just read from the roster."""
        pending = self._writing.get(agent_id)
        if pending:
            await asyncio.wait(list(pending))

    async def flush(self) -> None:
        """Wait for state writes in flight (tests and shutdown)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    def _changed(self, agent: LiveAgent, reason: str | None, call_id: int | None = None) -> None:
        agent.reason = reason
        agent.since = self._clock.now()
        self._live.publish("agent", agent=agent.to_json())
        lock = self._write_locks.setdefault(agent.id, asyncio.Lock())
        write = asyncio.ensure_future(
            self._persist(lock, agent.id, str(agent.state), reason, agent.since, call_id)
        )
        self._writes.add(write)
        self._writing.setdefault(agent.id, set()).add(write)
        write.add_done_callback(functools.partial(self._written, agent.id))

    def _written(self, agent_id: int, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        self._writing.get(agent_id, set()).discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("agent state not stored: %s", err, extra={"agent_id": agent_id})

    async def _persist(
        self,
        lock: asyncio.Lock,
        agent_id: int,
        state: str,
        reason: str | None,
        at: datetime,
        call_id: int | None,
    ) -> None:
        async with lock:  # FIFO: changes land in the order they happened
            await self.directory.record_state(
                agent_id, state=state, reason=reason, at=at, call_id=call_id
            )

    def _live_agent(self, record: AgentRecord) -> LiveAgent:
        loop = asyncio.get_running_loop()
        return LiveAgent(
            id=record.id,
            name=record.name,
            endpoint=record.endpoint,
            skills=dict(record.skills),
            machine=agent_machine(str(record.id), AgentState(record.state)),
            reason=record.state_reason,
            since=record.state_since,
            idle_since=loop.time(),
        )
