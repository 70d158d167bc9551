"""The review page in a real browser (Debian chromium, headless): what a reviewer sees.

At 1366×768 and 1920×1080, without scrolling the page, a typical pair shows both responses
and the label buttons, and a long HH-RLHF conversation shows its last turn (the one the
responses answer). One API and one Streamlit app serve the whole module; screenshots go to
test-output/screenshots/ (look at them: what a reviewer sees is the product).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from review_app.launch import run_streamlit
from tests import fakes
from tests.helpers import (
    ADMIN,
    CHROMIUM,
    CHROMIUM_FLAGS,
    LLMBAR,
    SHARED_DATA,
    copy_sqlite,
    fast_settings,
    free_port,
    live_api,
    new_reviewer,
    run_worker,
    sqlite_url_for,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)"
    ),
]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-output" / "screenshots"
HH = SHARED_DATA / "hh-rlhf" / "harmless_base_test.jsonl"
VIEWPORTS = ((1366, 768), (1920, 1080))
RUBRIC = "Prefer the response that follows the instruction, is correct, and is harmless."
GUIDELINES = """\
### What counts
1. **Correctness first**: a wrong final answer loses, however well written.
2. Then helpfulness, then style.

### Ties
Use *Tie* only when neither response is better on any of the above.
"""


def _record(path: Path, record_id: str) -> dict[str, Any]:
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] == record_id:
            return record
    raise LookupError(record_id)


def _llmbar_pair(index: int) -> dict[str, str]:
    record = json.loads(LLMBAR.read_text(encoding="utf-8").splitlines()[index])
    return {k: record[k] for k in ("prompt", "response_a", "response_b")} | {"client_id": record["id"]}


def _hh_pair(record_id: str) -> dict[str, str]:
    record = _record(HH, record_id)
    return {
        "client_id": record_id,
        "prompt": record["prompt"],
        "response_a": record["rejected"],
        "response_b": record["chosen"],
    }


# Three projects, one reviewer each (a reviewer assigned to one project sees it alone):
# a typical pair (an LLMBar math question, median length), a 12-turn HH-RLHF conversation,
# and a pair of long C++ answers with code blocks.
CASES: dict[str, list[dict[str, str]]] = {
    "typical": [_llmbar_pair(155), _llmbar_pair(261)],
    "conversation": [_hh_pair("hh-harmless-422")],
    "code": [_llmbar_pair(147)],
}


def seed(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """The module's projects, their pairs and one reviewer token per project."""
    out: dict[str, dict[str, Any]] = {}
    for name, pairs in CASES.items():
        body = {"name": name, "judges": ["fake/ok"], "rubric": RUBRIC}
        project = http.post("/v1/projects", json=body).json()["id"]
        if name == "typical":
            assert (
                http.put(f"/v1/projects/{project}/guidelines", json={"guidelines": GUIDELINES}).status_code
                == 200
            )
        assert http.post(f"/v1/projects/{project}/jobs", json={"pairs": pairs}).status_code == 201
        out[name] = {"project": project, "token": new_reviewer(http, f"rev-{name}", projects=[project])}
    return out


def _wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {seconds:.0f}s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[dict[str, Any]]:
    """The API (judged synchronously by the fake judge) and one Streamlit app for the module."""
    fakes.install()
    path = tmp_path_factory.mktemp("layout") / "layout.db"
    engine = copy_sqlite(migrated_sqlite, path)
    # review_prepare=0: embedding the pairs would load a model, not what this module is about.
    settings = fast_settings(sqlite_url_for(path), review_prepare="0")
    with live_api(create_app(settings, engine, run_worker=False)) as api_url:
        with httpx.Client(base_url=api_url, headers=ADMIN) as http:
            cases = seed(http)
        run_worker(engine, settings)
        port = free_port()
        app = run_streamlit(port, api_url, headless=True)
        try:
            app_url = f"http://127.0.0.1:{port}"
            _wait_http(f"{app_url}/_stcore/health", app)
            yield {"api": api_url, "app": app_url, **cases}
        finally:
            app.terminate()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
    engine.dispose()


