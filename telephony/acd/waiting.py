"""A call waiting in a queue, and what the caller's session learns from the ACD.

The ACD and the caller's session share one ``Waiting``: the ACD resolves ``connected``
when an agent has answered (with the bridge to join, or ``ConnectFailed`` when caller and
agent could not be put together), and ``over`` when the agent hung up; the session tells
the ACD the caller has gone by ``Acd.leave``.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import datetime

from telephony.config import QueueConfig

_arrivals = itertools.count()


class ConnectFailed(Exception):
    """An agent answered but the conversation could not be set up (Asterisk refused or did
    not reply): the call ends, it is never offered to another agent."""


@dataclass(frozen=True)
class Talk:
    """An agent answered: the caller joins ``bridge_id`` to talk to them."""

    bridge_id: str
    agent_id: int | None
    agent_name: str


@dataclass(eq=False)
class Waiting:
    """A live caller on hold, or a call-back keeping its caller's place (``callback_id``)."""

    entry_id: int | None
    call_id: int
    channel_id: str | None
    queue: QueueConfig
    tag: str | None
    caller_number: str | None
    place_at: datetime  # first entry time: the caller's place in line
    callback_id: int | None = None
    attempts: int = 0  # call-backs: attempts that reached (or failed to reach) the resident
    not_before: float = 0.0  # call-backs: loop time of the next try (retry delay)
    expires_at: datetime | None = None
    held: bool = False  # a caller busy booking a call-back is not offered meanwhile
    arrival: int = field(default_factory=lambda: next(_arrivals))
    offering: bool = False
    # An agent answered: from then on the caller is theirs and is never offered again,
    # whatever fails after; the ACD closes the queue entry itself.
    taken: bool = False
    connect_failed: bool = False  # the caller's side could not join the agent's bridge
    tried: set[int] = field(default_factory=set)  # agents who let it ring out
    gone: bool = False
    connected: asyncio.Future[Talk] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    over: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    left: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def is_callback(self) -> bool:
        return self.callback_id is not None

    def order(self) -> tuple[int, datetime, int]:
        """Highest priority first, then the earliest place in line."""
        return (-self.queue.priority, self.place_at, self.arrival)
