"""Agent states: what an agent may do next, and what the ACD may do with them."""

from __future__ import annotations

import pytest

from telephony.acd.agent_state import (
    TRANSITIONS,
    AgentEvent,
    AgentState,
    agent_machine,
    can_take_calls,
)
from telephony.exceptions import IllegalTransition


def test_a_shift_logs_in_takes_a_call_wraps_up_and_logs_out() -> None:
    """The ordinary day: log in (paused), ready, ring, talk, wrap-up, ready, log out."""
    agent = agent_machine("1001")
    path = [
        AgentEvent.LOG_IN,
        AgentEvent.SET_READY,
        AgentEvent.OFFER,
        AgentEvent.ANSWER,
        AgentEvent.HANG_UP,
        AgentEvent.WRAP_UP_DONE,
        AgentEvent.LOG_OUT,
    ]
    states = [agent.apply(event) for event in path]
    assert states == [
        AgentState.PAUSED,
        AgentState.READY,
        AgentState.RINGING,
        AgentState.ON_CALL,
        AgentState.WRAP_UP,
        AgentState.READY,
        AgentState.LOGGED_OUT,
    ]


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (AgentState.ON_CALL, AgentEvent.SET_READY),  # ready while talking
        (AgentState.ON_CALL, AgentEvent.LOG_OUT),  # walking away from a resident
        (AgentState.RINGING, AgentEvent.OFFER),  # a second call while one rings
        (AgentState.ON_CALL, AgentEvent.OFFER),
        (AgentState.WRAP_UP, AgentEvent.OFFER),
        (AgentState.PAUSED, AgentEvent.OFFER),
        (AgentState.LOGGED_OUT, AgentEvent.SET_READY),  # ready without logging in
        (AgentState.LOGGED_OUT, AgentEvent.OFFER),
    ],
)
def test_requests_that_make_no_sense_are_refused(state: AgentState, event: AgentEvent) -> None:
    """Nonsense changes raise IllegalTransition (the API's 409), and the state stays."""
    agent = agent_machine("1002", state)
    with pytest.raises(IllegalTransition) as caught:
        agent.apply(event)
    assert caught.value.state == state
    assert caught.value.event == event
    assert agent.state is state


def test_a_missed_ring_returns_the_agent_or_pauses_them() -> None:
    """No answer puts the agent back in line; too many misses pause them instead."""
    assert agent_machine("1003", AgentState.RINGING).apply(AgentEvent.NO_ANSWER) is AgentState.READY
    paused = agent_machine("1003", AgentState.RINGING).apply(AgentEvent.MISSED_TOO_OFTEN)
    assert paused is AgentState.PAUSED


def test_only_ready_agents_are_offered_calls() -> None:
    """The ACD's filter agrees with the table: OFFER is legal exactly where calls may go."""
    for state in AgentState:
        assert can_take_calls(state) == ((state, AgentEvent.OFFER) in TRANSITIONS)
