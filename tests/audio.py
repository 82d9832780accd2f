"""Compare what a caller heard with the prompt we meant them to hear.

Loudness outlines (RMS per 20 ms) are compared at the best alignment: enough to tell
the greeting from silence, music or another prompt, whatever the codec did to the audio,
without any audio library.
"""

from __future__ import annotations

import array
import io
import math
import wave
from collections.abc import Sequence
from pathlib import Path

RATE = 8000
FRAME = RATE // 50  # 20 ms: one RTP packet


def wav_samples(data: bytes | Path) -> Sequence[int]:
    """16-bit samples of an 8 kHz mono WAV file or its bytes."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    with wave.open(io.BytesIO(raw)) as wav:
        assert wav.getframerate() == RATE, "expected 8 kHz"
        assert wav.getsampwidth() == 2, "expected 16-bit samples"
        assert wav.getnchannels() == 1, "expected mono"
        return array.array("h", wav.readframes(wav.getnframes()))


def loudness(samples: Sequence[int]) -> list[float]:
    """RMS level of each 20 ms frame: the outline of the speech."""
    return [
        math.sqrt(sum(x * x for x in samples[i : i + FRAME]) / FRAME)
        for i in range(0, len(samples) - FRAME + 1, FRAME)
    ]


def correlation(a: Sequence[float], b: Sequence[float]) -> float:
    n = min(len(a), len(b))
    if n < 2:
        return 0.0
    mean_a, mean_b = sum(a[:n]) / n, sum(b[:n]) / n
    da = [x - mean_a for x in a[:n]]
    db = [y - mean_b for y in b[:n]]
    norm = math.sqrt(sum(x * x for x in da) * sum(y * y for y in db))
    return sum(x * y for x, y in zip(da, db, strict=True)) / norm if norm else 0.0


def likeness(heard: Sequence[int], expected: Path, *, max_lag_s: float = 1.0) -> float:
    """How well ``expected`` matches the start of ``heard`` (best lag up to ``max_lag_s``)."""
    got, want = loudness(heard), loudness(wav_samples(expected))
    return max(correlation(want, got[lag:]) for lag in range(int(max_lag_s * 50) + 1))
