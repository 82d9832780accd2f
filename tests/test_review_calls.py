"""A call placed through Asterisk, recorded and transcribed by Vosk, reviewed in a real
browser: the supervisor finds it in the log, opens it, and the transcript's lines move
the player over the real recording.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Browser

from crm.staff import Role
from crm.transcripts import Segment
from telephony.config import Config
from telephony.simulator import (
    AgentSimulator,
    ResidentSimulator,
)
from tests.browser import OFFICE_SCREEN, browser, page_shows, screenshot
from tests.conftest import Hotline, transcribing, with_queues
from tests.test_access import PASSWORD
from tests.test_recording import a_conversation, clips, finished_transcript
from web.appkeys import STAFF, TRANSCRIPTS
from web.calls import CALL_LOG

__all__ = ["browser", "clips"]  # fixtures

pytestmark = pytest.mark.asterisk


async def test_a_real_call_is_found_opened_and_heard_at_a_line(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
    clips: dict[str, Path],
    browser: Browser,
) -> None:
    hotline: Hotline = await make_hotline(transcribing(with_queues(config, announce_every_s=0)))
    call_id = await a_conversation(hotline, residents, agents, clips, "1301")
    transcript = await finished_transcript(hotline, call_id)
    assert transcript["job"]["status"] == "done", transcript["job"]
    turns = transcript["turns"]
    assert [t["speaker"] for t in turns] == ["agent", "resident"]

    await hotline.app[STAFF].add_user(
        "王班长", Role.SUPERVISOR, PASSWORD, agent_id=None, at=datetime.now(UTC)
    )
    base = str(hotline.client.make_url("/")).rstrip("/")
    context = await browser.new_context(viewport=OFFICE_SCREEN, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{base}/calls")
    await page.fill("input[name=name]", "王班长")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    assert page.url == f"{base}/calls"
    row = page.locator("table.log tbody tr").first
    text = await row.inner_text()
    assert "13800001301" in text
    assert "坐席1301" in text
    assert "报修" in text
    await screenshot(page, "real-call-log")

    await row.locator("a").first.click()
    assert page.url == f"{base}/calls/{call_id}"
    lines = page.locator("#turns .turn")
    assert await lines.count() == len(turns)
    said = [await lines.nth(i).locator(".said").inner_text() for i in range(len(turns))]
    assert said == [t["text"] for t in turns]  # what Vosk made, as stored
    await page_shows(page, "document.getElementById('player').readyState >= 1")
    duration = await page.evaluate("document.getElementById('player').duration")
    assert duration > turns[-1]["start_ms"] / 1000  # the real mix, long enough to seek in
    await lines.nth(1).click()
    at = await page.evaluate("document.getElementById('player').currentTime")
    assert at == pytest.approx(turns[1]["start_ms"] / 1000, abs=0.3)
    await page.evaluate("document.getElementById('player').pause()")
    await page.locator(".legs .leg").nth(1).click()  # the resident's leg, at the same moment
    await page_shows(
        page,
        "document.getElementById('player').src.endsWith('/audio') && "
        "document.getElementById('player').readyState >= 1",
    )
    resident_leg = await page.evaluate("document.getElementById('player').currentTime")
    assert resident_leg == pytest.approx(at, abs=0.5)
    await screenshot(page, "real-call-detail")

    await page.locator(".side a[href^='/cases/']").click()
    assert "/cases/" in page.url
    assert "报修" in await page.locator("h1").inner_text()
    deadlines = await page.locator("table.log").inner_text()
    assert "维修完成" in deadlines  # the repair's fixed-by deadline, from the standards
    await screenshot(page, "real-call-case")
    await page.locator(f".side a[href='/calls/{call_id}']").click()
    assert page.url == f"{base}/calls/{call_id}"

    # Search: a word of the stored transcript finds this call and not another call whose
    # transcript says something else.
    other = await hotline.app[CALL_LOG].open_call(
        channel_id="review-other", caller_number="13900001302", caller_name=None,
        dialled_number="400", started_at=datetime.now(UTC),
    )  # fmt: skip
    job = await hotline.app[TRANSCRIPTS].enqueue(other, at=datetime.now(UTC))
    await hotline.app[TRANSCRIPTS].done(
        job.id, [Segment("resident", 0, 2000, "电梯坏了", ())],
        model="test", audio_s=2, decode_s=1, at=datetime.now(UTC),
    )  # fmt: skip
    word = max(turns[1]["text"].split(), key=len)
    await page.goto(f"{base}/search?q={quote(word)}")
    found = page.locator("article.hit .head a")
    assert [await a.get_attribute("href") for a in await found.all()] == [f"/calls/{call_id}"]
    assert word in await page.locator("article.hit mark").all_inner_texts()
    await screenshot(page, "real-call-search")
    await page.goto(f"{base}/search?q={quote('电梯')}")
    assert [await a.get_attribute("href") for a in await found.all()] == [f"/calls/{other}"]
