"""Live queue and agent changes, published to every open supervisor/agent screen.

Publishing never blocks the ACD: each subscriber has a bounded queue, and a screen too
slow to keep up loses its oldest events (it resynchronises from the snapshot the
websocket sends on connect) rather than slowing down call handling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from crm.clock import Clock
from crm.phones import masked

log = logging.getLogger(__name__)


class LiveEvents:
    def __init__(self, clock: Clock, *, backlog: int = 1000) -> None:
        self._clock = clock
        self._backlog = backlog
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "at": self._clock.now().isoformat(), **_plain(data)}
        if kind == "alert":  # the log is read by more people than the screens: no number
            log.warning("ALERT %s", {**event, "caller_number": masked(event.get("caller_number"))})
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # drop the oldest for a slow reader
            queue.put_nowait(event)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._backlog)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}
