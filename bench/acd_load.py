"""The ACD under load, next to Asterisk's own app_queue doing the same work.

Why this exists: a morning after a storm brings a couple of hundred residents at once to
a handful of agents. This bench sends 200 callers (``--quick``: 40) at 20 simulated agents
(5) and reports, per side, calls completed and abandoned, ASA (average speed of answer:
queue entry → the agent answering), the hotline service's event-loop lag, the CPU of the
service and of Asterisk, and whether every call ended with a complete record. The
**baseline** is the same load through a dialplan-only line: ``Answer()``, the same
prompts with barge-in, the same key, then ``Queue()`` (app_queue, config/asterisk/
queues.conf) whose static members are the same simulated phones; the ratios
hotline/app_queue are printed. The exit status only says whether the bench itself ran.

The callers (``--callers``):

- ``sip`` (the default when ``sipp`` is on PATH and the bench runs as root): real SIP
  phones over the residents' trunk. One SIPp process per side plays
  bench/sip/acd_caller.xml: INVITE to 400 (the hotline) or 498 (a temporary extension
  the bench adds to ``from-residents`` for the run, ``Goto(bench-queue,40x,1)``), then,
  after the greeting, the digit 1 as RFC 4733 events (SIPp's ``play_dtmf``: a raw
  socket, hence root), then it holds until the far end's BYE (the agent hung up) and
  answers it; a caller whose patience (``--patience``) runs out hangs up (abandoned).
  Callers are told apart by the caller number SIPp sends (a prefix unique to the run and
  side, then SIPp's call number).
- ``local``: Local channels originated through ARI into ``400@from-residents`` and
  ``40x@bench-queue``; the bench holds the ``;1`` leg, sends the 1 through ARI and hangs
  up when patience runs out. The output says which was used.

The agents are ``AgentSimulator`` phones (telephony/simulator.py) behind
``Local/20NN@sim-agents``, in this process: each ring is answered after a random 1–5 s
and the agent hangs up after a random talk time (``--quick``: shorter), drawn from one
seeded generator per phone, restarted for each side, so both sides get the same draws.
Our ACD dials them because the bench creates agents 2001… through the service's HTTP API
(skill inquiry, logged in, ready); app_queue dials them as the queue's static members.
The API needs a signed-in user: before the service starts, the bench makes two tokens in
its database with ``hotline token create``, an admin's (adding an agent with its phone)
and a supervisor's (agent states, the call records), and sends each request with the
least of them.
Both sides use the queue's timers from queues.conf: the bench gives the hotline a
temporary config (``HOTLINE_CONFIG``) whose ``[queues.inquiry]`` has the same ring
timeout and wrap-up, with the place-in-line announcements and the call-back offer off
(app_queue announces nothing either); its database is a fresh SQLite file.

What is measured, from where:

- queue entry: Asterisk's timestamp of the caller's channel entering the hotline's holding
  bridge (``hotline-hold-inquiry``, just before ``Acd.join``), or starting ``Queue()``
  (ChannelDialplan); agent answer: the simulated phone answering (this process's clock,
  the same host clock); caller connected: the caller's channel entering the bridge with
  the agent. The bench's ARI application is subscribed to every channel and bridge.
- completed: the caller was connected to an agent; abandoned: queued, never connected,
  gone (patience, or the line's own 900 s limit); not queued: no channel, no key
  received, or gone before the queue.
- the service's event-loop lag: the service runs as ``acd_load.py serve``, which is
  ``hotline serve`` (``build_app`` + ``web.run_app``) plus a probe task that sleeps 10 ms
  in a loop and records how late it wakes and how long the loop's thread was on a CPU
  meanwhile, and a ``gc.callbacks`` hook timing the garbage collector, so a stall of our
  own code, a collection and a process waiting for a CPU can be told apart; the project's
  code is not changed. ``/healthz`` response times (a probe every 0.5 s) are printed
  beside it as an outside view.
- CPU: utime + stime from /proc/PID/stat over each side's run, for Asterisk (the
  sandbox's pid), the service, this process (simulator and event observer, the same work
  on both sides) and SIPp.
- records: every hotline call's record via ``GET /api/calls`` (``ended_at`` and
  ``end_reason``), and its queue entry in the database (``left_at`` and ``outcome``).

It holds the sandbox lock the test suite takes, starts the sandbox if needed and stops it
again at the end if it was not running before.

    .venv/bin/python bench/acd_load.py --quick     # 40 callers, 5 agents (about 3 min)
    .venv/bin/python bench/acd_load.py             # 200 callers, 20 agents (about 11 min)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
import wave
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answer_latency import (
    HOTLINE,
    ROOT,
    SANDBOX,
    SIP_CHANNEL_PREFIX,
    SIP_TRUNK,
    SIPP,
    Bearer,
    BenchError,
    asterisk_cli,
    cli_token,
    disturbed,
    free_port,
    free_udp_port,
    get_json,
    log_problems,
    machine_info,
    percentile,
    quiet_machine,
    require_loopback,
    run_step,
    sandbox_lock,
    sipp_summary,
    sipp_version,
)
from sqlalchemy import select

from crm.db import create_engine, make_sessionmaker
from crm.models import CaseCall
from crm.queue_facts import QueueFacts
from telephony.ari import AriClient, AriError, AriNotFound, EventStream
from telephony.ari.events import (
    ApplicationReplaced,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelStateChange,
    Event,
    StasisEnd,
    StasisStart,
)
from telephony.ari.models import parse_time
from telephony.config import Config, load_config
from telephony.exceptions import HotlineError
from telephony.simulator import AgentBehaviour, AgentSimulator, Ring

SELF = Path(__file__).resolve()
QUEUES_CONF = ROOT / "config" / "asterisk" / "queues.conf"
SIP_SCENARIO = Path(__file__).resolve().parent / "sip" / "acd_caller.xml"
PATIENCE_ATTR = 'timeout="600000" ontimeout="abandon"'  # the BYE wait in acd_caller.xml
HOTLINE_EXTEN = "400"  # from-residents: Stasis(hotline)
BASELINE_EXTEN = "498"  # added to from-residents for the run: Goto(bench-queue,40x,1)
HOTLINE_QUEUE = "inquiry"  # main menu key 1 (config/ivr.toml)
HOLDING_BRIDGE = "hotline-hold-"  # telephony/holding.py: where the hotline's callers wait
LINE_MAX_WAIT_S = 900  # Queue(...,900) in [bench-queue-menu]; the hotline's max_wait_s
AGENT_SKILL = 5
RUN = uuid.uuid4().hex[:8]
BENCH_APP = f"bench-acd-{RUN}"  # ours alone; never "hotline" or "sim-agents"
LOCAL_PREFIX = f"bench-acd-{RUN}-"  # channel ids of Local callers, for the clean-up
CALLER_PREFIX = f"7{int(RUN, 16) % 10000:04d}"  # then a side digit and the call number
LAG_PROBE_S = 0.010
HEALTH_EVERY_S = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")

HEALTH_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
GONE_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 60.0


# -- what a run is --------------------------------------------------------------------
@dataclass(frozen=True)
class Mode:
    name: str
    callers: int
    rate: float  # arrivals per second
    agents: int
    queue: str  # app_queue queue in queues.conf, with that many static members
    baseline_exten: str  # its extension in [bench-queue]
    answer_s: tuple[float, float]
    talk_s: tuple[float, float]
    patience_s: float


FULL = Mode("full", 200, 50.0, 20, "bench-inquiry", "400", (1.0, 5.0), (5.0, 20.0), 600.0)
QUICK = Mode("quick", 40, 20.0, 5, "bench-inquiry-quick", "401", (1.0, 5.0), (2.0, 4.0), 150.0)


@dataclass(frozen=True)
class QueueSetup:
    """One app_queue queue as queues.conf defines it (templates applied)."""

    name: str
    extensions: tuple[str, ...]  # the members' phones: Local/2001@sim-agents → 2001
    ring_timeout_s: float
    wrap_up_s: float
    strategy: str
    ringinuse: str
    retry_s: float


def read_queue(name: str, path: Path = QUEUES_CONF) -> QueueSetup:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if header := re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line):
            current = []
            for template in (header.group(2) or "").split(","):
                current += sections.get(template.strip(), [])
            sections[header.group(1)] = current
            continue
        key, sep, value = line.partition("=")
        if sep and current is not None:
            current.append((key.strip(), value.lstrip(">").strip()))
    if name not in sections:
        raise BenchError(f"no queue [{name}] in {path}")
    entries = sections[name]
    settings = dict(entries)
    extensions = tuple(
        re.sub(r"^Local/([^@]+)@.*$", r"\1", value.split(",", 1)[0].strip())
        for key, value in entries
        if key == "member"
    )
    return QueueSetup(
        name=name,
        extensions=extensions,
        ring_timeout_s=float(settings.get("timeout", "15")),
        wrap_up_s=float(settings.get("wrapuptime", "0")),
        strategy=settings.get("strategy", "ringall"),
        ringinuse=settings.get("ringinuse", "yes"),
        retry_s=float(settings.get("retry", "5")),
    )


# -- the hotline service, with an event-loop lag probe ----------------------------------
def serve(lag_file: Path) -> int:
    """``hotline serve`` plus a lag probe; writes the samples when the service stops."""
    from aiohttp import web

    from telephony.logs import setup_logging
    from web.app import build_app

    # (wall time, ms late, ms the loop's thread was on a CPU meanwhile): a late wake-up
    # with as much CPU is our own code holding the loop; with little, the process waited
    # (for a CPU, or in a blocking call)
    samples: list[tuple[float, float, float]] = []
    collections: list[tuple[float, float]] = []  # (wall time, ms) of the garbage collector
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif (took := (time.perf_counter() - gc_started[0]) * 1000) >= 1.0:
            collections.append((round(time.time(), 3), round(took, 1)))

    gc.callbacks.append(on_gc)

    async def lag_probe(app: web.Application) -> AsyncIterator[None]:
        async def watch() -> None:
            loop = asyncio.get_running_loop()
            while True:
                before, cpu = loop.time(), time.thread_time()
                await asyncio.sleep(LAG_PROBE_S)
                late = loop.time() - before - LAG_PROBE_S
                busy = time.thread_time() - cpu
                samples.append(
                    (round(time.time(), 3), round(late * 1000, 2), round(busy * 1000, 2))
                )

        task = asyncio.create_task(watch())
        yield
        task.cancel()

    setup_logging()
    config = load_config()
    app = build_app(config)
    app.cleanup_ctx.append(lag_probe)
    try:
        web.run_app(app, host=config.http.host, port=config.http.port, print=None)
    finally:
        lag_file.write_text(json.dumps({"lag": samples, "gc": collections}))
    return 0


@dataclass
class Service:
    base: str
    pid: int
    log: Path
    lag_file: Path
    admin: Bearer  # adds the agents with their phones (agents:endpoint)
    supervisor: Bearer  # their states and the call records


@contextlib.asynccontextmanager
async def hotline_service(
    http: aiohttp.ClientSession, workdir: Path, config_file: Path
) -> AsyncIterator[Service]:
    port = free_port()
    lag_file = workdir / "service-lag.json"
    env = {
        **os.environ,
        "HOTLINE_CONFIG": str(config_file),
        "HOTLINE_DB_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "HOTLINE_HTTP_PORT": str(port),
        "BENCH_LAG_FILE": str(lag_file),
    }
    service = Service(
        f"http://127.0.0.1:{port}",
        0,
        workdir / "service.log",
        lag_file,
        # in the service's database before it starts, as an operator would make them
        admin=await cli_token("bench-acd-admin", "admin", env),
        supervisor=await cli_token("bench-acd-supervisor", "supervisor", env),
    )
    with service.log.open("wb") as log:
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SELF),
                "serve",
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        except OSError as err:
            raise BenchError(f"cannot start the service: {err}") from err
    service.pid = proc.pid
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HEALTH_TIMEOUT_S
        while True:
            if proc.returncode is not None:
                raise BenchError(f"the service exited ({proc.returncode}): {tail(service.log)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(
                    f"{service.base}/healthz", timeout=aiohttp.ClientTimeout(1)
                ) as resp:
                    if resp.status == 200:
                        break
            if loop.time() > deadline:
                raise BenchError(f"service not ready within {HEALTH_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
        yield service
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                print(f"service ignored SIGINT for {STOP_TIMEOUT_S:.0f} s; killing it")
                proc.kill()
                await proc.wait()


def bench_config(config: Config, path: Path, queue: QueueSetup) -> None:
    """The shipped hotline.toml with app_queue's timers in [queues.inquiry]; absolute paths."""
    data: dict[str, Any] = {}
    if config.source is not None:
        data = tomllib.loads(config.source.read_text())
    data.pop("database", None)  # HOTLINE_DB_URL
    data.setdefault("prompts", {})["dir"] = str(config.prompts.dir)
    data.setdefault("ivr", {})["menu"] = str(config.ivr.menu)
    # Calls are recorded as in production (into the run's folder); not transcribed: the
    # decoder processes would take the CPU both sides are compared on.
    data.setdefault("recording", {})["dir"] = str(path.parent / "recordings")
    data.setdefault("transcription", {})["enabled"] = False
    inquiry = data.setdefault("queues", {}).setdefault(HOTLINE_QUEUE, {})
    inquiry.update(
        ring_timeout_s=queue.ring_timeout_s,
        wrap_up_s=queue.wrap_up_s,
        announce_every_s=0,
        callback_after_s=0,
        max_wait_s=LINE_MAX_WAIT_S,
    )
    path.write_text(toml_text(data))


