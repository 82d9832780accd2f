"""The supervised ``/ari/events`` websocket.

Asterisk comes and goes (restarts, upgrades, a network blip between hosts), so the
stream never gives up: it connects, pings, and on any loss reconnects with capped
exponential backoff. After each (re)connect it calls ``on_connect`` *before* reading
events, which is where the application reconciles its calls against the live channels:
events that arrive meanwhile wait in the socket, so nothing falls in a gap.

``on_event`` is synchronous on purpose: the reader hands each event to its owner (an
``asyncio.Queue`` put) and reads on, so one slow call can never hold up another and
events for a channel are delivered in the order Asterisk sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from telephony.ari.client import basic_auth
from telephony.ari.events import Event, parse_event

log = logging.getLogger(__name__)


@dataclass
class StreamStatus:
    """What ``/healthz`` reports about the event stream."""

    connected: bool = False
    connects: int = 0
    last_connected_at: datetime | None = None
    last_error: str | None = None
    retry_in_s: float | None = None


class EventStream:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        user: str,
        password: str,
        apps: Sequence[str],
        *,
        on_event: Callable[[Event], None],
        on_connect: Callable[[], Awaitable[None]],
        on_disconnect: Callable[[], None] | None = None,
        ping_interval_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
    ) -> None:
        self._session = session
        scheme, rest = base_url.rstrip("/").split("://", 1)
        self._url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/events"
        self._headers = {"Authorization": basic_auth(user, password)}
        self._apps = ",".join(apps)
        self._on_event = on_event
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._ping = ping_interval_s
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self.status = StreamStatus()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Connect and read forever; returns only when cancelled."""
        delay = self._backoff_initial
        while True:
            try:
                await self._connect_and_read()
                delay = self._backoff_initial  # it was up: start the backoff over
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                self.status.last_error = f"{type(err).__name__}: {err}"
                log.warning("ARI events: %s; retrying in %.1fs", self.status.last_error, delay)
            except Exception as err:  # a bug in a handler must not end the stream
                self.status.last_error = f"{type(err).__name__}: {err}"
                log.exception("ARI events: handler failed; reconnecting")
            finally:
                self._mark_down()
            self.status.retry_in_s = delay
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def close_socket(self) -> None:
        """Close the current websocket (the stream then reconnects); used by fault tests."""
        if self._ws is not None:
            await self._ws.close()

    async def _connect_and_read(self) -> None:
        params = {"app": self._apps, "subscribeAll": "false"}
        async with self._session.ws_connect(
            self._url,
            params=params,
            headers=self._headers,
            heartbeat=self._ping,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
        ) as ws:
            self._ws = ws
            log.info("ARI events: connected for apps %s", self._apps)
            await self._on_connect()
            self.status.connected = True
            self.status.connects += 1
            self.status.last_connected_at = datetime.now(UTC)
            self.status.last_error = None
            self.status.retry_in_s = None
            self.connected.set()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise aiohttp.ClientError(f"websocket error: {ws.exception()}")
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    break
                # BINARY, PING, PONG: ARI sends none that we need
            self.status.last_error = f"websocket closed (code {ws.close_code})"
            log.warning("ARI events: %s", self.status.last_error)

    def _dispatch(self, text: str) -> None:
        try:
            data = json.loads(text)
            event = parse_event(data)
        except (ValueError, KeyError, TypeError) as err:
            log.error("ARI events: unreadable message dropped: %s", err)
            return
        self._on_event(event)

    def _mark_down(self) -> None:
        was_up = self.status.connected
        self._ws = None
        self.status.connected = False
        self.connected.clear()
        if was_up and self._on_disconnect is not None:
            self._on_disconnect()


@contextlib.asynccontextmanager
async def listening(
    session: aiohttp.ClientSession,
    base_url: str,
    user: str,
    password: str,
    app: str,
    on_event: Callable[[Event], None],
    *,
    connect_timeout_s: float = 10.0,
) -> AsyncIterator[EventStream]:
    """Events of one extra application (a simulator, a bench, a test) while the block runs.

    Returns once the websocket is connected, so channels originated into ``app`` from
    inside the block cannot enter it before we listen.
    """

    async def nothing_to_reconcile() -> None:
        return None

    stream = EventStream(
        session,
        base_url,
        user,
        password,
        [app],
        on_event=on_event,
        on_connect=nothing_to_reconcile,
        backoff_initial_s=0.1,
        backoff_max_s=0.5,
    )
    task = asyncio.create_task(stream.run(), name=f"ari-events-{app}")
    try:
        await asyncio.wait_for(stream.connected.wait(), connect_timeout_s)
        yield stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
