"""Whose calls a user may hear, and the audit row each attempt leaves (standards §6).

Recordings and transcripts are the most personal data the hotline keeps: a supervisor
reviews any call; an agent hears only the calls they took (answered a queue entry of)
and the messages nobody took, which agents pass on;
an admin runs the installation and hears none. Every attempt, granted or denied, is in
the access audit, so who listened to what can always be answered.
"""

from __future__ import annotations

from aiohttp import web

from crm.staff import Role
from web.appkeys import MESSAGES, QUEUE_FACTS
from web.audit import record_access
from web.auth import Principal, principal_of
from web.errors import ErrorId, error


async def took_call(request: web.Request, principal: Principal, call_id: int) -> bool:
    if principal.agent_id is None:
        return False
    return call_id in await request.app[QUEUE_FACTS].answered_by(principal.agent_id, [call_id])


async def left_message(request: web.Request, call_id: int) -> bool:
    """Nobody took the call and the caller left a message (留言): it is the desk's to pass
    on (转告), so any agent may hear it."""
    entries = await request.app[QUEUE_FACTS].for_call(call_id)
    if any(e.answered_at for e in entries):
        return False
    found, _ = await request.app[MESSAGES].list(call_id=call_id, limit=1)
    return bool(found)


async def may_hear(request: web.Request, call_id: int) -> bool:
    principal = principal_of(request)
    if principal.role is Role.SUPERVISOR:
        return True
    if principal.role is not Role.AGENT:
        return False
    return await took_call(request, principal, call_id) or await left_message(request, call_id)


async def hearing_refused(
    request: web.Request, call_id: int, action: str, target: str, *, audit: bool = True
) -> web.Response | None:
    """None when the user may hear the call (audited when ``audit``); else the 403."""
    principal = principal_of(request)
    granted = await may_hear(request, call_id)
    if audit or not granted:
        reason = "" if granted else f"a {principal.role} hears only calls they took"
        await record_access(request, principal, action, target, granted=granted, reason=reason)
    if granted:
        return None
    return error(403, ErrorId.FORBIDDEN, "you may hear only the calls you took", call_id=call_id)
