"""HTTP API of the ACD: agents and their states, live queues, messages, live events.

Agent state requests go through the live roster (the one authority on states), so a
request that makes no sense now, such as "ready" while on a call, is answered 409 with
the reason, and an accepted one is persisted and published like any ACD change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from crm import validation as v
from crm.agents import MAX_LEVEL, StateChangeRecord
from crm.exceptions import Conflict, InvalidInput, NotFound
from crm.messages import MessageRecord
from crm.queue_callbacks import CallbackRecord
from crm.repository import DOCUMENTED_FIELDS
from telephony.acd.agent_state import AgentEvent, AgentState
from telephony.acd.queue_view import QueueView
from telephony.acd.roster import AgentView, PauseReason
from web.actors import ACTOR_RULE, acting
from web.agent_guard import endpoint_refused, not_own_phone
from web.appkeys import ACD, LIVE, MESSAGES, ROSTER
from web.bodies import Body
from web.errors import ErrorId
from web.live_events import CallbackStatusName, LiveEvent
from web.masking import mask_tree
from web.params import DEFAULT_LIMIT, Limit, Offset, Params, RecordId
from web.replies import extended, json_reply
from web.routes import Reply, add_routes, route
from web.websockets import relay

log = logging.getLogger(__name__)

# What an agent's console may ask for; the ACD's own events (offer, answer …) are not here.
REQUESTS = {
    "log-in": AgentEvent.LOG_IN,
    "ready": AgentEvent.SET_READY,
    "pause": AgentEvent.PAUSE,
    "log-out": AgentEvent.LOG_OUT,
}

AGENT_STATE_MACHINE = (
    "Agent states: logged-out → (log-in) → paused → (ready) → ready → the ACD offers a "
    "call: ringing → answered: on-call → hang-up: wrap-up → after the queue's wrap-up time "
    "(or the agent's own 'ready'): ready. From ready, paused or wrap-up an agent may ask "
    "to pause (a reason is required, e.g. lunch, training) or to log out. While ringing or "
    "on a call no request is accepted (409 illegal-transition). The ACD itself moves a "
    "ringing agent back to ready when the caller hangs up, another phone answers first, or "
    "the agent does not answer; after too many unanswered offers in a row it pauses them "
    f"with reason {PauseReason.MISSED_CALLS}, and pauses an unreachable softphone with "
    f"{PauseReason.SOFTPHONE_OFFLINE} (or unreachable). Logging in leaves the agent paused "
    f"with reason {PauseReason.LOGGED_IN} until they ask for ready; after a service "
    f"restart an agent caught mid-call starts paused with reason {PauseReason.SERVICE_RESTART}."
)
ENDPOINT_PATTERN = r"^[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.+@-]{1,80}$"
SKILLS = (
    f"Queues served: {{queue name: level 1-{MAX_LEVEL}}}; queue names must be configured "
    "ones (GET /api/queues)."
)


# -- inputs ----------------------------------------------------------------------------


class AgentPath(Params):
    id: RecordId = Field(description="Agent id.")


class CallbackPath(Params):
    id: RecordId = Field(description="Call-back id.")


class MessagePath(Params):
    id: RecordId = Field(description="Message id.")


class AgentCreate(Body):
    """A new agent."""

    name: str = Field(description="Display name, 1 to 80 characters.")
    endpoint: str = Field(
        description="What Asterisk dials to ring the agent: technology/resource, e.g. "
        "PJSIP/1001. Unique among agents.",
        json_schema_extra={"pattern": ENDPOINT_PATTERN},
    )
    skills: dict[str, int] = Field(description=SKILLS)


class AgentUpdate(Body):
    """Fields to change; absent or null ones stay as they are."""

    name: str | None = Field(None, description="Display name, 1 to 80 characters.")
    endpoint: str | None = Field(
        None,
        description="Asterisk endpoint, e.g. PJSIP/1001; unique among agents.",
        json_schema_extra={"pattern": ENDPOINT_PATTERN},
    )
    skills: dict[str, int] | None = Field(None, description=SKILLS)


class AgentStateRequest(Body):
    """A state change an agent asks for."""

    action: Literal["log-in", "ready", "pause", "log-out"] = Field(
        description="log-in (logged-out → paused), ready (paused or wrap-up → ready), pause "
        "(ready, paused or wrap-up → paused; paused again changes the reason), log-out "
        "(ready, paused or wrap-up → logged-out)."
    )
    reason: str | None = Field(
        None,
        description="Why the agent pauses, e.g. lunch, training: required for pause, 1 to 80 "
        "characters (trimmed); null counts as not given. With log-in it replaces the default "
        f"pause reason {PauseReason.LOGGED_IN}; ignored for ready and log-out.",
    )


class MessageHandled(Body):
    """Who handled a message, and how."""

    handled_by: str | None = Field(None, description=ACTOR_RULE)
    note: str | None = Field(None, description="What was done, up to 2000 characters.")


class CallbackQuery(Params):
    status: CallbackStatusName | None = Field(
        None, description="Only call-backs with this status; empty or absent means all."
    )


class MessageQuery(Params):
    handled: Literal["true", "false"] | None = Field(
        None, description="true: only handled messages; false: only unhandled; absent: all."
    )
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


# -- replies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentList:
    """Every active agent."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[AgentView, ...]
    """The agents, by id."""


