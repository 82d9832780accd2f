"""The supervisor's review pages in a real browser: the call log, one call's audio beside
its transcript, and who may open what.

The calls here are written through the service's own repositories (a call, its queue
stay, a stored recording of real audio, a finished transcript), so each page is checked
against facts the test knows; tests/test_review_calls.py does the same with a call
placed through Asterisk and transcribed by Vosk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from crm.staff import Role
from crm.transcripts import Segment
from tests.browser import OFFICE_SCREEN, browser, page_shows, screenshot
from tests.clocks import ManualClock
from tests.staff import cheap_hasher, issue_test_tokens
from tests.test_access import PASSWORD, Service
from tests.test_service_http import unreachable_config
from web.app import build_app
from web.appkeys import MESSAGES, QUEUE_FACTS, RECORDING_STORE, RECORDINGS, TRANSCRIPTS
from web.calls import CALL_LOG

__all__ = ["browser"]  # fixtures

TURNS = (
    ("agent", 500, 3_500, "您好，物业客服中心，请问有什么可以帮您？"),
    ("resident", 4_000, 9_000, "我家楼上漏水了，3栋201。"),
    ("agent", 9_500, 14_000, "好的，马上安排维修师傅<script>alert(1)</script>上门。"),
    ("resident", 14_500, 18_000, "谢谢，越快越好。"),
)


@pytest.fixture
async def service(
    aiohttp_client: Callable[..., Any], aiohttp_server: Callable[..., Any], tmp_path: Path
) -> Service:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    config = unreachable_config(tmp_path)
    config = dataclasses.replace(
        config, transcription=dataclasses.replace(config.transcription, enabled=False)
    )
    app = build_app(config, clock, passwords=cheap_hasher())
    server = await aiohttp_server(app)
    made = Service(app, clock, server, aiohttp_client)
    await issue_test_tokens(app)
    return made


def tone_wav(seconds: float) -> bytes:
    """Real audio a browser can play: 8 kHz 16-bit mono, a quiet tone."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    out = BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


async def a_reviewed_call(service: Service, *, agent_id: int, caller: str, at: datetime) -> int:
    """A repair call answered by ``agent_id``, recorded and transcribed: as the service
    would have written it."""
    app = service.app
    call_id = await app[CALL_LOG].open_call(
        channel_id=f"page-{caller}", caller_number=caller, caller_name="张伟",
        dialled_number="4008001234", started_at=at,
    )  # fmt: skip
    await app[CALL_LOG].mark_answered(call_id, answered_at=at + timedelta(seconds=1), ring_ms=1000)
    await app[CALL_LOG].set_queue(call_id, queue="repair", at=at + timedelta(seconds=5))
    entry = await app[QUEUE_FACTS].enter(
        call_id=call_id, queue="repair", tag="urgent", priority=0, at=at + timedelta(seconds=5)
    )
    await app[QUEUE_FACTS].answered(entry, agent_id=agent_id, at=at + timedelta(seconds=9))
    await app[QUEUE_FACTS].left(entry, outcome="answered", at=at + timedelta(seconds=9))
    data = tone_wav(20)
    for role in ("mixed", "resident", "agent"):
        rec = await app[RECORDINGS].started(
            call_id=call_id, role=role, asterisk_name=f"page-{caller}-{role}", fmt="wav",
            at=at + timedelta(seconds=9),
        )  # fmt: skip
        stored = await app[RECORDING_STORE].put(f"page-{caller}-{role}.wav", data, day=at)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        await app[RECORDINGS].stored(rec, stored, at=at + timedelta(seconds=40))
    job = await app[TRANSCRIPTS].enqueue(call_id, at=at + timedelta(seconds=40))
    segments = [Segment(speaker, a, b, text, ()) for speaker, a, b, text in TURNS]
    await app[TRANSCRIPTS].done(
        job.id, segments, model="test", audio_s=20, decode_s=1, at=at + timedelta(seconds=60)
    )
    await app[CALL_LOG].close_call(
        call_id, ended_at=at + timedelta(seconds=30), reason="caller-hangup"
    )
    return call_id


