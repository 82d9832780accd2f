"""The HTTP side of the service, with Asterisk out of reach (nothing listens on its port)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from crm.staff import Role
from telephony.config import AriConfig, Config, DatabaseConfig, load_config
from tests.conftest import with_test_model
from tests.polling import eventually
from tests.staff import SUPERVISOR, SUPERVISOR_TOKEN, cheap_hasher, issue_token
from web.app import build_app, prompt_library

ROOT = Path(__file__).resolve().parents[1]
SECRET = "pw-Do-Not-Log-7781"


def unreachable_config(tmp_path: Path) -> Config:
    base = with_test_model(load_config(ROOT / "config" / "hotline.toml", env={}))
    return dataclasses.replace(
        base,
        ari=AriConfig(
            url="http://127.0.0.1:9/ari",
            user="ops",
            password=SECRET,
            reconnect_initial_s=0.05,
            reconnect_max_s=0.2,
        ),
        database=DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"),
    )


async def supervisor_client(
    aiohttp_client: Callable[..., Any], config: Config
) -> TestClient[Any, Any]:
    """The service on ``config``, and a client acting as a supervisor."""
    app = build_app(config, passwords=cheap_hasher())
    client: TestClient[Any, Any] = await aiohttp_client(app, headers=SUPERVISOR)
    await issue_token(app, Role.SUPERVISOR, secret=SUPERVISOR_TOKEN)
    return client


@pytest.fixture
async def unreachable(aiohttp_client: Callable[..., Any], tmp_path: Path) -> TestClient[Any, Any]:
    return await supervisor_client(aiohttp_client, unreachable_config(tmp_path))


async def test_healthz_reports_not_ready_and_keeps_retrying(
    unreachable: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Without Asterisk the API serves; /healthz is 503 with the last error while it retries."""
    caplog.set_level(logging.DEBUG)

    async def failed_twice() -> dict[str, Any] | None:
        async with unreachable.get("/healthz") as resp:
            body = await resp.json()
            assert resp.status == 503
        return body if body["ari"]["last_error"] and body["ari"]["retry_in_s"] else None

    body = await eventually(failed_twice, timeout_s=10, what="a failed connection attempt")
    assert body["status"] == "not-ready"
    assert body["ari"]["connected"] is False
    assert "Cannot connect" in body["ari"]["last_error"] or "refused" in body["ari"]["last_error"]
    async with unreachable.get("/api/calls") as resp:
        assert resp.status == 200
        assert (await resp.json())["total"] == 0
    assert SECRET not in caplog.text  # ARI credentials never reach the log


async def test_openapi_document_describes_the_api(unreachable: TestClient[Any, Any]) -> None:
    """/api/openapi.json is OpenAPI 3.1 and covers every endpoint the service serves."""
    async with unreachable.get("/api/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/healthz", "/api/calls", "/api/calls/{id}", "/prompts/{name}.wav"} <= set(doc["paths"])
    for path in doc["paths"].values():
        for operation in path.values():
            assert operation["responses"]
    listed = doc["paths"]["/api/calls"]["get"]["parameters"]
    assert {p["name"] for p in listed} >= {"caller", "queue", "since", "until", "limit", "offset"}


async def test_prompt_audio_is_served_for_a_remote_asterisk(
    unreachable: TestClient[Any, Any],
) -> None:
    """Asterisk on another host can fetch prompts as 8 kHz WAV; unknown names are 404."""
    config: Config = load_config(ROOT / "config" / "hotline.toml", env={})
    await prompt_library(config).build()
    async with unreachable.get("/prompts/greeting.wav") as resp:
        assert resp.status == 200
        data = await resp.read()
    assert data[:4] == b"RIFF"
    assert data == (config.prompts.dir / "greeting.wav").read_bytes()
    async with unreachable.get("/prompts/..%2Fhotline.wav") as resp:
        assert resp.status == 404
    async with unreachable.get("/prompts/nope.wav") as resp:
        assert resp.status == 404
        assert (await resp.json())["error_id"] == "prompt-not-found"


async def test_retrying_an_unknown_calls_transcript_is_404_beside_the_call_log(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    """The API fuzzer's finding: this retry answered 503 after 60 s. It asked for the job in
    a second unit of work while its own held SQLite's one connection, so it waited for
    itself, and the call log, the recording fetcher and the deadline watcher waited behind
    it. Now it is a 404, and the call log asked at the same moment answers."""
    config = unreachable_config(tmp_path)
    assert config.transcription.enabled  # as shipped: the retry reaches the transcripts
    client = await supervisor_client(aiohttp_client, config)

    async def answer(method: str, path: str) -> tuple[int, Any]:
        async with client.request(method, path) as resp:
            return resp.status, await resp.json()

    (retry, retried), (listing, listed) = await asyncio.gather(
        answer("POST", "/api/calls/999999/transcript/retry"), answer("GET", "/api/calls")
    )
    assert (retry, retried["error_id"]) == (404, "not-found"), retried
    assert retried["details"]["id"] == 999999
    assert (listing, listed["total"]) == (200, 0)
