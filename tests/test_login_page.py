"""The login page in a real browser: sign in, land on the home page, switch language, sign out."""

from __future__ import annotations

from playwright.async_api import Browser, Request

from crm.staff import Role
from tests.browser import OFFICE_SCREEN, browser, screenshot
from tests.test_access import PASSWORD, Service, service

__all__ = ["browser", "service"]  # fixtures


async def test_a_supervisor_signs_in_and_out_in_chinese_or_english(
    service: Service, browser: Browser
) -> None:
    await service.add_user("王班长", Role.SUPERVISOR)
    client = await service.client()
    base = service.origin(client)
    context = await browser.new_context(viewport=OFFICE_SCREEN, locale="zh-CN")
    page = await context.new_page()
    requested: list[str] = []

    def seen(request: Request) -> None:
        requested.append(request.url)

    page.on("request", seen)
    await page.goto(f"{base}/?from=bookmark")  # a page behind the login
    assert page.url.startswith(f"{base}/login?next=")
    assert await page.locator("h1").inner_text() == "登录"
    await screenshot(page, "login-zh")

    await page.fill("input[name=name]", "王班长")
    await page.fill("input[name=password]", "not-the-password")
    await page.click("button[type=submit]")
    assert await page.locator(".problem").inner_text() == "用户名或密码不正确。"
    assert await page.input_value("input[name=name]") == "王班长"  # kept for the retry
    assert await page.input_value("input[name=password]") == ""
    await screenshot(page, "login-zh-wrong")

    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    assert page.url == f"{base}/?from=bookmark"  # back where they were going
    assert await page.locator("h1").inner_text() == "您好，王班长"
    assert "班长" in await page.locator(".who").inner_text()
    await screenshot(page, "home-zh")

    await page.click("a.lang")
    assert await page.locator("h1").inner_text() == "Hello, 王班长"
    await screenshot(page, "home-en")
    await page.click("text=Sign out")
    assert page.url.startswith(f"{base}/login")
    assert await page.locator(".notice").inner_text() == "You have signed out."
    await screenshot(page, "login-en-signed-out")

    fonts = await page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "PingFang SC" in fonts
    assert "WenQuanYi Micro Hei" in fonts
    outside = [url for url in requested if not url.startswith(base)]
    assert outside == []  # a private network: nothing is fetched from anywhere else
    await context.close()
