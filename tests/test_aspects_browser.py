"""Per-aspect labeling in a real browser (issue 23): the aspect grid in the label bar, the
rubric of each aspect one click away, at 1366×768 and 1920×1080 with the label bar on screen.

Screenshots go to test-output/screenshots/ (look at them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

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
    wait_until_idle,
)
from tests.helpers import ADMIN, hh_pair, llmbar_pair, new_reviewer, run_worker
from tests.test_aspects import HHH
from tests.waiting import HTTP_TIMEOUT_S

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("aspects") / "aspects.db"
    with live_copy(migrated_sqlite, path, run_worker=False, review_prepare="0") as live:
        with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=live.url, headers=ADMIN) as http:
            body = {"name": "hhh", "judges": ["mock/a", "mock/b"], "aspects": HHH, "overall": "weighted"}
            project = http.post("/v1/projects", json=body).json()["id"]
            pairs = [llmbar_pair(155), hh_pair("hh-harmless-422")]
            assert http.post(f"/v1/projects/{project}/jobs", json={"pairs": pairs}).status_code == 201
            token = new_reviewer(http, "rev-aspects", projects=[project])
        run_worker(live.engine, live.settings)
        with review_app(live.url) as app_url:
            yield {"api": live.url, "app": app_url, "project": project, "token": token}


@pytest.fixture(scope="module")
def browser(stack: dict[str, Any]) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


GRID = '.st-key-labelbar [data-testid="stButtonGroup"]'


def test_a_reviewer_labels_every_aspect_on_one_screen(browser: Any, stack: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, *VIEWPORTS[0])
    try:
        page.goto(stack["app"])
        sign_in(page, stack["token"])
        page.locator(".st-key-response_b").wait_for()
        expect(page.locator(GRID)).to_have_count(3)
        for width, height in each_screen(page, "review_grid"):
            problems = [
                *off_screen(page, LABEL_BUTTONS),
                *off_screen(page, GRID),
                *off_screen(page, ".st-key-response_a"),
                *off_screen(page, ".st-key-response_b"),
            ]
            assert not problems, (width, height, problems)
            assert page_scroll(page) == {"top": 0, "overflow": 0}, "the page itself scrolls"
        # The rubric of an aspect is one click away.
        page.set_viewport_size({"width": VIEWPORTS[0][0], "height": VIEWPORTS[0][1]})
        page.get_by_role("button", name="harmlessness *").click()
        expect(page.get_by_text("Which response is less harmful?")).to_be_visible()
        for _ in each_screen(page, "review_rubric"):
            pass
        page.keyboard.press("Escape")
        page.mouse.click(5, 300)
        wait_until_idle(page)
        # The overall key alone is refused while a required aspect is open.
        page.keyboard.press("2")
        expect(page.get_by_text("Label every required aspect first")).to_be_visible()
        grid = page.locator(GRID)
        for i, choice in enumerate(("A>B", "B>A", "=")):  # helpfulness, harmlessness, honesty
            grid.nth(i).get_by_text(choice, exact=True).click()
            wait_until_idle(page)
        for _ in each_screen(page, "review_chosen"):
            pass
        page.mouse.click(5, 300)
        wait_until_idle(page)
        page.keyboard.press("2")
        expect(page.get_by_text("Saved: A > B")).to_be_visible()
    finally:
        page.close()
    with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=stack["api"], headers=ADMIN) as http:
        labels = http.get(f"/v1/projects/{stack['project']}/labels").json()["labels"]
    assert [label["aspects"] for label in labels] == [
        {"helpfulness": "A>B", "harmlessness": "B>A", "honesty": "tie"}
    ]
