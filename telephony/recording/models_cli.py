"""``hotline models``: check the configured speech model, or fetch one.

Kept apart from ``telephony.cli`` so the command can be tested on a bare parser and
wired in with two calls (``add_models_parser`` and ``run_models``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from telephony.exceptions import ModelError
from telephony.recording.vosk_model import (
    CATALOGUE,
    DEFAULT_BASE_URL,
    ModelInfo,
    download_model,
    inspect_model,
    load_check,
)

DEFAULT_DEST = Path("var/models")


def add_models_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser("models", help="speech-to-text (Vosk) models: check, download")
    actions = models.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="check a model folder (default: the configured [transcription] model)"
    )
    check.add_argument("model_path", nargs="?", type=Path, metavar="PATH")
    check.add_argument(
        "--load", action="store_true", help="also load it with vosk and decode silence (~seconds)"
    )
    check.add_argument("--json", action="store_true", help="print the model's details as JSON")
    download = actions.add_parser(
        "download", help="download and unpack a model from alphacephei.com"
    )
    download.add_argument(
        "language", metavar="LANG", help="language code: " + ", ".join(sorted(CATALOGUE))
    )
    download.add_argument(
        "--accurate", action="store_true", help="the large model (slower, more memory)"
    )
    download.add_argument(
        "--dest",
        dest="models_dest",
        type=Path,
        default=DEFAULT_DEST,
        metavar="DIR",
        help=f"folder to install into (default {DEFAULT_DEST})",
    )
    download.add_argument(
        "--base-url", default=DEFAULT_BASE_URL, metavar="URL", help="where <name>.zip is served"
    )


def run_models(args: argparse.Namespace, default_model: Path, expect_language: str | None) -> int:
    """Run ``hotline models ...``; 0 on success, 2 when the model is unusable."""
    try:
        if args.models_action == "check":
            return _check(args, default_model, expect_language)
        return _download(args)
    except ModelError as err:
        print(f"hotline: {err}", file=sys.stderr)
        return 2


def _check(args: argparse.Namespace, default_model: Path, expect_language: str | None) -> int:
    path: Path = args.model_path or default_model
    info = inspect_model(path, expect_language=expect_language)
    if args.load:
        load_check(info)
    if args.json:
        data = dataclasses.asdict(info)
        data["path"] = str(info.path)
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(f"ok: {_describe(info)}" + (", loaded" if args.load else ""))
    return 0


def _download(args: argparse.Namespace) -> int:
    bar = _ProgressBar()
    try:
        info = download_model(
            args.language,
            args.models_dest,
            accurate=args.accurate,
            base_url=args.base_url,
            progress=bar,
        )
    finally:
        bar.close()
    print(f"installed: {_describe(info)}")
    print(f'set [transcription] model = "{info.path}" in config/hotline.toml to use it')
    return 0


def _describe(info: ModelInfo) -> str:
    mb = round(info.size_bytes / 2**20)
    return f'{info.path} ({info.language}, {info.sample_rate} Hz, {mb} MB, "{info.name}")'


class _ProgressBar:
    """One stderr line redrawn with \\r, so a 1 GB download shows it is alive."""

    WIDTH = 30

    def __init__(self) -> None:
        self.drawn = False
        self.last = ""

    def __call__(self, done: int, total: int | None) -> None:
        mb = done / 2**20
        if total:
            filled = self.WIDTH * done // total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            line = f"[{bar}] {mb:7.1f} / {total / 2**20:.1f} MB {100 * done // total:3d}%"
        else:
            line = f"{mb:7.1f} MB"
        if line != self.last:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
            self.drawn, self.last = True, line

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
