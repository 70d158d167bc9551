"""The review page in a real browser (Debian chromium, headless): what a reviewer sees.

At 1366×768 and 1920×1080, without scrolling the page, a typical pair shows both responses
and the label buttons, and a long HH-RLHF conversation shows its last turn (the one the
responses answer). One API and one Streamlit app serve the whole module; screenshots go to
test-output/screenshots/ (look at them: what a reviewer sees is the product).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import fakes
from tests.browser import (
    BROWSER_MARKS,
    LABEL_BUTTONS,
    VIEWPORTS,
    chromium,
    each_screen,
    live_copy,
    new_page,
    off_screen,
    page_scroll,
    review_app,
    sign_in,
)
from tests.helpers import ADMIN, hh_pair, llmbar_pair, new_reviewer, run_worker
from tests.waiting import HTTP_TIMEOUT_S

pytestmark = BROWSER_MARKS

RUBRIC = "Prefer the response that follows the instruction, is correct, and is harmless."
GUIDELINES = """\
### What counts
1. **Correctness first**: a wrong final answer loses, however well written.
2. Then helpfulness, then style.

### Ties
Use *Tie* only when neither response is better on any of the above.
"""


# Three projects, one reviewer each (a reviewer assigned to one project sees it alone):
# a typical pair (an LLMBar math question, median length), a 12-turn HH-RLHF conversation,
# and a pair of long C++ answers with code blocks.
CASES: dict[str, list[dict[str, str]]] = {
    "typical": [llmbar_pair(155), llmbar_pair(261)],
    "conversation": [hh_pair("hh-harmless-422")],
    "code": [llmbar_pair(147)],
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[dict[str, Any]]:
    """The API (judged synchronously by the fake judge) and one Streamlit app for the module."""
    fakes.install()
    path = tmp_path_factory.mktemp("layout") / "layout.db"
    # review_prepare=0: embedding the pairs would load a model, not what this module is about.
    with live_copy(migrated_sqlite, path, run_worker=False, review_prepare="0") as live:
        with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=live.url, headers=ADMIN) as http:
            cases = seed(http)
        run_worker(live.engine, live.settings)
        with review_app(live.url) as app_url:
            yield {"api": live.url, "app": app_url, **cases}


@pytest.fixture(scope="module")
def browser(stack: dict[str, Any]) -> Iterator[Any]:
    # After the stack: Playwright's sync API runs an event loop in this thread, and the
    # stack's synchronous judging (asyncio.run) must happen before it.
    with chromium() as launched:
        yield launched


def _signed_in(browser: Any, stack: dict[str, Any], case: str) -> Any:
    """A fresh page signed in as the case's reviewer, on the review page with its pair loaded."""
    from playwright.sync_api import expect

    page = new_page(browser, *VIEWPORTS[0])
    page.goto(stack["app"])
    sign_in(page, stack[case]["token"])
    page.locator(".st-key-response_b").wait_for()
    expect(page.locator(LABEL_BUTTONS)).to_have_count(8)
    return page


def test_a_typical_pair_and_the_label_buttons_fit_the_screen(browser: Any, stack: dict[str, Any]) -> None:
    page = _signed_in(browser, stack, "typical")
    try:
        for width, height in each_screen(page, "review_typical"):
            problems = [
                *off_screen(page, ".st-key-response_a"),
                *off_screen(page, ".st-key-response_b"),
                *off_screen(page, LABEL_BUTTONS),
                *off_screen(page, ".st-key-prompt_text"),
            ]
            assert not problems, (width, height, problems)
            assert page_scroll(page) == {"top": 0, "overflow": 0}, "the page itself scrolls"
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
    turns = hh_pair("hh-harmless-422")["prompt"].split("\n\nHuman: ")
    last_words = turns[-1][:40]
    first_words = "what is divergent thinking?"
    page = _signed_in(browser, stack, "conversation")
    try:
        expect_text = page.get_by_text("23 turns (12 from the human)")
        expect_text.wait_for()
        for width, height in each_screen(page, "review_conversation"):
            problems = [
                *off_screen(page, ".st-key-last_turn"),
                *off_screen(page, ".st-key-response_a"),
                *off_screen(page, ".st-key-response_b"),
                *off_screen(page, LABEL_BUTTONS),
            ]
            assert not problems, (width, height, problems)
            assert page_scroll(page) == {"top": 0, "overflow": 0}, "the page itself scrolls"
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
        for width, height in each_screen(page, "review_code"):
            problems = [
                *off_screen(page, ".st-key-response_a"),
                *off_screen(page, ".st-key-response_b"),
                *off_screen(page, LABEL_BUTTONS),
            ]
            assert not problems, (width, height, problems)
            assert page_scroll(page) == {"top": 0, "overflow": 0}, "the page itself scrolls"
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
        for width, height in each_screen(page, "review_guidelines"):
            assert page.get_by_text(RUBRIC).is_visible()
            assert not off_screen(page, LABEL_BUTTONS), (width, height)
    finally:
        page.close()
