"""Background loops of the recording pipeline: how they sleep and how they stop.

The fetcher and the transcriber each run one loop that sleeps until kicked or until
its next due time, and is cancelled when the service stops; a shutdown must never hang
on one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


async def sleep_until(wake: asyncio.Event, timeout_s: float) -> None:
    """Until ``wake`` is set or ``timeout_s`` has passed.

    Not ``asyncio.wait_for(wake.wait(), …)``: with it, on Python 3.11, a service
    stopping in a test run hung for good, this loop's task left 'cancelling' inside
    ``wait_for``; ``asyncio.timeout`` runs no inner task that a cancellation can miss.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await wake.wait()


async def stop_task(task: asyncio.Task[None] | None, timeout_s: float = 5.0) -> None:
    """Cancel a background loop and wait for it, but never hang a shutdown on it."""
    if task is None or task.done():
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.error("%s did not stop within %.0f s of being cancelled", task.get_name(), timeout_s)
    elif not task.cancelled() and (err := task.exception()) is not None:
        log.error("%s failed: %r", task.get_name(), err)
