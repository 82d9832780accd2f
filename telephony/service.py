"""Wiring: build every object of the running service and pass dependencies down.

Nothing else in the package constructs a client, engine or session factory; each is
opened here in one ``cleanup_ctx`` step and closed in reverse order on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from crm.calls import CallLog
from crm.clock import Clock, SystemClock
from crm.db import create_engine, make_sessionmaker, migrate
from crm.http import CALL_LOG
from telephony.appkeys import CONFIG, PROMPTS, STASIS, STREAM, STREAM_STATUS
from telephony.ari import AriClient, EventStream
from telephony.config import Config
from telephony.holding import HoldingArea
from telephony.ivr.menu import load_menu
from telephony.prompts import PromptLibrary
from telephony.session import SessionDeps
from telephony.stasis import StasisApp
from telephony.web import add_service_routes

log = logging.getLogger(__name__)


def prompt_library(config: Config) -> PromptLibrary:
    menu = load_menu(config.ivr.menu)
    return PromptLibrary(
        texts=menu.prompts,
        audio_dir=config.prompts.dir,
        media_prefix=config.prompts.media_prefix,
        company=config.company.name,
        voice=config.prompts.voice,
        speed_wpm=config.prompts.speed_wpm,
        recordings_dir=config.ivr.menu.parent / "prompts",
    )


def build_app(config: Config, clock: Clock | None = None) -> web.Application:
    """The whole service as one aiohttp application (ARI app + HTTP API)."""
    clock = clock or SystemClock()
    menu = load_menu(config.ivr.menu)  # fail at start on a bad menu, not on the first call
    prompts = prompt_library(config)
    app = web.Application()
    app[CONFIG] = config
    app[PROMPTS] = prompts

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await migrate(config.database.url)
        engine = create_engine(config.database.url)
        call_log = CallLog(make_sessionmaker(engine))
        app[CALL_LOG] = call_log
        connector = aiohttp.TCPConnector(limit=config.ari.max_connections)
        async with aiohttp.ClientSession(connector=connector) as http:
            ari = AriClient(
                http,
                config.ari.url,
                config.ari.user,
                config.ari.password,
                timeout_s=config.ari.request_timeout_s,
            )
            holding = HoldingArea(ari, config.holding.moh_class)
            deps = SessionDeps(config, ari, call_log, menu, prompts, holding, clock)
            stasis = StasisApp(deps, holding)
            stream = EventStream(
                http,
                config.ari.url,
                config.ari.user,
                config.ari.password,
                [config.ari.app],
                on_event=stasis.on_event,
                on_connect=stasis.on_connect,
                on_disconnect=stasis.on_disconnect,
                ping_interval_s=config.ari.ping_interval_s,
                backoff_initial_s=config.ari.reconnect_initial_s,
                backoff_max_s=config.ari.reconnect_max_s,
            )
            app[STASIS] = stasis
            app[STREAM_STATUS] = stream.status
            app[STREAM] = stream
            task = asyncio.create_task(stream.run(), name="ari-events")
            log.info(
                "hotline service for %s, ARI app %r at %s",
                config.company.name,
                config.ari.app,
                config.ari.url,
            )
            try:
                yield
            finally:
                stasis.stopping = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await stasis.shutdown()
        await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    add_service_routes(app)
    return app
