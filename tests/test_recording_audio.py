"""A recording's audio as a player fetches it: whole, in ranges, and with a Range it cannot use.

The whole service runs with Asterisk out of reach; the recording is written into the
service's own store as the fetcher would, so nothing here needs a call.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.staff import ADMIN, SUPERVISOR, cheap_hasher, issue_test_tokens
from tests.test_service_http import unreachable_config
from web.app import build_app
from web.appkeys import RECORDING_STORE, RECORDINGS
from web.calls import CALL_LOG


def one_second_of_silence() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * 8000)
    return out.getvalue()


async def test_a_range_the_file_cannot_answer_is_416_not_a_server_error(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    """Found by bench/api_fuzz.py's kind of question: a malformed Range was a 500. Every
    start of a playback is audited once, however its Range reads; later ranges are not."""
    app = build_app(unreachable_config(tmp_path), passwords=cheap_hasher())
    supervisor: TestClient[Any, Any] = await aiohttp_client(app, headers=SUPERVISOR)
    await issue_test_tokens(app)
    now = datetime.now(UTC)
    call_id = await app[CALL_LOG].open_call(
        channel_id="audio-range-test",
        caller_number="13800138000",
        caller_name=None,
        dialled_number="400",
        started_at=now - timedelta(minutes=2),
    )
    await app[CALL_LOG].close_call(call_id, ended_at=now, reason="caller-hangup")
    recording_id = await app[RECORDINGS].started(
        call_id=call_id, role="mixed", asterisk_name="audio-range", fmt="wav", at=now
    )
    audio = one_second_of_silence()
    stored = await app[RECORDING_STORE].put("audio-range", audio, day=now)
    await app[RECORDINGS].stored(recording_id, stored, at=now)
    url = f"/api/recordings/{recording_id}/audio"

    async def fetch(range_header: str | None) -> tuple[int, bytes]:
        headers = {"Range": range_header} if range_header is not None else {}
        async with supervisor.get(url, headers=headers) as resp:
            return resp.status, await resp.read()

    assert await fetch(None) == (200, audio)
    assert await fetch("bytes=0-9") == (206, audio[:10])
    assert await fetch("bytes=10-19") == (206, audio[10:20])  # the same playback going on
    assert (await fetch("bytes=abc"))[0] == 416
    assert (await fetch(f"bytes={len(audio) + 100}-"))[0] == 416

    async with supervisor.get("/api/audit", headers=ADMIN) as resp:
        assert resp.status == 200
        playbacks = [r for r in (await resp.json())["items"] if r["action"] == "playback"]
    assert len(playbacks) == 3  # whole, bytes=0-9 and the malformed one
