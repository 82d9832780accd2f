"""The agent console in a real browser, with a real call through Asterisk: the agent sets
ready on the page, a resident keys 2 then 1 (报修 → 急修), and the pop shows the caller's
resident and choice while the phone rings; the other agent's page never gets it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import Browser, Page, WebSocket

from crm.staff import Role
from telephony.config import Config
from telephony.simulator import AgentBehaviour, AgentSimulator, Dtmf, ResidentSimulator, Wait
from tests.browser import OFFICE_SCREEN, browser, page_shows, screenshot
from tests.conftest import Hotline, with_queues
from tests.polling import eventually
from tests.test_access import PASSWORD
from tests.test_acd_calls import add_agent
from web.appkeys import STAFF

__all__ = ["browser"]  # fixtures

pytestmark = pytest.mark.asterisk


async def console_of(
    hotline: Hotline, browser: Browser, name: str, agent_id: int
) -> tuple[Page, list[str]]:
    """A browser signed in as a new agent user of ``agent_id`` at the console, and every
    message its feed receives."""
    await hotline.app[STAFF].add_user(
        name, Role.AGENT, PASSWORD, agent_id=agent_id, at=datetime.now(UTC)
    )
    base = str(hotline.client.make_url("/")).rstrip("/")
    page = await (await browser.new_context(viewport=OFFICE_SCREEN, locale="zh-CN")).new_page()
    frames: list[str] = []

    def feed(ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: frames.append(str(payload)))

    page.on("websocket", feed)
    await page.goto(f"{base}/console")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    assert page.url == f"{base}/console"
    await page_shows(page, "document.getElementById('since').textContent !== ''")
    return page, frames


async def test_the_ringing_agent_alone_sees_the_caller_and_their_choice(
    make_hotline: Callable[..., Any],
    config: Config,
    residents: ResidentSimulator,
    agents: AgentSimulator,
    browser: Browser,
) -> None:
    hotline: Hotline = await make_hotline(with_queues(config, announce_every_s=0, wrap_up_s=20))
    li = await add_agent(hotline, "1401", {"repair": 5}, ready=False)
    zhao = await add_agent(hotline, "1402", {"inquiry": 5}, ready=False)
    async with hotline.client.post("/api/rooms", json={"building": "3", "room": "201"}) as resp:
        assert resp.status in (200, 201), await resp.text()
    resident = {"name": "张伟", "building": "3", "room": "201", "phones": ["13800001401"]}
    async with hotline.client.post("/api/residents", json=resident) as resp:
        assert resp.status == 201, await resp.text()
    mine, my_frames = await console_of(hotline, browser, "li", li["id"])
    theirs, their_frames = await console_of(hotline, browser, "zhao", zhao["id"])
    assert await mine.locator("#state").inner_text() == "暂停"

    await mine.click("button[data-action=ready]")
    await page_shows(mine, "document.getElementById('state').dataset.state === 'ready'")
    assert await mine.locator("#state").inner_text() == "就绪"

    agents.behaviour["1401"] = AgentBehaviour(answer_after_s=4.0, talk_s=2.0)
    call = await residents.dial("13800001401")
    await residents.run(call, [Dtmf("2"), Dtmf("1"), Wait(1.0)])
    await page_shows(mine, "!document.getElementById('pop').hidden", timeout_s=20)
    assert await mine.locator("#state").inner_text() == "振铃中"
    assert await mine.locator("#pop-number").inner_text() == "13800001401"  # their own call
    assert await mine.locator("#pop-choice").inner_text() == "报修 → 急修"
    assert "张伟 3栋 201" in await mine.locator("#pop-residents").inner_text()
    await screenshot(mine, "console-pop")

    await page_shows(mine, "document.getElementById('state').dataset.state === 'on-call'")
    await page_shows(
        mine, "document.getElementById('state').dataset.state === 'wrap-up'", timeout_s=20
    )
    await page_shows(mine, "!document.getElementById('wrap').hidden")
    await screenshot(mine, "console-wrap-up")
    await mine.click("button[data-action=ready]")  # 结束整理: end wrap-up early
    await page_shows(mine, "document.getElementById('state').dataset.state === 'ready'")

    # The call opened an urgent repair the agent owns: on their list, counting down.
    async def case_opened() -> bool:
        status, body = await hotline.get("/api/cases", owner=str(li["id"]))
        return status == 200 and body["total"] == 1

    await eventually(case_opened, timeout_s=20, what="the call's case")
    await mine.reload()
    row = mine.locator(".mine tbody tr")
    assert await row.count() == 1
    assert "报修" in await row.inner_text()
    assert "急修到场" in await row.inner_text()
    await page_shows(mine, "document.querySelector('.countdown').textContent.includes(':')")
    await screenshot(mine, "console-my-cases")

    assert any('"pop"' in frame for frame in my_frames)
    assert not any('"pop"' in frame or "13800001401" in frame for frame in their_frames)
    assert await theirs.locator("#pop").is_hidden()
    seen = [json.loads(frame) for frame in their_frames]
    assert seen  # their own state came
    assert {(m["type"], m["agent"]["id"]) for m in seen} == {("me", zhao["id"])}
