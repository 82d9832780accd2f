"""Answer latency of the hotline, next to Asterisk answering the same call by itself.

Why this exists: residents must hear the greeting before the first ring ends, and the
issue sets a budget for what our ARI application may add on top of Asterisk: at 100
concurrent arrivals on the 2-core machine, hotline/baseline ≤ 1.5 and p99 ≤ 50 ms. A
test cannot hold such a budget without flaking, so this script measures and reports it
(PASS/MISS is informational; the exit status only says whether the bench itself worked).

What is measured, per call, depends on who the callers are (``--callers``):

- ``sip`` (the default when ``sipp`` is on PATH): real SIP phones, as residents arrive.
  One SIPp process per scenario and side (bench/sip/caller.xml) sends INVITEs over the
  residents' trunk (127.0.0.1:5060, context ``from-residents``): to 400, which enters
  ``Stasis(hotline)``, or to 499, a temporary extension the bench adds for the run that
  goes to ``bench-answer``. The answering channel is the ``PJSIP/residents-trunk-…``
  channel, recognised by the caller number SIPp sends (a prefix unique to the run,
  scenario and side, then SIPp's call number). SIPp holds each call ``--hold`` seconds
  after the 200 OK and sends a BYE.
- ``local``: Local channels originated through ARI into ``400@from-residents`` or
  ``400@bench-answer``; the answering channel is the ``;2`` leg, and the bench hangs up
  the ``;1`` leg ``--hold`` seconds after Up. Cheaper to set up, but Asterisk spends about
  15 times more CPU on a Local call playing a prompt than on a SIP one (two channels, a
  bridge of frames between them), so a 100-call burst saturates the 2-core sandbox.

Either way the answering channel runs the dialplan a resident's call runs: in
``from-residents`` our service (a separate ``hotline serve`` process, as in production)
writes the call record and answers it; in ``bench-answer`` the dialplan's own
``Answer()`` does. Latency is the answering channel's ``creationtime`` to the timestamp
of its ChannelStateChange to ``Up``. Both come from Asterisk's clock and both sides are
computed the same way, so neither this script's event loop, nor websocket delivery, nor
SIPp counts, and the ratio is apples to apples. A second table starts the clock at the
ChannelDialplan event that enters the answering application (``Stasis`` or ``Answer``)
instead, which isolates what happens after the dialplan hands the call over. Asterisk
writes these times with millisecond resolution, so the baseline is mostly 0–1 ms; ratios
use max(baseline, 1 ms) to stay finite.

The bench observes the answering channels through its own ARI application (a unique
name, subscribed to all channels, so no event is lost to a subscribe-after-originate
race) and never touches the ``hotline`` application. It holds the sandbox lock the test suite
takes, so a test run and a bench run never compete for the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from telephony.ari import AriClient, AriError, AriNotFound, EventStream
from telephony.ari.events import ChannelDestroyed, ChannelStateChange, Event
from telephony.ari.models import AsteriskInfo, parse_time
from telephony.config import Config, load_config
from telephony.exceptions import HotlineError
from telephony.recording.vosk_model import packaged_model

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / "scripts" / "asterisk-sandbox"
HOTLINE = ROOT / ".venv" / "bin" / "hotline"
LOCK = Path(os.environ.get("HOTLINE_CACHE", Path.home() / ".cache" / "hotline")) / "sandbox.lock"

HOTLINE_ENDPOINT = "Local/400@from-residents"
BASELINE_ENDPOINT = "Local/400@bench-answer"
SIPP = shutil.which("sipp")
SIP_SCENARIO = Path(__file__).resolve().parent / "sip" / "caller.xml"
SIP_TRUNK = "127.0.0.1:5060"  # transport-udp in config/asterisk/pjsip.conf
SIP_CHANNEL_PREFIX = "PJSIP/residents-trunk-"
HOTLINE_EXTEN = "400"
BASELINE_EXTEN = "499"  # added to from-residents for the run only: Goto(bench-answer,400,1)
BURST_RATE = 1000.0  # calls/s SIPp starts a burst at: 100 INVITEs within about 100 ms
ANSWER_APPS = {"Stasis", "Answer"}  # the dialplan application that answers, per side
RUN = uuid.uuid4().hex[:8]
BENCH_APP = f"bench-latency-{RUN}"  # ours alone; never "hotline"
CHANNEL_PREFIX = f"bench-{RUN}-"  # every channel this run creates, for the final clean-up
# Every SIP call of this run comes from a number starting with this (then a scenario digit,
# a side digit and SIPp's call number), for matching channels and the final clean-up.
SIP_CALLER_PREFIX = f"8{int(RUN, 16) % 10000:04d}"

TARGET_CONCURRENT = 100
TARGET_RATIO = 1.5
TARGET_P99_MS = 50.0

UP_TIMEOUT_S = 15.0  # a call not Up by then is counted as failed (also in caller.xml)
GONE_TIMEOUT_S = 15.0
SETTLE_TIMEOUT_S = 30.0
RECORDS_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
TOKEN_TIMEOUT_S = 60.0
TOKEN_DAYS = 1  # far longer than any run; the database goes with the run anyway


class BenchError(Exception):
    """The bench could not run (sandbox, ARI or service unavailable); not a slow result."""


# -- the calls --------------------------------------------------------------------------
@dataclass
class Trace:
    """What Asterisk told us about one call's answering channel."""

    answer_leg: str  # Local ;2 or the PJSIP channel: runs the dialplan and is answered
    caller_leg: str = ""  # Local ;1, held by the bench app (none for SIP calls)
    created: datetime | None = None
    app_entered: datetime | None = None  # ChannelDialplan into Stasis/Answer
    up_at: datetime | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None  # the call was not answered: left out of the figures
    teardown_error: str | None = None  # answered, but the hang-up went wrong

    @property
    def created_to_up_ms(self) -> float | None:
        return _ms(self.created, self.up_at)

    @property
    def app_to_up_ms(self) -> float | None:
        return _ms(self.app_entered, self.up_at)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000


