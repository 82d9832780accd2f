"""What a user may do to an agent record beyond the route's permission.

An agent's phone state is theirs: an agent changes only their own (a supervisor anyone's).
Where an agent's phone rings is an admin's decision, checked against the configured
pattern of internal endpoints and audited: pointed at a trunk, calls meant for an agent
would ring an outside number at the company's cost (toll fraud).
"""

from __future__ import annotations

import re

from aiohttp import web

from crm.exceptions import InvalidInput
from crm.staff import Role
from web.appkeys import CONFIG
from web.audit import record_access
from web.auth import principal_of
from web.errors import ErrorId, error
from web.permissions import Permission, allowed


def not_own_phone(request: web.Request, agent_id: int) -> web.Response | None:
    principal = principal_of(request)
    if principal.role is Role.AGENT and principal.agent_id != agent_id:
        return error(403, ErrorId.FORBIDDEN, "an agent changes only their own phone state")
    return None


async def endpoint_refused(
    request: web.Request, endpoint: object, agent_id: int | None
) -> web.Response | None:
    """None when ``endpoint`` (None: unchanged) may be set by this user; audited."""
    if endpoint is None:
        return None
    principal = principal_of(request)
    target = f"agent {agent_id if agent_id is not None else '(new)'} endpoint {endpoint}"
    if not allowed(principal.role, Permission.SET_ENDPOINTS):
        await record_access(
            request, principal, "set-endpoint", target, granted=False, reason="not an admin"
        )
        return error(403, ErrorId.FORBIDDEN, "only an admin sets where an agent's phone rings")
    pattern = request.app[CONFIG].access.agent_endpoints
    if not isinstance(endpoint, str) or not re.fullmatch(pattern, endpoint):
        await record_access(
            request, principal, "set-endpoint", target, granted=False, reason="not internal"
        )
        raise InvalidInput(
            "endpoint",
            "must be an internal extension matching [access] agent_endpoints "
            f"({pattern}), e.g. PJSIP/2001",
        )
    await record_access(request, principal, "set-endpoint", target, granted=True)
    return None
