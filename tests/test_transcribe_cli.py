"""``hotline transcribe``: files on the command line, and the service's backlog."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crm.calls import CallLog
from crm.db import create_engine, make_sessionmaker, migrate
from crm.recordings import RecordingLog
from crm.transcripts import TranscriptBook
from telephony.cli import main
from telephony.config import DatabaseConfig, RecordingConfig, load_config
from telephony.recording.store import RecordingStore
from tests.conftest import ROOT, TEST_MODEL, with_test_model
from tests.speech import RESIDENT_SAYS, bare_text, char_difference, make_clip

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_files_are_transcribed_as_json_faithful_to_vosk_and_bad_ones_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(RESIDENT_SAYS, tmp_path / "resident.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    monkeypatch.setenv("HOTLINE_VOSK_MODEL", str(TEST_MODEL))
    monkeypatch.setenv("HOTLINE_VOSK_LANGUAGE", "ko")
    status = main(["transcribe", str(clip), str(empty), "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 1  # one file could not be read
    good, bad = json.loads(out)
    assert bad == {"file": str(empty), "error": "empty.wav: empty file (0 bytes)"}
    assert "empty file" in err
    assert good["audio_s"] == pytest.approx(8.4, abs=1.0)
    ours = "".join(w["word"] for u in good["utterances"] for w in u["words"])
    assert char_difference(ours, bare_text(clip)) <= 0.02
    assert "2/2" in err  # the progress bar reached the end


def test_a_missing_model_is_refused_naming_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTLINE_VOSK_MODEL", raising=False)
    status = main(["transcribe", str(tmp_path / "x.wav"), "--model", str(tmp_path / "none")])
    assert status == 2
    assert "hotline models" in capsys.readouterr().err


async def test_pending_runs_the_backlog_the_service_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_test_model(load_config(ROOT / "config" / "hotline.toml", env={}))
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    config = dataclasses.replace(
        config,
        database=DatabaseConfig(url=url),
        recording=RecordingConfig(dir=tmp_path / "recordings"),
    )
    await migrate(url)
    engine = create_engine(url)
    sessions = make_sessionmaker(engine)
    calls, recordings = CallLog(sessions), RecordingLog(sessions)
    call_id = await calls.open_call(
        channel_id="c1", caller_number=None, caller_name=None, dialled_number=None, started_at=T0
    )
    await calls.close_call(call_id, ended_at=T0 + timedelta(minutes=1), reason="caller-hangup")
    clip = make_clip(RESIDENT_SAYS, tmp_path / "leg.wav")
    recording_id = await recordings.started(
        call_id=call_id, role="resident", asterisk_name="leg", fmt="wav", at=T0
    )
    stored = await RecordingStore(config.recording.dir).put("leg", clip.read_bytes(), day=T0)
    await recordings.stored(recording_id, stored, at=T0)
    book = TranscriptBook(sessions)
    await book.enqueue(call_id, at=T0)
    config_file = tmp_path / "hotline.toml"
    config_file.write_text(
        (ROOT / "config" / "hotline.toml")
        .read_text()
        .replace('url = "sqlite+aiosqlite:///var/hotline.db"', f'url = "{url}"')
        .replace('dir = "var/recordings"', f'dir = "{config.recording.dir}"')
    )
    monkeypatch.setenv("HOTLINE_VOSK_MODEL", str(config.transcription.model))
    monkeypatch.setenv("HOTLINE_VOSK_LANGUAGE", "ko")
    status = await asyncio.to_thread(
        main, ["--config", str(config_file), "transcribe", "--pending"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"call {call_id}: done" in out
    (turn,) = await book.transcript(call_id)
    assert turn.speaker == "resident"
    assert char_difference("".join(w.word for w in turn.words), bare_text(clip)) <= 0.02
    await engine.dispose()