class Observer:
    """Routes the bench app's events about an answering channel to that call's trace.

    Local calls are tracked by the ``;2`` leg's id, chosen before the originate. SIP
    channels get their id from Asterisk, so a new ``PJSIP/residents-trunk-`` channel is
    claimed by the caller-number prefix its SIPp run sends (see :meth:`expect_sip`).
    """

    def __init__(self) -> None:
        self.traces: dict[str, Trace] = {}  # by answering channel id
        self.sip_runs: dict[str, list[Trace]] = {}  # by caller-number prefix

    def track(self, trace: Trace) -> None:
        self.traces[trace.answer_leg] = trace

    def forget(self, trace: Trace) -> None:
        self.traces.pop(trace.answer_leg, None)

    def expect_sip(self, prefix: str) -> list[Trace]:
        """Collect, into the returned list, the SIP calls from numbers starting ``prefix``."""
        return self.sip_runs.setdefault(prefix, [])

    def stop_expecting(self, prefix: str) -> None:
        for trace in self.sip_runs.pop(prefix, []):
            self.forget(trace)

    def _claim_sip(self, channel: dict[str, Any]) -> Trace | None:
        channel_id = str(channel.get("id", ""))
        if not channel_id or not str(channel.get("name", "")).startswith(SIP_CHANNEL_PREFIX):
            return None
        number = str((channel.get("caller") or {}).get("number", ""))
        for prefix, traces in self.sip_runs.items():
            if number.startswith(prefix):
                trace = Trace(answer_leg=channel_id)
                traces.append(trace)
                self.track(trace)
                return trace
        return None

    def on_event(self, event: Event) -> None:
        channel: dict[str, Any] = event.raw.get("channel") or {}
        trace = self.traces.get(str(channel.get("id", "")))
        if trace is None and self.sip_runs and event.type != "ChannelDestroyed":
            trace = self._claim_sip(channel)
        if trace is None:
            return
        if trace.created is None:
            trace.created = parse_time(channel.get("creationtime"))
        if event.type == "ChannelDialplan" and trace.app_entered is None:
            if event.raw.get("dialplan_app") in ANSWER_APPS:
                trace.app_entered = event.timestamp
        elif isinstance(event, ChannelStateChange) and event.channel.state == "Up":
            if trace.up_at is None:
                trace.up_at = event.timestamp
                trace.up.set()
        elif isinstance(event, ChannelDestroyed):
            trace.gone.set()
            trace.up.set()  # wake a waiter: a leg destroyed before Up has failed


async def place_call(
    ari: AriClient, observer: Observer, endpoint: str, *, start_at: float, hold_s: float
) -> Trace:
    """One caller: originate at ``start_at`` (loop time), wait for Up, hold, hang up."""
    tag = uuid.uuid4().hex[:10]
    trace = Trace(answer_leg=f"{CHANNEL_PREFIX}{tag};2", caller_leg=f"{CHANNEL_PREFIX}{tag};1")
    observer.track(trace)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    try:
        await ari.originate(
            endpoint,
            app=BENCH_APP,
            caller_id=f'"bench" <9{int(tag[:6], 16):08d}>',
            timeout_s=30,
            channel_id=trace.caller_leg,
            other_channel_id=trace.answer_leg,
        )
    except AriError as err:
        trace.error = f"originate: {err}"
        observer.forget(trace)
        return trace
    try:
        await asyncio.wait_for(trace.up.wait(), UP_TIMEOUT_S)
        if trace.up_at is None:
            trace.error = "hung up before it was answered"
        elif hold_s > 0:
            await asyncio.sleep(hold_s)
    except TimeoutError:
        trace.error = f"not answered within {UP_TIMEOUT_S:.0f} s"
    try:
        await ari.hangup(trace.caller_leg)
    except AriNotFound:
        pass  # already gone
    except AriError as err:
        trace.teardown_error = f"hang-up: {err}"
    try:
        await asyncio.wait_for(trace.gone.wait(), GONE_TIMEOUT_S)
    except TimeoutError:
        trace.teardown_error = trace.teardown_error or f"not gone {GONE_TIMEOUT_S:.0f} s later"
    observer.forget(trace)
    return trace


