"""Copy finished recordings out of Asterisk into our store, then delete Asterisk's copy.

The copy goes through ARI (``GET /recordings/stored/{name}/file``), so Asterisk may run
on another host and we never read its spool folder. Asterisk's copy is deleted only
after ours is on disk with its checksum in the database. A failed copy is retried; if
Asterisk no longer has the file the recording ends ``lost``, if our disk keeps failing
it ends ``failed``, each with the reason, and the call keeps the link either way.

When every recording of a call has settled, the call's transcription is queued. The
same loop applies the retention setting: old audio is deleted, records and
transcripts stay.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from crm.clock import Clock
from crm.exceptions import CrmError
from crm.recordings import RecordingLog, RecordingRecord, RecordingRole, RecordingStatus
from telephony.ari import AriClient
from telephony.ari.exceptions import AriError, AriHttpError
from telephony.config import RecordingConfig
from telephony.recording.loops import sleep_until, stop_task
from telephony.recording.store import RecordingStore

log = logging.getLogger(__name__)

SWEEP_S = 30.0  # look for unfinished recordings of ended calls, and for retention, this often
UNFINISHED_GRACE_S = 60.0  # a recording still 'recording' this long after its call ended


class RecordingFetcher:
    def __init__(
        self,
        config: RecordingConfig,
        ari: AriClient,
        store: RecordingStore,
        recordings: RecordingLog,
        clock: Clock,
        on_call_settled: Callable[[int], Awaitable[object]],
    ) -> None:
        self.config = config
        self.ari = ari
        self.store = store
        self.recordings = recordings
        self.clock = clock
        self.on_call_settled = on_call_settled
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="recording-fetcher")

    async def stop(self) -> None:
        await stop_task(self._task)

    def kick(self) -> None:
        self._wake.set()

    async def _run_forever(self) -> None:
        last_sweep = -SWEEP_S
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()  # before looking: a kick from now on is not lost
            try:
                if loop.time() - last_sweep >= SWEEP_S:
                    last_sweep = loop.time()
                    await self.sweep()
                await self.copy_due()
                wait_s = await self._idle_s()
            except CrmError:
                log.exception("recording bookkeeping failed; trying again")
                wait_s = self.config.fetch_retry_s
            await sleep_until(self._wake, wait_s)

    async def _idle_s(self) -> float:
        due = await self.recordings.next_copy_at()
        if due is None:
            return SWEEP_S
        return max(0.05, min(SWEEP_S, (due - self.clock.now()).total_seconds()))

    async def sweep(self) -> None:
        now = self.clock.now()
        released = await self.recordings.release_unfinished(
            at=now, call_ended_before=now - timedelta(seconds=UNFINISHED_GRACE_S)
        )
        if released:
            log.info("%d recording(s) of ended calls were never seen to finish; copying", released)
        if self.config.retention_days:
            await self.purge(stored_before=now - timedelta(days=self.config.retention_days))

    async def copy_due(self) -> None:
        while due := await self.recordings.due_copies(now=self.clock.now()):
            for recording in due:
                await self.copy(recording)

    async def copy(self, recording: RecordingRecord) -> None:
        name = recording.asterisk_name
        try:
            data = await self.ari.stored_recording(name)
            audio = await self.store.put(name, data, day=recording.started_at)
        except AriHttpError as err:
            gone = err.status == 404
            await self._copy_failed(
                recording,
                "Asterisk no longer has it (deleted before the copy)" if gone else str(err),
                RecordingStatus.LOST if gone else RecordingStatus.FAILED,
            )
            return
        except (AriError, OSError) as err:
            reason = str(err)
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                reason = f"disk full in the recording store {self.store.root}: {err}"
            await self._copy_failed(recording, reason, RecordingStatus.FAILED)
            return
        await self.recordings.stored(recording.id, audio, at=self.clock.now())
        try:
            await self.ari.delete_stored_recording(name)
        except AriError as err:  # ours is safe; Asterisk's copy is only clutter now
            log.warning("could not delete %s from Asterisk: %s", name, err)
        await self._settled(recording.call_id)

    async def _copy_failed(self, recording: RecordingRecord, reason: str, final: str) -> None:
        give_up = recording.attempts + 1 >= self.config.fetch_attempts
        retry_at = (
            None
            if give_up
            else self.clock.now()
            + timedelta(seconds=self.config.fetch_retry_s * 2**recording.attempts)
        )
        await self.recordings.copy_failed(
            recording.id, error=reason, retry_at=retry_at, final_status=final
        )
        log.warning(
            "copying recording %s failed (attempt %d): %s",
            recording.asterisk_name,
            recording.attempts + 1,
            reason,
        )
        if give_up:
            await self._settled(recording.call_id)

    async def _settled(self, call_id: int) -> None:
        """Queue the call's transcript once none of its recordings is still on its way."""
        recordings = await self.recordings.for_call(call_id)
        if any(r.status in RecordingStatus.UNSETTLED for r in recordings):
            return
        if any(r.role in RecordingRole.SPEAKERS for r in recordings):
            await self.on_call_settled(call_id)

    async def purge(self, *, stored_before: datetime) -> int:
        purged = 0
        while batch := await self.recordings.to_purge(stored_before=stored_before):
            for recording in batch:
                if recording.path is not None:
                    await self.store.delete(recording.path)
                await self.recordings.purged(recording.id, at=self.clock.now())
                purged += 1
        if purged:
            log.info("retention: deleted the audio of %d recording(s)", purged)
        return purged
