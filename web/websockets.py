"""Relaying live events to one websocket: the loop both feeds (wall screens, an agent's
console) share, so each says only what it sends, not how a socket is served."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web


async def relay(
    ws: web.WebSocketResponse,
    events: asyncio.Queue[dict[str, Any]],
    forward: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """``forward`` each event until the client goes; what the client sends is ignored."""
    reader = asyncio.create_task(_drain_client(ws))
    try:
        while not ws.closed:
            nxt = asyncio.ensure_future(events.get())
            await asyncio.wait([nxt, reader], return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():
                nxt.cancel()
                break
            await forward(nxt.result())
    finally:
        reader.cancel()


async def _drain_client(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
