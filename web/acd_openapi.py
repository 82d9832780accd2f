"""OpenAPI 3.1 description of the ACD's HTTP API (``web.acd``).

Written for whoever builds a supervisor or agent console on it: which state changes an
agent may ask for, what each refusal looks like, and what the ``/api/live`` websocket
sends. ``web.service_routes`` merges these paths and schemas into ``/api/openapi.json``
beside the call records' (``web.calls``); the schema names here do not overlap those.
"""

from __future__ import annotations

from typing import Any

from crm.agents import MAX_LEVEL
from crm.messages import MessageReason
from crm.queue_callbacks import AttemptOutcome, CallbackStatus
from telephony.acd.agent_state import AgentState
from telephony.acd.roster import PauseReason
from web.acd import REQUESTS

MAX_ID = 2**31 - 1
MESSAGES_DEFAULT_LIMIT = 50
MESSAGES_MAX_LIMIT = 500

AGENT_STATES = [str(state) for state in AgentState]
CALLBACK_STATUSES = [
    CallbackStatus.WAITING,
    CallbackStatus.DIALLING,
    CallbackStatus.REACHED,
    CallbackStatus.FAILED,
    CallbackStatus.EXPIRED,
    CallbackStatus.CANCELLED,
]
ATTEMPT_OUTCOMES = [
    AttemptOutcome.REACHED,
    AttemptOutcome.NO_ANSWER,
    AttemptOutcome.BUSY,
    AttemptOutcome.FAILED,
    AttemptOutcome.AGENT_MISSED,
]
MESSAGE_REASONS = [MessageReason.ASKED, MessageReason.NO_AGENTS, MessageReason.OUT_OF_HOURS]
ERROR_IDS = ["invalid-input", "not-found", "illegal-transition", "conflict", "storage-unavailable"]

