"""Telephone recordings in, samples at the model's rate out.

Asterisk records calls at 8 kHz; Vosk models are trained at their own rate (16 kHz for
most). Feeding 8 kHz audio to a 16 kHz model without converting it halves every pitch
and the recogniser hears nonsense, so every leg is resampled here with a proper
band-limited resampler (libsoxr) before decoding. Anything that is not a whole 16-bit
PCM WAV is refused with a reason a supervisor can act on, never guessed at.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from telephony.exceptions import AudioError


@dataclass(frozen=True)
class Pcm:
    """Mono signed 16-bit little-endian samples."""

    samples: bytes
    rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / 2 / self.rate


def read_wav(path: Path) -> Pcm:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioError(f"{path.name}: file not found") from None
    if size == 0:
        raise AudioError(f"{path.name}: empty file (0 bytes)")
    try:
        with wave.open(str(path)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            promised = wav.getnframes()
            data = wav.readframes(promised)
    except (wave.Error, EOFError) as err:
        raise AudioError(f"{path.name}: not a PCM WAV file ({err})") from err
    if width != 2:
        raise AudioError(f"{path.name}: {8 * width}-bit samples; 16-bit PCM expected")
    if not 4000 <= rate <= 192000:
        raise AudioError(f"{path.name}: sample rate {rate} Hz is not audio")
    frames = len(data) // (width * channels)
    if frames < promised:
        raise AudioError(
            f"{path.name}: truncated: header promises {promised / rate:.2f} s, "
            f"file holds {frames / rate:.2f} s"
        )
    if frames == 0:
        raise AudioError(f"{path.name}: no audio (0 samples)")
    samples = np.frombuffer(data[: frames * width * channels], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    return Pcm(samples.tobytes(), rate)


def at_rate(pcm: Pcm, rate: int) -> Pcm:
    """The same audio at ``rate`` (unchanged if it is already there)."""
    if pcm.rate == rate:
        return pcm
    samples = np.frombuffer(pcm.samples, dtype="<i2")
    converted = soxr.resample(samples, pcm.rate, rate, quality="HQ")
    return Pcm(np.asarray(converted, dtype="<i2").tobytes(), rate)