def toml_text(table: dict[str, Any], prefix: str = "") -> str:
    """Just enough TOML for hotline.toml: tables of strings, numbers and booleans."""
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{key} = {toml_value(value)}" for key, value in scalars.items()]
    text = "\n".join(lines) + ("\n\n" if lines else "")
    for key, value in table.items():
        if isinstance(value, dict):
            text += toml_text(value, f"{prefix}.{key}" if prefix else key)
    return text


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise BenchError(f"cannot write {value!r} to TOML")


# -- the agents' phones -----------------------------------------------------------------
class RandomAgents(AgentSimulator):
    """Simulated phones answering after, and talking for, random seeded durations."""

    def __init__(self, ari: AriClient, seed: int) -> None:
        super().__init__(ari)
        self.seed = seed
        self.answer_s = (1.0, 5.0)
        self.talk_s = (5.0, 20.0)
        self.replaced = False
        self.up_at: dict[str, float] = {}  # the phone's channel → Asterisk's time it went Up
        self._draws: dict[str, random.Random] = {}
        self._wall_offset = time.time() - self.loop_time()

    def restart(self, answer_s: tuple[float, float], talk_s: tuple[float, float]) -> int:
        """A new side: the same draws again for each phone; returns the first ring's index."""
        self.answer_s, self.talk_s = answer_s, talk_s
        self._draws.clear()
        return len(self.rings)

    def on_event(self, event: Event) -> None:
        if isinstance(event, ApplicationReplaced):
            self.replaced = True
        up = isinstance(event, ChannelStateChange) and event.channel.state == "Up"
        if up and event.timestamp is not None:
            self.up_at.setdefault(event.channel_id or "", event.timestamp.timestamp())
        if isinstance(event, StasisStart):
            extension = event.channel.dialplan_exten or "?"
            draw = self._draws.setdefault(extension, random.Random(f"{self.seed}/{extension}"))
            self.behaviour[extension] = AgentBehaviour(
                answer_after_s=draw.uniform(*self.answer_s), talk_s=draw.uniform(*self.talk_s)
            )
        super().on_event(event)

    def answered_at(self, ring: Ring) -> float | None:
        """When the phone picked up: Asterisk's Up timestamp (else this process's clock)."""
        if ring.answered is None:
            return None
        return self.up_at.get(ring.channel_id, ring.answered + self._wall_offset)


