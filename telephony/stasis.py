"""ARI events in: route each to its call session, and reconcile after every connect.

This is the first hop of a call's path. StasisStart makes a ``CallSession``; every
other event goes to the session owning its channel. Because events are lost while the
websocket is down, each (re)connect compares what Asterisk has with what we think we
have: calls still in Stasis are re-adopted, sessions whose channel is gone are closed
(with ``asterisk-restart`` if Asterisk's start time moved), and call records left open
by a previous run of the service are closed with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime

from crm.calls import EndReason
from telephony.acd.legs import OutboundLegs
from telephony.ari.events import ApplicationReplaced, Event, StasisStart
from telephony.ari.models import Channel
from telephony.holding import HoldingArea
from telephony.session import CallSession, Hangup, SessionDeps

log = logging.getLogger(__name__)


class StasisApp:
    def __init__(self, deps: SessionDeps, holding: HoldingArea, legs: OutboundLegs) -> None:
        self.deps = deps
        self.recorder = deps.recorder
        self.holding = holding
        self.legs = legs
        self.app = deps.config.ari.app
        self.sessions: dict[str, CallSession] = {}
        self.asterisk_started_at: datetime | None = None
        self.replaced = False
        self.stopping = False

    # -- events -------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        channel_id = event.channel_id
        if self.recorder.deliver(event):
            return  # a snoop channel or a recording of ours
        if channel_id is not None and self.legs.deliver(channel_id, event):
            return  # an agent's phone or a call-back the ACD dialled
        if isinstance(event, StasisStart):
            if self.legs.is_outbound(event.channel.id):
                return  # ours from before a restart; its conversation ends on its own
            if event.channel.id not in self.sessions:  # else adopted during reconcile
                self._start(event.channel, adopted=False)
            return
        if isinstance(event, ApplicationReplaced):
            self.replaced = True
            log.error("another client registered ARI application %r; calls go there now", self.app)
            return
        if channel_id is not None and (session := self.sessions.get(channel_id)) is not None:
            session.deliver(event)

    def _start(self, channel: Channel, *, adopted: bool) -> CallSession:
        session = CallSession(channel, self.deps, adopted=adopted)
        self.sessions[channel.id] = session
        task = session.start()
        task.add_done_callback(functools.partial(self._finished, session))
        return session

    def _finished(self, session: CallSession, _task: asyncio.Task[None]) -> None:
        if self.sessions.get(session.channel.id) is session:
            del self.sessions[session.channel.id]

    # -- reconciliation ---------------------------------------------------------------
    async def on_connect(self) -> None:
        ari = self.deps.ari
        info = await ari.asterisk_info()
        restarted = (
            self.asterisk_started_at is not None and info.startup_time != self.asterisk_started_at
        )
        self.asterisk_started_at = info.startup_time
        self.replaced = False
        if restarted:
            log.warning("Asterisk restarted since we last saw it; its calls were cut")
            self.holding.forget()
        in_app = await ari.application_channels(self.app)
        live = {
            c.id: c
            for c in await ari.list_channels()
            if c.id in in_app and not self.legs.is_outbound(c.id) and not self.recorder.owns(c.id)
        }

        gone = EndReason.ASTERISK_RESTART if restarted else EndReason.CHANNEL_LOST
        for channel_id, session in list(self.sessions.items()):
            if channel_id not in live:
                session.end(Hangup(gone))
            else:
                await session.resync()
        for channel_id, channel in live.items():
            if channel_id not in self.sessions:
                log.info("re-adopting call still in Stasis", extra={"channel_id": channel_id})
                self._start(channel, adopted=True)
        await self._close_orphans(set(live))

    async def _close_orphans(self, live: set[str]) -> None:
        """Close records a previous run left open whose channel no longer exists."""
        call_log = self.deps.call_log
        now = self.deps.clock.now()
        for record in await call_log.open_calls():
            if record.channel_id in live or record.channel_id in self.sessions:
                continue
            cut_by_restart = (
                self.asterisk_started_at is not None
                and record.started_at < self.asterisk_started_at
            )
            reason = EndReason.ASTERISK_RESTART if cut_by_restart else EndReason.SERVICE_RESTART
            await call_log.close_call(record.id, ended_at=now, reason=reason)
            log.info("closed call left open: %s", reason, extra={"call_id": record.id})

    def on_disconnect(self) -> None:
        if self.stopping:
            return
        log.warning("ARI events lost; %d live call(s) wait for the reconnect", len(self.sessions))

    async def shutdown(self) -> None:
        """Stop every session's script; their records stay open for re-adoption."""
        self.stopping = True
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