async def signed_in_page(service: Service, browser: Browser, name: str) -> tuple[Page, str]:
    client = await service.client()
    base = service.origin(client)
    context = await browser.new_context(viewport=OFFICE_SCREEN, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    assert await page.locator(".who").count() == 1
    return page, base


async def test_a_supervisor_reviews_a_call_from_the_log_to_the_moment_it_was_said(
    service: Service, browser: Browser
) -> None:
    li = await service.add_agent("1001")
    await service.add_user("王班长", Role.SUPERVISOR)
    now = service.clock.now().replace(hour=2)  # 10:00 in Shanghai
    mine = await a_reviewed_call(service, agent_id=li, caller="13800138000", at=now)
    other = await service.app[CALL_LOG].open_call(
        channel_id="page-other", caller_number="13900139000", caller_name=None,
        dialled_number="4008001234", started_at=now - timedelta(days=3),
    )  # fmt: skip
    await service.app[CALL_LOG].close_call(
        other, ended_at=now - timedelta(days=3) + timedelta(seconds=20), reason="caller-hangup"
    )
    page, base = await signed_in_page(service, browser, "王班长")

    await page.goto(f"{base}/calls")
    rows = page.locator("table.log tbody tr")
    assert await rows.count() == 2
    first = rows.nth(0)
    assert "13800138000" in await first.inner_text()  # a supervisor sees the full number
    assert "坐席1001" in await first.inner_text()
    assert "报修" in await first.inner_text()
    await screenshot(page, "call-log")

    # Filters: has a transcript; a date window; the one without a recording.
    await page.select_option("select[name=transcript]", "true")
    await page.click("form.filters button[type=submit]")
    assert await rows.count() == 1
    assert "transcript=true" in page.url
    await page.goto(f"{base}/calls?recording=false")
    assert await rows.count() == 1
    assert "13900139000" in await rows.nth(0).inner_text()
    await page.goto(f"{base}/calls?since=2001-13-45")
    assert "since" in await page.locator(".problem").inner_text()
    await screenshot(page, "call-log-bad-filter")

    await page.goto(f"{base}/calls")
    await rows.nth(0).locator("a").first.click()
    assert page.url == f"{base}/calls/{mine}"
    lines = page.locator("#turns .turn")
    assert await lines.count() == len(TURNS)
    said = [await lines.nth(i).locator(".said").inner_text() for i in range(len(TURNS))]
    assert said == [text for *_, text in TURNS]  # <script> shown as text, not run
    assert await page.locator("#turns script").count() == 0
    assert [await lines.nth(i).locator(".speaker").inner_text() for i in range(2)] == [
        "坐席",
        "居民",
    ]
    await page_shows(page, "document.getElementById('player').readyState >= 1")
    await lines.nth(2).click()
    at = await page.evaluate("document.getElementById('player').currentTime")
    assert at == pytest.approx(9.5, abs=0.3)
    await page.evaluate("document.getElementById('player').pause()")
    await page_shows(page, "document.querySelector('#turns .turn.hearing') !== null")
    assert "hearing" in (await lines.nth(2).get_attribute("class") or "")
    timeline = await page.locator(".timeline").inner_text()
    assert "进入队列" in timeline
    assert "坐席接听" in timeline
    await screenshot(page, "call-detail")

    await page.goto(f"{base}/calls/{mine}?lang=en")
    assert await page.locator("h2").first.inner_text() == "Recording"
    assert "Resident" in await lines.nth(1).inner_text()
    await screenshot(page, "call-detail-en")
    await page.goto(f"{base}/calls?lang=zh-CN")

    # Opened at a moment (a search hit's link).
    await page.goto(f"{base}/calls/{mine}?t=14.6")
    await page_shows(page, "document.querySelector('#turns .turn.hearing') !== null")
    assert "hearing" in (await lines.nth(3).get_attribute("class") or "")

    # Search: a two-character word inside a line finds this call, not the other; the
    # word is marked on the line, and its time opens the call there.
    await page.goto(f"{base}/search")
    await page.fill("input[name=q]", "漏水")
    await page.click("form.filters button[type=submit]")
    hits = page.locator("article.hit")
    assert await hits.count() == 1
    assert await hits.locator("mark").all_inner_texts() == ["漏水"]
    assert "居民" in await hits.locator(".turn").inner_text()
    await screenshot(page, "search")
    await hits.locator(".turn a.when").click()
    assert page.url == f"{base}/calls/{mine}?t=4.0"
    await page_shows(page, "document.querySelector('#turns .turn.hearing') !== null")
    assert "hearing" in (await lines.nth(1).get_attribute("class") or "")
    await page.goto(f"{base}/search?q=%3Cscript%3E")  # the words of it: punctuation is no word
    assert await page.locator("article.hit mark").all_inner_texts() == ["script", "script"]
    assert "<script>alert(1)</script>" in await page.locator("article.hit .said").inner_text()
    assert await page.locator("article.hit script").count() == 0
    await page.goto(f"{base}/search?q=停电")
    assert await page.locator("article.hit").count() == 0

    # Every opening, playback and search is audited.
    audit = await service.audit()
    actions = {(row["action"], row["granted"]) for row in audit}
    assert ("call-review", True) in actions
    assert ("playback", True) in actions
    assert ("search", True) in actions


async def test_an_agent_cannot_open_a_call_another_agent_took(
    service: Service, browser: Browser
) -> None:
    li, wang = await service.add_agent("1001"), await service.add_agent("1002")
    await service.add_user("li", Role.AGENT, li)
    now = service.clock.now()
    theirs = await a_reviewed_call(service, agent_id=wang, caller="13700137000", at=now)
    own = await a_reviewed_call(
        service, agent_id=li, caller="13600136000", at=now - timedelta(hours=1)
    )
    page, base = await signed_in_page(service, browser, "li")
    response = await page.goto(f"{base}/calls/{theirs}")
    assert response is not None
    assert response.status == 403
    assert "坐席只能查看自己接听的通话" in await page.locator(".problem").inner_text()
    await screenshot(page, "call-detail-forbidden")
    response = await page.goto(f"{base}/calls/{own}")
    assert response is not None
    assert response.status == 200

    await page.goto(f"{base}/calls")
    text = await page.locator("table.log").inner_text()
    assert "13600136000" in text  # their own call in full
    assert "137****7000" in text  # the other's masked
    assert "13700137000" not in text
    denied = [r for r in await service.audit() if r["action"] == "call-review" and not r["granted"]]
    assert len(denied) == 1


async def test_an_agent_hears_a_message_and_passes_it_on_once(
    service: Service, browser: Browser
) -> None:
    li = await service.add_agent("1001")
    await service.add_user("li", Role.AGENT, li)
    await service.add_user("zhao", Role.AGENT, await service.add_agent("1002"))
    app, at = service.app, service.clock.now()
    call_id = await app[CALL_LOG].open_call(
        channel_id="page-message", caller_number="13500135000", caller_name=None,
        dialled_number="4008001234", started_at=at,
    )  # fmt: skip
    await app[MESSAGES].leave(
        call_id=call_id, queue="repair", reason="out-of-hours", recording="m-1",
        duration_s=12.0, at=at + timedelta(seconds=20),
    )  # fmt: skip
    rec = await app[RECORDINGS].started(
        call_id=call_id, role="message", asterisk_name="m-1", fmt="wav", at=at
    )
    await app[RECORDINGS].stored(
        rec, await app[RECORDING_STORE].put("m-1.wav", tone_wav(12), day=at), at=at
    )
    job = await app[TRANSCRIPTS].enqueue(call_id, at=at)
    await app[TRANSCRIPTS].done(
        job.id, [Segment("message", 0, 9000, "电梯停了，请明早派人来看。", ())],
        model="test", audio_s=12, decode_s=1, at=at,
    )  # fmt: skip

    page, base = await signed_in_page(service, browser, "li")
    other, _ = await signed_in_page(service, browser, "zhao")
    await page.goto(f"{base}/messages")
    await other.goto(f"{base}/messages")
    card = page.locator(f"#message-{1}")
    assert "电梯停了" in await card.inner_text()
    assert "135****5000" in await card.inner_text()  # nobody's call: masked for an agent
    assert await card.locator("audio").get_attribute("src") is not None  # the desk's to hear
    await screenshot(page, "messages")
    await page.fill(f"#message-{1} input[name=note]", "已通知维修班")
    await page.click(f"#message-{1} button[type=submit]")
    assert "已转告：li 于" in await card.locator(".handled").inner_text()
    assert "已通知维修班" in await card.inner_text()

    await other.click(f"#message-{1} button[type=submit]")  # a stale page: someone was first
    assert "已由他人转告" in await other.locator(".problem").inner_text()
    (stored, _) = await app[MESSAGES].list(call_id=call_id)
    assert (stored[0].handled_by, stored[0].note) == ("li", "已通知维修班")
