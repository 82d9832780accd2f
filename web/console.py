"""The agent console's own feed: one agent's phone state and, when their phone rings, the
screen pop, sent to that agent only (issue 15).

The shared live feed (``/api/live``) is for wall screens and masks every number. This
feed is the agent's: it carries only events about their own phone, and the pop shows the
ringing caller's number in full (their own call, standards §6) with what the agent needs
before saying 您好: who the resident is, their open cases and deadlines, their last
calls, what they chose in the IVR and how long they waited. Another agent's feed never
sees it: the filter is on the agent id the session belongs to, not on anything the page
sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel

from crm.calls import IvrChoice
from crm.cases import CaseQuery
from crm.exceptions import NotFound
from crm.repository import DOCUMENTED_FIELDS, record_json
from crm.rules import Kind, Status
from telephony.acd.agent_state import AgentState
from telephony.acd.roster import AgentView
from web.appkeys import CLOCK, CONFIG, LIVE, ROSTER
from web.auth import principal_of
from web.calls import CALL_LOG
from web.cases import CRM
from web.errors import ErrorId, error
from web.routes import Reply, add_routes, route
from web.websockets import relay

OPEN = tuple(s for s in Status.ALL if s not in (Status.CLOSED, Status.CANCELLED))
RECENT_CALLS = 5


@dataclass(frozen=True, slots=True)
class PopResident:
    """A resident with the caller's number."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Resident id."""
    name: str | None
    """姓名, if known."""
    building: str | None
    """栋号."""
    room: str | None
    """房号."""
    note: str | None
    """Staff's note (hard of hearing, call after 18:00 …)."""


@dataclass(frozen=True, slots=True)
class PopDeadline:
    """An open deadline of an open case."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    label: str
    """The rule as staff say it (急修到场 …)."""
    due_at: datetime
    """The last moment still in time."""
    overdue: bool
    """Already past."""


@dataclass(frozen=True, slots=True)
class PopCase:
    """An open case of the caller's number."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Case id."""
    kind: str
    """Kind."""
    kind_label: str
    """The kind as staff say it."""
    status: str
    """Where it is."""
    summary: str
    """What it is about."""
    deadlines: tuple[PopDeadline, ...]
    """Its open deadlines."""


@dataclass(frozen=True, slots=True)
class PopCall:
    """An earlier call of the number."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Call id."""
    started_at: datetime
    """When."""
    queue: str | None
    """Its queue."""
    end_reason: str | None
    """How it ended."""


@dataclass(frozen=True, slots=True)
class ScreenPop:
    """What the agent's page shows while their phone rings."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    call_id: int
    """The ringing call."""
    caller_number: str | None
    """In full: the agent's own call."""
    queue: str | None
    """The queue it came through."""
    queue_label: str | None
    """How staff say the queue (报修 …)."""
    choice: str | None
    """The IVR choice, queue or queue/tag."""
    choice_label: str | None
    """The choice as staff say it: 报修 → 急修."""
    emergency: bool
    """An emergency (紧急求助): answer first, follow the emergency steps."""
    waited_s: float | None
    """How long the caller has waited since choosing."""
    residents: tuple[PopResident, ...]
    """Residents with this number (a family may share one: choose among them)."""
    open_cases: tuple[PopCase, ...]
    """Open cases of this number, newest first, with their open deadlines."""
    recent_calls: tuple[PopCall, ...]
    """The number's last calls before this one."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


TAG_LABELS = {"urgent": "急修", "general": "一般"}


async def screen_pop(app: web.Application, call_id: int) -> ScreenPop:
    call = await app[CALL_LOG].get(call_id)
    queues = app[CONFIG].queues
    number = call.caller_number
    residents: tuple[PopResident, ...] = ()
    cases: tuple[PopCase, ...] = ()
    recent: tuple[PopCall, ...] = ()
    if number:
        crm = app[CRM]
        found = await crm.residents.find_by_phone(number)
        residents = tuple(PopResident(r.id, r.name, r.building, r.room, r.note) for r in found)
        open_cases, _ = await crm.cases.list(CaseQuery(phone=number, status=OPEN, limit=10))
        cases = tuple(
            PopCase(
                c.id, c.kind, c.kind_label, c.status, c.summary,
                tuple(
                    PopDeadline(d.label, d.due_at, d.overdue)
                    for d in c.deadlines if d.met_at is None and d.cancelled_at is None
                ),
            )
            for c in open_cases
        )  # fmt: skip
        earlier, _ = await app[CALL_LOG].list(caller=number, limit=RECENT_CALLS + 1)
        recent = tuple(
            PopCall(c.id, c.started_at, c.queue, c.end_reason) for c in earlier if c.id != call_id
        )[:RECENT_CALLS]
    choice = IvrChoice.parse(call.choice)
    queue = queues.get(call.queue or "")
    choice_label = None
    if choice is not None:
        chosen = queues.get(choice.queue)
        label = chosen.label if chosen else choice.queue
        choice_label = (
            f"{label} → {TAG_LABELS.get(choice.tag, choice.tag)}" if choice.tag else label
        )
    waited = None
    if call.queued_at is not None:
        waited = (app[CLOCK].now() - call.queued_at).total_seconds()
    return ScreenPop(
        call_id=call.id,
        caller_number=number,
        queue=call.queue,
        queue_label=queue.label if queue else None,
        choice=call.choice,
        choice_label=choice_label,
        emergency=call.queue == Kind.EMERGENCY,
        waited_s=waited,
        residents=residents,
        open_cases=cases,
        recent_calls=recent,
    )


class ConsoleState(BaseModel):
    """The agent's own phone: sent on connect and on every change."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["me"]
    agent: AgentView = Field(description="The agent, as GET /api/agents/{id}.")


