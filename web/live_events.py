"""What the ``/api/live`` websocket sends: one model per message type, told apart by ``type``.

The publishers (``LiveEvents.publish`` callers in telephony/ and crm/) send plain JSON;
these models describe it for console authors and the document, as one discriminated
union (``LiveEvent``). ``tests/test_openapi.py`` checks that every type the code
publishes has its model here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from crm.queue_callbacks import CallbackRecord
from telephony.acd.queue_view import QueueView
from telephony.acd.roster import AgentView

AttemptOutcomeName = Literal["reached", "no-answer", "busy", "failed", "agent-missed"]
CallbackStatusName = Literal["waiting", "dialling", "reached", "failed", "expired", "cancelled"]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Event(_Message):
    at: datetime = Field(description="When it happened.")


class LiveSnapshot(_Message):
    """The first message on connect: everything now."""

    type: Literal["snapshot"]
    queues: list[QueueView] = Field(description="Every queue, as GET /api/queues.")
    agents: list[AgentView] = Field(description="Every agent, as GET /api/agents.")


class LiveQueueEvent(_Event):
    """A queue's figures changed: a caller joined or left, or an agent's state changed."""

    type: Literal["queue"]
    queue: QueueView = Field(description="The queue's new figures, as GET /api/queues.")


class LiveAgentEvent(_Event):
    """An agent was added, edited or changed state."""

    type: Literal["agent"]
    agent: AgentView = Field(description="The whole agent, as GET /api/agents.")


class LiveAgentRemovedEvent(_Event):
    """An agent was removed."""

    type: Literal["agent-removed"]
    agent_id: int = Field(description="Agent id.")


class LiveAlertEvent(_Event):
    """Something a supervisor must see at once: emergency, a caller in the emergency
    queue; urgent-unanswered, an urgent repair (急修) or emergency call ended with nobody
    answering (its call-back is due at once and the duty phone is rung)."""

    type: Literal["alert"]
    alert: Literal["emergency", "urgent-unanswered"] = Field(description="What happened.")
    call_id: int = Field(description="The call.")
    caller_number: str | None = Field(description="Caller id number, if known.")
    case_id: int | None = Field(
        None, description="The case the call opened or joined (urgent-unanswered)."
    )
    case_kind: str | None = Field(None, description="repair or emergency (urgent-unanswered).")


class LiveDutyToldEvent(_Event):
    """The duty phone (acd.duty_endpoint) was rung about an urgent call nobody answered."""

    type: Literal["duty-told"]
    case_id: int = Field(description="The case.")
    call_id: int = Field(description="The unanswered call.")
    endpoint: str = Field(description="The duty phone rung.")
    outcome: Literal["reached", "no-answer", "busy", "failed"] = Field(
        description="reached: answered and told the number to call back; otherwise how the "
        "ring ended."
    )


class LiveCallbackEvent(_Event):
    """A caller left the line for a call-back, or a call-back was cancelled."""

    type: Literal["callback"]
    callback: CallbackRecord = Field(description="The whole call-back.")


class LiveCallbackAttemptEvent(_Event):
    """An attempt at a call-back started: the agent is rung first."""

    type: Literal["callback-attempt"]
    callback_id: int = Field(description="Call-back id.")
    agent_id: int = Field(description="The agent rung.")


class LiveCallbackAttemptDoneEvent(_Event):
    """An attempt at a call-back ended."""

    type: Literal["callback-attempt-done"]
    callback_id: int = Field(description="Call-back id.")
    outcome: AttemptOutcomeName = Field(description="How the attempt ended.")
    status: CallbackStatusName = Field(
        description="The call-back's status now (waiting: retried later)."
    )


class LiveMessageHandledEvent(_Event):
    """A message was marked handled."""

    type: Literal["message-handled"]
    message_id: int = Field(description="Message id.")


class LiveTranscriptQueuedEvent(_Event):
    """A call's recordings are stored; its transcription is queued."""

    type: Literal["transcript-queued"]
    call_id: int = Field(description="The call.")


class LiveTranscriptRunningEvent(_Event):
    """A call's transcription started."""

    type: Literal["transcript-running"]
    call_id: int = Field(description="The call.")
    attempt: int = Field(description="Which attempt this is (1 first).")


