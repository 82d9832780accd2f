"""What the telephony side tells the CRM: a call ended, a transcript is ready, a queued
call-back was tried.

Each becomes a background task so a slow database never holds up a call, and every task
is waited for at shutdown. A call whose case could not be made (database down, service
stopped first) is not lost: at start the feed sweeps ended calls that have no case yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from crm.exceptions import StorageError
from crm.intake import CallIntake
from crm.transcripts import TranscriptBook
from telephony.acd.live import LiveEvents
from telephony.deadline_watcher import DeadlineWatcher

log = logging.getLogger(__name__)

SWEEP_BACK = timedelta(days=7)
SWEEP_EVERY_S = 60.0  # calls closed by a reconciliation never pass through call_closed


class CaseFeed:
    def __init__(
        self,
        intake: CallIntake,
        transcripts: TranscriptBook,
        live: LiveEvents,
        watcher: DeadlineWatcher,
    ) -> None:
        self.intake = intake
        self.transcripts = transcripts
        self.live = live
        self.watcher = watcher
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        # Calls whose case is being made now: the hang-up and a sweep must not both make one.
        self._busy: set[int] = set()

    async def start(self) -> None:
        await self.sweep()
        self._loops = [
            asyncio.create_task(self._listen(), name="case-feed"),
            asyncio.create_task(self._sweeping(), name="case-sweep"),
        ]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    def call_closed(self, call_id: int) -> None:
        self._spawn(self._case_for(call_id))

    async def sweep(self) -> int:
        """Make the cases of ended calls that have none (restart, reconciliation, a fault)."""
        since = self.intake.desk.clock.now() - SWEEP_BACK
        missing = [c for c in await self.intake.calls_without_case(since) if c not in self._busy]
        for call_id in missing:
            self._spawn(self._case_for(call_id))
        return len(missing)

    async def _case_for(self, call_id: int) -> None:
        if call_id in self._busy:
            return
        self._busy.add(call_id)
        try:
            await self.intake.call_ended(call_id)
        finally:
            self._busy.discard(call_id)
        self.watcher.kick()

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                await self.sweep()
            except StorageError as err:
                log.warning("case sweep: %s", err)

    async def _listen(self) -> None:
        with self.live.subscribe() as events:
            while True:
                event = await events.get()
                kind = event.get("type")
                if kind == "transcript-ready":
                    self._spawn(self._transcript(int(event["call_id"])))
                elif kind == "callback-attempt-done":
                    self._spawn(
                        self.intake.queue_callback_done(
                            int(event["callback_id"]), str(event.get("outcome"))
                        )
                    )

    async def _transcript(self, call_id: int) -> None:
        segments = await self.transcripts.transcript(call_id)
        await self.intake.transcript_ready(call_id, tuple(s.text for s in segments))
        self.watcher.kick()

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("case feed: %r", err, exc_info=err)