# -- the callers, as Asterisk sees them -------------------------------------------------
@dataclass
class Caller:
    """One caller's line: the PJSIP channel (SIP) or the ``;2`` leg (Local)."""

    channel_id: str
    number: str
    created: float | None = None  # wall seconds, Asterisk's timestamps from here on
    dtmf: str = ""
    queued: float | None = None  # holding bridge entered (hotline) / Queue() started
    connected: float | None = None  # entered the bridge with the agent
    gone: float | None = None
    cause: int | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class LocalPhone:
    """The ``;1`` leg of a Local caller, held by the bench."""

    up: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Watch:
    """The bench application's events (every channel and bridge), per caller."""

    def __init__(self) -> None:
        self.prefix: str | None = None  # SIP callers of the running side: caller numbers
        self.callers: dict[str, Caller] = {}
        self.phones: dict[str, LocalPhone] = {}

    def expect(self, prefix: str) -> None:
        self.prefix = prefix
        self.callers = {}

    def expect_local(self, line_id: str, number: str, phone_id: str) -> LocalPhone:
        self.callers[line_id] = Caller(line_id, number)
        phone = self.phones[phone_id] = LocalPhone()
        return phone

    def on_event(self, event: Event) -> None:
        channel: dict[str, Any] = event.raw.get("channel") or {}
        channel_id = str(channel.get("id", ""))
        phone = self.phones.get(channel_id)
        if phone is not None:
            if isinstance(event, StasisStart):
                phone.up.set()
            elif isinstance(event, ChannelHangupRequest | StasisEnd | ChannelDestroyed):
                phone.ended.set()
            return
        caller = self.callers.get(channel_id)
        if caller is None:
            caller = self._claim(channel)
            if caller is None:
                return
        at = event.timestamp.timestamp() if event.timestamp else time.time()
        if caller.created is None and (created := channel.get("creationtime")):
            with contextlib.suppress(ValueError):
                caller.created = _asterisk_time(str(created))
        if event.type == "ChannelDialplan" and event.raw.get("dialplan_app") == "Queue":
            caller.queued = caller.queued or at
        elif isinstance(event, ChannelEnteredBridge):
            if event.bridge.id.startswith(HOLDING_BRIDGE):
                caller.queued = caller.queued or at
            elif caller.connected is None:
                caller.connected = at
        elif isinstance(event, ChannelDtmfReceived):
            caller.dtmf += event.digit
        elif isinstance(event, ChannelDestroyed):
            caller.gone = at
            caller.cause = event.cause
            caller.ended.set()

    def _claim(self, channel: dict[str, Any]) -> Caller | None:
        if self.prefix is None or not str(channel.get("name", "")).startswith(SIP_CHANNEL_PREFIX):
            return None
        number = str((channel.get("caller") or {}).get("number", ""))
        if not number.startswith(self.prefix):
            return None
        caller = self.callers[str(channel["id"])] = Caller(str(channel["id"]), number)
        return caller


def _asterisk_time(text: str) -> float:
    parsed = parse_time(text)
    if parsed is None:
        raise ValueError(text)
    return parsed.timestamp()


@contextlib.asynccontextmanager
async def watch_everything(
    http: aiohttp.ClientSession, config: Config, ari: AriClient, on_event: Callable[[Event], None]
) -> AsyncIterator[None]:
    """The bench app's stream, subscribed to all channels and bridges before any call."""

    async def subscribe() -> None:
        await ari.request(
            "POST", f"/applications/{BENCH_APP}/subscription", {"eventSource": "channel:,bridge:"}
        )

    async with app_stream(http, config, BENCH_APP, on_event, subscribe):
        yield


@contextlib.asynccontextmanager
async def app_stream(
    http: aiohttp.ClientSession,
    config: Config,
    app: str,
    on_event: Callable[[Event], None],
    on_connect: Callable[[], Any] | None = None,
) -> AsyncIterator[None]:
    async def connected() -> None:
        if on_connect is not None:
            await on_connect()

    stream = EventStream(
        http,
        config.ari.url,
        config.ari.user,
        config.ari.password,
        [app],
        on_event=on_event,
        on_connect=connected,
    )
    reader = asyncio.create_task(stream.run(), name=f"events-{app}")
    try:
        try:
            await asyncio.wait_for(stream.connected.wait(), 10)
        except TimeoutError as err:
            raise BenchError(
                f"ARI events for {app} did not connect: {stream.status.last_error}"
            ) from err
        yield
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


# -- placing the calls ----------------------------------------------------------------
@dataclass
class Placed:
    """What the callers' side of one run said about itself."""

    note: str = ""  # SIPp's exit and counts, or the Local callers' problems
    sipp_cpu_s: float | None = None


