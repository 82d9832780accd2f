"""The agent directory: who the agents are, which queues they serve, and their state history.

The live state machine is the ACD's (``telephony.acd``); this repository is where every
change lands, with its time and reason, so that a restart finds agents as they were and
reports can say how long each spent ready, on calls or paused.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from crm import validation
from crm.exceptions import Conflict, InvalidInput, NotFound, StorageError
from crm.models import Agent, AgentSkill, AgentStateChange
from crm.repository import DOCUMENTED_FIELDS, OneOf, Repository, record_json, require_aware
from crm.uncancellable import uncancellable

# Channel technology/resource as Asterisk dials it: PJSIP/1001, Local/1001@sim-agents.
ENDPOINT = re.compile(r"[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.+@-]{1,80}")
MAX_LEVEL = 10


class AgentState(StrEnum):
    """An agent's states, as stored (telephony/acd/agent_state.py moves agents between them)."""

    LOGGED_OUT = "logged-out"
    READY = "ready"
    RINGING = "ringing"  # a call is offered; their softphone rings
    ON_CALL = "on-call"
    WRAP_UP = "wrap-up"  # after a call, time to finish notes before the next one
    PAUSED = "paused"  # with a reason (break, training, missed calls …)


LOGGED_OUT = AgentState.LOGGED_OUT


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: int
    name: str
    endpoint: str
    skills: Mapping[str, int]  # queue → level (1 lowest … 10)
    state: str
    state_reason: str | None
    state_since: datetime
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {**record_json(self), "skills": dict(self.skills)}


@dataclass(frozen=True, slots=True)
class StateChangeRecord:
    """One stored change of an agent's state."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    state: Annotated[str, OneOf(tuple(AgentState))]
    """The state entered."""
    reason: str | None
    """Pause reason when the state is paused, else null."""
    call_id: int | None
    """The call rung or taken, for ringing and on-call."""
    at: datetime
    """When the change happened."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


def check_agent_fields(
    *, name: str | None, endpoint: str | None, skills: Mapping[str, int] | None
) -> None:
    """Refuse what would make an agent that cannot be dialled or matched to a queue."""
    if name is not None:
        validation.required_name_text("name", name, max_len=80)
    if endpoint is not None and not ENDPOINT.fullmatch(endpoint):
        raise InvalidInput("endpoint", "must look like PJSIP/1001 (technology/resource)")
    if skills is not None:
        for queue, level in skills.items():
            if not isinstance(level, int) or isinstance(level, bool):
                raise InvalidInput(f"skills.{queue}", "level must be an integer")
            if not 1 <= level <= MAX_LEVEL:
                raise InvalidInput(f"skills.{queue}", f"level must be 1 to {MAX_LEVEL}")


class AgentDirectory(Repository):
    @uncancellable
    async def create(
        self, *, name: str, endpoint: str, skills: Mapping[str, int], at: datetime
    ) -> AgentRecord:
        check_agent_fields(name=name, endpoint=endpoint, skills=skills)
        require_aware("at", at)
        try:
            async with self._transaction("create agent") as session:
                agent = Agent(
                    name=name.strip(),
                    endpoint=endpoint,
                    state=LOGGED_OUT,
                    state_since=at,
                    created_at=at,
                    active=True,
                    skills=[AgentSkill(queue=q, level=lvl) for q, lvl in skills.items()],
                )
                session.add(agent)
                await session.flush()
                session.add(AgentStateChange(agent_id=agent.id, state=LOGGED_OUT, at=at))
                agent_id = agent.id
        except StorageError as err:
            if isinstance(err.__cause__, IntegrityError):
                raise Conflict(f"endpoint {endpoint} already belongs to an agent") from err
            raise
        return await self.get(agent_id)

    @uncancellable
    async def update(
        self,
        agent_id: int,
        *,
        name: str | None = None,
        endpoint: str | None = None,
        skills: Mapping[str, int] | None = None,
    ) -> AgentRecord:
        check_agent_fields(name=name, endpoint=endpoint, skills=skills)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name.strip()
        if endpoint is not None:
            values["endpoint"] = endpoint
        try:
            async with self._transaction("update agent") as session:
                if await session.get(Agent, agent_id) is None:
                    raise NotFound("agent", agent_id)
                if values:
                    await session.execute(update(Agent).where(Agent.id == agent_id).values(values))
                if skills is not None:
                    await session.execute(delete(AgentSkill).where(AgentSkill.agent_id == agent_id))
                    if skills:
                        await session.execute(
                            insert(AgentSkill),
                            [
                                {"agent_id": agent_id, "queue": q, "level": v}
                                for q, v in skills.items()
                            ],
                        )
        except StorageError as err:
            if isinstance(err.__cause__, IntegrityError):
                raise Conflict(f"endpoint {endpoint} already belongs to an agent") from err
            raise
        return await self.get(agent_id)

    @uncancellable
    async def set_active(self, agent_id: int, active: bool) -> AgentRecord:
        async with self._transaction("set_active") as session:
            result = await session.execute(
                update(Agent).where(Agent.id == agent_id).values(active=active).returning(Agent.id)
            )
            if result.scalar_one_or_none() is None:
                raise NotFound("agent", agent_id)
        return await self.get(agent_id)

    @uncancellable
    async def record_state(
        self,
        agent_id: int,
        *,
        state: str,
        reason: str | None,
        at: datetime,
        call_id: int | None = None,
    ) -> None:
        """Store the new state and append it to the history, in one transaction."""
        require_aware("at", at)
        async with self._transaction("record_state") as session:
            result = await session.execute(
                update(Agent)
                .where(Agent.id == agent_id)
                .values(state=state, state_reason=reason, state_since=at)
                .returning(Agent.id)
            )
            if result.scalar_one_or_none() is None:
                raise NotFound("agent", agent_id)
            session.add(
                AgentStateChange(
                    agent_id=agent_id, state=state, reason=reason, call_id=call_id, at=at
                )
            )

    @uncancellable
    async def get(self, agent_id: int) -> AgentRecord:
        found = await self._select("get agent", Agent.id == agent_id)
        if not found:
            raise NotFound("agent", agent_id)
        return found[0]

    @uncancellable
    async def list(self, *, include_inactive: bool = False) -> builtins.list[AgentRecord]:
        if include_inactive:
            return await self._select("list agents")
        return await self._select("list agents", Agent.active.is_(True))

    @uncancellable
    async def history(self, agent_id: int, *, limit: int = 100) -> builtins.list[StateChangeRecord]:
        """The agent's latest state changes, newest first."""
        statement = (
            select(AgentStateChange)
            .where(AgentStateChange.agent_id == agent_id)
            .order_by(AgentStateChange.at.desc(), AgentStateChange.id.desc())
            .limit(limit)
        )
        async with self._transaction("agent history") as session:
            if await session.get(Agent, agent_id) is None:
                raise NotFound("agent", agent_id)
            rows = (await session.scalars(statement)).all()
        return [StateChangeRecord(r.state, r.reason, r.call_id, r.at) for r in rows]

    async def _select(self, operation: str, *conditions: Any) -> builtins.list[AgentRecord]:
        statement = (
            select(Agent).where(*conditions).options(selectinload(Agent.skills)).order_by(Agent.id)
        )
        async with self._transaction(operation) as session:
            agents = (await session.scalars(statement)).all()
        return [
            AgentRecord(
                id=a.id,
                name=a.name,
                endpoint=a.endpoint,
                skills={s.queue: s.level for s in a.skills},
                state=a.state,
                state_reason=a.state_reason,
                state_since=a.state_since,
                active=a.active,
            )
            for a in agents
        ]