async def run_calls(
    ari: AriClient,
    observer: Observer,
    endpoint: str,
    *,
    calls: int,
    rate: float | None,
    hold_s: float,
) -> list[Trace]:
    """``calls`` arrivals at ``rate`` per second, or all at once when ``rate`` is None."""
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05
    tasks = [
        place_call(
            ari,
            observer,
            endpoint,
            start_at=t0 + (i / rate if rate else 0.0),
            hold_s=hold_s,
        )
        for i in range(calls)
    ]
    budget = calls / (rate or math.inf) + UP_TIMEOUT_S + hold_s + GONE_TIMEOUT_S + 30
    return await asyncio.wait_for(asyncio.gather(*tasks), budget)


# -- SIP callers ------------------------------------------------------------------------
def free_udp_port(*, and_plus: int = 0) -> int:
    """A loopback UDP port free right now; with ``and_plus``, port + and_plus is free too."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if not and_plus:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                try:
                    second.bind(("127.0.0.1", port + and_plus))
                except OSError:
                    continue
                return port
    raise BenchError("no free UDP port pair on 127.0.0.1")


def sipp_version() -> str:
    assert SIPP is not None
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        out = subprocess.run(
            [SIPP, "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        if found := re.search(r"SIPp (v[^\s,]+)", out):
            return found.group(1).rstrip(".")
    return "(version unknown)"


def sipp_summary(workdir: Path) -> str:
    """Successful/failed calls from SIPp's last statistics screen, and its first error."""
    try:
        screen = (workdir / "sipp.out").read_text(errors="replace")
    except OSError:
        screen = ""
    counts = [
        f"{label.lower()} {found[-1]}"
        for label in ("Successful call", "Failed call")
        if (found := re.findall(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", screen))
    ]
    errors = [
        # "2026-11-24<TAB>15:41:02.813307<TAB>1795534862.813307: caller timed out ..."
        re.sub(r"^\S+\t\S+\t[\d.]+: ", "", line.strip())
        for log in sorted(workdir.glob("*_errors.log"))
        for line in log.read_text(errors="replace").splitlines()
        if line.strip() and not line.startswith(("-", "\t", "The following events"))
    ]
    if not errors:
        errors = [_tail(workdir / "sipp.out", 3).replace("\n", " | ")]
    return ", ".join(counts) + (f"; first error: {errors[0][:300]}" if errors else "")


def prepare_sipp_dir(workdir: Path) -> None:
    workdir.mkdir(parents=True)
    shutil.copy(SIP_SCENARIO, workdir / SIP_SCENARIO.name)  # SIPp writes its logs beside it


async def run_sip_calls(
    observer: Observer,
    workdir: Path,
    exten: str,
    prefix: str,
    *,
    calls: int,
    rate: float | None,
    hold_s: float,
) -> list[Trace]:
    """``calls`` SIP calls to ``exten`` from one SIPp process, at ``rate`` or all at once.

    Each is held ``hold_s`` after its 200 OK, then SIPp sends the BYE. The answering
    channels are claimed by the caller-number ``prefix`` as Asterisk reports them.
    """
    assert SIPP is not None
    prepare_sipp_dir(workdir)
    cps = rate or BURST_RATE
    budget = calls / cps + UP_TIMEOUT_S + hold_s + GONE_TIMEOUT_S + 30
    args = [
        SIP_TRUNK,
        "-sf", SIP_SCENARIO.name,
        "-s", exten,
        "-key", "prefix", prefix,
        "-i", "127.0.0.1",
        "-p", str(free_udp_port()),
        "-mi", "127.0.0.1",
        "-mp", str(free_udp_port(and_plus=2)),  # SIPp binds it and the one two above
        "-rtp_echo",  # receive the prompt and send it back, like a phone's microphone
        "-d", str(round(hold_s * 1000)),
        "-m", str(calls),
        "-l", str(calls),
        "-r", f"{cps:g}",
        "-rp", "1000",
        "-timeout", f"{math.ceil(budget)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
    ]  # fmt: skip
    traces = observer.expect_sip(prefix)
    try:
        with (workdir / "sipp.out").open("wb") as out:
            try:
                proc = await asyncio.create_subprocess_exec(
                    SIPP, *args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out
                )
            except OSError as err:
                raise BenchError(f"cannot start {SIPP}: {err}") from err
        try:
            returncode: int | None = await asyncio.wait_for(proc.wait(), budget + 10)
        except TimeoutError:
            returncode = None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        # SIPp is done: each channel it made is gone, or soon will be.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(t.gone.wait() for t in traces)), GONE_TIMEOUT_S)
    finally:
        observer.stop_expecting(prefix)
    result = list(traces)
    for trace in result:
        if trace.up_at is None:
            trace.error = (
                "hung up before it was answered" if trace.gone.is_set() else "not answered"
            )
        elif not trace.gone.is_set():
            trace.teardown_error = f"still up {GONE_TIMEOUT_S:.0f} s after SIPp finished"
    if len(result) > calls:
        print(f"  note: {len(result)} channels from {prefix}… for {calls} INVITEs")
    result += [
        Trace(answer_leg="", error="no channel in Asterisk (INVITE lost or rejected)")
        for _ in range(calls - len(result))
    ]
    if returncode != 0:
        how = "was killed" if returncode is None else f"exited {returncode}"
        print(f"  sipp {how}: {sipp_summary(workdir)}")
    return result


# -- statistics -------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    calls: int
    failed: int
    p50: float
    p90: float
    p99: float
    max: float
    spread_ms: float  # first to last ;2 creation: how "concurrent" the arrivals were

    @classmethod
    def of(cls, traces: Sequence[Trace], measure: str) -> Stats:
        values = sorted(
            v for t in traces if t.error is None and (v := getattr(t, measure)) is not None
        )
        created = [t.created for t in traces if t.created is not None]
        spread = _ms(min(created), max(created)) if created else None
        return cls(
            calls=len(traces),
            failed=len(traces) - len(values),
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            max=values[-1] if values else math.nan,
            spread_ms=spread or 0.0,
        )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ratio(hotline: float, baseline: float) -> float:
    return hotline / max(baseline, 1.0)


@dataclass
class Scenario:
    name: str
    calls: int
    rate: float | None  # None: all at once
    hotline: list[Trace] = field(default_factory=list)
    baseline: list[Trace] = field(default_factory=list)


# -- environment ------------------------------------------------------------------------
def speech_model_env() -> dict[str, str]:
    """The packaged Korean Vosk model: the shipped Mandarin one is not on build machines,
    and the service refuses to start without a model (unless [transcription] is off)."""
    if "HOTLINE_VOSK_MODEL" in os.environ:
        return {}
    model = packaged_model("ko")
    return {"HOTLINE_VOSK_MODEL": str(model), "HOTLINE_VOSK_LANGUAGE": "ko"} if model else {}


class _LockWaitOver(Exception):
    """SIGALRM ended the wait for the sandbox lock."""


@contextlib.contextmanager
def sandbox_lock(timeout_s: float) -> Iterator[None]:
    """The lock tests/conftest.py takes, so a test run and the bench never overlap.

    Waited for in a blocking ``flock``, in line with the test runs, which block too: a
    bench that polled would find the lock free only in the instant between one holder's
    release and the next blocked waiter's wake-up, and starve while test runs queue.
    SIGALRM ends the wait at ``timeout_s`` (main thread only, as every bench calls it).
    """
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for the sandbox lock {LOCK} (a test run holds it)...", flush=True)
            _wait_for_lock(lock.fileno(), timeout_s)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _wait_for_lock(fd: int, timeout_s: float) -> None:
    def over(_signum: int, _frame: object) -> None:
        raise _LockWaitOver

    previous = signal.signal(signal.SIGALRM, over)
    signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 0.001))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except _LockWaitOver:
        raise BenchError(f"sandbox lock {LOCK} still held after {timeout_s:.0f} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_step(what: str, argv: Sequence[str], timeout_s: float) -> None:
    try:
        done = subprocess.run(
            list(argv), cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"{what} failed: {err}") from err
    if done.returncode != 0:
        raise BenchError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-800:]}")