def sipp_args(
    scenario: str, exten: str, prefix: str, mode: Mode, dtmf_after_ms: int, budget_s: float
) -> list[str]:
    return [
        SIP_TRUNK,
        "-sf", scenario,
        "-s", exten,
        "-key", "prefix", prefix,
        "-key", "dtmf_after_ms", str(dtmf_after_ms),
        "-i", "127.0.0.1",
        "-p", str(free_udp_port()),
        "-mi", "127.0.0.1",
        "-mp", str(free_udp_port(and_plus=2)),  # SIPp binds it and the one two above
        "-rtp_echo",
        "-m", str(mode.callers),
        "-l", str(mode.callers),
        "-r", f"{mode.rate:g}",
        "-rp", "1000",
        "-timeout", f"{math.ceil(budget_s)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
    ]  # fmt: skip


async def place_sip(
    workdir: Path, exten: str, prefix: str, mode: Mode, dtmf_after_ms: int
) -> Placed:
    """One SIPp process: ``mode.callers`` callers at ``mode.rate`` to ``exten``."""
    assert SIPP is not None
    prepare_scenario(workdir, mode.patience_s)
    budget = budget_s(mode)
    args = sipp_args(SIP_SCENARIO.name, exten, prefix, mode, dtmf_after_ms, budget)
    with (workdir / "sipp.out").open("wb") as out:
        try:
            proc = await asyncio.create_subprocess_exec(
                SIPP, *args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        except OSError as err:
            raise BenchError(f"cannot start {SIPP}: {err}") from err
    cpu: float | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget + 30
    waiter = asyncio.ensure_future(proc.wait())
    try:
        while not waiter.done() and loop.time() < deadline:
            cpu = cpu_seconds(proc.pid) or cpu  # sampled: gone once SIPp has exited
            await asyncio.wait([waiter], timeout=1.0)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await waiter
    counts = sip_counts(workdir)
    note = f"SIPp exited {proc.returncode}; {counts}"
    if proc.returncode != 0:
        note += f"; {sipp_summary(workdir)}"
    return Placed(note=note, sipp_cpu_s=cpu)


def prepare_scenario(workdir: Path, patience_s: float) -> None:
    """acd_caller.xml in SIPp's working folder (its logs go beside it), with our patience."""
    workdir.mkdir(parents=True)
    scenario = SIP_SCENARIO.read_text()
    if PATIENCE_ATTR not in scenario:
        raise BenchError(f"{SIP_SCENARIO.name}: the BYE wait ({PATIENCE_ATTR}) is not there")
    patience = f'timeout="{round(patience_s * 1000)}" ontimeout="abandon"'
    (workdir / SIP_SCENARIO.name).write_text(scenario.replace(PATIENCE_ATTR, patience))


def sip_counts(workdir: Path) -> str:
    """From SIPp's last screen: BYEs received (the far end ended) and sent (patience)."""
    try:
        screen = (workdir / "sipp.out").read_text(errors="replace")
    except OSError:
        return ""
    received = re.findall(r"^\s*BYE <-+\s+(\d+)", screen, re.MULTILINE)
    sent = re.findall(r"^\s*BYE -+>\s+(\d+)", screen, re.MULTILINE)
    done = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    parts = [
        f"{label} {found[-1]}"
        for label, found in (
            ("BYE from the far end", received),
            ("BYE sent (patience)", sent),
            ("successful", done),
            ("failed", failed),
        )
        if found
    ]
    return ", ".join(parts)


async def place_local(
    ari: AriClient, watch: Watch, endpoint: str, prefix: str, mode: Mode, dtmf_after_ms: int
) -> Placed:
    """Local channels into ``endpoint``; the bench plays each resident on the ``;1`` leg."""
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05
    problems: Counter[str] = Counter()

    async def one(index: int) -> None:
        number = f"{prefix}{index + 1}"
        phone_id, line_id = f"{LOCAL_PREFIX}{number};1", f"{LOCAL_PREFIX}{number};2"
        phone = watch.expect_local(line_id, number, phone_id)
        await asyncio.sleep(max(0.0, t0 + index / mode.rate - loop.time()))
        try:
            await ari.originate(
                endpoint,
                app=BENCH_APP,
                caller_id=f'"bench" <{number}>',
                timeout_s=30,
                channel_id=phone_id,
                other_channel_id=line_id,
            )
            await asyncio.wait_for(phone.up.wait(), 30)
            await asyncio.sleep(dtmf_after_ms / 1000)
            if not phone.ended.is_set():
                await ari.send_dtmf(phone_id, "1", duration_ms=200)
            try:
                await asyncio.wait_for(phone.ended.wait(), mode.patience_s)
            except TimeoutError:
                problems["hung up (patience)"] += 1
        except (AriError, TimeoutError) as err:
            problems[type(err).__name__] += 1
        finally:
            with contextlib.suppress(AriError):
                await ari.hangup(phone_id)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(mode.callers))), budget_s(mode) + 30
        )
    except TimeoutError:
        problems["cut short by the bench's time budget"] += 1
    return Placed(note=", ".join(f"{k} {v}" for k, v in problems.items()) or "")


def budget_s(mode: Mode) -> float:
    return mode.callers / mode.rate + mode.patience_s + mode.talk_s[1] + 60


# -- one side ---------------------------------------------------------------------------
@dataclass
class SideResult:
    name: str
    callers: list[Caller]
    rings: list[Ring]
    sim: RandomAgents
    expected: int
    started: float
    finished: float
    cpu: dict[str, float | None]
    placed: Placed
    lag_ms: list[tuple[float, float, float]] = field(default_factory=list)  # see serve()
    gc_ms: list[tuple[float, float]] = field(default_factory=list)  # (wall time, ms)
    health_ms: list[float] = field(default_factory=list)
    records: list[str] = field(default_factory=list)

    # -- figures ------------------------------------------------------------------
    @property
    def queued(self) -> list[Caller]:
        return [c for c in self.callers if c.queued is not None]

    @property
    def completed(self) -> list[Caller]:
        return [c for c in self.callers if c.connected is not None]

    @property
    def abandoned(self) -> list[Caller]:
        return [c for c in self.queued if c.connected is None]

    def answered_ring(self, caller: Caller) -> Ring | None:
        rings = [r for r in self.rings if r.caller == caller.number and r.answered is not None]
        return rings[-1] if rings else None

    def asa_s(self) -> list[float]:
        waits = []
        for caller in self.completed:
            ring = self.answered_ring(caller)
            answered = self.sim.answered_at(ring) if ring is not None else None
            if answered is not None and caller.queued is not None:
                waits.append(answered - caller.queued)
        return waits

    def connects(self) -> list[tuple[float, float]]:
        """(when, ms) from the phone answering to the caller entering the agent's bridge."""
        delays = []
        for caller in self.completed:
            ring = self.answered_ring(caller)
            answered = self.sim.answered_at(ring) if ring is not None else None
            if answered is not None and caller.connected is not None:
                delays.append((answered, (caller.connected - answered) * 1000))
        return delays

    def double_rings(self) -> int:
        """Rings that came while the same phone was already ringing or talking."""
        overlaps = 0
        by_phone: dict[str, list[Ring]] = {}
        for ring in self.rings:
            by_phone.setdefault(ring.extension, []).append(ring)
        for rings in by_phone.values():
            rings.sort(key=lambda r: r.started)
            busy_until = -math.inf
            for ring in rings:
                if ring.started < busy_until:
                    overlaps += 1
                busy_until = max(busy_until, ring.ended if ring.ended is not None else math.inf)
        return overlaps

    def gc_within(self, start: float, end: float) -> float:
        """Milliseconds the service's garbage collector ran in [start, end] (ends inside)."""
        return sum(ms for at, ms in self.gc_ms if start <= at <= end + 0.001)

    def calls_per_agent(self) -> str:
        answered = Counter(r.extension for r in self.rings if r.answered is not None)
        if not answered:
            return "-"
        return f"{min(answered.values())}–{max(answered.values())} ({len(answered)})"


