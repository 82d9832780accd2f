"""Database work that a caller's cancellation cannot cut in half.

A call's task is cancelled the moment the resident hangs up, wherever it is. Cancelled
inside a transaction, the aiosqlite connection is returned to the pool mid-reset and its
SQLite write lock is never released: every later write then fails with "database is
locked" (seen under a 100-call burst). So each unit of work runs in its own task,
shielded: the caller may stop waiting, but the transaction always commits or rolls
back. A failure nobody waits for any more is logged, not lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)


def uncancellable(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def shielded(*args: P.args, **kwargs: P.kwargs) -> R:
        task = asyncio.ensure_future(method(*args, **kwargs))
        task.add_done_callback(functools.partial(_note_orphan_failure, method.__qualname__))
        return await asyncio.shield(task)

    return shielded


def _note_orphan_failure(name: str, task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and (err := task.exception()) is not None:
        log.debug("%s failed: %s", name, err)
