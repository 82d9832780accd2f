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

from crm.intake import CallIntake
from crm.transcripts import TranscriptBook
from telephony.acd.live import LiveEvents
from telephony.deadline_watcher import DeadlineWatcher

log = logging.getLogger(__name__)

SWEEP_BACK = timedelta(days=7)


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
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="case-feed")
        since = self.intake.desk.clock.now() - SWEEP_BACK
        for call_id in await self.intake.calls_without_case(since):
            self._spawn(self._case_for(call_id))

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    def call_closed(self, call_id: int) -> None:
        self._spawn(self._case_for(call_id))

    async def _case_for(self, call_id: int) -> None:
        await self.intake.call_ended(call_id)
        self.watcher.kick()

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
