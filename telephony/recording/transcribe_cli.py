"""``hotline transcribe``: WAV files on the command line, or the service's backlog.

``FILE...`` runs exactly the decoder the service runs (same pool, resampling and
normalisation), so an administrator can check a model on their own recordings before
switching it on. ``--pending`` works through the jobs the service has queued or left
failed-for-retry, e.g. after transcription was switched off for a while.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from crm.clock import SystemClock
from crm.db import create_engine, make_sessionmaker, migrate
from crm.recordings import RecordingLog
from crm.transcripts import TranscriptBook
from telephony.config import Config
from telephony.exceptions import AudioError
from telephony.recording.decoder import LegText
from telephony.recording.pool import DecoderPool
from telephony.recording.store import RecordingStore
from telephony.recording.timeline import Leg, as_text, turns
from telephony.recording.transcriber import Transcriber
from telephony.recording.vosk_model import inspect_model


def add_transcribe_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("transcribe", help="transcribe WAV files, or the service's pending jobs")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="WAV files (any rate)")
    p.add_argument("--pending", action="store_true", help="run the queued jobs in the database")
    p.add_argument("--format", choices=["text", "json"], default="text", dest="output")
    p.add_argument("--model", type=Path, help="model folder (default: [transcription] model)")
    p.add_argument("--language", help="language the model must be (default: the config's)")


def run_transcribe(args: argparse.Namespace, config: Config) -> int:
    if bool(args.files) == bool(args.pending):
        print("hotline transcribe: give FILE... or --pending (not both)", file=sys.stderr)
        return 2
    model = inspect_model(
        args.model or config.transcription.model,
        expect_language=args.language or config.transcription.language,
    )
    pool = DecoderPool(model, config.transcription.workers)
    try:
        if args.pending:
            return asyncio.run(_pending(config, pool, args.output))
        return asyncio.run(_files(args.files, pool, args.output))
    finally:
        pool.close(kill=True)


async def _files(files: list[Path], pool: DecoderPool, output: str) -> int:
    progress = _Progress(len(files))

    async def one(path: Path) -> tuple[Path, LegText | str]:
        try:
            result: LegText | str = await pool.decode(path)
        except AudioError as err:
            result = str(err)
        progress.step(path)
        return path, result

    results = await asyncio.gather(*(one(path) for path in files))
    progress.done()
    failed = 0
    documents: list[dict[str, Any]] = []
    for path, result in results:
        if isinstance(result, str):
            failed += 1
            print(f"hotline: {result}", file=sys.stderr)
            documents.append({"file": str(path), "error": result})
            continue
        segments = turns([Leg("audio", None, 0, result.utterances)])
        if output == "json":
            documents.append(
                {
                    "file": str(path),
                    "audio_s": round(result.audio_s, 3),
                    "decode_s": round(result.decode_s, 3),
                    "text": "".join(s.text for s in segments),
                    "utterances": [s.to_json() for s in segments],
                }
            )
        else:
            rtf = result.decode_s / result.audio_s if result.audio_s else 0.0
            print(f"== {path} ({result.audio_s:.1f} s of audio, real-time factor {rtf:.2f})")
            print(as_text(segments) or "(no speech recognised)")
    if output == "json":
        print(json.dumps(documents, ensure_ascii=False, indent=2))
    return 1 if failed else 0


async def _pending(config: Config, pool: DecoderPool, output: str) -> int:
    await migrate(config.database.url)
    engine = create_engine(config.database.url, wait_s=config.database.wait_s)
    try:
        sessions = make_sessionmaker(engine)
        book = TranscriptBook(sessions)
        transcriber = Transcriber(
            config.transcription,
            pool,
            RecordingStore(config.recording.dir),
            RecordingLog(sessions),
            book,
            SystemClock(),
        )
        await book.resume_running(at=SystemClock().now())  # the service is not running them
        jobs = await transcriber.run_due()
    finally:
        await engine.dispose()
    if output == "json":
        print(json.dumps([j.to_json() for j in jobs], ensure_ascii=False, indent=2))
    else:
        for job in jobs:
            print(f"call {job.call_id}: {job.status}" + (f" ({job.error})" if job.error else ""))
        print(f"{len(jobs)} job(s) run")
    return 0 if all(j.status == "done" for j in jobs) else 1


class _Progress:
    """A one-line bar on stderr (only when it is a terminal or asked for by a pipe)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.started = time.monotonic()

    def step(self, path: Path) -> None:
        self.count += 1
        width = 30
        filled = width * self.count // max(1, self.total)
        elapsed = time.monotonic() - self.started
        print(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} "
            f"{elapsed:5.1f} s  {path.name[:40]:<40}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def done(self) -> None:
        print(file=sys.stderr)
