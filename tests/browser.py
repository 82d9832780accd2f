"""A real browser for page tests: Debian's chromium, headless, driven by Playwright.

Playwright's own browser download fails on these machines (and would be the wrong
browser for a private network anyway); the system chromium is started with the flags
that work here. Screenshots land in ``var/screenshots/`` so a person can look at them:
a page is done when it looks right, not when a selector matches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.polling import eventually

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
# The office screen the pages are made for (issue 14: usable at 1366×768).
OFFICE_SCREEN = {"width": 1366, "height": 768}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():  # noqa: ASYNC240 (once, before any page)
        pytest.fail("chromium is missing: run scripts/install-system-packages (make setup)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        yield launched
        await launched.close()


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def page_shows(page: Page, expression: str, *, timeout_s: float = 15) -> None:
    """Wait until ``expression`` is true in the page, polling from here.

    Playwright's own ``wait_for_function`` evaluates its predicate with ``eval`` inside the
    page, which our Content-Security-Policy refuses (as it should): so poll ``evaluate``.
    """

    async def probe() -> bool:
        return bool(await page.evaluate(expression))

    await eventually(probe, timeout_s=timeout_s, what=expression)