class ConsolePop(BaseModel):
    """Their phone rings: the caller and what is known of them."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["pop"]
    pop: ScreenPop = Field(description="The screen pop.")


class ConsoleMessage(RootModel[Annotated[ConsoleState | ConsolePop, Field(discriminator="type")]]):
    """Any message the console feed sends, by its type."""


@route(
    "GET",
    "/api/console/feed",
    operation_id="consoleFeed",
    summary="Websocket of the signed-in agent's own phone: state changes and screen pops",
    description="Open as a websocket (see liveEvents). Only the agent whose user opened it "
    "gets its messages: first their state (type me), then every change of it, and a "
    "screen pop (type pop) whenever their phone rings, with the caller's number in full. "
    "A user without an agent record is refused 403.",
    replies={
        101: Reply("Switching protocols: messages are ConsoleMessage JSON."),
        400: Reply("Not a websocket upgrade request.", media_type="text/plain"),
    },
    errors=[ErrorId.FORBIDDEN],
    messages=ConsoleMessage,
)
async def console_feed(request: web.Request) -> web.StreamResponse:
    """Websocket: the agent's own state now, then each change; a pop when their phone rings."""
    principal = principal_of(request)
    agent_id = principal.agent_id
    roster = request.app[ROSTER]
    if agent_id is None or agent_id not in roster.agents:
        return error(403, ErrorId.FORBIDDEN, "this feed is an agent's: your user has no agent")
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    with request.app[LIVE].subscribe() as events:
        me = roster.agents[agent_id].to_json()
        await ws.send_json({"type": "me", "agent": me})
        await _pop_if_ringing(request.app, ws, me)

        async def forward(event: dict[str, Any]) -> None:
            agent = event.get("agent")
            if event.get("type") != "agent" or not isinstance(agent, dict):
                return
            if agent.get("id") != agent_id:
                return  # another agent's phone: never theirs to see
            await ws.send_json({"type": "me", "agent": agent})
            await _pop_if_ringing(request.app, ws, agent)

        await relay(ws, events, forward)
    return ws


async def _pop_if_ringing(app: web.Application, ws: web.WebSocketResponse, agent: Any) -> None:
    call_id = agent.get("call_id")
    if agent.get("state") != AgentState.RINGING or not isinstance(call_id, int):
        return
    try:
        pop = await screen_pop(app, call_id)
    except NotFound:
        return
    await ws.send_json({"type": "pop", "pop": pop.to_json()})


ROUTES = (console_feed,)


def add_console_feed(app: web.Application) -> None:
    add_routes(app, ROUTES)