# What the live websocket sends, by "type", and the schema describing each message.
LIVE_EVENTS = {
    "snapshot": "LiveSnapshot",
    "queue": "LiveQueueEvent",
    "agent": "LiveAgentEvent",
    "agent-removed": "LiveAgentRemovedEvent",
    "alert": "LiveAlertEvent",
    "duty-told": "LiveDutyToldEvent",
    "callback": "LiveCallbackEvent",
    "callback-attempt": "LiveCallbackAttemptEvent",
    "callback-attempt-done": "LiveCallbackAttemptDoneEvent",
    "message-handled": "LiveMessageHandledEvent",
    "transcript-queued": "LiveTranscriptQueuedEvent",
    "transcript-running": "LiveTranscriptRunningEvent",
    "transcript-ready": "LiveTranscriptReadyEvent",
    "transcript-failed": "LiveTranscriptFailedEvent",
    "case-opened": "LiveCaseOpenedEvent",
    "case-call": "LiveCaseCallEvent",
    "repair-class-suggested": "LiveRepairClassSuggestedEvent",
    "deadline-near": "LiveDeadlineNearEvent",
    "deadline-passed": "LiveDeadlinePassedEvent",
    "case-callback-dialling": "LiveCaseCallBackDiallingEvent",
    "case-callback-connected": "LiveCaseCallBackConnectedEvent",
    "case-callback-ended": "LiveCaseCallBackEndedEvent",
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


def acd_openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.1 ``paths`` entries for the ACD endpoints.

    References schemas by name under ``#/components/schemas``; merge
    ``acd_openapi_schemas()`` there as well.
    """
    unavailable = {
        "503": _error_response("The database is unavailable (error_id storage-unavailable).")
    }
    no_agent = {
        "404": _error_response("No such agent, or it was removed (error_id not-found; details.id).")
    }
    return {
        "/api/agents": {
            "get": {
                "operationId": "listAgents",
                "summary": "List the agents with their live state",
                "description": (
                    "Every active agent (removed ones are not listed), ordered by id, as the "
                    "ACD sees them now. " + AGENT_STATE_MACHINE
                ),
                "responses": {"200": _json_response("The agents.", "AgentList")},
            },
            "post": {
                "operationId": "createAgent",
                "summary": "Add an agent",
                "description": (
                    "The new agent starts logged out. Skills name the queues the agent serves "
                    "(see GET /api/queues for the configured names) with a level from 1 to "
                    f"{MAX_LEVEL}; at equal idle time the higher level is offered a call first. "
                    "The agent is also published on /api/live as an agent event."
                ),
                "requestBody": _json_body("The agent.", "AgentCreate"),
                "responses": {
                    "201": _json_response("The agent as created (state logged-out).", "Agent"),
                    "400": _invalid_input(
                        "body (not a JSON object), name, endpoint, skills or skills.<queue> "
                        "(unknown queue, or a level that is not an integer 1-10)"
                    ),
                    "409": _error_response(
                        "The endpoint already belongs to another agent (error_id conflict)."
                    ),
                    **unavailable,
                },
            },
        },
        "/api/agents/{id}": {
            "get": {
                "parameters": [_id_param("Agent id.")],
                "operationId": "getAgent",
                "summary": "One agent with their recent state history",
                "description": (
                    "The agent's live state and their latest 50 state changes; the history "
                    "always includes the state returned (changes are stored behind the live "
                    "state, and this waits for those in flight)."
                ),
                "responses": {
                    "200": _json_response("The agent.", "AgentDetail"),
                    **no_agent,
                    **unavailable,
                },
            },
            "patch": {
                "parameters": [_id_param("Agent id.")],
                "operationId": "updateAgent",
                "summary": "Change an agent's name, endpoint or skills",
                "description": (
                    "Only the fields given (and not null) change; skills, when given, replace "
                    "the agent's whole skill set. Takes effect at once, also for an agent "
                    "logged in: new skills are used for the next offer."
                ),
                "requestBody": _json_body("The fields to change.", "AgentUpdate"),
                "responses": {
                    "200": _json_response("The agent after the change.", "Agent"),
                    "400": _invalid_input("body, name, endpoint, skills or skills.<queue>"),
                    **no_agent,
                    "409": _error_response(
                        "The endpoint already belongs to another agent (error_id conflict)."
                    ),
                    **unavailable,
                },
            },
            "delete": {
                "parameters": [_id_param("Agent id.")],
                "operationId": "removeAgent",
                "summary": "Remove an agent (who must be logged out)",
                "description": (
                    "The agent is deactivated, not erased: their state history stays for "
                    "reports. Published on /api/live as an agent-removed event."
                ),
                "responses": {
                    "204": {"description": "Removed."},
                    **no_agent,
                    "409": _error_response(
                        "The agent is not logged out; log them out first (error_id conflict)."
                    ),
                    **unavailable,
                },
            },
        },
        "/api/agents/{id}/state": {
            "post": {
                "parameters": [_id_param("Agent id.")],
                "operationId": "changeAgentState",
                "summary": "Ask for an agent state change: log-in, ready, pause or log-out",
                "description": (
                    "What an agent's console sends. The change is applied at once, stored in "
                    "the agent's history and published on /api/live; the ACD's own moves "
                    "(ringing, on-call, wrap-up) cannot be requested. " + AGENT_STATE_MACHINE
                ),
                "requestBody": _json_body("The requested change.", "AgentStateRequest"),
                "responses": {
                    "200": _json_response("The agent in their new state.", "Agent"),
                    "400": _invalid_input(
                        "body, action (not one of log-in, ready, pause, log-out) or reason "
                        "(missing for pause, or not 1 to 80 characters)"
                    ),
                    **no_agent,
                    "409": _error_response(
                        "The change is not allowed in the agent's current state, e.g. ready "
                        "while on a call (error_id illegal-transition; details.state is the "
                        "current state)."
                    ),
                },
            },
        },
        "/api/queues": {
            "get": {
                "operationId": "listQueues",
                "summary": "The queues now: callers waiting, longest wait, agents by state",
                "description": (
                    "One entry per configured queue, in configuration order. The same "
                    "entries arrive on /api/live in the snapshot and in queue events."
                ),
                "responses": {"200": _json_response("The queues.", "QueueList")},
            }
        },
        "/api/callbacks": {
            "get": {
                "operationId": "listCallbacks",
                "summary": "List queued call-backs, in place order",
                "description": (
                    "Call-backs residents asked for while waiting: each keeps the caller's "
                    "original place in line (place_at) and is served by the ACD among live "
                    "callers, agent first, then the resident. Ordered by place_at, then id. "
                    "waiting and dialling are open; reached, failed (attempts used up), "
                    "expired and cancelled are final."
                ),
                "parameters": [
                    _query_param(
                        "status",
                        "Only call-backs with this status; empty or absent means all.",
                        {"type": "string", "enum": CALLBACK_STATUSES},
                    )
                ],
                "responses": {
                    "200": _json_response("The call-backs.", "CallbackList"),
                    "400": _invalid_input("status (not a known status)"),
                    **unavailable,
                },
            }
        },
        "/api/callbacks/{id}/cancel": {
            "post": {
                "parameters": [_id_param("Call-back id.")],
                "operationId": "cancelCallback",
                "summary": "Cancel an open call-back",
                "description": (
                    "No request body. A waiting or dialling call-back becomes cancelled and "
                    "leaves the queue (a queue event and a callback event are published). A "
                    "call already in progress is not cut off."
                ),
                "responses": {
                    "200": _json_response("The call-back, now cancelled.", "Callback"),
                    "404": _error_response("No such call-back (error_id not-found; details.id)."),
                    "409": _error_response(
                        "The call-back is already finished (error_id conflict)."
                    ),
                    **unavailable,
                },
            },
        },
        "/api/messages": {
            "get": {
                "operationId": "listMessages",
                "summary": "List messages (留言) callers left, newest first",
                "description": (
                    "handled=false is the to-do list of messages nobody has passed on yet. "
                    "Ordered by recorded_at descending, then id descending."
                ),
                "parameters": [
                    _query_param(
                        "handled",
                        "true: only handled messages; false: only unhandled; empty or absent: all.",
                        {"type": "string", "enum": ["true", "false"]},
                    ),
                    _query_param(
                        "limit",
                        "Page size; empty or absent means 50.",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MESSAGES_MAX_LIMIT,
                            "default": MESSAGES_DEFAULT_LIMIT,
                        },
                    ),
                    _query_param(
                        "offset",
                        "Messages to skip; empty or absent means 0.",
                        {"type": "integer", "minimum": 0, "default": 0},
                    ),
                ],
                "responses": {
                    "200": _json_response("One page of messages.", "MessagePage"),
                    "400": _invalid_input(
                        "handled (not true or false) or limit (also reported for a bad offset)"
                    ),
                    **unavailable,
                },
            }
        },
        "/api/messages/{id}/handled": {
            "post": {
                "parameters": [_id_param("Message id.")],
                "operationId": "markMessageHandled",
                "summary": "Mark a message handled (转告), with who and an optional note",
                "description": (
                    "A message can be handled once: a second attempt is refused rather than "
                    "overwriting the first. Published on /api/live as message-handled."
                ),
                "requestBody": _json_body("Who handled it, and how.", "MessageHandledRequest"),
                "responses": {
                    "200": _json_response("The message, now handled.", "Message"),
                    "400": _invalid_input(
                        "body, handled_by (missing, or not 1 to 80 characters) or note (over "
                        "2000 characters)"
                    ),
                    "404": _error_response("No such message (error_id not-found; details.id)."),
                    "409": _error_response(
                        "The message was already handled (error_id conflict; the message "
                        "names by whom)."
                    ),
                    **unavailable,
                },
            },
        },
        "/api/live": {
            "get": {
                "operationId": "liveEvents",
                "summary": "Websocket of live queue and agent changes, for supervisor screens",
                "description": (
                    "Open as a websocket (GET with Upgrade: websocket; OpenAPI has no "
                    "websocket operation, so this GET stands for it). The server sends JSON "
                    "text messages and ignores what the client sends. The first message is "
                    "a snapshot (type snapshot: every queue and every agent); after it, one "
                    "message per change, each with its type and the time it happened (at):\n"
                    "- queue: one queue's new figures (waiting, longest wait, agents by "
                    "state);\n"
                    "- agent: an agent added, edited or changing state (the whole agent);\n"
                    "- agent-removed: agent_id was removed;\n"
                    "- alert: a caller joined the emergency queue (alert emergency, call_id, "
                    "caller_number): raise it on screen;\n"
                    "- callback: a caller left the line for a call-back, or a call-back was "
                    "cancelled (the whole call-back);\n"
                    "- callback-attempt: an agent (agent_id) is rung for call-back "
                    "callback_id (if they do not answer, callback-attempt-done follows with "
                    "outcome agent-missed and the call-back waits for the next agent);\n"
                    "- callback-attempt-done: the attempt's outcome and the call-back's new "
                    "status;\n"
                    "- message-handled: message_id was marked handled.\n"
                    "Apply events on top of the snapshot. A screen too slow to keep up loses "
                    "its oldest events (beyond 1000 pending): reconnect to get a fresh "
                    "snapshot. The server pings every 30 s; clients must answer (browsers "
                    "do). Every message matches the LiveEvent schema "
                    "(x-websocket-message)."
                ),
                "x-websocket-message": _ref("LiveEvent"),
                "responses": {
                    "101": {
                        "description": (
                            "Switching protocols: the websocket is open; messages are "
                            "LiveEvent JSON objects."
                        )
                    },
                    "400": {
                        "description": "Not a websocket upgrade request (plain-text body).",
                    },
                },
            }
        },
    }


def acd_openapi_schemas() -> dict[str, Any]:
    """OpenAPI 3.1 ``components.schemas`` used by ``acd_openapi_paths()``."""
    text, int_, number = "string", "integer", "number"
    optional_text, optional_int = [text, "null"], [int_, "null"]
    agent = _agent_properties()
    skills = _skills_schema()
    return {
        "Agent": _object("An agent as the ACD sees them now.", **agent),
        "AgentDetail": _object(
            "An agent as the ACD sees them now, with their latest state changes.",
            **agent,
            history=_field(
                "array",
                "The latest 50 state changes, newest first.",
                items=_ref("AgentStateChange"),
            ),
        ),
        "AgentStateChange": _object(
            "One stored change of an agent's state.",
            state=_field(text, "The state entered.", enum=AGENT_STATES),
            reason=_field(optional_text, "Pause reason when the state is paused, else null."),
            call_id=_field(optional_int, "The call rung or taken, for ringing and on-call."),
            at=_field(text, "When the change happened.", format="date-time"),
        ),
        "AgentList": _object(
            "Every active agent.",
            items=_field("array", "The agents, by id.", items=_ref("Agent")),
        ),
        "AgentCreate": _object(
            "A new agent.",
            name=_field(text, "Display name, 1 to 80 characters.", minLength=1, maxLength=80),
            endpoint=_field(
                text,
                "What Asterisk dials to ring the agent: technology/resource, e.g. PJSIP/1001. "
                "Unique among agents.",
                pattern=r"^[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.+@-]{1,80}$",
            ),
            skills=skills,
        ),
        "AgentUpdate": {
            "type": "object",
            "description": "Fields to change; absent or null ones stay as they are.",
            "properties": {
                "name": _field(
                    optional_text, "Display name, 1 to 80 characters.", minLength=1, maxLength=80
                ),
                "endpoint": _field(
                    optional_text,
                    "Asterisk endpoint, e.g. PJSIP/1001; unique among agents.",
                    pattern=r"^[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.+@-]{1,80}$",
                ),
                "skills": {**skills, "type": ["object", "null"]},
            },
        },
        "AgentStateRequest": {
            "type": "object",
            "description": "A state change an agent asks for.",
            "required": ["action"],
            "properties": {
                "action": _field(
                    text,
                    "log-in (logged-out → paused), ready (paused or wrap-up → ready), pause "
                    "(ready, paused or wrap-up → paused; paused again changes the reason), "
                    "log-out (ready, paused or wrap-up → logged-out).",
                    enum=list(REQUESTS),
                ),
                "reason": _field(
                    optional_text,
                    "Why the agent pauses, e.g. lunch, training: required for pause, 1 to 80 "
                    "characters (trimmed); null counts as not given. With log-in it replaces "
                    f"the default pause reason {PauseReason.LOGGED_IN}; ignored for ready and "
                    "log-out.",
                    minLength=1,
                    maxLength=80,
                ),
            },
        },
        "AgentCounts": _object(
            "How many agents serving the queue are in each state.",
            **{state: _field(int_, f"Agents {state}.", minimum=0) for state in AGENT_STATES},
        ),
        "QueueStatus": _object(
            "One queue now.",
            queue=_field(text, "Queue name, as in agents' skills, e.g. repair."),
            label=_field(text, "Label for people, e.g. 报修."),
            waiting=_field(int_, "Callers waiting, including call-backs lined up.", minimum=0),
            longest_wait_s=_field(
                number,
                "Seconds the longest waiting caller has been in line (since their original "
                "place for a call-back), one decimal; 0 when nobody waits.",
                minimum=0,
            ),
            agents=_ref("AgentCounts"),
        ),
        "QueueList": _object(
            "Every configured queue.",
            items=_field("array", "The queues.", items=_ref("QueueStatus")),
        ),
        "CallbackAttempt": _object(
            "One try at a call-back: the agent is rung first, then the resident.",
            agent_id=_field(optional_int, "The agent rung."),
            started_at=_field(text, "When the attempt started.", format="date-time"),
            ended_at=_field(
                optional_text, "When it ended; null while in progress.", format="date-time"
            ),
            outcome=_field(
                optional_text,
                "reached, no-answer, busy, failed, or agent-missed (the agent did not pick "
                "up: does not count as one of the resident's attempts); null while in "
                "progress.",
                enum=[*ATTEMPT_OUTCOMES, None],
            ),
        ),
        "Callback": _object(
            "A queued call-back: a caller who left the line keeps their place and is called back.",
            id=_field(int_, "Call-back id."),
            call_id=_field(int_, "The call in which the resident asked for it."),
            queue=_field(text, "Queue it waits in."),
            number=_field(text, "Number to call back."),
            place_at=_field(
                text, "The caller's original entry time: their place in line.", format="date-time"
            ),
            requested_at=_field(text, "When the call-back was booked.", format="date-time"),
            status=_field(
                text,
                "waiting (for its turn or retry time), dialling, reached, failed (attempts "
                "used up), expired or cancelled.",
                enum=CALLBACK_STATUSES,
            ),
            attempts=_field(int_, "Attempts counted against the resident.", minimum=0),
            next_attempt_at=_field(
                text, "Not tried before this time (retry delay).", format="date-time"
            ),
            expires_at=_field(text, "Given up after this time.", format="date-time"),
            finished_at=_field(
                optional_text,
                "When it reached a final status; null while open.",
                format="date-time",
            ),
            attempt_log=_field(
                "array", "Every attempt, oldest first.", items=_ref("CallbackAttempt")
            ),
        ),
        "CallbackList": _object(
            "Call-backs in place order.",
            items=_field("array", "The call-backs.", items=_ref("Callback")),
            total=_field(int_, "Number of items."),
        ),
        "Message": _object(
            "A message (留言) a caller left, and whether someone has passed it on.",
            id=_field(int_, "Message id."),
            call_id=_field(int_, "The call it was left in (see GET /api/calls/{id})."),
            queue=_field(optional_text, "Queue the caller had chosen; null if none."),
            reason=_field(
                text,
                "asked (chose it in the menu), no-agents (nobody of the queue logged in) or "
                "out-of-hours.",
                enum=MESSAGE_REASONS,
            ),
            recording=_field(optional_text, "Name of the Asterisk stored recording; null if none."),
            duration_s=_field([number, "null"], "Recording length in seconds, if known."),
            recorded_at=_field(text, "When the message was stored.", format="date-time"),
            handled_at=_field(
                optional_text, "When it was handled; null if not yet.", format="date-time"
            ),
            handled_by=_field(optional_text, "Who handled it."),
            note=_field(optional_text, "What was done about it."),
            for_whom=_field(optional_text, "Whom it is for: the department of its queue."),
            case_id=_field([int_, "null"], "The case it is filed under (GET /api/cases/{id})."),
        ),
        "MessagePage": _object(
            "One page of messages, newest first.",
            items=_field("array", "The messages on this page.", items=_ref("Message")),
            total=_field(int_, "Messages matching the filter in all pages."),
        ),
        "MessageHandledRequest": {
            "type": "object",
            "description": "Who handled a message, and how.",
            "required": ["handled_by"],
            "properties": {
                "handled_by": _field(
                    text, "Who passed it on, 1 to 80 characters (trimmed).", maxLength=80
                ),
                "note": _field(
                    optional_text, "What was done, up to 2000 characters.", maxLength=2000
                ),
            },
        },
        "AcdError": _object(
            "Why an ACD request failed.",
            error_id=_field(text, "Stable code clients can branch on.", enum=ERROR_IDS),
            message=_field(text, "Human-readable explanation."),
            details=_field(
                "object",
                "invalid-input: field and reason; not-found: id (as sent); "
                "illegal-transition: state (the agent's current state); otherwise empty.",
                properties={
                    "field": _field(text, "The request field refused, e.g. skills.repair."),
                    "reason": _field(text, "What is wrong with it."),
                    "id": _field([int_, text], "The id that was not found."),
                    "state": _field(text, "The agent's current state.", enum=AGENT_STATES),
                },
            ),
        ),
        **_live_schemas(),
    }


def _agent_properties() -> dict[str, dict[str, Any]]:
    text = "string"
    return {
        "id": _field("integer", "Agent id."),
        "name": _field(text, "Display name."),
        "endpoint": _field(text, "What Asterisk dials to ring the agent, e.g. PJSIP/1001."),
        "skills": _skills_schema(),
        "state": _field(text, "Current state (see the state machine above).", enum=AGENT_STATES),
        "reason": _field(
            [text, "null"],
            "Why the agent is paused (their own reason, or logged-in, missed-calls, "
            "softphone-offline, unreachable, service-restart); null in other states.",
        ),
        "since": _field(text, "When the agent entered this state.", format="date-time"),
        "misses": _field(
            "integer",
            "Offers not answered in a row (reset by answering); too many pause the agent.",
            minimum=0,
        ),
        "call_id": _field(
            ["integer", "null"],
            "The call ringing, taken or being wrapped up; null otherwise.",
        ),
    }


def _skills_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "Queues served: {queue name: level 1-10}; queue names must be configured ones."
        ),
        "additionalProperties": {"type": "integer", "minimum": 1, "maximum": MAX_LEVEL},
        "examples": [{"repair": 5, "inquiry": 3}],
    }


def _live_schemas() -> dict[str, Any]:
    text, int_ = "string", "integer"
    at = _field(text, "When it happened.", format="date-time")

    def event(kind: str, description: str, **properties: dict[str, Any]) -> dict[str, Any]:
        return _object(
            description,
            type=_field(text, "Message type.", const=kind),
            at=at,
            **properties,
        )

    schemas = {
        "LiveSnapshot": _object(
            "The first message on connect: everything now.",
            type=_field(text, "Message type.", const="snapshot"),
            queues=_field("array", "Every queue, as GET /api/queues.", items=_ref("QueueStatus")),
            agents=_field("array", "Every agent, as GET /api/agents.", items=_ref("Agent")),
        ),
        "LiveQueueEvent": event(
            "queue",
            "A queue's figures changed: a caller joined or left, or an agent's state changed.",
            queue=_ref("QueueStatus"),
        ),
        "LiveAgentEvent": event(
            "agent", "An agent was added, edited or changed state.", agent=_ref("Agent")
        ),
        "LiveAgentRemovedEvent": event(
            "agent-removed", "An agent was removed.", agent_id=_field(int_, "Agent id.")
        ),
        "LiveAlertEvent": event(
            "alert",
            "Something a supervisor must see at once: emergency, a caller in the emergency "
            "queue; urgent-unanswered, an urgent repair (急修) or emergency call ended with "
            "nobody answering (its call-back is due at once and the duty phone is rung).",
            alert=_field(text, "What happened.", enum=["emergency", "urgent-unanswered"]),
            call_id=_field(int_, "The call."),
            caller_number=_field([text, "null"], "Caller id number, if known."),
            case_id=_field(
                [int_, "null"], "The case the call opened or joined (urgent-unanswered)."
            ),
            case_kind=_field([text, "null"], "repair or emergency (urgent-unanswered)."),
        ),
        "LiveDutyToldEvent": event(
            "duty-told",
            "The duty phone (acd.duty_endpoint) was rung about an urgent call nobody answered.",
            case_id=_field(int_, "The case."),
            call_id=_field(int_, "The unanswered call."),
            endpoint=_field(text, "The duty phone rung."),
            outcome=_field(
                text,
                "reached: answered and told the number to call back; otherwise how the ring ended.",
                enum=["reached", "no-answer", "busy", "failed"],
            ),
        ),
        "LiveCallbackEvent": event(
            "callback",
            "A caller left the line for a call-back.",
            callback=_ref("Callback"),
        ),
        "LiveCallbackAttemptEvent": event(
            "callback-attempt",
            "An attempt at a call-back started: the agent is rung first.",
            callback_id=_field(int_, "Call-back id."),
            agent_id=_field(int_, "The agent rung."),
        ),
        "LiveCallbackAttemptDoneEvent": event(
            "callback-attempt-done",
            "An attempt at a call-back ended (not sent when the agent did not answer).",
            callback_id=_field(int_, "Call-back id."),
            outcome=_field(text, "How the attempt ended.", enum=ATTEMPT_OUTCOMES),
            status=_field(
                text,
                "The call-back's status now (waiting: retried later).",
                enum=CALLBACK_STATUSES,
            ),
        ),
        "LiveMessageHandledEvent": event(
            "message-handled",
            "A message was marked handled.",
            message_id=_field(int_, "Message id."),
        ),
        "LiveTranscriptQueuedEvent": event(
            "transcript-queued",
            "A call's recordings are stored; its transcription is queued.",
            call_id=_field(int_, "The call."),
        ),
        "LiveTranscriptRunningEvent": event(
            "transcript-running",
            "A call's transcription started.",
            call_id=_field(int_, "The call."),
            attempt=_field(int_, "Which attempt this is (1 first)."),
        ),
        "LiveTranscriptReadyEvent": event(
            "transcript-ready",
            "A call's transcript is ready (GET /api/calls/{id}/transcript).",
            call_id=_field(int_, "The call."),
            turns=_field(int_, "How many turns it has."),
        ),
        "LiveTranscriptFailedEvent": event(
            "transcript-failed",
            "A transcription attempt failed.",
            call_id=_field(int_, "The call."),
            reason=_field(text, "Why."),
            retry=_field("boolean", "Whether it will be tried again."),
        ),
    }
    case_call = {
        "case_id": _field(int_, "The case."),
        "case_kind": _field(text, "Its kind (emergency cases are flagged for supervisors)."),
        "call_id": _field(int_, "The call."),
        "owner_agent_id": _field([int_, "null"], "Who follows it up."),
        "emergency": _field("boolean", "An emergency: show it at once."),
    }
    schemas["LiveCaseOpenedEvent"] = event(
        "case-opened", "A call ended and opened a case.", **case_call
    )
    schemas["LiveCaseCallEvent"] = event(
        "case-call", "A call ended and joined the caller's open case.", **case_call
    )
    schemas["LiveRepairClassSuggestedEvent"] = event(
        "repair-class-suggested",
        "The transcript changed a repair's suggested class (unconfirmed: it follows).",
        case_id=_field(int_, "The case."),
        repair_class=_field(text, "urgent or general.", enum=["urgent", "general"]),
        because=_field(text, "Why, e.g. 'words: 电梯'."),
    )
    deadline = {
        "case_id": _field(int_, "The case."),
        "deadline_id": _field(int_, "The deadline."),
        "rule": _field(text, "Which rule (on-site, fixed, reply, price-review, …)."),
        "label": _field(text, "The rule as staff say it (急修到场, 咨询回复 …)."),
        "due_at": _field(text, "The last moment in time.", format="date-time"),
        "case_kind": _field(text, "The case's kind."),
        "case_summary": _field(text, "The case's summary."),
        "owner_agent_id": _field([int_, "null"], "Who follows it up."),
    }
    schemas["LiveDeadlineNearEvent"] = event(
        "deadline-near", "A deadline is near (rules.warn_fraction of its time left).", **deadline
    )
    schemas["LiveDeadlinePassedEvent"] = event(
        "deadline-passed", "A deadline passed unmet: the case is overdue.", **deadline
    )
    dialling = {
        "callback_id": _field(int_, "The case call-back."),
        "case_id": _field(int_, "Its case."),
        "call_id": _field(int_, "The outbound call."),
        "agent_id": _field(int_, "The agent, rung first."),
    }
    schemas["LiveCaseCallBackDiallingEvent"] = event(
        "case-callback-dialling", "A call-back is being dialled: the agent first.", **dialling
    )
    schemas["LiveCaseCallBackConnectedEvent"] = event(
        "case-callback-connected", "The resident answered the call-back.", **dialling
    )
    schemas["LiveCaseCallBackEndedEvent"] = event(
        "case-callback-ended",
        "The call-back call ended; a reached resident's answer waits for the agent.",
        reason=_field(
            text,
            "How it ended.",
            enum=["agent-no-answer", "not-reached", "talked", "agent-hung-up-first"],
        ),
        **dialling,
    )
    schemas["LiveEvent"] = {
        "description": "Any message the /api/live websocket sends, by its type.",
        "oneOf": [_ref(name) for name in LIVE_EVENTS.values()],
        "discriminator": {
            "propertyName": "type",
            "mapping": {kind: _ref(name)["$ref"] for kind, name in LIVE_EVENTS.items()},
        },
    }
    return schemas


def _object(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema in which every property is required (null stands for absent)."""
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "properties": properties,
    }


def _field(kind: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _id_param(description: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": description + " An id that is not a positive integer is 404.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _json_body(description: str, schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _error_response(description: str) -> dict[str, Any]:
    return _json_response(description, "AcdError")


def _invalid_input(fields: str) -> dict[str, Any]:
    return _error_response(
        f"A request value was refused (error_id invalid-input; details.field and "
        f"details.reason). Fields: {fields}."
    )
