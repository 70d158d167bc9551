"""The steerable queue in a real browser (Debian chromium, headless): a reviewer filters and
searches their queue on the Review page, a senior reviewer assigns the matching pairs to a
colleague on the Queue page, and that colleague is served them first.

At 1366×768 the label bar stays on screen with the filter panel open. Screenshots go to
test-output/screenshots/queue-*.png (look at them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.models import Pair, ReviewItem
from tests import fakes
from tests.browser import (
    BROWSER_MARKS,
    LABEL_BUTTONS,
    SHOTS,
    chromium,
    live_copy,
    new_page,
    review_app,
    sign_in,
    wait_until_idle,
)
from tests.helpers import ADMIN, auth, new_reviewer, run_worker
from tests.waiting import HTTP_TIMEOUT_S

pytestmark = BROWSER_MARKS

LAPTOP = (1366, 768)
ASSIGNED_NOTE = '.st-key-pair .stMarkdownColoredBackground:has-text("Assigned to you")'


def _pair(client_id: str, prompt: str, lang: str) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "prompt": prompt,
        "response_a": f"A short, correct answer about {client_id}.",
        "response_b": f"A longer answer about {client_id} that wanders off the question.",
        "metadata": {"lang": lang},
    }


# The blender pair is posted first (lowest id): without a filter it would be served last.
JOB1 = [
    _pair("blender", "My blender broke after a week; write a polite refund request.", "en"),
    _pair("kuehlschrank", "Übersetze: Der Kühlschrank ist leer.", "de"),
    _pair("sort", "How do I sort a list of tuples by the second item in Python?", "en"),
]
JOB2 = [
    _pair("gedicht", "Schreibe ein kurzes Gedicht über das Meer.", "de"),
    _pair("sql", "Explain a LEFT JOIN with a small example.", "en"),
    _pair("haiku", "Write a haiku about autumn rain.", "en"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[dict[str, Any]]:
    fakes.install()
    path = tmp_path_factory.mktemp("queue") / "queue.db"
    # review_prepare=0: embedding the pairs would load a model, not what this module is about.
    with live_copy(migrated_sqlite, path, run_worker=False, review_prepare="0") as live:
        with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=live.url, headers=ADMIN) as http:
            body = {"name": "steer", "judges": ["fake/ok"], "routing": {"min_seconds_base": 0.0}}
            project = http.post("/v1/projects", json=body).json()["id"]
            for pairs in (JOB1, JOB2):
                assert http.post(f"/v1/projects/{project}/jobs", json={"pairs": pairs}).status_code == 201
            lead = http.post(
                "/v1/reviewers", json={"name": "lead", "projects": [project], "senior": True}
            ).json()
            tokens = {
                "lead": lead["token"],
                "ana": new_reviewer(http, "ana", [project]),
                "bo": new_reviewer(http, "bo", [project]),
            }
        run_worker(live.engine, live.settings)
        _set_priorities(live.engine, project)
        with review_app(live.url) as app_url:
            yield {"api": live.url, "app": app_url, "project": project, **tokens}


# Who is served what, fixed (the judge's uncertainty ties, and pair ids follow ingest order):
# Ana holds "sort" when she filters for the blender pair, the lead's sign-in leases "sql", and
# the two German pairs wait for the lead to assign them.
PRIORITY = {"sort": 0.9, "sql": 0.8, "haiku": 0.7, "gedicht": 0.3, "kuehlschrank": 0.2, "blender": 0.1}


def _set_priorities(engine: Engine, project: int) -> None:
    with Session(engine) as session:
        items = session.exec(
            select(Pair.client_id, ReviewItem.id)
            .join(ReviewItem, col(ReviewItem.pair_id) == col(Pair.id))
            .where(Pair.project_id == project)
        ).all()
        assert {name for name, _ in items} == set(PRIORITY)
        for name, item_id in items:
            session.execute(
                update(ReviewItem).where(col(ReviewItem.id) == item_id).values(priority=PRIORITY[name])
            )
        session.commit()


@pytest.fixture(scope="module")
def browser(stack: dict[str, Any]) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _signed_in(browser: Any, stack: dict[str, Any], who: str) -> Any:
    from playwright.sync_api import expect

    page = new_page(browser, *LAPTOP)
    page.goto(stack["app"])
    sign_in(page, stack[who])
    page.locator(".st-key-response_b").wait_for()
    expect(page.locator(LABEL_BUTTONS)).to_have_count(8)
    return page


def _off_screen(page: Any, selector: str) -> list[str]:
    size = page.viewport_size
    found = page.locator(selector)
    problems = []
    for i in range(found.count()):
        box = found.nth(i).bounding_box()
        if box is None or box["y"] < 0 or box["y"] + box["height"] > size["height"] + 0.5:
            problems.append(f"{selector}[{i}] at {box}")
    return problems if found.count() else [f"{selector}: not on the page"]


def _prompt_shown(page: Any) -> str:
    return str(page.locator(".st-key-prompt_text").inner_text())


def _label(page: Any, key: str) -> None:
    wait_until_idle(page)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)


def _api(stack: dict[str, Any], who: str, path: str) -> Any:
    headers = ADMIN if who == "admin" else auth(stack[who])
    response = httpx.get(f"{stack['api']}{path}", headers=headers, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_reviewer_searches_their_queue_and_is_served_what_matches(
    browser: Any, stack: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    page = _signed_in(browser, stack, "ana")
    try:
        first = _prompt_shown(page)
        assert "sort a list of tuples" in first  # the blender pair is last in priority order
        page.get_by_text("Filter and search").click()
        page.get_by_label("Text search").fill("BLENDER")
        page.get_by_role("button", name="Apply filter").click()
        expect(page.get_by_text("1 waiting pair(s) match")).to_be_visible()
        expect(page.get_by_text("the filter applies from the next")).to_be_visible()
        page.set_viewport_size({"width": LAPTOP[0], "height": LAPTOP[1]})
        page.wait_for_timeout(700)
        page.screenshot(path=str(SHOTS / "queue-filter-panel_1366x768.png"))
        assert not _off_screen(page, LABEL_BUTTONS), _off_screen(page, LABEL_BUTTONS)
        assert _prompt_shown(page) == first  # the held pair stays until it is answered
        _label(page, "2")
        expect(page.get_by_text("Saved: A > B")).to_be_visible()
        expect(page.locator(".st-key-prompt_text")).to_contain_text("blender")
        expect(page.get_by_text("Filter: text: “BLENDER”")).to_be_visible()
        page.wait_for_timeout(700)
        page.screenshot(path=str(SHOTS / "queue-filtered-pair_1366x768.png"))
        assert not _off_screen(page, LABEL_BUTTONS)
        _label(page, "2")
        expect(page.get_by_text("No waiting item matches your filter")).to_be_visible()
        labels = _api(stack, "ana", f"/v1/projects/{stack['project']}/review/labels")["labels"]
        assert len(labels) == 2
    finally:
        page.close()


def test_a_senior_assigns_the_matching_pairs_and_the_assignee_gets_them_first(
    browser: Any, stack: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    page = _signed_in(browser, stack, "lead")
    try:
        page.get_by_role("link", name="Queue").click()
        expect(page.get_by_role("heading", name="Queue")).to_be_visible()
        page.get_by_label("Metadata").fill("lang:de")
        page.get_by_role("button", name="Apply filter").click()
        expect(page.get_by_text("waiting pair(s) match (filter: lang=de)")).to_be_visible()
        matched = _api(stack, "lead", f"/v1/projects/{stack['project']}/review/queue?meta=lang:de")["matched"]
        assert matched == 2
        page.get_by_role("heading", name="Queue").scroll_into_view_if_needed()
        page.locator('[data-testid="stDataFrame"] canvas').first.wait_for()
        page.wait_for_timeout(1500)  # the grid draws its rows after it is attached
        page.screenshot(path=str(SHOTS / "queue-list_1366x768.png"))
        # Choose Bo in the "Assign to" box, then assign everything that matches.
        wait_until_idle(page)
        page.get_by_label("Assign to").click()
        page.keyboard.type("bo")  # the box filters its options as one types
        page.keyboard.press("Enter")
        wait_until_idle(page)
        page.get_by_role("button", name=f"Assign all {matched} matching").click()
        expect(page.get_by_text(f"Assigned {matched} item(s).")).to_be_visible()
        expect(page.get_by_text("Assigned now: ana 0 · bo 2 · lead 0")).to_be_visible()
        page.wait_for_timeout(700)
        page.screenshot(path=str(SHOTS / "queue-assign_1366x768.png"))
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.wait_for_timeout(700)
        page.screenshot(path=str(SHOTS / "queue-assign_1920x1080.png"))
    finally:
        page.close()
    overview = _api(stack, "admin", f"/v1/projects/{stack['project']}/review/assignments")
    assert {(a["name"], a["standing"]) for a in overview["assignments"]} == {("bo", True)}
    assert len(overview["assignments"]) == 2
    # Bo is served his assigned pairs first, marked as such; then the pool.
    page = _signed_in(browser, stack, "bo")
    try:
        for _ in range(2):
            expect(page.locator(ASSIGNED_NOTE)).to_be_visible()
            assert any(word in _prompt_shown(page) for word in ("Kühlschrank", "Gedicht"))
            page.wait_for_timeout(500)
            page.screenshot(path=str(SHOTS / "queue-assigned-pair_1366x768.png"))
            assert not _off_screen(page, LABEL_BUTTONS)
            _label(page, "3")
            expect(page.get_by_text("Saved: Tie")).to_be_visible()
        expect(page.locator(".st-key-prompt_text")).to_contain_text("haiku")  # then the pool's best
        expect(page.locator(ASSIGNED_NOTE)).to_have_count(0)
    finally:
        page.close()
