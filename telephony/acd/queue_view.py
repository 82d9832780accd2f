"""One queue as the supervisors' screens see it: the figures ``Acd.snapshot`` sends."""

from __future__ import annotations

from dataclasses import dataclass

from crm.repository import DOCUMENTED_FIELDS


@dataclass(frozen=True, slots=True)
class QueueView:
    """One queue now."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    queue: str
    """Queue name, as in agents' skills, e.g. repair."""
    label: str
    """Label for people, e.g. 报修."""
    waiting: int
    """Callers waiting, including call-backs lined up."""
    longest_wait_s: float
    """Seconds the longest waiting caller has been in line (since their original place
    for a call-back), one decimal; 0 when nobody waits."""
    agents: dict[str, int]
    """How many agents serving the queue are in each state (every state named, 0 too)."""
