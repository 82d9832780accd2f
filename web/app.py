"""Wiring: build every object of the running service and pass dependencies down.

Nothing else in the package constructs a client, engine or session factory; each is
opened here in one ``cleanup_ctx`` step and closed in reverse order on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from crm.agents import AgentDirectory
from crm.call_review import CallReview
from crm.calls import CallLog
from crm.clock import Clock, SystemClock
from crm.db import create_engine, make_sessionmaker, migrate
from crm.deadlines import DeadlineBook
from crm.desk import CrmDesk
from crm.intake import CallIntake
from crm.messages import MessageBox
from crm.queue_callbacks import CallbackBook
from crm.queue_facts import QueueFacts
from crm.recordings import RecordingLog
from crm.search import CallSearch
from crm.staff import StaffDirectory, standard_hasher
from crm.transcripts import TranscriptBook
from telephony.acd.announcements import announcement_texts, callback_texts
from telephony.acd.case_dialler import CaseDialler
from telephony.acd.dispatcher import Acd
from telephony.acd.duty import DutyPhone, duty_texts
from telephony.acd.legs import OutboundLegs
from telephony.acd.live import LiveEvents
from telephony.acd.roster import AgentRoster
from telephony.ari import AriClient, EventStream
from telephony.case_feed import CaseFeed
from telephony.config import Config
from telephony.deadline_watcher import DeadlineWatcher
from telephony.exceptions import ConfigError
from telephony.holding import HoldingArea
from telephony.ivr.menu import Menu, load_menu
from telephony.logs import quiet_bad_requests
from telephony.prompts import PromptLibrary
from telephony.recording.fetcher import RecordingFetcher
from telephony.recording.pool import DecoderPool
from telephony.recording.recorder import CallRecorder
from telephony.recording.store import RecordingStore
from telephony.recording.transcriber import Transcriber
from telephony.recording.vosk_model import ModelInfo, inspect_model
from telephony.session import SessionDeps
from telephony.stasis import StasisApp
from web.accounts import add_account_routes
from web.acd import add_acd_routes
from web.appkeys import (
    ACD,
    CLOCK,
    CONFIG,
    LIVE,
    MESSAGES,
    PROMPTS,
    QUEUE_FACTS,
    RECORDING_STORE,
    RECORDINGS,
    ROSTER,
    STAFF,
    STASIS,
    STREAM,
    STREAM_STATUS,
    TRANSCRIBER,
    TRANSCRIPTS,
)
from web.auth import guard
from web.calls import CALL_LOG
from web.cases import CRM, DEADLINES, DIALLER, add_case_routes
from web.console import add_console_feed
from web.home import add_home_routes
from web.login import add_login_routes
from web.masking import mask_numbers
from web.pages.call_detail import add_call_detail_page
from web.pages.call_log import CALL_REVIEW, add_call_log_page
from web.pages.case_view import add_case_page
from web.pages.console import add_console_page
from web.pages.messages import add_messages_page
from web.pages.search import add_search_page
from web.permissions import unlisted
from web.recordings import add_recording_routes
from web.residents import add_resident_routes
from web.search import SEARCH, add_search_routes
from web.service_routes import add_service_routes
from web.session_sweep import sweep_sessions
from web.templates import STATIC_DIR, no_sniffing

log = logging.getLogger(__name__)


def prompt_library(config: Config) -> PromptLibrary:
    menu = load_menu(config.ivr.menu)
    return PromptLibrary(
        texts={
            **menu.prompts,
            **announcement_texts(),
            **callback_texts(config),
            **duty_texts(),
        },
        audio_dir=config.prompts.dir,
        media_prefix=config.prompts.media_prefix,
        company=config.company.name,
        voice=config.prompts.voice,
        speed_wpm=config.prompts.speed_wpm,
        recordings_dir=config.ivr.menu.parent / "prompts",
    )


def check_menu_queues(menu: Menu, config: Config) -> None:
    """Every queue the menu routes to must be configured: fail at start, naming it."""
    for node in menu.nodes.values():
        for key, action in node.options.items():
            queue = action.queue
            if queue is not None and queue != "message" and queue not in config.queues:
                raise ConfigError(
                    str(config.ivr.menu),
                    f"menu.nodes.{node.id}.options.{key}",
                    f"routes to queue {queue!r}, which is not configured in [queues]",
                )


def speech_model(config: Config) -> ModelInfo | None:
    """The configured Vosk model, checked (not loaded); None when transcription is off."""
    t = config.transcription
    if not t.enabled:
        return None
    return inspect_model(t.model, expect_language=t.language)


async def _no_transcription(call_id: int) -> None:
    log.debug("transcription is off; call %s keeps its recordings only", call_id)


def _as_is(ari: AriClient) -> AriClient:
    return ari


def build_app(
    config: Config,
    clock: Clock | None = None,
    *,
    wrap_ari: Callable[[AriClient], AriClient] = _as_is,
    passwords: PasswordHasher | None = None,
) -> web.Application:
    """The whole service as one aiohttp application (ARI app + HTTP API).

    ``wrap_ari`` lets tests put a fault-injecting client between the service and Asterisk;
    ``passwords`` a cheaper hasher than argon2's default cost.
    """
    clock = clock or SystemClock()
    menu = load_menu(config.ivr.menu)  # fail at start on a bad menu, not on the first call
    check_menu_queues(menu, config)
    model = speech_model(config)  # a missing or wrong model stops the start, naming it
    prompts = prompt_library(config)
    quiet_bad_requests()  # before the first request can be refused
    app = web.Application(middlewares=[no_sniffing, guard, mask_numbers])
    app[CONFIG] = config
    app[CLOCK] = clock
    app[PROMPTS] = prompts

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await migrate(config.database.url)
        engine = create_engine(config.database.url, wait_s=config.database.wait_s)
        sessions = make_sessionmaker(engine)
        access = config.access
        app[STAFF] = StaffDirectory(
            sessions,
            passwords or standard_hasher(),
            max_failures=access.login_failures,
            lockout=timedelta(minutes=access.lockout_minutes),
        )
        call_log = CallLog(sessions)
        app[QUEUE_FACTS] = QueueFacts(sessions)
        app[CALL_LOG] = call_log
        app[CALL_REVIEW] = CallReview(sessions)
        crm = CrmDesk.open(sessions, clock, config.rules)
        app[CRM] = crm
        app[DEADLINES] = DeadlineBook(sessions)
        live = LiveEvents(clock)
        watcher = DeadlineWatcher(app[DEADLINES], clock, live.publish)
        roster = AgentRoster(AgentDirectory(sessions), clock, live)
        messages = MessageBox(sessions)
        app[LIVE] = live
        app[ROSTER] = roster
        app[MESSAGES] = messages
        recordings = RecordingLog(sessions)
        transcripts = TranscriptBook(sessions)
        store = RecordingStore(config.recording.dir)
        app[RECORDINGS] = recordings
        app[TRANSCRIPTS] = transcripts
        app[SEARCH] = CallSearch(sessions)
        app[RECORDING_STORE] = store
        transcriber = None
        if model is not None:
            transcriber = Transcriber(
                config.transcription,
                DecoderPool(model, config.transcription.workers),
                store,
                recordings,
                transcripts,
                clock,
                live.publish,
            )
        app[TRANSCRIBER] = transcriber
        connector = aiohttp.TCPConnector(limit=config.ari.max_connections)
        async with aiohttp.ClientSession(connector=connector) as http:
            ari = wrap_ari(
                AriClient(
                    http,
                    config.ari.url,
                    config.ari.user,
                    config.ari.password,
                    timeout_s=config.ari.request_timeout_s,
                )
            )
            holding = HoldingArea(ari, config.holding.moh_class)
            legs = OutboundLegs(ari, config.ari.app)
            fetcher = RecordingFetcher(
                config.recording,
                ari,
                store,
                recordings,
                clock,
                on_call_settled=transcriber.enqueue if transcriber else _no_transcription,
            )
            recorder = CallRecorder(
                config.recording, ari, recordings, clock, config.ari.app, fetcher.kick
            )
            acd = Acd(
                config,
                ari,
                roster,
                legs,
                app[QUEUE_FACTS],
                clock,
                live,
                CallbackBook(sessions),
                prompts,
                recorder,
            )
            await acd.start()
            fetcher.start()
            if transcriber is not None:
                await transcriber.start(warm=config.transcription.warm_start)
            app[ACD] = acd
            dialler = CaseDialler(config, ari, legs, roster, call_log, recorder, crm, live)
            app[DIALLER] = dialler
            departments = {name: q.label for name, q in config.queues.items()}
            duty = DutyPhone(config.acd.duty_endpoint, legs, prompts, live)
            intake = CallIntake(sessions, crm, live.publish, departments, on_urgent=duty.tell)
            feed = CaseFeed(intake, transcripts, live, watcher)
            await feed.start()
            watcher.start()
            deps = SessionDeps(
                config,
                ari,
                call_log,
                menu,
                prompts,
                holding,
                clock,
                acd,
                messages,
                recorder,
                on_closed=feed.call_closed,
            )
            stasis = StasisApp(deps, holding, legs)
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
            idle = timedelta(minutes=config.access.session_idle_minutes)
            sweep = asyncio.create_task(
                sweep_sessions(app[STAFF], clock, idle), name="session-sweep"
            )
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
                acd.stopping = True  # sessions stopping now must not end conversations
                for background in (task, sweep):
                    background.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await background
                await stasis.shutdown()
                await acd.stop()
                await recorder.stop()
                await fetcher.stop()
                if transcriber is not None:
                    await transcriber.stop()
                await dialler.stop()
                await feed.stop()
                await duty.stop()
                await watcher.stop()
        await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    add_service_routes(app)
    add_acd_routes(app)
    add_recording_routes(app)
    add_search_routes(app)
    add_case_routes(app)
    add_resident_routes(app)
    add_login_routes(app)
    add_home_routes(app)
    add_call_log_page(app)
    add_call_detail_page(app)
    add_messages_page(app)
    add_case_page(app)
    add_search_page(app)
    add_console_feed(app)
    add_console_page(app)
    add_account_routes(app)
    app.router.add_static("/static", STATIC_DIR)
    routes = [(r.method, r.resource.canonical) for r in app.router.routes() if r.resource]
    if missing := unlisted(routes):
        raise RuntimeError(f"routes without a permission in web/permissions.py: {missing}")
    return app