async def run_side(
    name: str,
    mode: Mode,
    ctx: RunContext,
    place: Callable[[], Awaitable[Placed]],
    service: Service | None,
) -> SideResult:
    """Place one side's calls; measure CPU over the run; wait until everything has ended."""
    first_ring = ctx.sim.restart(mode.answer_s, mode.talk_s)
    pids = {"Asterisk": ctx.asterisk_pid, "bench": os.getpid()}
    if service is not None:
        pids["service"] = service.pid
    before = {k: cpu_seconds(pid) for k, pid in pids.items()}
    started = time.time()
    health: list[float] = []
    prober = asyncio.create_task(probe_health(ctx.http, service.base, health)) if service else None
    try:
        placed = await place()
        await wait_until_gone(ctx.watch.callers.values())
        await settle(ctx)
    finally:
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
    finished = time.time()
    cpu: dict[str, float | None] = {}
    for who, pid in pids.items():
        start, end = before[who], cpu_seconds(pid)
        cpu[who] = end - start if start is not None and end is not None else None
    cpu["SIPp"] = placed.sipp_cpu_s
    return SideResult(
        name=name,
        callers=list(ctx.watch.callers.values()),
        rings=list(ctx.sim.rings[first_ring:]),
        sim=ctx.sim,
        expected=mode.callers,
        started=started,
        finished=finished,
        cpu=cpu,
        placed=placed,
        health_ms=health,
    )


async def wait_until_gone(callers: Iterable[Caller]) -> None:
    pending = [c.ended.wait() for c in list(callers) if not c.ended.is_set()]
    if pending:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pending), GONE_TIMEOUT_S)


