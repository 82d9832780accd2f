"""What an agent may do next, as a table: the ACD offers calls only to READY agents.

Agents change state from their console (log in, ready, pause with a reason, log out)
and the ACD moves them through a call (offered → ringing → on a call → wrap-up). A
request that makes no sense in the current state, e.g. "ready" while on a call, is an
``IllegalTransition`` that the API answers with 409 and the reason.
"""

from __future__ import annotations

from enum import StrEnum

from crm.agents import AgentState as AgentState  # re-exported: where the states are stored
from telephony.transitions import Machine


class AgentEvent(StrEnum):
    LOG_IN = "log-in"
    SET_READY = "set-ready"
    PAUSE = "pause"
    LOG_OUT = "log-out"
    OFFER = "offer"  # the ACD rings the agent
    ANSWER = "answer"
    NO_ANSWER = "no-answer"  # ring timeout or rejected: back to ready
    MISSED_TOO_OFTEN = "missed-too-often"  # ring timeout that pauses the agent
    CALLER_GONE = "caller-gone"  # offer withdrawn: caller hung up, or another phone answered
    UNREACHABLE = "unreachable"  # softphone not registered, or the dial failed
    HANG_UP = "hang-up"  # the conversation ended, either side
    WRAP_UP_DONE = "wrap-up-done"


_S, _E = AgentState, AgentEvent

TRANSITIONS: dict[tuple[AgentState, AgentEvent], AgentState] = {
    (_S.LOGGED_OUT, _E.LOG_IN): _S.PAUSED,  # logged in, not yet taking calls
    (_S.PAUSED, _E.SET_READY): _S.READY,
    (_S.PAUSED, _E.PAUSE): _S.PAUSED,  # a new reason
    (_S.PAUSED, _E.LOG_OUT): _S.LOGGED_OUT,
    (_S.READY, _E.PAUSE): _S.PAUSED,
    (_S.READY, _E.LOG_OUT): _S.LOGGED_OUT,
    (_S.READY, _E.OFFER): _S.RINGING,
    (_S.RINGING, _E.ANSWER): _S.ON_CALL,
    (_S.RINGING, _E.NO_ANSWER): _S.READY,
    (_S.RINGING, _E.MISSED_TOO_OFTEN): _S.PAUSED,
    (_S.RINGING, _E.CALLER_GONE): _S.READY,
    (_S.RINGING, _E.UNREACHABLE): _S.PAUSED,
    (_S.ON_CALL, _E.HANG_UP): _S.WRAP_UP,
    (_S.WRAP_UP, _E.WRAP_UP_DONE): _S.READY,
    (_S.WRAP_UP, _E.SET_READY): _S.READY,  # notes done early
    (_S.WRAP_UP, _E.PAUSE): _S.PAUSED,  # finishing notes, then a break
    (_S.WRAP_UP, _E.LOG_OUT): _S.LOGGED_OUT,
}


def agent_machine(
    agent: str, initial: AgentState = AgentState.LOGGED_OUT
) -> Machine[AgentState, AgentEvent]:
    return Machine("agent", TRANSITIONS, initial, call_id=f"agent:{agent}")


def can_take_calls(state: AgentState) -> bool:
    """Only a ready agent is offered a call: never two at once, never while paused."""
    return state is AgentState.READY
