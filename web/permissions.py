"""Who may do what: each route's permission and each role's permissions, in one table.

Every route is closed unless this table opens it: ``guard`` (web/auth.py) looks a request
up here by method and path template, and ``check_routes`` stops the start if a route was
added without an entry, so a new handler cannot be reachable by accident. The README's
permissions table is this one in words.

Some permissions are narrowed per record inside the handler (web/privacy.py): an agent
changes only their own phone state and hears only the calls they took; the table says
whether a role may use the route at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from crm.staff import Role


class Permission(StrEnum):
    OPEN = "open"  # no user: health, prompt audio Asterisk fetches, the login page
    SIGNED_IN = "signed-in"  # any user: who am I, the API document, sign out
    READ_CALLS = "calls:read"
    READ_AGENTS = "agents:read"
    MANAGE_AGENTS = "agents:manage"  # add, rename, skills, remove; endpoints: SET_ENDPOINTS
    SET_ENDPOINTS = "agents:endpoint"  # where an agent's phone rings (toll fraud if abused)
    AGENT_STATE = "agents:state"  # log in, ready, pause, log out (an agent: their own)
    READ_QUEUES = "queues:read"
    READ_LIVE = "live:read"
    CALLBACKS = "callbacks:work"  # queued call-backs: list, cancel
    MESSAGES = "messages:work"  # 留言: list, mark handled
    HEAR_CALLS = "recordings:hear"  # recordings, audio, transcripts (an agent: their calls)
    TRANSCRIPTION = "transcription:manage"  # the job list, retries
    CASES = "cases:work"  # cases, work orders, complaint steps, 回访, deadlines
    RESIDENTS = "residents:work"  # residents, rooms, phone lookup
    IMPORT_ROSTER = "residents:import"
    READ_AUDIT = "audit:read"


P = Permission

_AGENT = frozenset(
    {
        P.SIGNED_IN,
        P.READ_CALLS,
        P.READ_AGENTS,
        P.AGENT_STATE,
        P.READ_QUEUES,
        P.READ_LIVE,
        P.CALLBACKS,
        P.MESSAGES,
        P.HEAR_CALLS,
        P.CASES,
        P.RESIDENTS,
    }
)

# A supervisor is everything an agent is, for every agent, plus the running of the
# floor; an admin runs the installation and sees no resident's data beyond masked numbers.
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.AGENT: _AGENT,
    Role.SUPERVISOR: _AGENT | {P.MANAGE_AGENTS, P.TRANSCRIPTION, P.IMPORT_ROSTER},
    Role.ADMIN: frozenset(
        {
            P.SIGNED_IN,
            P.READ_CALLS,
            P.READ_AGENTS,
            P.MANAGE_AGENTS,
            P.SET_ENDPOINTS,
            P.READ_QUEUES,
            P.READ_LIVE,
            P.READ_AUDIT,
        }
    ),
}

# (method, path template) → permission. HEAD follows GET.
ROUTES: Mapping[tuple[str, str], Permission] = {
    ("GET", "/healthz"): P.OPEN,
    ("GET", "/prompts/{name}.wav"): P.OPEN,
    ("GET", "/login"): P.OPEN,
    ("POST", "/login"): P.OPEN,
    ("GET", "/static"): P.OPEN,  # our CSS and scripts (a static resource: its prefix)
    ("POST", "/logout"): P.SIGNED_IN,
    ("GET", "/"): P.SIGNED_IN,
    ("GET", "/calls"): P.READ_CALLS,
    ("GET", "/calls/{id}"): P.HEAR_CALLS,  # a transcript and recordings: web/privacy.py
    ("GET", "/messages"): P.MESSAGES,
    ("GET", "/cases/{id}"): P.CASES,
    ("GET", "/console"): P.AGENT_STATE,  # an agent's own phone (their user's agent)
    ("GET", "/search"): P.HEAR_CALLS,  # transcripts: an agent finds the calls they took
    ("POST", "/messages/{id}/handled"): P.MESSAGES,
    ("GET", "/api/me"): P.SIGNED_IN,
    ("GET", "/api/openapi.json"): P.SIGNED_IN,
    ("GET", "/api/calls"): P.READ_CALLS,
    ("GET", "/api/calls/{id}"): P.READ_CALLS,
    ("GET", "/api/agents"): P.READ_AGENTS,
    ("POST", "/api/agents"): P.SET_ENDPOINTS,
    ("GET", "/api/agents/{id}"): P.READ_AGENTS,
    ("PATCH", "/api/agents/{id}"): P.MANAGE_AGENTS,
    ("DELETE", "/api/agents/{id}"): P.SET_ENDPOINTS,
    ("POST", "/api/agents/{id}/state"): P.AGENT_STATE,
    ("GET", "/api/queues"): P.READ_QUEUES,
    ("GET", "/api/callbacks"): P.CALLBACKS,
    ("POST", "/api/callbacks/{id}/cancel"): P.CALLBACKS,
    ("GET", "/api/messages"): P.MESSAGES,
    ("POST", "/api/messages/{id}/handled"): P.MESSAGES,
    ("GET", "/api/live"): P.READ_LIVE,
    ("GET", "/api/console/feed"): P.AGENT_STATE,  # the agent's own phone (web/console.py)
    ("GET", "/api/calls/{id}/recordings"): P.HEAR_CALLS,
    ("GET", "/api/recordings/{id}/audio"): P.HEAR_CALLS,
    ("GET", "/api/calls/{id}/transcript"): P.HEAR_CALLS,
    ("GET", "/api/search"): P.HEAR_CALLS,  # transcripts (an agent: the calls they took)
    ("POST", "/api/calls/{id}/transcript/retry"): P.TRANSCRIPTION,
    ("GET", "/api/transcription/jobs"): P.TRANSCRIPTION,
    ("GET", "/api/cases"): P.CASES,
    ("POST", "/api/cases"): P.CASES,
    ("GET", "/api/cases/{id}"): P.CASES,
    ("PATCH", "/api/cases/{id}"): P.CASES,
    ("POST", "/api/cases/{id}/transitions"): P.CASES,
    ("POST", "/api/cases/{id}/reopen"): P.CASES,
    ("POST", "/api/cases/{id}/notes"): P.CASES,
    ("POST", "/api/cases/{id}/deadlines/{rule}/met"): P.CASES,
    ("GET", "/api/cases/{id}/timeline"): P.CASES,
    ("PATCH", "/api/cases/{id}/work-order"): P.CASES,
    ("POST", "/api/cases/{id}/complaint/steps"): P.CASES,
    ("POST", "/api/cases/{id}/callbacks"): P.CASES,
    ("GET", "/api/case-callbacks"): P.CASES,
    ("GET", "/api/case-callbacks/{id}"): P.CASES,
    ("POST", "/api/case-callbacks/{id}/attempts"): P.CASES,
    ("POST", "/api/case-callbacks/{id}/dial"): P.CASES,
    ("GET", "/api/deadlines"): P.CASES,
    ("GET", "/api/residents/lookup"): P.RESIDENTS,
    ("POST", "/api/residents/import"): P.IMPORT_ROSTER,
    ("GET", "/api/residents"): P.RESIDENTS,
    ("POST", "/api/residents"): P.RESIDENTS,
    ("GET", "/api/residents/{id}"): P.RESIDENTS,
    ("PATCH", "/api/residents/{id}"): P.RESIDENTS,
    ("GET", "/api/rooms"): P.RESIDENTS,
    ("POST", "/api/rooms"): P.RESIDENTS,
    ("GET", "/api/audit"): P.READ_AUDIT,
}


def permission_for(method: str, template: str) -> Permission | None:
    """The route's permission; None for a route nobody listed (refused by the guard)."""
    return ROUTES.get(("GET" if method == "HEAD" else method, template))


def allowed(role: Role, permission: Permission) -> bool:
    return permission is P.OPEN or permission in ROLE_PERMISSIONS[role]


def unlisted(routes: Iterable[tuple[str, str]]) -> list[str]:
    """Registered (method, template) pairs the table does not know: none may exist."""
    return sorted(
        f"{method} {template}"
        for method, template in routes
        if method != "HEAD" and permission_for(method, template) is None
    )