# -- signing in ------------------------------------------------------------------------
@dataclass(frozen=True)
class Bearer:
    """An API token of the bench's own service, as the header every API request carries.

    Since issue 13 every ``/api/*`` route needs a signed-in user. Each bench holds the
    least role its requests need (reading calls: a supervisor; adding an agent with its
    phone: an admin) in a database deleted with the run. The secret is never printed:
    ``repr`` leaves it out.
    """

    name: str
    role: str
    secret: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


async def cli_token(name: str, role: str, env: Mapping[str, str]) -> Bearer:
    """A token made by ``hotline token create`` in the service's environment ``env``.

    Run before the service starts, as an operator would; the command migrates the fresh
    database and prints the secret alone on standard output. In a thread, so the bench's
    own ARI streams keep being read meanwhile.
    """
    argv = [str(HOTLINE), "token", "create", name, "--role", role]
    argv += ["--expires-days", str(TOKEN_DAYS)]
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            argv,
            cwd=ROOT,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=TOKEN_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"hotline token create {name} failed: {err}") from err
    secret = done.stdout.strip()
    if done.returncode != 0 or not secret or len(secret.split()) != 1:
        # stderr only: stdout may hold the secret
        raise BenchError(
            f"hotline token create {name} --role {role} failed ({done.returncode}): "
            f"{done.stderr.strip()[-800:]}"
        )
    return Bearer(name, role, secret)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise BenchError(f"ARI at {url} is not on loopback; the bench only talks to 127.0.0.1")