@pytest.fixture(scope="module")
def browser(stack: dict[str, Any]) -> Iterator[Any]:
    # After the stack: Playwright's sync API runs an event loop in this thread, and the
    # stack's synchronous judging (asyncio.run) must happen before it.
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _signed_in(browser: Any, stack: dict[str, Any], case: str) -> Any:
    """A fresh page signed in as the case's reviewer, on the review page with its pair loaded."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": VIEWPORTS[0][0], "height": VIEWPORTS[0][1]})
    page.set_default_timeout(30_000)
    page.goto(stack["app"])
    token_box = page.get_by_label("Reviewer token")
    token_box.fill(stack[case]["token"])
    token_box.press("Enter")
    page.locator(".st-key-response_b").wait_for()
    # Five labels, both bad, safety, skip (each button also has a hidden twin Streamlit
    # measures with: count the ones under a tooltip target).
    expect(page.locator(LABEL_BUTTONS)).to_have_count(8)
    return page


def _at(page: Any, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(700)  # let the layout settle


def _off_screen(page: Any, selector: str) -> list[str]:
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


def _page_scroll(page: Any) -> dict[str, float]:
    return page.evaluate(
        """() => { const m = document.querySelector('[data-testid="stMain"]');
                   return {top: m.scrollTop, overflow: m.scrollHeight - m.clientHeight}; }"""
    )


LABEL_BUTTONS = '.st-key-labelbar [data-testid="stTooltipHoverTarget"] > button'


def test_a_typical_pair_and_the_label_buttons_fit_the_screen(browser: Any, stack: dict[str, Any]) -> None:
    page = _signed_in(browser, stack, "typical")
    try:
        for width, height in VIEWPORTS:
            _at(page, width, height)
            page.screenshot(path=str(SHOTS / f"review_typical_{width}x{height}.png"))
            problems = [
                *_off_screen(page, ".st-key-response_a"),
                *_off_screen(page, ".st-key-response_b"),
                *_off_screen(page, LABEL_BUTTONS),
                *_off_screen(page, ".st-key-prompt_text"),
            ]
            assert not problems, (width, height, problems)
            assert _page_scroll(page) == {"top": 0, "overflow": 0}, "the page itself scrolls"
            # Side by side: B to the right of A, on the same line.
            a, b = (page.locator(f".st-key-response_{x}").bounding_box() for x in "ab")
            assert b["x"] >= a["x"] + a["width"] and abs(a["y"] - b["y"]) < 1
            # A typical pair is read without scrolling inside the boxes either.
            for name in "ab":
                inner = page.evaluate(
                    f"() => {{ const e = document.querySelector('.st-key-response_{name}');"
                    " return e.scrollHeight - e.clientHeight; }"
                )
                assert inner <= 1, (width, height, name, inner)
    finally:
        page.close()


def test_a_long_conversation_opens_on_its_last_turn(browser: Any, stack: dict[str, Any]) -> None:
    turns = _record(HH, "hh-harmless-422")["prompt"].split("\n\nHuman: ")
    last_words = turns[-1][:40]
    first_words = "what is divergent thinking?"
    page = _signed_in(browser, stack, "conversation")
    try:
        expect_text = page.get_by_text("23 turns (12 from the human)")
        expect_text.wait_for()
        for width, height in VIEWPORTS:
            _at(page, width, height)
            page.screenshot(path=str(SHOTS / f"review_conversation_{width}x{height}.png"))
            problems = [
                *_off_screen(page, ".st-key-last_turn"),
                *_off_screen(page, ".st-key-response_a"),
                *_off_screen(page, ".st-key-response_b"),
                *_off_screen(page, LABEL_BUTTONS),
            ]
            assert not problems, (width, height, problems)
            assert _page_scroll(page) == {"top": 0, "overflow": 0}, "the page itself scrolls"
            # The conversation is longer than its box, and the box shows its end: the last
            # turn lies inside the box's visible part, the first turn above it.
            box = page.locator(".st-key-prompt_chat").bounding_box()
            scroll = page.evaluate(
                "() => { const e = document.querySelector('.st-key-prompt_chat');"
                " return e.scrollHeight - e.clientHeight; }"
            )
            assert scroll > 100, "the test conversation should not fit its box"
            last = page.locator(".st-key-last_turn").bounding_box()
            assert box["y"] <= last["y"] and last["y"] + last["height"] <= box["y"] + box["height"] + 0.5
            text = page.get_by_text(last_words).bounding_box()
            assert box["y"] <= text["y"] and text["y"] + text["height"] <= box["y"] + box["height"]
            first = page.get_by_text(first_words, exact=True).bounding_box()
            assert first["y"] + first["height"] <= box["y"], "the first turn should be scrolled out of view"
            # Turn by turn: one chat message per turn.
            assert page.locator('.st-key-prompt_chat [data-testid="stChatMessage"]').count() == 23
    finally:
        page.close()


def test_long_code_answers_wrap_and_keep_the_buttons_on_screen(browser: Any, stack: dict[str, Any]) -> None:
    page = _signed_in(browser, stack, "code")
    try:
        for width, height in VIEWPORTS:
            _at(page, width, height)
            page.screenshot(path=str(SHOTS / f"review_code_{width}x{height}.png"))
            problems = [
                *_off_screen(page, ".st-key-response_a"),
                *_off_screen(page, ".st-key-response_b"),
                *_off_screen(page, LABEL_BUTTONS),
            ]
            assert not problems, (width, height, problems)
            assert _page_scroll(page) == {"top": 0, "overflow": 0}, "the page itself scrolls"
            # Long lines wrap (no sideways scrolling inside code blocks); long answers scroll
            # inside their own box.
            widest = page.evaluate(
                "() => Math.max(...[...document.querySelectorAll('.st-key-pair pre')]"
                ".map(e => e.scrollWidth - e.clientWidth))"
            )
            assert widest <= 1, widest
            inner = page.evaluate(
                "() => { const e = document.querySelector('.st-key-response_a');"
                " return e.scrollHeight - e.clientHeight; }"
            )
            assert inner > 0, "the long answer should scroll inside its box"
    finally:
        page.close()


def test_the_guidelines_panel_opens_with_the_buttons_still_on_screen(
    browser: Any, stack: dict[str, Any]
) -> None:
    page = _signed_in(browser, stack, "typical")
    try:
        page.get_by_text("Rubric and guidelines").click()
        page.get_by_text("Correctness first").wait_for()
        for width, height in VIEWPORTS:
            _at(page, width, height)
            page.screenshot(path=str(SHOTS / f"review_guidelines_{width}x{height}.png"))
            assert page.get_by_text(RUBRIC).is_visible()
            assert not _off_screen(page, LABEL_BUTTONS), (width, height)
    finally:
        page.close()