class LiveTranscriptReadyEvent(_Event):
    """A call's transcript is ready (GET /api/calls/{id}/transcript)."""

    type: Literal["transcript-ready"]
    call_id: int = Field(description="The call.")
    turns: int = Field(description="How many turns it has.")


class LiveTranscriptFailedEvent(_Event):
    """A transcription attempt failed."""

    type: Literal["transcript-failed"]
    call_id: int = Field(description="The call.")
    reason: str = Field(description="Why.")
    retry: bool = Field(description="Whether it will be tried again.")


class _CaseCall(_Event):
    case_id: int = Field(description="The case.")
    case_kind: str = Field(description="Its kind (emergency cases are flagged for supervisors).")
    call_id: int = Field(description="The call.")
    owner_agent_id: int | None = Field(description="Who follows it up.")
    emergency: bool = Field(description="An emergency: show it at once.")


class LiveCaseOpenedEvent(_CaseCall):
    """A call ended and opened a case."""

    type: Literal["case-opened"]


class LiveCaseCallEvent(_CaseCall):
    """A call ended and joined the caller's open case."""

    type: Literal["case-call"]


class LiveRepairClassSuggestedEvent(_Event):
    """The transcript changed a repair's suggested class (unconfirmed: it follows)."""

    type: Literal["repair-class-suggested"]
    case_id: int = Field(description="The case.")
    repair_class: Literal["urgent", "general"] = Field(description="urgent or general.")
    because: str = Field(description="Why, e.g. 'words: 电梯'.")


class _Deadline(_Event):
    case_id: int = Field(description="The case.")
    deadline_id: int = Field(description="The deadline.")
    rule: str = Field(description="Which rule (on-site, fixed, reply, price-review, …).")
    label: str = Field(description="The rule as staff say it (急修到场, 咨询回复 …).")
    due_at: datetime = Field(description="The last moment in time.")
    case_kind: str = Field(description="The case's kind.")
    case_summary: str = Field(description="The case's summary.")
    owner_agent_id: int | None = Field(description="Who follows it up.")


class LiveDeadlineNearEvent(_Deadline):
    """A deadline is near (rules.warn_fraction of its time left)."""

    type: Literal["deadline-near"]


class LiveDeadlinePassedEvent(_Deadline):
    """A deadline passed unmet: the case is overdue."""

    type: Literal["deadline-passed"]


class _Dialling(_Event):
    callback_id: int = Field(description="The case call-back.")
    case_id: int = Field(description="Its case.")
    call_id: int = Field(description="The outbound call.")
    agent_id: int = Field(description="The agent, rung first.")


class LiveCaseCallBackDiallingEvent(_Dialling):
    """A call-back is being dialled: the agent first."""

    type: Literal["case-callback-dialling"]


class LiveCaseCallBackConnectedEvent(_Dialling):
    """The resident answered the call-back."""

    type: Literal["case-callback-connected"]


class LiveCaseCallBackEndedEvent(_Dialling):
    """The call-back call ended; a reached resident's answer waits for the agent."""

    type: Literal["case-callback-ended"]
    reason: Literal["agent-no-answer", "not-reached", "talked", "agent-hung-up-first"] = Field(
        description="How it ended."
    )


AnyLiveEvent = (
    LiveSnapshot
    | LiveQueueEvent
    | LiveAgentEvent
    | LiveAgentRemovedEvent
    | LiveAlertEvent
    | LiveDutyToldEvent
    | LiveCallbackEvent
    | LiveCallbackAttemptEvent
    | LiveCallbackAttemptDoneEvent
    | LiveMessageHandledEvent
    | LiveTranscriptQueuedEvent
    | LiveTranscriptRunningEvent
    | LiveTranscriptReadyEvent
    | LiveTranscriptFailedEvent
    | LiveCaseOpenedEvent
    | LiveCaseCallEvent
    | LiveRepairClassSuggestedEvent
    | LiveDeadlineNearEvent
    | LiveDeadlinePassedEvent
    | LiveCaseCallBackDiallingEvent
    | LiveCaseCallBackConnectedEvent
    | LiveCaseCallBackEndedEvent
)


class LiveEvent(RootModel[Annotated[AnyLiveEvent, Field(discriminator="type")]]):
    """Any message the /api/live websocket sends, by its type."""
