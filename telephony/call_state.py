"""The events that move one hotline call between its states (``crm.calls.CallState``,
which the call log stores), and the machine that applies them."""

from __future__ import annotations

from enum import StrEnum

from crm.calls import CallState as CallState  # re-exported: where the states are stored
from telephony.transitions import Machine


class CallEvent(StrEnum):
    ANSWERED = "answered"
    GREETED = "greeted"
    CHOSEN = "chosen"
    HELD = "held"
    WAIT_EXPIRED = "wait-expired"
    AGENT_ANSWERED = "agent-answered"
    TAKE_MESSAGE = "take-message"
    MESSAGE_LEFT = "message-left"
    HANGUP = "hangup"
    FAILED = "failed"


TRANSITIONS: dict[tuple[CallState, CallEvent], CallState] = {
    (CallState.RINGING, CallEvent.ANSWERED): CallState.GREETING,
    (CallState.GREETING, CallEvent.GREETED): CallState.IVR,
    (CallState.IVR, CallEvent.CHOSEN): CallState.ROUTING,
    (CallState.ROUTING, CallEvent.HELD): CallState.HOLDING,
    (CallState.HOLDING, CallEvent.WAIT_EXPIRED): CallState.FAREWELL,
    (CallState.HOLDING, CallEvent.AGENT_ANSWERED): CallState.CONNECTED,
    (CallState.ROUTING, CallEvent.TAKE_MESSAGE): CallState.MESSAGE,
    (CallState.MESSAGE, CallEvent.MESSAGE_LEFT): CallState.FAREWELL,
    **{
        (state, event): CallState.ENDED
        for state in CallState
        if state is not CallState.ENDED
        for event in (CallEvent.HANGUP, CallEvent.FAILED)
    },
}


def call_machine(
    call_id: str, initial: CallState = CallState.RINGING
) -> Machine[CallState, CallEvent]:
    return Machine("call", TRANSITIONS, initial, call_id=call_id)