def service_env(
    workdir: Path, port: int, extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment ``hotline serve`` runs in: its own database in ``workdir``.

    ``hotline token create`` runs in the same one, so its token is in the database the
    service then reads.
    """
    return {
        **os.environ,
        **(extra_env or {}),
        "HOTLINE_DB_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "HOTLINE_HTTP_PORT": str(port),
        **speech_model_env(),
    }


@contextlib.asynccontextmanager
async def hotline_service(
    http: aiohttp.ClientSession,
    workdir: Path,
    port: int,
    argv: Sequence[str] = (str(HOTLINE), "serve"),
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[str]:
    """``hotline serve`` as a subprocess on its own database; yields its base URL."""
    env = service_env(workdir, port, extra_env)
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "service.log"
    with log_path.open("wb") as log:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=ROOT, env=env, stdout=log, stderr=log
            )
        except OSError as err:
            raise BenchError(f"cannot start {HOTLINE}: {err}") from err
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HEALTH_TIMEOUT_S
        while True:
            if proc.returncode is not None:
                raise BenchError(f"hotline serve exited ({proc.returncode}): {_tail(log_path)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(1)) as r:
                    if r.status == 200:
                        break
            if loop.time() > deadline:
                raise BenchError(f"service not ready within {HEALTH_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
        yield base
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                print(f"service ignored SIGINT for {STOP_TIMEOUT_S:.0f} s; killing it")
                proc.kill()
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def subscribe_all_stream(
    http: aiohttp.ClientSession, config: Config, observer: Observer
) -> AsyncIterator[None]:
    """The bench app's event stream, subscribed to every channel before any call starts.

    Subscribing to each ``;2`` leg after originating it would race the baseline, which
    can be Up within the same millisecond.
    """
    ari = AriClient(http, config.ari.url, config.ari.user, config.ari.password)

    async def subscribe_all() -> None:
        await ari.request(
            "POST", f"/applications/{BENCH_APP}/subscription", {"eventSource": "channel:"}
        )

    stream = EventStream(
        http,
        config.ari.url,
        config.ari.user,
        config.ari.password,
        [BENCH_APP],
        on_event=observer.on_event,
        on_connect=subscribe_all,
    )
    reader = asyncio.create_task(stream.run(), name="bench-events")
    try:
        try:
            await asyncio.wait_for(stream.connected.wait(), 10)
        except TimeoutError as err:
            raise BenchError(
                f"ARI event stream did not connect: {stream.status.last_error}"
            ) from err
        yield
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def log_problems(log_path: Path, limit: int = 5) -> list[str]:
    """The service's ERROR lines (and what a traceback ends with), to explain failed calls."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = [
        line
        for i, line in enumerate(lines)
        if " ERROR " in line
        or (
            line
            and not line.startswith((" ", "Traceback"))
            and i > 0
            and lines[i - 1].startswith("    ")
        )
    ]
    return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])


def disturbed(before: AsteriskInfo, after: AsteriskInfo) -> str | None:
    """Whether Asterisk restarted or reloaded during the run.

    ``asterisk-sandbox up`` on a running sandbox does ``core reload`` and ``make``'s
    ``asterisk-up`` step runs it without the lock, so another session can disturb a run.
    """
    if before.startup_time != after.startup_time:
        return "Asterisk restarted during the run"
    reload_before = (before.raw.get("status") or {}).get("last_reload_time")
    reload_after = (after.raw.get("status") or {}).get("last_reload_time")
    if reload_before != reload_after:
        return f"Asterisk was reloaded during the run (at {reload_after})"
    return None


async def hang_up_ours(ari: AriClient) -> None:
    """Leave no channel of this run behind, whatever happened to it."""
    with contextlib.suppress(AriError):
        for channel in await ari.list_channels():
            if channel.id.startswith(CHANNEL_PREFIX) or (
                channel.name.startswith(SIP_CHANNEL_PREFIX)
                and channel.caller_number.startswith(SIP_CALLER_PREFIX)
            ):
                with contextlib.suppress(AriError):
                    await ari.hangup(channel.id)