@dataclass(frozen=True, slots=True)
class AgentDetail(AgentView):
    """An agent as the ACD sees them now, with their latest state changes."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    history: tuple[StateChangeRecord, ...]
    """The latest 50 state changes, newest first."""


@dataclass(frozen=True, slots=True)
class QueueList:
    """Every configured queue."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[QueueView, ...]
    """The queues, in configuration order."""


@dataclass(frozen=True, slots=True)
class CallbackList:
    """Call-backs in place order."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[CallbackRecord, ...]
    """The call-backs."""
    total: int
    """Number of items."""


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of messages, newest first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[MessageRecord, ...]
    """The messages on this page."""
    total: int
    """Messages matching the filter in all pages."""


def _known_skills(request: web.Request, skills: dict[str, int] | None) -> dict[str, int] | None:
    if skills is None:
        return None
    known = set(request.app[ACD].config.queues)
    for queue in skills:
        if queue not in known:
            raise InvalidInput(
                f"skills.{queue}", f"unknown queue; known: {', '.join(sorted(known))}"
            )
    return dict(skills)


# -- agents ----------------------------------------------------------------------------


@route(
    "GET",
    "/api/agents",
    operation_id="listAgents",
    summary="List the agents with their live state",
    description="Every active agent (removed ones are not listed), ordered by id, as the ACD "
    "sees them now. " + AGENT_STATE_MACHINE,
    replies={200: Reply("The agents.", AgentList)},
)
async def list_agents(request: web.Request) -> web.StreamResponse:
    roster = request.app[ROSTER]
    return json_reply(AgentList(tuple(a.view() for a in roster.agents.values())))


@route(
    "POST",
    "/api/agents",
    operation_id="createAgent",
    summary="Add an agent",
    description="The new agent starts logged out. Skills name the queues the agent serves "
    "(see GET /api/queues for the configured names) with a level from 1 to "
    f"{MAX_LEVEL}; at equal idle time the higher level is offered a call first. The agent "
    "is also published on /api/live as an agent event.",
    replies={201: Reply("The agent as created (state logged-out).", AgentView)},
    errors=[ErrorId.CONFLICT, ErrorId.STORAGE_UNAVAILABLE],
)
async def create_agent(request: web.Request, body: AgentCreate) -> web.StreamResponse:
    """409 conflict: the endpoint already belongs to another agent."""
    if refused := await endpoint_refused(request, body.endpoint, None):
        return refused
    roster = request.app[ROSTER]
    record = await roster.directory.create(
        name=body.name,
        endpoint=body.endpoint,
        skills=_known_skills(request, body.skills) or {},
        at=request.app[ACD].clock.now(),
    )
    agent = roster.add(record)
    return json_reply(agent.view(), status=201)


@route(
    "GET",
    "/api/agents/{id}",
    operation_id="getAgent",
    summary="One agent with their recent state history",
    description="The agent's live state and their latest 50 state changes; the history "
    "always includes the state returned (changes are stored behind the live state, and "
    "this waits for those in flight).",
    replies={200: Reply("The agent.", AgentDetail)},
    errors=[ErrorId.NOT_FOUND, ErrorId.STORAGE_UNAVAILABLE],
)
async def get_agent(request: web.Request, path: AgentPath) -> web.StreamResponse:
    roster = request.app[ROSTER]
    agent = roster.agents.get(path.id)
    if agent is None:
        raise NotFound("agent", path.id)
    now = agent.view()
    await roster.written(path.id)  # the history then has ``now`` (or newer) on top
    history = await roster.directory.history(path.id, limit=50)
    return json_reply(extended(AgentDetail, now, history=tuple(history)))


@route(
    "PATCH",
    "/api/agents/{id}",
    operation_id="updateAgent",
    summary="Change an agent's name, endpoint or skills",
    description="Only the fields given (and not null) change; skills, when given, replace "
    "the agent's whole skill set. Takes effect at once, also for an agent logged in: new "
    "skills are used for the next offer.",
    replies={200: Reply("The agent after the change.", AgentView)},
    errors=[ErrorId.NOT_FOUND, ErrorId.CONFLICT, ErrorId.STORAGE_UNAVAILABLE],
)
async def update_agent(
    request: web.Request, path: AgentPath, body: AgentUpdate
) -> web.StreamResponse:
    roster = request.app[ROSTER]
    if path.id not in roster.agents:
        raise NotFound("agent", path.id)
    if refused := await endpoint_refused(request, body.endpoint, path.id):
        return refused
    record = await roster.directory.update(
        path.id,
        name=body.name,
        endpoint=body.endpoint,
        skills=_known_skills(request, body.skills),
    )
    roster.update(record)
    return json_reply(roster.agents[path.id].view())


@route(
    "DELETE",
    "/api/agents/{id}",
    operation_id="removeAgent",
    summary="Remove an agent (who must be logged out)",
    description="The agent is deactivated, not erased: their state history stays for "
    "reports. Published on /api/live as an agent-removed event.",
    replies={204: Reply("Removed.")},
    errors=[ErrorId.NOT_FOUND, ErrorId.CONFLICT, ErrorId.STORAGE_UNAVAILABLE],
)
async def remove_agent(request: web.Request, path: AgentPath) -> web.StreamResponse:
    """409 conflict: the agent is not logged out; log them out first."""
    roster = request.app[ROSTER]
    agent = roster.agents.get(path.id)
    if agent is None:
        raise NotFound("agent", path.id)
    if agent.state is not AgentState.LOGGED_OUT:
        raise Conflict(f"agent {path.id} is {agent.state}; log them out first")
    await roster.directory.set_active(path.id, False)
    roster.remove(path.id)
    return web.Response(status=204)


@route(
    "POST",
    "/api/agents/{id}/state",
    operation_id="changeAgentState",
    summary="Ask for an agent state change: log-in, ready, pause or log-out",
    description="What an agent's console sends. The change is applied at once, stored in "
    "the agent's history and published on /api/live; the ACD's own moves (ringing, "
    "on-call, wrap-up) cannot be requested. 409 illegal-transition: not allowed in the "
    "agent's current state, e.g. ready while on a call (details.state is the current "
    "state). " + AGENT_STATE_MACHINE,
    replies={200: Reply("The agent in their new state.", AgentView)},
    errors=[ErrorId.NOT_FOUND, ErrorId.ILLEGAL_TRANSITION],
)
async def change_state(
    request: web.Request, path: AgentPath, body: AgentStateRequest
) -> web.StreamResponse:
    roster = request.app[ROSTER]
    agent = roster.agents.get(path.id)
    if agent is None:
        raise NotFound("agent", path.id)
    if refused := not_own_phone(request, path.id):
        return refused
    # A label a supervisor reads (午休, 培训): the rules of every name-like field.
    reason = v.name_text("reason", body.reason, max_len=80, required=body.action == "pause")
    roster.apply(agent, REQUESTS[body.action], reason=reason)
    return json_reply(agent.view())


# -- queues, call-backs, messages ------------------------------------------------------


@route(
    "GET",
    "/api/queues",
    operation_id="listQueues",
    summary="The queues now: callers waiting, longest wait, agents by state",
    description="One entry per configured queue, in configuration order. The same entries "
    "arrive on /api/live in the snapshot and in queue events.",
    replies={200: Reply("The queues.", QueueList)},
)
async def list_queues(request: web.Request) -> web.StreamResponse:
    return json_reply(QueueList(tuple(request.app[ACD].queue_views())))


@route(
    "GET",
    "/api/callbacks",
    operation_id="listCallbacks",
    summary="List queued call-backs, in place order",
    description="Call-backs residents asked for while waiting: each keeps the caller's "
    "original place in line (place_at) and is served by the ACD among live callers, agent "
    "first, then the resident. Ordered by place_at, then id. waiting and dialling are "
    "open; reached, failed (attempts used up), expired and cancelled are final.",
    replies={200: Reply("The call-backs.", CallbackList)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def list_callbacks(request: web.Request, query: CallbackQuery) -> web.StreamResponse:
    items = await request.app[ACD].callbacks.list(status=query.status)
    return json_reply(CallbackList(tuple(items), len(items)))


@route(
    "POST",
    "/api/callbacks/{id}/cancel",
    operation_id="cancelCallback",
    summary="Cancel an open call-back",
    description="No request body. A waiting or dialling call-back becomes cancelled and "
    "leaves the queue (a queue event and a callback event are published). A call already "
    "in progress is not cut off. 409 conflict: the call-back is already finished.",
    replies={200: Reply("The call-back, now cancelled.", CallbackRecord)},
    errors=[ErrorId.NOT_FOUND, ErrorId.CONFLICT, ErrorId.STORAGE_UNAVAILABLE],
)
async def cancel_callback(request: web.Request, path: CallbackPath) -> web.StreamResponse:
    acd = request.app[ACD]
    if not await acd.cancel_callback(path.id):
        raise Conflict(f"call-back {path.id} is already finished")
    return json_reply(await acd.callbacks.get(path.id))


@route(
    "GET",
    "/api/messages",
    operation_id="listMessages",
    summary="List messages (留言) callers left, newest first",
    description="handled=false is the to-do list of messages nobody has passed on yet. "
    "Ordered by recorded_at descending, then id descending.",
    replies={200: Reply("One page of messages.", MessagePage)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def list_messages(request: web.Request, query: MessageQuery) -> web.StreamResponse:
    handled = None if query.handled is None else query.handled == "true"
    items, total = await request.app[MESSAGES].list(
        handled=handled, limit=query.limit, offset=query.offset
    )
    return json_reply(MessagePage(tuple(items), total))


@route(
    "POST",
    "/api/messages/{id}/handled",
    operation_id="markMessageHandled",
    summary="Mark a message handled (转告), with who and an optional note",
    description="A message can be handled once: a second attempt is refused (409 conflict, "
    "the message names by whom) rather than overwriting the first. Published on /api/live "
    "as message-handled.",
    replies={200: Reply("The message, now handled.", MessageRecord)},
    errors=[ErrorId.NOT_FOUND, ErrorId.CONFLICT, ErrorId.STORAGE_UNAVAILABLE],
)
async def message_handled(
    request: web.Request, path: MessagePath, body: MessageHandled
) -> web.StreamResponse:
    record = await request.app[MESSAGES].mark_handled(
        path.id,
        by=acting(request, body.handled_by, "handled_by"),
        note=body.note,
        at=request.app[ACD].clock.now(),
    )
    request.app[LIVE].publish("message-handled", message_id=record.id)
    return json_reply(record)


# -- live ------------------------------------------------------------------------------


@route(
    "GET",
    "/api/live",
    operation_id="liveEvents",
    summary="Websocket of live queue and agent changes, for supervisor screens",
    description="Open as a websocket (GET with Upgrade: websocket; OpenAPI has no websocket "
    "operation, so this GET stands for it). The server sends JSON text messages and "
    "ignores what the client sends. The first message is a snapshot (type snapshot: every "
    "queue and every agent); after it, one message per change, each with its type and the "
    "time it happened (at); every message matches LiveEvent (x-websocket-message). Apply "
    "events on top of the snapshot. A screen too slow to keep up loses its oldest events "
    "(beyond 1000 pending): reconnect to get a fresh snapshot. The server pings every "
    "30 s; clients must answer (browsers do).",
    replies={
        101: Reply("Switching protocols: the websocket is open; messages are LiveEvent JSON."),
        400: Reply("Not a websocket upgrade request.", media_type="text/plain"),
    },
    messages=LiveEvent,
)
async def live(request: web.Request) -> web.StreamResponse:
    """Websocket: a snapshot first, then every queue and agent change as it happens."""
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    acd, roster = request.app[ACD], request.app[ROSTER]
    with request.app[LIVE].subscribe() as events:
        await ws.send_json(
            mask_tree(
                {
                    "type": "snapshot",
                    "queues": acd.snapshot(),
                    "agents": [a.to_json() for a in roster.agents.values()],
                }
            )
        )

        async def forward(event: dict[str, Any]) -> None:
            await ws.send_json(mask_tree(event))

        await relay(ws, events, forward)
    return ws


ROUTES = (
    list_agents,
    create_agent,
    get_agent,
    update_agent,
    remove_agent,
    change_state,
    list_queues,
    list_callbacks,
    cancel_callback,
    list_messages,
    message_handled,
    live,
)


def add_acd_routes(app: web.Application) -> None:
    add_routes(app, ROUTES)
