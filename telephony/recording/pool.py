"""The decoder pool: worker processes, each holding the Vosk model once.

Processes are spawned, not forked: the service has threads (database, resolver) that a
fork would copy in whatever state they were in. A worker that dies (out of memory, a
crash inside Kaldi) breaks the pool; the next decode builds a new one, and the job that
was running is retried by the transcriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from telephony.recording import decoder
from telephony.recording.decoder import LegText
from telephony.recording.vosk_model import ModelInfo


class DecoderPool:
    def __init__(self, model: ModelInfo, workers: int) -> None:
        self.model = model
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=decoder.load,
                initargs=(str(self.model.path), self.model.sample_rate),
            )
        return self._executor

    async def decode(self, path: Path) -> LegText:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool(), decoder.decode_file, str(path))
        except BrokenProcessPool:
            self.close(kill=True)  # the next decode starts fresh workers
            raise

    async def warm(self) -> None:
        """Start every worker (and load the model) now, not on the first call's hang-up."""
        loop = asyncio.get_running_loop()
        pool = self._pool()
        await asyncio.gather(
            *(loop.run_in_executor(pool, decoder.ready) for _ in range(self.workers))
        )

    def close(self, *, kill: bool = False) -> None:
        """Stop the workers; ``kill`` ends decodes in progress (their jobs are resumed)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:
            processes = getattr(executor, "_processes", None) or {}
            for process in list(processes.values()):
                with contextlib.suppress(Exception):
                    process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)