async def quiet_machine(timeout_s: float = 180.0) -> None:
    """Wait (bounded) until the 1-minute load is below the core count.

    A previous run's leftovers, or another session's work, would otherwise be measured too.
    """
    cores = len(os.sched_getaffinity(0))
    if os.getloadavg()[0] >= cores:
        print(f"load {os.getloadavg()[0]:.1f} ≥ {cores} cores: waiting up to {timeout_s:.0f} s")
    for _ in range(math.ceil(timeout_s / 2)):
        if os.getloadavg()[0] < cores:
            return
        await asyncio.sleep(2)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def get_json(
    http: aiohttp.ClientSession, url: str, bearer: Bearer | None = None, **params: str
) -> tuple[int, Any]:
    """GET, signed in as ``bearer`` (every ``/api/*`` route) or not (``/healthz``)."""
    headers = bearer.headers if bearer else None
    async with http.get(
        url, params=params, headers=headers, timeout=aiohttp.ClientTimeout(10)
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def settle(ari: AriClient, http: aiohttp.ClientSession, base: str) -> None:
    """Between runs: no channel left in Asterisk and no live call in the service."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while loop.time() < deadline:
        _, health = await get_json(http, f"{base}/healthz")
        if not await ari.list_channels() and health.get("live_calls") == 0:
            return
        await asyncio.sleep(0.1)
    print(f"  note: channels or live calls still present after {SETTLE_TIMEOUT_S:.0f} s")


async def check_records(
    http: aiohttp.ClientSession, base: str, reader: Bearer, channel_ids: set[str]
) -> dict[str, dict[str, Any]]:
    """The service's records of these channels, via its API (every page), as ``reader``.

    Polled until each call has a closed record or the time limit passes: the service
    closes a record just after the hang-up, not at it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORDS_TIMEOUT_S
    while True:
        found: dict[str, dict[str, Any]] = {}
        offset, total = 0, 1
        for _page in range(1000):
            if offset >= total:
                break
            status, body = await get_json(
                http, f"{base}/api/calls", reader, limit="500", offset=str(offset)
            )
            if status != 200:
                raise BenchError(f"GET /api/calls: HTTP {status}: {body}")
            total = int(body["total"])
            items = body["items"]
            if not items:
                break
            offset += len(items)
            for item in items:
                if item["channel_id"] in channel_ids:
                    found[item["channel_id"]] = item
        closed = sum(1 for r in found.values() if r.get("ended_at"))
        if closed == len(channel_ids) or loop.time() > deadline:
            return found
        await asyncio.sleep(0.2)


def records_line(name: str, ids: set[str], found: dict[str, dict[str, Any]]) -> str:
    mine = [found[i] for i in ids if i in found]
    complete = sum(1 for r in mine if r.get("answered_at") and r.get("ended_at"))
    gaps = [
        f"no record {len(ids) - len(mine)}" if len(mine) < len(ids) else "",
        f"no answered_at {sum(1 for r in mine if not r.get('answered_at'))}",
        f"no ended_at {sum(1 for r in mine if not r.get('ended_at'))}",
    ]
    detail = ", ".join(g for g in gaps if g and not g.endswith(" 0"))
    return f"{name}: {complete}/{len(ids)}" + (f" ({detail})" if detail else "")


def machine_info(asterisk_version: str) -> list[str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu or platform.machine()}, "
        f"{platform.system()} {platform.release()}, load avg {load}",
        f"Asterisk {asterisk_version} (sandbox), Python {platform.python_version()}",
    ]


# -- report -----------------------------------------------------------------------------
def print_report(scenarios: Sequence[Scenario], hold_s: float, callers: str) -> None:
    leg = "the PJSIP channel" if callers == "sip" else "the ;2 leg"
    for measure, title in (
        ("created_to_up_ms", f"creationtime of {leg} → its ChannelStateChange Up"),
        ("app_to_up_ms", "ChannelDialplan into Stasis/Answer → ChannelStateChange Up"),
    ):
        print()
        print(f"answer latency, ms ({title}; Asterisk timestamps, 1 ms resolution)")
        head = (
            f"{'scenario':<22}{'side':<10}{'calls':>6}{'fail':>5}"
            f"{'p50':>7}{'p90':>7}{'p99':>7}{'max':>7}   {'arrivals spread':>15}"
        )
        print(head)
        print("-" * len(head))
        for sc in scenarios:
            h, b = Stats.of(sc.hotline, measure), Stats.of(sc.baseline, measure)
            for side, s, name in (("hotline", h, sc.name), ("baseline", b, "")):
                print(
                    f"{name:<22}{side:<10}{s.calls:>6}{s.failed:>5}"
                    f"{s.p50:>7.0f}{s.p90:>7.0f}{s.p99:>7.0f}{s.max:>7.0f}"
                    f"   {s.spread_ms:>12.0f} ms"
                )
            print(
                f"{'':<22}{'ratio':<10}{'':>11}"
                f"{ratio(h.p50, b.p50):>7.1f}{'':>7}{ratio(h.p99, b.p99):>7.1f}"
                "   (hotline/baseline at p50, p99)"
            )
    hang_up = "SIPp sent a BYE" if callers == "sip" else "the bench hung up the ;1 leg"
    print(
        f"\n(callers: {callers}; {hang_up} {hold_s:g} s after each answer; "
        "ratios use max(baseline, 1 ms))"
    )

    bursts = [sc for sc in scenarios if sc.rate is None]
    print(
        f"\ntarget (issue): ratio ≤ {TARGET_RATIO} and p99 ≤ {TARGET_P99_MS:.0f} ms "
        f"at {TARGET_CONCURRENT} concurrent arrivals on this 2-core machine"
    )
    if not bursts:
        print("  not judged: no concurrent burst in this run")
    for sc in bursts:
        h = Stats.of(sc.hotline, "created_to_up_ms")
        b = Stats.of(sc.baseline, "created_to_up_ms")
        note = (
            ""
            if sc.calls >= TARGET_CONCURRENT
            else f" (burst of {sc.calls}, below {TARGET_CONCURRENT}: indicative only)"
        )
        r50, r99 = ratio(h.p50, b.p50), ratio(h.p99, b.p99)
        print(f"  {sc.name}{note}:")
        print(f"    ratio at p50 {r50:.1f} ≤ {TARGET_RATIO}: {_verdict(r50 <= TARGET_RATIO)}")
        print(f"    ratio at p99 {r99:.1f} ≤ {TARGET_RATIO}: {_verdict(r99 <= TARGET_RATIO)}")
        print(
            f"    hotline p99 {h.p99:.0f} ms ≤ {TARGET_P99_MS:.0f} ms: "
            f"{_verdict(h.p99 <= TARGET_P99_MS and h.failed == 0)}"
        )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# -- main -------------------------------------------------------------------------------
