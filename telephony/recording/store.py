"""The recording store: a local folder holding every call's audio, one file per recording.

Files are written to a temporary name, flushed to disk and renamed, so a crash or a full
disk never leaves a half file under a name the database points at. The checksum and
duration are taken from the bytes written, which is what a later integrity check or a
court request will compare against.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import wave
from datetime import datetime
from pathlib import Path

from crm.recordings import StoredAudio


class RecordingStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"recording path {relative!r} leaves the store")
        return path

    async def put(self, name: str, data: bytes, *, day: datetime) -> StoredAudio:
        return await asyncio.to_thread(self._put, name, data, day)

    def _put(self, name: str, data: bytes, day: datetime) -> StoredAudio:
        duration_s, rate = wav_facts(data)
        relative = f"{day:%Y/%m/%d}/{name}.wav"
        target = self.path_of(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            with partial.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            partial.replace(target)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        return StoredAudio(
            path=relative,
            size_bytes=len(data),
            duration_s=duration_s,
            sample_rate=rate,
            sha256=hashlib.sha256(data).hexdigest(),
        )

    async def delete(self, relative: str) -> None:
        def unlink() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.path_of(relative).unlink()

        await asyncio.to_thread(unlink)


def wav_facts(data: bytes) -> tuple[float, int]:
    """Duration and sample rate from a WAV's header; (0, 0) for audio we cannot parse.

    The store keeps whatever Asterisk gave: a damaged file is still evidence, and the
    transcription job reports it as damaged with the reason.
    """
    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate = wav.getframerate()
            frames = wav.getnframes()
    except (wave.Error, EOFError):
        return 0.0, 0
    return (frames / rate if rate else 0.0), rate