async def settle(ctx: RunContext) -> None:
    """Until no channel is left in Asterisk and no simulated phone rings or talks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while loop.time() < deadline:
        channels = await ctx.ari.list_channels()
        if not channels and not any(r.ended is None for r in ctx.sim.rings):
            break
        await asyncio.sleep(0.2)
    else:
        print(f"  note: channels still up {SETTLE_TIMEOUT_S:.0f} s after the last caller")


async def probe_health(http: aiohttp.ClientSession, base: str, out: list[float]) -> None:
    while True:
        t0 = time.perf_counter()
        try:
            async with http.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(5)) as resp:
                await resp.read()
            out.append((time.perf_counter() - t0) * 1000)
        except (aiohttp.ClientError, TimeoutError):
            out.append(5000.0)
        await asyncio.sleep(HEALTH_EVERY_S)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, in seconds (None if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the hotline side's extras: agents, records, lag -----------------------------------
async def post_json(
    http: aiohttp.ClientSession, url: str, bearer: Bearer, body: dict[str, Any]
) -> tuple[int, Any]:
    async with http.post(
        url, json=body, headers=bearer.headers, timeout=aiohttp.ClientTimeout(10)
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def staff(http: aiohttp.ClientSession, service: Service, extensions: Sequence[str]) -> None:
    """Agents 20NN on the simulated phones, skill inquiry, logged in and ready.

    Adding an agent with its phone is an admin's act; logging them in and making them
    ready is a supervisor's.
    """
    base = service.base
    for extension in extensions:
        status, agent = await post_json(
            http,
            f"{base}/api/agents",
            service.admin,
            {
                "name": f"坐席{extension}",
                "endpoint": AgentSimulator.endpoint(extension),
                "skills": {HOTLINE_QUEUE: AGENT_SKILL},
            },
        )
        if status != 201:
            raise BenchError(f"POST /api/agents: HTTP {status}: {agent}")
        for action in ("log-in", "ready"):
            status, body = await post_json(
                http,
                f"{base}/api/agents/{agent['id']}/state",
                service.supervisor,
                {"action": action},
            )
            if status != 200:
                raise BenchError(f"agent {extension} {action}: HTTP {status}: {body}")


async def check_records(
    http: aiohttp.ClientSession, service: Service, db_url: str, prefix: str, expected: int
) -> list[str]:
    """Every call's record via GET /api/calls, and its queue entry in the database.

    Read as a supervisor: numbers unmasked, so the run's caller prefix finds its calls.
    """
    items: list[dict[str, Any]] = []
    offset, total = 0, 1
    while offset < total:
        status, body = await get_json(
            http, f"{service.base}/api/calls", service.supervisor, limit="500", offset=str(offset)
        )
        if status != 200:
            raise BenchError(f"GET /api/calls: HTTP {status}: {body}")
        total = int(body["total"])
        if not body["items"]:
            break
        items += body["items"]
        offset += len(body["items"])
    mine = [i for i in items if str(i.get("caller_number") or "").startswith(prefix)]
    incomplete = [i for i in mine if not i.get("ended_at") or not i.get("end_reason")]
    reasons = Counter(str(i.get("end_reason")) for i in mine)
    lines = [
        f"call records (GET /api/calls): {len(mine)} for {expected} callers; "
        f"incomplete (no ended_at or end_reason): {len(incomplete)}; end reasons: "
        + ", ".join(f"{k} {v}" for k, v in reasons.most_common())
    ]
    for item in incomplete[:5]:
        lines.append(f"  incomplete: call {item['id']} {item['channel_id']} state {item['state']}")
    engine = create_engine(db_url)
    try:
        sessions = make_sessionmaker(engine)
        facts = QueueFacts(sessions)
        entries = [e for i in mine for e in await facts.for_call(int(i["id"]))]
        call_ids = [int(i["id"]) for i in mine]
        async with sessions() as session:
            in_case = set(
                await session.scalars(
                    select(CaseCall.call_id).where(CaseCall.call_id.in_(call_ids))
                )
            )
    finally:
        await engine.dispose()
    lines.append(f"cases (CRM): {len(in_case)} of {len(mine)} calls opened or joined a case")
    open_entries = [e for e in entries if e.left_at is None or e.outcome is None]
    waits = [
        (e.answered_at - e.entered_at).total_seconds() for e in entries if e.answered_at is not None
    ]
    outcomes = Counter(str(e.outcome) for e in entries)
    lines.append(
        f"queue entries (database): {len(entries)}, still open (no left_at or outcome): "
        f"{len(open_entries)}; outcomes: "
        + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
        + (
            f"; the ACD's own ASA (answered_at − entered_at) {statistics.fmean(waits):.1f} s"
            if waits
            else ""
        )
    )
    return lines


def lag_in(
    service: Service, started: float, finished: float
) -> tuple[list[tuple[float, float, float]], list[tuple[float, float]]]:
    """The lag probe's samples and the garbage collector's pauses ≥ 1 ms, in the side."""
    try:
        data = json.loads(service.lag_file.read_text())
    except (OSError, ValueError):
        return [], []
    lag = [
        (float(at), float(late), float(busy))
        for at, late, busy in data.get("lag", [])
        if started <= at <= finished
    ]
    pauses = [(float(at), float(ms)) for at, ms in data.get("gc", []) if started <= at <= finished]
    return lag, pauses


# -- the run ----------------------------------------------------------------------------
@dataclass
class RunContext:
    http: aiohttp.ClientSession
    ari: AriClient
    watch: Watch
    sim: RandomAgents
    asterisk_pid: int
    callers_mode: str


async def bench(config: Config, args: argparse.Namespace, mode: Mode) -> int:
    queue = read_queue(mode.queue)
    if len(queue.extensions) != mode.agents:
        raise BenchError(
            f"[{mode.queue}] in queues.conf has {len(queue.extensions)} members, not {mode.agents}"
        )
    dtmf_after_ms = greeting_ms(config) + 300
    watch = Watch()
    connector = aiohttp.TCPConnector(limit=20)
    async with aiohttp.ClientSession(connector=connector) as http:
        ari = AriClient(http, config.ari.url, config.ari.user, config.ari.password)
        try:
            info = await ari.asterisk_info()
        except AriError as err:
            raise BenchError(f"ARI unavailable at {config.ari.url}: {err}") from err
        check_app_queue(queue)
        leftovers = await ari.list_channels()
        if leftovers:
            print(f"hanging up {len(leftovers)} channel(s) left in the sandbox")
            for channel in leftovers:
                with contextlib.suppress(AriError):
                    await ari.hangup(channel.id)
        await quiet_machine()
        for line in machine_info(info.version):
            print(line)
        print(describe(mode, queue, args.callers, args.seed, dtmf_after_ms))
        sim = RandomAgents(ari, args.seed)
        ctx = RunContext(http, ari, watch, sim, asterisk_pid(), args.callers)
        results: list[SideResult] = []
        try:
            if args.callers == "sip":
                add_baseline_extension(mode)
            async with (
                app_stream(http, config, AgentSimulator.APP, sim.on_event),
                watch_everything(http, config, ari, watch.on_event),
            ):
                if "baseline" in args.sides:
                    results.append(await baseline_side(ctx, mode, dtmf_after_ms))
                if "hotline" in args.sides:
                    results.append(await hotline_side(ctx, config, mode, queue, dtmf_after_ms))
                if sim.replaced:
                    print("WARNING: another client took the sim-agents ARI application")
        finally:
            await hang_up_ours(ari)
            if args.callers == "sip":
                remove_baseline_extension()
        if warning := disturbed(info, await ari.asterisk_info()):
            print(f"WARNING: {warning}; figures of this run are not representative")
    report(results, mode, args.callers)
    print(f"load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


async def baseline_side(ctx: RunContext, mode: Mode, dtmf_after_ms: int) -> SideResult:
    prefix = f"{CALLER_PREFIX}0"
    print(
        f"{time.strftime('%H:%M:%S')} app_queue: {mode.callers} callers → "
        f"{describe_target('baseline', mode, ctx.callers_mode)} ...",
        flush=True,
    )
    ctx.watch.expect(prefix)
    with tempfile.TemporaryDirectory(prefix="hotline-acd-bench-") as tmp:
        result = await run_side(
            "app_queue",
            mode,
            ctx,
            lambda: place(
                ctx, Path(tmp) / "sipp-baseline", "baseline", prefix, mode, dtmf_after_ms
            ),
            None,
        )
    if result.placed.note:
        print(f"  {result.placed.note}")
    return result


async def hotline_side(
    ctx: RunContext, config: Config, mode: Mode, queue: QueueSetup, dtmf_after_ms: int
) -> SideResult:
    prefix = f"{CALLER_PREFIX}1"
    with tempfile.TemporaryDirectory(prefix="hotline-acd-bench-") as tmp:
        workdir = Path(tmp)
        config_file = workdir / "hotline-bench.toml"
        bench_config(config, config_file, queue)
        async with hotline_service(ctx.http, workdir, config_file) as service:
            await staff(ctx.http, service, queue.extensions)
            print(
                f"{time.strftime('%H:%M:%S')} hotline ACD: {mode.callers} callers → "
                f"{describe_target('hotline', mode, ctx.callers_mode)} "
                f"(service pid {service.pid}, {len(queue.extensions)} agents ready) ...",
                flush=True,
            )
            ctx.watch.expect(prefix)
            result = await run_side(
                "hotline ACD",
                mode,
                ctx,
                lambda: place(
                    ctx, workdir / "sipp-hotline", "hotline", prefix, mode, dtmf_after_ms
                ),
                service,
            )
            if result.placed.note:
                print(f"  {result.placed.note}")
            await asyncio.sleep(queue.wrap_up_s + 1)  # the last wrap-ups end in the records
            db_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
            result.records = await check_records(ctx.http, service, db_url, prefix, mode.callers)
            _, health = await get_json(ctx.http, f"{service.base}/healthz")
            if health.get("ari", {}).get("application_replaced"):
                result.records.append("WARNING: another client took the 'hotline' ARI app")
        result.lag_ms, result.gc_ms = lag_in(service, result.started, result.finished)
        result.records += [f"service log: {line}" for line in log_problems(service.log)]
    return result


async def place(
    ctx: RunContext, workdir: Path, side: str, prefix: str, mode: Mode, dtmf_after_ms: int
) -> Placed:
    if ctx.callers_mode == "sip":
        exten = HOTLINE_EXTEN if side == "hotline" else BASELINE_EXTEN
        return await place_sip(workdir, exten, prefix, mode, dtmf_after_ms)
    endpoint = (
        f"Local/{HOTLINE_EXTEN}@from-residents"
        if side == "hotline"
        else f"Local/{mode.baseline_exten}@bench-queue"
    )
    return await place_local(ctx.ari, ctx.watch, endpoint, prefix, mode, dtmf_after_ms)


def describe_target(side: str, mode: Mode, callers_mode: str) -> str:
    if callers_mode == "sip":
        if side == "hotline":
            return f"SIP {HOTLINE_EXTEN}@from-residents (Stasis(hotline))"
        return (
            f"SIP {BASELINE_EXTEN}@from-residents → {mode.baseline_exten}@bench-queue "
            f"→ Queue({mode.queue})"
        )
    if side == "hotline":
        return f"Local/{HOTLINE_EXTEN}@from-residents"
    return f"Local/{mode.baseline_exten}@bench-queue → Queue({mode.queue})"


def describe(mode: Mode, queue: QueueSetup, callers: str, seed: int, dtmf_after_ms: int) -> str:
    how = (
        f"sip (SIPp {sipp_version()} UACs over the residents' trunk {SIP_TRUNK}, RTP echoed, "
        f"the 1 as RFC 4733 events {dtmf_after_ms} ms after the answer; callers "
        f"{CALLER_PREFIX}…)"
        if callers == "sip"
        else f"local (Local channels through ARI; the 1 sent by ARI {dtmf_after_ms} ms after "
        "the answer)"
    )
    return "\n".join(
        [
            f"callers: {how}",
            f"mode {mode.name}: {mode.callers} callers at {mode.rate:g}/s, patience "
            f"{mode.patience_s:g} s; {mode.agents} agents answering after "
            f"{mode.answer_s[0]:g}–{mode.answer_s[1]:g} s, talking "
            f"{mode.talk_s[0]:g}–{mode.talk_s[1]:g} s (seed {seed})",
            f"both sides: ring timeout {queue.ring_timeout_s:g} s, wrap-up {queue.wrap_up_s:g} s "
            f"(queues.conf [{queue.name}]: strategy {queue.strategy}, ringinuse "
            f"{queue.ringinuse}, retry {queue.retry_s:g} s; the hotline: [queues.inquiry] "
            "longest-idle), no announcements or call-back offer, music on hold, "
            f"{LINE_MAX_WAIT_S} s longest wait",
        ]
    )


def greeting_ms(config: Config) -> int:
    """How long the greeting plays: the callers press 1 just after it."""
    try:
        with wave.open(str(config.prompts.dir / "greeting.wav")) as wav:
            return int(1000 * wav.getnframes() / wav.getframerate())
    except (OSError, wave.Error) as err:
        raise BenchError(f"cannot read the greeting prompt: {err}") from err


def check_app_queue(queue: QueueSetup) -> None:
    said = asterisk_cli(f"queue show {queue.name}")
    if "No such queue" in said or queue.name not in said:
        raise BenchError(
            f"Asterisk has no queue {queue.name} (app_queue loaded? queues.conf installed by "
            f"scripts/asterisk-sandbox up?): {said.strip()[:200]}"
        )
    members = len(re.findall(r"Local/\d+@sim-agents", said))
    if members != len(queue.extensions):
        raise BenchError(
            f"queue {queue.name} has {members} members in Asterisk, "
            f"{len(queue.extensions)} in queues.conf (reload?)"
        )


def add_baseline_extension(mode: Mode) -> None:
    """The SIP baseline's way in: the trunk always lands in from-residents (runtime only)."""
    command = (
        f"dialplan add extension {BASELINE_EXTEN},1,"
        f"Goto(bench-queue,{mode.baseline_exten},1) into from-residents replace"
    )
    said = asterisk_cli(command)
    if "added" not in said and "replace" not in said:
        raise BenchError(f"could not add the baseline extension: {said.strip()}")