def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    if args.calls is not None or args.rate is not None or args.concurrent:
        calls = args.calls or (TARGET_CONCURRENT if args.concurrent else 200)
        if args.concurrent:
            return [Scenario(f"{calls} at once", calls, None)]
        rate = args.rate or 20.0
        return [Scenario(f"{calls} at {rate:g}/s", calls, rate)]
    if args.quick:
        return [
            Scenario("40 at 10/s", 40, 10.0),
            Scenario(f"{TARGET_CONCURRENT} at once", TARGET_CONCURRENT, None),
        ]
    return [
        Scenario("200 at 20/s", 200, 20.0),
        Scenario(f"{TARGET_CONCURRENT} at once", TARGET_CONCURRENT, None),
    ]


async def bench(config: Config, args: argparse.Namespace) -> int:
    scenarios = scenarios_from(args)
    observer = Observer()
    # Few connections on purpose: Asterisk's HTTP server allows 100 sessions in all, and
    # the originates only need to reach it faster than the calls arrive.
    connector = aiohttp.TCPConnector(limit=20)
    async with aiohttp.ClientSession(connector=connector) as http:
        ari = AriClient(http, config.ari.url, config.ari.user, config.ari.password)
        try:
            info = await ari.asterisk_info()
        except AriError as err:
            raise BenchError(f"ARI unavailable at {config.ari.url}: {err}") from err
        leftovers = await ari.list_channels()
        if leftovers:
            print(f"hanging up {len(leftovers)} channel(s) left in the sandbox")
            for ch in leftovers:
                with contextlib.suppress(AriError):
                    await ari.hangup(ch.id)
        await quiet_machine()
        for line in machine_info(info.version):
            print(line)
        print(f"callers: {describe_callers(args.callers)}")

        try:
            if args.callers == "sip":
                add_baseline_extension()
            async with subscribe_all_stream(http, config, observer):
                with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
                    port = free_port()
                    callers = Callers(args.callers, ari, observer, Path(tmp))
                    # reads the call records: a supervisor's act
                    reader = await cli_token(
                        "bench-latency-reader", "supervisor", service_env(Path(tmp), port)
                    )
                    async with hotline_service(http, Path(tmp), port) as base:
                        print(f"service: hotline serve on {base}, database {tmp}/bench.db")
                        await run_all(callers, http, base, reader, scenarios, args)
                        _, health = await get_json(http, f"{base}/healthz")
                        if health.get("ari", {}).get("application_replaced"):
                            print("WARNING: another client took the 'hotline' ARI app")
                    for line in log_problems(Path(tmp) / "service.log"):
                        print(f"service log: {line}")
        finally:
            await hang_up_ours(ari)
            if args.callers == "sip":
                remove_baseline_extension()
        if warning := disturbed(info, await ari.asterisk_info()):
            print(f"WARNING: {warning}; figures of this run are not representative")
    print_report(scenarios, args.hold, args.callers)
    print(f"load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def asterisk_cli(command: str) -> str:
    try:
        done = subprocess.run(
            [str(SANDBOX), "cli", command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"asterisk-sandbox cli {command!r} failed: {err}") from err
    if done.returncode != 0:
        raise BenchError(f"asterisk-sandbox cli {command!r} failed: {done.stderr.strip()}")
    return done.stdout


def add_baseline_extension() -> None:
    """The SIP baseline's way to bench-answer: the trunk always lands in from-residents.

    Added to the running dialplan only (config/ is untouched); a reload drops it, and the
    bench reports any reload during the run.
    """
    command = (
        f"dialplan add extension {BASELINE_EXTEN},1,Goto(bench-answer,{HOTLINE_EXTEN},1) "
        "into from-residents replace"
    )
    said = asterisk_cli(command)
    if "added" not in said and "replace" not in said:
        raise BenchError(f"could not add the baseline extension: {said.strip()}")


def remove_baseline_extension() -> None:
    try:
        asterisk_cli(f"dialplan remove extension {BASELINE_EXTEN}@from-residents")
    except BenchError as err:
        print(f"WARNING: {err}; remove {BASELINE_EXTEN}@from-residents by hand")


def describe_callers(mode: str) -> str:
    if mode == "local":
        return f"local (Local channels: hotline {HOTLINE_ENDPOINT}, baseline {BASELINE_ENDPOINT})"
    return (
        f"sip (SIPp {sipp_version()} UACs over the residents' trunk {SIP_TRUNK}: hotline "
        f"{HOTLINE_EXTEN}@from-residents, baseline {BASELINE_EXTEN}@from-residents → "
        f"bench-answer; callers {SIP_CALLER_PREFIX}…)"
    )


@dataclass
class Callers:
    """Places one side's calls of a scenario, as Local channels or SIP phones."""

    mode: str  # "sip" or "local"
    ari: AriClient
    observer: Observer
    workdir: Path  # SIPp's working folders go here

    def describe(self, side: str, index: int) -> str:
        if self.mode == "local":
            return HOTLINE_ENDPOINT if side == "hotline" else BASELINE_ENDPOINT
        exten = HOTLINE_EXTEN if side == "hotline" else BASELINE_EXTEN
        return f"SIP {exten}@from-residents from {self._prefix(side, index)}…"

    @staticmethod
    def _prefix(side: str, index: int) -> str:
        # same length for every scenario and side, so no prefix is another's prefix
        return f"{SIP_CALLER_PREFIX}{index % 10}{1 if side == 'hotline' else 0}"

    async def place(
        self, side: str, index: int, *, calls: int, rate: float | None, hold_s: float
    ) -> list[Trace]:
        if self.mode == "local":
            endpoint = HOTLINE_ENDPOINT if side == "hotline" else BASELINE_ENDPOINT
            return await run_calls(
                self.ari, self.observer, endpoint, calls=calls, rate=rate, hold_s=hold_s
            )
        return await run_sip_calls(
            self.observer,
            self.workdir / f"sipp-{index}-{side}",
            HOTLINE_EXTEN if side == "hotline" else BASELINE_EXTEN,
            self._prefix(side, index),
            calls=calls,
            rate=rate,
            hold_s=hold_s,
        )


async def run_all(
    callers: Callers,
    http: aiohttp.ClientSession,
    base: str,
    reader: Bearer,
    scenarios: Sequence[Scenario],
    args: argparse.Namespace,
) -> None:
    ari = callers.ari
    if args.warmup:
        for side in ("baseline", "hotline"):
            await callers.place(side, 0, calls=args.warmup, rate=5.0, hold_s=0.2)
        await settle(ari, http, base)
        print(f"warm-up: {args.warmup} calls each side (not counted)")
    hotline_ids: dict[str, set[str]] = {}
    for index, sc in enumerate(scenarios, start=1):
        how = f"{sc.rate:g}/s" if sc.rate else "all at once"
        for side in ("baseline", "hotline"):
            print(
                f"{time.strftime('%H:%M:%S')} {sc.name}: {side} "
                f"({callers.describe(side, index)}), {sc.calls} calls {how}...",
                flush=True,
            )
            traces = await callers.place(
                side, index, calls=sc.calls, rate=sc.rate, hold_s=args.hold
            )
            if side == "hotline":
                sc.hotline = traces
                hotline_ids[sc.name] = {t.answer_leg for t in traces if t.created is not None}
            else:
                sc.baseline = traces
            for kind, problems in (
                ("not answered", [t.error for t in traces if t.error]),
                ("hang-up trouble", [t.teardown_error for t in traces if t.teardown_error]),
            ):
                if problems:
                    print(f"  {kind}: {len(problems)} call(s), e.g. {sorted(problems)[0]}")
            await settle(ari, http, base)
    every: set[str] = set().union(*hotline_ids.values())
    found = await check_records(http, base, reader, every)
    complete = sum(1 for r in found.values() if r.get("answered_at") and r.get("ended_at"))
    per_scenario = "; ".join(records_line(name, ids, found) for name, ids in hotline_ids.items())
    print(f"records complete: {complete}/{len(every)} (answered_at and ended_at; {per_scenario})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Answer latency: the hotline service vs Asterisk's own Answer()."
    )
    parser.add_argument("--calls", type=int, help="calls in a single scenario (default 200)")
    parser.add_argument("--rate", type=float, help="arrivals per second (default 20)")
    parser.add_argument(
        "--concurrent", action="store_true", help="all --calls at once (default 100)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="40 calls at 10/s and a 100-call burst (under 1 min)"
    )
    parser.add_argument(
        "--hold", type=float, default=0.5, help="seconds a call stays up (default 0.5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="uncounted calls per side first (default 5)"
    )
    parser.add_argument(
        "--callers",
        choices=("sip", "local"),
        default="sip" if SIPP else "local",
        help="SIP phones from sipp over the residents' trunk, or Local channels via ARI "
        "(default sip when sipp is on PATH, else local)",
    )
    parser.add_argument(
        "--lock-timeout", type=float, default=900, help="seconds to wait for the sandbox lock"
    )
    args = parser.parse_args(argv)
    if (args.calls is not None and args.calls < 1) or (args.rate is not None and args.rate <= 0):
        parser.error("--calls and --rate must be positive")
    if args.callers == "sip" and SIPP is None:
        parser.error("--callers sip needs sipp on PATH (Debian package sip-tester)")
    try:
        config = load_config()
        require_loopback(config.ari.url)
        with sandbox_lock(args.lock_timeout):
            run_step("hotline prompts build", [str(HOTLINE), "prompts", "build"], 300)
            run_step("asterisk-sandbox up", [str(SANDBOX), "up"], 900)
            return asyncio.run(bench(config, args))
    except (BenchError, HotlineError) as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
