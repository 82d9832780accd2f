"""Holding bridges where routed callers wait, one per queue, with music on hold.

Stand-in for the real queues (next issue): the caller hears music in the queue's
holding bridge until an agent takes them, or until ``holding.max_wait_s`` passes. The
bridges have fixed ids, so after a service restart the same bridges are found again
(POST /bridges/{id} creates or returns) and re-adopted callers rejoin their queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telephony.ari import AriClient, AriConflict, AriError, AriHttpError, AriNotFound

log = logging.getLogger(__name__)


class HoldingArea:
    def __init__(self, ari: AriClient, moh_class: str) -> None:
        self._ari = ari
        self._moh_class = moh_class
        self._ready: set[str] = set()
        self._lock = asyncio.Lock()

    @staticmethod
    def bridge_id(queue: str) -> str:
        return f"hotline-hold-{queue}"

    async def admit(self, queue: str, channel_id: str) -> None:
        bridge_id = self.bridge_id(queue)
        await self._ensure(bridge_id)
        try:
            await self._ari.add_to_bridge(bridge_id, channel_id)
        except AriNotFound:
            # The bridge vanished (Asterisk restarted since we made it): make it again.
            self._ready.discard(bridge_id)
            await self._ensure(bridge_id)
            await self._ari.add_to_bridge(bridge_id, channel_id)
        except AriHttpError:
            # A re-adopted caller may still be in the bridge from before our restart.
            bridge = await self._ari.get_bridge(bridge_id)
            if channel_id not in bridge.channels:
                raise

    async def release(self, queue: str, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self._ari.remove_from_bridge(self.bridge_id(queue), channel_id)

    def forget(self) -> None:
        """Asterisk restarted: every bridge is gone and must be made again."""
        self._ready.clear()

    async def _ensure(self, bridge_id: str) -> None:
        if bridge_id in self._ready:
            return
        async with self._lock:
            if bridge_id in self._ready:
                return
            # AriConflict: made by an earlier run of the service, and Asterisk kept it.
            with contextlib.suppress(AriConflict):
                await self._ari.create_bridge(bridge_id, bridge_type="holding", name=bridge_id)
            await self._ari.start_bridge_moh(bridge_id, self._moh_class)
            self._ready.add(bridge_id)
            log.info("holding bridge ready: %s", bridge_id)