def remove_baseline_extension() -> None:
    try:
        asterisk_cli(f"dialplan remove extension {BASELINE_EXTEN}@from-residents")
    except BenchError as err:
        print(f"WARNING: {err}; remove {BASELINE_EXTEN}@from-residents by hand")


async def hang_up_ours(ari: AriClient) -> None:
    with contextlib.suppress(AriError):
        for channel in await ari.list_channels():
            if channel.id.startswith(LOCAL_PREFIX) or (
                channel.name.startswith(SIP_CHANNEL_PREFIX)
                and channel.caller_number.startswith(CALLER_PREFIX)
            ):
                with contextlib.suppress(AriNotFound, AriError):
                    await ari.hangup(channel.id)


def asterisk_pid() -> int:
    done = subprocess.run(
        [str(SANDBOX), "status"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    found = re.search(r"running \(pid (\d+)\)", done.stdout)
    if not found:
        raise BenchError(f"asterisk-sandbox status: {done.stdout.strip() or done.stderr.strip()}")
    return int(found.group(1))


def sandbox_running() -> bool:
    done = subprocess.run(
        [str(SANDBOX), "status"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode == 0


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- report -----------------------------------------------------------------------------
def report(results: Sequence[SideResult], mode: Mode, callers: str) -> None:
    if not results:
        return
    names = [r.name for r in results]
    pair = len(results) == 2
    head = f"{'':<44}" + "".join(f"{n:>16}" for n in names) + (f"{'ratio':>10}" if pair else "")
    print()
    print(f"ACD under load ({mode.name}: {mode.callers} callers, {mode.agents} agents; "
          f"callers: {callers}; ratio = hotline ACD / app_queue)")  # fmt: skip
    print(head)
    print("-" * len(head))

    def row(
        label: str,
        values: Sequence[float | None],
        fmt: str,
        ratio: bool = False,
        floor: float = 0.0,
    ) -> None:
        cells = "".join(
            f"{'-':>16}"
            if v is None or (isinstance(v, float) and math.isnan(v))
            else f"{v:>16{fmt}}"
            for v in values
        )
        extra = ""
        base, ours = values[0], values[-1]
        if pair and ratio and base is not None and ours is not None and max(base, floor) > 0:
            extra = f"{ours / max(base, floor):>10.2f}"
        print(f"{label:<44}{cells}{extra}")

    def text_row(label: str, values: Sequence[str]) -> None:
        print(f"{label:<44}" + "".join(f"{v:>16}" for v in values))

    row("callers", [float(r.expected) for r in results], ".0f")
    row("  lines seen in Asterisk", [float(len(r.callers)) for r in results], ".0f")
    keyed = [float(sum("1" in c.dtmf for c in r.callers)) for r in results]
    row("  pressed 1 (digit received)", keyed, ".0f")
    row("  queued", [float(len(r.queued)) for r in results], ".0f")
    row("completed (talked to an agent)", [float(len(r.completed)) for r in results], ".0f", True)
    row("abandoned (queued, gone unanswered)", [float(len(r.abandoned)) for r in results], ".0f")
    row(
        "not queued (lost, no key, gone before)",
        [float(r.expected - len(r.queued)) for r in results],
        ".0f",
    )
    row(
        "still up at the end",
        [float(sum(c.gone is None for c in r.callers)) for r in results],
        ".0f",
    )
    asa = [r.asa_s() for r in results]
    row("ASA, s (queue entry → agent answers)", [mean(a) for a in asa], ".1f", True)
    for p in (50, 90):
        row(f"  p{p}, s", [percentile(sorted(a), p) for a in asa], ".1f", True)
    row("  max, s", [max(a) if a else None for a in asa], ".1f", True)
    unmatched = [float(len(r.completed) - len(a)) for r, a in zip(results, asa, strict=True)]
    row("  completed calls without a matched ring", unmatched, ".0f")
    conn = [sorted(ms for _, ms in r.connects()) for r in results]
    row("agent answers → caller bridged, ms p50", [percentile(c, 50) for c in conn], ".0f", True, 1)
    row("  p99, ms", [percentile(c, 99) for c in conn], ".0f", True, 1)
    text_row("calls per agent, min–max (phones)", [r.calls_per_agent() for r in results])
    row("rings to a phone already busy", [float(r.double_rings()) for r in results], ".0f")
    row("side's run, s (first call → all ended)", [r.finished - r.started for r in results], ".0f")
    print()
    cpu_head = f"{'CPU seconds over the side (% of one core)':<44}" + "".join(
        f"{n:>16}" for n in names
    )
    print(cpu_head + (f"{'ratio':>10}" if pair else ""))
    for who in ("Asterisk", "service", "bench", "SIPp"):
        values = [r.cpu.get(who) for r in results]
        cells = "".join(
            f"{'-':>16}"
            if v is None
            else f"{f'{v:.1f} ({100 * v / max(r.finished - r.started, 1e-9):.0f}%)':>16}"
            for v, r in zip(values, results, strict=True)
        )
        extra = ""
        if pair and who == "Asterisk" and values[0] and values[1] is not None:
            extra = f"{values[1] / values[0]:>10.2f}"
        label = {
            "Asterisk": "Asterisk",
            "service": "hotline service (hotline serve + probe)",
            "bench": "bench (agent simulator, event watch)",
            "SIPp": "SIPp (callers)",
        }[who]
        print(f"  {label:<42}{cells}{extra}")
    totals = [(r.cpu.get("Asterisk") or 0.0) + (r.cpu.get("service") or 0.0) for r in results]
    row("  Asterisk + service", totals, ".1f", True)

    print()
    for result in results:
        if result.lag_ms:
            lag = sorted(late for _, late, _ in result.lag_ms)
            worst = sorted(result.lag_ms, key=lambda sample: -sample[1])[:3]
            over = sum(1 for x in lag if x > 100)
            print(
                f"{result.name}: service event-loop lag (a {LAG_PROBE_S * 1000:.0f} ms sleep "
                f"probe inside the service process): max {lag[-1]:.1f} ms, p99 "
                f"{percentile(lag, 99):.1f} ms, p50 {percentile(lag, 50):.1f} ms, "
                f"{over} of {len(lag)} samples > 100 ms; worst: "
                + ", ".join(
                    f"{ms:.0f} ms at {at - result.started:.1f} s (loop thread on a CPU "
                    f"{busy:.0f} ms of {ms + LAG_PROBE_S * 1000:.0f}, garbage collection "
                    f"{result.gc_within(at - ms / 1000 - LAG_PROBE_S, at):.0f} ms)"
                    for at, ms, busy in worst
                )
            )
            pauses = sorted(result.gc_ms, key=lambda sample: -sample[1])
            print(
                f"{result.name}: garbage collections ≥ 1 ms in the service: {len(pauses)}"
                + (
                    f", longest {pauses[0][1]:.0f} ms at {pauses[0][0] - result.started:.1f} s, "
                    f"{sum(ms for _, ms in pauses) / 1000:.2f} s in all"
                    if pauses
                    else ""
                )
            )
        slowest = sorted(result.connects(), key=lambda c: -c[1])[:3]
        if slowest:
            print(
                f"{result.name}: slowest agent answer → caller bridged: "
                + ", ".join(f"{ms:.0f} ms at {at - result.started:.1f} s" for at, ms in slowest)
            )
        if result.health_ms:
            health = sorted(result.health_ms)
            print(
                f"{result.name}: GET /healthz every {HEALTH_EVERY_S:g} s (an outside view of "
                f"the same loop): max {health[-1]:.0f} ms, p99 {percentile(health, 99):.0f} ms, "
                f"p50 {percentile(health, 50):.0f} ms"
            )
        for line in result.records:
            print(f"{result.name}: {line}")
    print(
        "\n(queue entry: the caller's channel entering the hotline's holding bridge, or "
        "Queue() starting; agent answers: the simulated phone picking up; completed: the "
        "caller bridged with an agent; CPU from /proc/PID/stat over each side's run; ratios of "
        "ms figures use max(app_queue, 1 ms))"
    )


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


# -- main -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["serve"]:
        return serve(Path(os.environ["BENCH_LAG_FILE"]))
    parser = argparse.ArgumentParser(
        description="The hotline's ACD under load vs Asterisk's app_queue, same callers and agents."
    )
    parser.add_argument(
        "--quick", action="store_true", help="40 callers, 5 agents, short calls (about 3 min)"
    )
    parser.add_argument("--calls", type=int, help="callers per side (default 200; --quick 40)")
    parser.add_argument("--rate", type=float, help="arrivals per second (default 50; quick 20)")
    parser.add_argument(
        "--patience", type=float, help="seconds a caller waits before hanging up (600; quick 150)"
    )
    parser.add_argument("--seed", type=int, default=4711, help="the agents' random draws")
    parser.add_argument(
        "--sides",
        nargs="+",
        choices=("baseline", "hotline"),
        default=["baseline", "hotline"],
        help="which sides to run (default both, the baseline first)",
    )
    root = os.geteuid() == 0
    parser.add_argument(
        "--callers",
        choices=("sip", "local"),
        default="sip" if SIPP and root else "local",
        help="SIPp phones over the residents' trunk (needs sipp with PCAP support, and root "
        "for its RFC 4733 DTMF) or Local channels via ARI (default sip when possible)",
    )
    parser.add_argument(
        "--lock-timeout", type=float, default=1800, help="seconds to wait for the sandbox lock"
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    if args.calls is not None:
        changes["callers"] = args.calls
    if args.rate is not None:
        changes["rate"] = args.rate
    if args.patience is not None:
        changes["patience_s"] = args.patience
    mode = Mode(**{**mode.__dict__, **changes})
    if mode.callers < 1 or mode.rate <= 0 or mode.patience_s <= 0:
        parser.error("--calls, --rate and --patience must be positive")
    if args.callers == "sip" and (SIPP is None or not root):
        parser.error("--callers sip needs sipp on PATH (Debian package sip-tester) and root")
    try:
        config = load_config()
        require_loopback(config.ari.url)
        with sandbox_lock(args.lock_timeout):
            was_running = sandbox_running()
            run_step("hotline prompts build", [str(HOTLINE), "prompts", "build"], 300)
            run_step("asterisk-sandbox up", [str(SANDBOX), "up"], 900)
            try:
                return asyncio.run(bench(config, args, mode))
            finally:
                if not was_running:
                    run_step("asterisk-sandbox down", [str(SANDBOX), "down"], 120)
                    print("sandbox stopped again (it was not running before the bench)")
    except (BenchError, HotlineError) as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
