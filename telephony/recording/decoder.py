"""Decode one speaker's leg with Vosk: utterances with word times.

This runs inside worker processes of the transcription pool. Loading a model takes
seconds and hundreds of megabytes, so each worker loads it once (``load``) and keeps it
for every leg it decodes; decoding is CPU-bound C++, so it belongs in a process of its
own, away from the event loop that answers calls.

The loop is the plain Vosk loop on purpose: our transcript must be what Vosk itself
says about the audio (tests compare the two), with nothing added but the resampling.
"""

from __future__ import annotations

import ctypes
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telephony.exceptions import ModelError
from telephony.recording.audio import at_rate, read_wav

CHUNK_S = 0.25  # audio fed per AcceptWaveform call
# Kaldi dithers features with libc's rand(), whose state runs on across every decode in
# the process: the same audio gave a different transcript depending on what the worker
# had decoded before. Reseeding before each leg makes a transcript a function of its
# audio (a retried job gives the same text), as if each leg had a fresh process.
DITHER_SEED = 1
_libc = ctypes.CDLL(None)


@dataclass(frozen=True)
class RecognisedWord:
    word: str
    start_s: float
    end_s: float
    conf: float


@dataclass(frozen=True)
class Utterance:
    """What Vosk returns at one end-point: its text and the timed words in it."""

    text: str
    words: tuple[RecognisedWord, ...]


@dataclass(frozen=True)
class LegText:
    utterances: tuple[Utterance, ...]
    audio_s: float
    decode_s: float  # CPU seconds spent in this process


class _Worker:
    model: Any = None
    rate: int = 0
    name: str = ""


WORKER_NICENESS = 10


def load(model_path: str, rate: int) -> None:
    """Pool initializer: load the model once for this process.

    Workers run niced: on a small PBX host the calls in progress (Asterisk and our event
    loop) must always win the CPU over a transcript that can be ready a minute later.
    """
    import os

    import vosk

    os.nice(WORKER_NICENESS)

    vosk.SetLogLevel(-1)
    try:
        _Worker.model = vosk.Model(model_path)
    except Exception as err:  # vosk raises a bare Exception for a bad folder
        raise ModelError(model_path, f"Vosk could not load it: {err}") from err
    _Worker.rate = rate
    _Worker.name = Path(model_path).name


def ready() -> bool:
    """A no-op a pool runs once per worker to start it (and load the model) early."""
    return _Worker.model is not None


def decode_file(path: str) -> LegText:
    """Decode a WAV file with the model this process loaded."""
    if _Worker.model is None:
        raise RuntimeError("decode_file called in a process without a model (load first)")
    started = time.process_time()
    pcm = at_rate(read_wav(Path(path)), _Worker.rate)
    utterances = recognise(_Worker.model, pcm.samples, pcm.rate)
    return LegText(utterances, pcm.duration_s, time.process_time() - started)


def recognise(model: Any, samples: bytes, rate: int) -> tuple[Utterance, ...]:
    import vosk

    recogniser = vosk.KaldiRecognizer(model, rate)
    recogniser.SetWords(True)
    _libc.srand(DITHER_SEED)
    step = int(rate * CHUNK_S) * 2
    results: list[Utterance] = []
    for offset in range(0, len(samples), step):
        if recogniser.AcceptWaveform(samples[offset : offset + step]):
            results.append(_utterance(recogniser.Result()))
    results.append(_utterance(recogniser.FinalResult()))
    return tuple(u for u in results if u.words)


def _utterance(raw: str) -> Utterance:
    data = json.loads(raw)
    words = tuple(
        RecognisedWord(str(w["word"]), float(w["start"]), float(w["end"]), float(w["conf"]))
        for w in data.get("result", [])
    )
    return Utterance(str(data.get("text", "")), words)
