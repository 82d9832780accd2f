"""The one scheduler of case deadlines: near and passed moments onto the live stream.

It keeps no timers of its own that a restart could lose: each round asks the database
what is due by the injected clock's now (crm.deadlines claims it, once), publishes it,
and sleeps until the next moment the database knows of, or until kicked because a case
changed, or ``max_sleep_s`` at most, so a deadline added by another process is seen too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from crm.clock import Clock
from crm.deadlines import DeadlineBook, DeadlineEvent
from crm.exceptions import StorageError
from telephony.recording.loops import sleep_until, stop_task

log = logging.getLogger(__name__)

Publish = Callable[..., None]


class DeadlineWatcher:
    def __init__(
        self, book: DeadlineBook, clock: Clock, publish: Publish, *, max_sleep_s: float = 30.0
    ) -> None:
        self.book = book
        self.clock = clock
        self.publish = publish
        self.max_sleep_s = max_sleep_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deadline-watcher")

    async def stop(self) -> None:
        await stop_task(self._task)

    def kick(self) -> None:
        """A deadline may have been added or met: look again now."""
        self._wake.set()

    async def tick(self) -> list[DeadlineEvent]:
        """Announce every moment due by now; what was announced."""
        events = await self.book.claim(self.clock.now())
        for event in events:
            self.publish(event.moment, **_payload(event))
        return events

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
                upcoming = await self.book.next_moment()
            except StorageError as err:
                log.warning("deadline watcher: %s; trying again", err)
                upcoming = None
            wait_s = self.max_sleep_s
            if upcoming is not None:
                # +10 ms: a passed deadline is strictly after its due time.
                wait_s = min(wait_s, max(0.0, (upcoming - self.clock.now()).total_seconds() + 0.01))
            await sleep_until(self._wake, wait_s)


def _payload(event: DeadlineEvent) -> dict[str, Any]:
    item = event.item
    d = item.deadline
    return {
        "case_id": d.case_id,
        "deadline_id": d.id,
        "rule": d.rule,
        "label": d.label,
        "due_at": d.due_at,
        "case_kind": item.case_kind,
        "case_summary": item.case_summary,
        "owner_agent_id": item.owner_agent_id,
    }
