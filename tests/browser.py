"""Plumbing shared by the real-browser tests (this module holds no tests).

The API served live on a copy of the migrated database, the Streamlit review app started
against it, Debian's chromium launched headless (``CHROMIUM`` and its flags live in
tests/helpers.py, which the docs test shares), sign-in, and screenshots at the sizes a
reviewer's screen has, saved under test-output/screenshots/ (look at them).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy.engine import Engine

from api.main import create_app
from api.settings import Settings
from api.tools.demo import wait_until_up
from review_app.launch import run_streamlit
from tests.helpers import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    copy_sqlite,
    fast_settings,
    free_port,
    live_api,
    sqlite_url_for,
)
from tests.waiting import slowdown

SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
VIEWPORTS = ((1366, 768), (1920, 1080))  # a laptop and a desktop screen
# Five labels, both bad, safety, skip. Each button also has a hidden twin Streamlit measures
# with: the ones under a tooltip target are the real ones.
LABEL_BUTTONS = '.st-key-labelbar [data-testid="stTooltipHoverTarget"] > button'
EXPECT_MS = 5_000  # Playwright's own default for an expect()

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)"
    ),
]


def in_a_browser(test: Callable[..., Any]) -> Callable[..., Any]:
    """Mark one test as a browser test (for modules that also hold tests without a browser)."""
    for mark in BROWSER_MARKS:
        test = mark(test)
    return test


class Live(NamedTuple):
    url: str
    engine: Engine
    settings: Settings


@contextmanager
def live_copy(source: Path, target: Path, *, run_worker: bool, **overrides: object) -> Iterator[Live]:
    """The API served on loopback (uvicorn) on a copy of the database ``source`` at ``target``."""
    engine = copy_sqlite(source, target)
    settings = fast_settings(sqlite_url_for(target), **overrides)
    try:
        with live_api(create_app(settings, engine, run_worker=run_worker)) as url:
            yield Live(url, engine, settings)
    finally:
        engine.dispose()


@contextmanager
def review_app(api_url: str) -> Iterator[str]:
    """The Streamlit review app against ``api_url`` on a free loopback port; yields its URL."""
    port = free_port()
    app = run_streamlit(port, api_url, headless=True)
    try:
        app_url = f"http://127.0.0.1:{port}"
        # On a busy 2-core machine Streamlit's imports alone take tens of seconds.
        wait_until_up(f"{app_url}/_stcore/health", app)
        yield app_url
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless and offline, under Playwright (which never downloads one).

    Start it after any ``asyncio.run`` the test needs: Playwright's sync API runs an event loop
    in this thread.
    """
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, width: int, height: int, timeout_ms: int = 30_000) -> Any:
    """A page whose every step may take ``timeout_ms`` (an action) or ``EXPECT_MS`` (an
    ``expect``), stretched by the contention measured now: a step has no progress to follow."""
    from playwright.sync_api import expect

    stretch = slowdown()
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(timeout_ms * stretch)
    expect.set_options(timeout=EXPECT_MS * stretch)
    return page


def wait_until_idle(page: Any) -> None:
    """Until the Streamlit script has finished its run: a key pressed during a rerun reaches a
    page that is being replaced, and its shortcut is lost (the label is never sent)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def sign_in(page: Any, token: str) -> None:
    """Sign in on the app's sign-in form (the page is already on it)."""
    token_box = page.get_by_label("Reviewer token")
    token_box.fill(token)
    token_box.press("Enter")  # submits the sign-in form


def each_screen(page: Any, name: str, settle_ms: int = 700) -> Iterator[tuple[int, int]]:
    """At each of VIEWPORTS: resize, let the layout settle, save ``{name}_{width}x{height}.png``,
    then yield the size (the caller checks the layout at that size before the next one)."""
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(settle_ms)
        page.screenshot(path=str(SHOTS / f"{name}_{width}x{height}.png"))
        yield width, height


def screenshots(page: Any, name: str, settle_ms: int = 700) -> None:
    """What a reviewer sees at each of VIEWPORTS (the viewport only, as they would)."""
    for _size in each_screen(page, name, settle_ms):
        pass


def off_screen(page: Any, selector: str) -> list[str]:
    """Elements matching ``selector`` whose box is not wholly inside the viewport (or that are missing)."""
    size = page.viewport_size
    found = page.locator(selector)
    if found.count() == 0:
        return [f"{selector}: not on the page"]
    problems = []
    for i in range(found.count()):
        box = found.nth(i).bounding_box()
        inside = (
            box is not None
            and box["width"] > 0
            and box["height"] > 0
            and box["x"] >= 0
            and box["y"] >= 0
            and box["x"] + box["width"] <= size["width"] + 0.5
            and box["y"] + box["height"] <= size["height"] + 0.5
        )
        if not inside:
            problems.append(f"{selector}[{i}] at {box} outside {size['width']}x{size['height']}")
    return problems


def page_scroll(page: Any) -> dict[str, float]:
    """How far the main area is scrolled, and how much more it could scroll."""
    return page.evaluate(
        """() => { const m = document.querySelector('[data-testid="stMain"]');
                   return {top: m.scrollTop, overflow: m.scrollHeight - m.clientHeight}; }"""
    )
