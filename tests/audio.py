"""Compare what a caller heard with the prompt we meant them to hear.

Loudness envelopes (RMS per 20 ms) are compared at the best alignment: enough to tell
the greeting from silence, music or another prompt, without any audio library.
"""

from __future__ import annotations

import array
import io
import math
import wave
from pathlib import Path

FRAME_S = 0.02


def envelope(wav_bytes: bytes) -> list[float]:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert wav.getsampwidth() == 2, "expected 16-bit samples"
        assert wav.getnchannels() == 1, "expected mono"
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    step = int(rate * FRAME_S)
    return [
        math.sqrt(sum(x * x for x in samples[i : i + step]) / step)
        for i in range(0, len(samples) - step + 1, step)
    ]


def correlation(a: list[float], b: list[float]) -> float:
    n = min(len(a), len(b))
    if n < 2:
        return 0.0
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = math.sqrt(sum((x - ma) ** 2 for x in a))
    vb = math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (va * vb) if va and vb else 0.0


def best_match(heard: bytes, expected: Path, *, max_lag_s: float = 1.0) -> float:
    """Highest envelope correlation of ``expected`` inside ``heard`` within ``max_lag_s``."""
    got, want = envelope(heard), envelope(expected.read_bytes())
    lags = range(int(max_lag_s / FRAME_S) + 1)
    return max(correlation(got[lag:], want) for lag in lags)
