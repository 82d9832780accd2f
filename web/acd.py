"""HTTP API of the ACD: agents and their states, live queues, messages, live events.

Agent state requests go through the live roster (the one authority on states), so a
request that makes no sense now, such as "ready" while on a call, is answered 409 with
the reason, and an accepted one is persisted and published like any ACD change.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from crm import validation as v
from crm.exceptions import Conflict, InvalidInput, NotFound
from crm.queue_callbacks import CallbackStatus
from telephony.acd.agent_state import AgentEvent, AgentState
from web.agent_guard import endpoint_refused, not_own_phone
from web.appkeys import ACD, LIVE, MESSAGES, ROSTER
from web.errors import answer_errors as _answer_errors
from web.errors import json_body
from web.errors import path_id as _id
from web.masking import masked_event

log = logging.getLogger(__name__)

# What an agent's console may ask for; the ACD's own events (offer, answer …) are not here.
REQUESTS = {
    "log-in": AgentEvent.LOG_IN,
    "ready": AgentEvent.SET_READY,
    "pause": AgentEvent.PAUSE,
    "log-out": AgentEvent.LOG_OUT,
}


def add_acd_routes(app: web.Application) -> None:
    app.router.add_get("/api/agents", _list_agents)
    app.router.add_post("/api/agents", _create_agent)
    app.router.add_get("/api/agents/{id}", _get_agent)
    app.router.add_patch("/api/agents/{id}", _update_agent)
    app.router.add_delete("/api/agents/{id}", _remove_agent)
    app.router.add_post("/api/agents/{id}/state", _change_state)
    app.router.add_get("/api/queues", _queues)
    app.router.add_get("/api/callbacks", _list_callbacks)
    app.router.add_post("/api/callbacks/{id}/cancel", _cancel_callback)
    app.router.add_get("/api/messages", _list_messages)
    app.router.add_post("/api/messages/{id}/handled", _message_handled)
    app.router.add_get("/api/live", _live)


def _text(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidInput(key, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(key, "must be a string")
    return value


def _skills(body: dict[str, Any], known: set[str], *, required: bool) -> dict[str, int] | None:
    raw = body.get("skills")
    if raw is None:
        if required:
            raise InvalidInput("skills", "is required: {queue: level}")
        return None
    if not isinstance(raw, dict):
        raise InvalidInput("skills", "must be an object {queue: level 1-10}")
    for queue in raw:
        if queue not in known:
            raise InvalidInput(
                f"skills.{queue}", f"unknown queue; known: {', '.join(sorted(known))}"
            )
    return dict(raw)


@_answer_errors
async def _list_agents(request: web.Request) -> web.StreamResponse:
    roster = request.app[ROSTER]
    return web.json_response({"items": [a.to_json() for a in roster.agents.values()]})


@_answer_errors
async def _create_agent(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if refused := await endpoint_refused(request, body.get("endpoint"), None):
        return refused
    roster = request.app[ROSTER]
    known = set(request.app[ACD].config.queues)
    record = await roster.directory.create(
        name=_text(body, "name", required=True) or "",
        endpoint=_text(body, "endpoint", required=True) or "",
        skills=_skills(body, known, required=True) or {},
        at=request.app[ACD].clock.now(),
    )
    agent = roster.add(record)
    return web.json_response(agent.to_json(), status=201)


@_answer_errors
async def _get_agent(request: web.Request) -> web.StreamResponse:
    roster = request.app[ROSTER]
    agent_id = _id(request)
    agent = roster.agents.get(agent_id)
    if agent is None:
        raise NotFound("agent", agent_id)
    now = agent.to_json()
    await roster.written(agent_id)  # the history then has ``now`` (or newer) on top
    history = await roster.directory.history(agent_id, limit=50)
    return web.json_response({**now, "history": [h.to_json() for h in history]})


@_answer_errors
async def _update_agent(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    roster = request.app[ROSTER]
    agent_id = _id(request)
    if agent_id not in roster.agents:
        raise NotFound("agent", agent_id)
    if refused := await endpoint_refused(request, body.get("endpoint"), agent_id):
        return refused
    known = set(request.app[ACD].config.queues)
    record = await roster.directory.update(
        agent_id,
        name=_text(body, "name", required=False),
        endpoint=_text(body, "endpoint", required=False),
        skills=_skills(body, known, required=False),
    )
    roster.update(record)
    return web.json_response(roster.agents[agent_id].to_json())


@_answer_errors
async def _remove_agent(request: web.Request) -> web.StreamResponse:
    roster = request.app[ROSTER]
    agent_id = _id(request)
    agent = roster.agents.get(agent_id)
    if agent is None:
        raise NotFound("agent", agent_id)
    if agent.state is not AgentState.LOGGED_OUT:
        raise Conflict(f"agent {agent_id} is {agent.state}; log them out first")
    await roster.directory.set_active(agent_id, False)
    roster.remove(agent_id)
    return web.Response(status=204)


@_answer_errors
async def _change_state(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    roster = request.app[ROSTER]
    agent_id = _id(request)
    agent = roster.agents.get(agent_id)
    if agent is None:
        raise NotFound("agent", agent_id)
    if refused := not_own_phone(request, agent_id):
        return refused
    action = _text(body, "action", required=True) or ""
    if action not in REQUESTS:
        raise InvalidInput("action", f"must be one of {', '.join(REQUESTS)}")
    # A label a supervisor reads (午休, 培训): the rules of every name-like field.
    reason = v.name_text("reason", body.get("reason"), max_len=80, required=action == "pause")
    roster.apply(agent, REQUESTS[action], reason=reason)
    return web.json_response(agent.to_json())


@_answer_errors
async def _queues(request: web.Request) -> web.StreamResponse:
    return web.json_response({"items": request.app[ACD].snapshot()})


@_answer_errors
async def _list_callbacks(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status") or None
    known = (*CallbackStatus.OPEN, "reached", "failed", "expired", "cancelled")
    if status is not None and status not in known:
        raise InvalidInput("status", f"must be one of {', '.join(known)}")
    items = await request.app[ACD].callbacks.list(status=status)
    return web.json_response({"items": [c.to_json() for c in items], "total": len(items)})


@_answer_errors
async def _cancel_callback(request: web.Request) -> web.StreamResponse:
    acd = request.app[ACD]
    callback_id = _id(request)
    if not await acd.cancel_callback(callback_id):
        raise Conflict(f"call-back {callback_id} is already finished")
    return web.json_response((await acd.callbacks.get(callback_id)).to_json())


@_answer_errors
async def _list_messages(request: web.Request) -> web.StreamResponse:
    raw = request.query.get("handled", "")
    if raw not in ("", "true", "false"):
        raise InvalidInput("handled", "must be true or false")
    handled = None if raw == "" else raw == "true"
    limit = _int_query(request, "limit", 50, 1, 500)
    offset = _int_query(request, "offset", 0, 0, 2**31 - 1)
    items, total = await request.app[MESSAGES].list(handled=handled, limit=limit, offset=offset)
    return web.json_response({"items": [m.to_json() for m in items], "total": total})


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter; empty counts as not given (HTML forms send every field)."""
    raw = request.query.get(name) or ""
    if not raw:
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit():
        raise InvalidInput(name, "must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return value


@_answer_errors
async def _message_handled(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    record = await request.app[MESSAGES].mark_handled(
        _id(request),
        by=_text(body, "handled_by", required=True) or "",
        note=_text(body, "note", required=False),
        at=request.app[ACD].clock.now(),
    )
    request.app[LIVE].publish("message-handled", message_id=record.id)
    return web.json_response(record.to_json())


async def _live(request: web.Request) -> web.StreamResponse:
    """Websocket: a snapshot first, then every queue and agent change as it happens."""
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    acd, roster = request.app[ACD], request.app[ROSTER]
    with request.app[LIVE].subscribe() as events:
        await ws.send_json(
            masked_event(
                {
                    "type": "snapshot",
                    "queues": acd.snapshot(),
                    "agents": [a.to_json() for a in roster.agents.values()],
                }
            )
        )
        reader = asyncio.create_task(_drain_client(ws))
        try:
            while not ws.closed:
                nxt = asyncio.ensure_future(events.get())
                await asyncio.wait([nxt, reader], return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    break
                await ws.send_json(masked_event(nxt.result()))
        finally:
            reader.cancel()
    return ws


async def _drain_client(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
