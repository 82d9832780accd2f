"""Prompt audio: synthesised with espeak-ng at set-up, replaceable by recordings.

Asterisk plays 8 kHz 16-bit mono WAV without transcoding, so every prompt is rendered
to exactly that. A manifest of text hashes makes ``build`` idempotent: only prompts
whose text (or recording) changed are rendered again, so a restart costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from telephony.exceptions import PromptError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PromptLibrary:
    """Prompt texts, where their audio lives, and how Asterisk names them."""

    texts: dict[str, str]
    audio_dir: Path
    media_prefix: str
    company: str
    voice: str = "cmn"
    speed_wpm: int = 150
    recordings_dir: Path | None = None

    def text(self, name: str) -> str:
        return self.texts[name].replace("{company}", self.company)

    def media(self, name: str) -> str:
        """The ARI media URI for a prompt, e.g. ``sound:hotline/greeting``."""
        if name not in self.texts:
            raise PromptError(f"no prompt named {name!r}")
        if self.media_prefix.startswith("sound:http"):
            return f"{self.media_prefix}{name}.wav"
        return f"{self.media_prefix}{name}"

    def path(self, name: str) -> Path:
        return self.audio_dir / f"{name}.wav"

    async def build(self) -> list[str]:
        """Render every prompt whose source changed; returns the names rendered."""
        for tool in ("espeak-ng", "sox"):
            if shutil.which(tool) is None:
                raise PromptError(f"{tool} is not installed (apt-get install espeak-ng sox)")
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        manifest_path = self.audio_dir / MANIFEST
        try:
            manifest: dict[str, str] = json.loads(manifest_path.read_text())
        except (FileNotFoundError, ValueError):
            manifest = {}
        rendered = []
        for name in sorted(self.texts):
            recording = self._recording(name)
            source = (
                f"rec:{_sha256(recording)}"
                if recording
                else f"tts:{self.voice}:{self.speed_wpm}:{self.text(name)}"
            )
            digest = hashlib.sha256(source.encode()).hexdigest()
            if manifest.get(name) == digest and self.path(name).exists():
                continue
            if recording:
                await _run(
                    "sox", str(recording), "-r", "8000", "-c", "1", "-b", "16", str(self.path(name))
                )
            else:
                await self._speak(name)
            manifest[name] = digest
            rendered.append(name)
        manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        if rendered:
            log.info("prompts rendered: %s", ", ".join(rendered))
        return rendered

    def _recording(self, name: str) -> Path | None:
        if self.recordings_dir is None:
            return None
        candidate = self.recordings_dir / f"{name}.wav"
        return candidate if candidate.exists() else None

    async def _speak(self, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.wav"
            await _run(
                "espeak-ng",
                "-v",
                self.voice,
                "-s",
                str(self.speed_wpm),
                "-w",
                str(raw),
                self.text(name),
            )
            # 8 kHz mono 16-bit, telephone band, normalised to -3 dBFS.
            await _run(
                "sox",
                str(raw),
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                str(self.path(name)),
                "highpass",
                "300",
                "lowpass",
                "3400",
                "gain",
                "-n",
                "-3",
            )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise PromptError(
            f"{argv[0]} failed ({proc.returncode}): {err.decode(errors='replace').strip()}"
        )
