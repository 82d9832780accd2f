"""Residents' numbers and names, shown in full only to those who need them (standards §6).

A supervisor sees everything. An agent sees a resident's full number on the calls they
took and the cases they own; everywhere else, as an admin does everywhere, numbers read
``138****8000`` and a caller's name its first character. The masking is applied to the
JSON a handler answers, after it, so no handler can forget it; the live feed masks every
event for everyone (a wall display is seen by all).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from crm.phones import masked
from crm.staff import Role
from web.appkeys import QUEUE_FACTS
from web.auth import PRINCIPAL, Principal
from web.errors import Handler

PHONE_KEYS = frozenset({"caller_number", "dialled_number", "number", "phone", "phones"})
NAME_KEYS = frozenset({"caller_name"})
# Answers with no resident's data in them.
UNMASKED_PATHS = ("/api/me", "/api/audit", "/api/openapi.json")

Keep = Callable[[dict[str, Any]], bool]
R = TypeVar("R")


def _nobody(_: dict[str, Any]) -> bool:
    return False


def mask_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1) if name else name


def mask_tree(value: Any, keep: Keep = _nobody) -> Any:
    """``value`` with every number and caller name masked but in objects ``keep`` spares."""
    if isinstance(value, dict):
        if keep(value):
            return value
        return {key: _field(key, item, keep) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_tree(item, keep) for item in value]
    return value


def mask_record(record: R) -> R:
    """A frozen record (a dataclass) with its number and caller-name fields masked, for
    pages, which render records rather than JSON."""
    changes = {
        f.name: _field(f.name, getattr(record, f.name), _nobody)
        for f in dataclasses.fields(record)  # type: ignore[arg-type]
        if f.name in PHONE_KEYS or f.name in NAME_KEYS
    }
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


def _field(key: str, value: Any, keep: Keep) -> Any:
    if key in PHONE_KEYS:
        if isinstance(value, str):
            return masked(value)
        if isinstance(value, list):
            return [masked(v) if isinstance(v, str) else mask_tree(v, keep) for v in value]
    if key in NAME_KEYS and isinstance(value, str):
        return mask_name(value)
    return mask_tree(value, keep)


def _call_ids(body: Any) -> list[int]:
    items = body.get("items", [body]) if isinstance(body, dict) else []
    return [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)]


def _hit_ids(body: Any) -> list[int]:
    items = body.get("items", []) if isinstance(body, dict) else []
    return [
        i["call_id"] for i in items if isinstance(i, dict) and isinstance(i.get("call_id"), int)
    ]


async def _keeper(request: web.Request, principal: Principal, body: Any) -> Keep:
    agent_id = principal.agent_id
    if principal.role is not Role.AGENT or agent_id is None:
        return _nobody
    taken: set[int] = set()
    if request.path.startswith("/api/calls"):
        taken = await request.app[QUEUE_FACTS].answered_by(agent_id, _call_ids(body))
    elif request.path == "/api/search":
        taken = await request.app[QUEUE_FACTS].answered_by(agent_id, _hit_ids(body))

    def keep(record: dict[str, Any]) -> bool:
        if record.get("owner_agent_id") == agent_id:
            return True  # a case they own
        if "lines" in record:  # a call found by a search
            return record.get("call_id") in taken
        return "channel_id" in record and record.get("id") in taken  # a call they took

    return keep


@web.middleware
async def mask_numbers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    principal = request.get(PRINCIPAL)
    if (
        principal is None
        or principal.role is Role.SUPERVISOR
        or not isinstance(response, web.Response)
        or response.content_type != "application/json"
        or not request.path.startswith("/api/")
        or request.path in UNMASKED_PATHS
        or not isinstance(response.body, bytes)
    ):
        return response
    body = json.loads(response.body)
    response.body = json.dumps(mask_tree(body, await _keeper(request, principal, body))).encode()
    return response
