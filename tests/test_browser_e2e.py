"""End to end in a real browser: API + worker + Streamlit app on loopback, headless Chromium.

Signs in, labels one pair WITH THE KEYBOARD, checks the label through the API, changes it on
the "Previous items" page (keyboard again), and saves screenshots of the review page, the
previous item and the dashboard under test-output/screenshots/.
Needs Debian's chromium (``apt-get install chromium``); Playwright never downloads a browser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import (
    BROWSER_MARKS,
    SHOTS,
    chromium,
    live_copy,
    new_page,
    review_app,
    screenshots,
    sign_in,
    wait_until_idle,
)
from tests.helpers import ADMIN, auth, make_project, new_reviewer
from tests.waiting import HTTP_TIMEOUT_S, cpu_seconds, wait_for_progress

pytestmark = BROWSER_MARKS

SAMPLE = Path(__file__).resolve().parents[1] / "api" / "sample_data" / "llmbar_sample.jsonl"


def _pairs() -> list[dict[str, str]]:
    pairs = [
        {
            "client_id": "pii-code",
            "prompt": "My manager Sarah Miller (sarah.miller@acme-corp.com, +1 415 555 0132) asked me to "
            "dedupe a list in Python while keeping order. How?",
            "response_a": "Use a dict, which keeps insertion order:\n\n```python\n"
            "def dedupe(xs):\n    return list(dict.fromkeys(xs))\n```\n\nIt runs in O(n).",
            "response_b": "Convert it to a set: `list(set(xs))`. That is the fastest way.",
        }
    ]
    for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:5]:
        record = json.loads(line)
        pairs.append(
            {
                "client_id": record["id"],
                "prompt": record["prompt"],
                "response_a": record["response_a"] or "(empty)",
                "response_b": record["response_b"] or "(empty)",
            }
        )
    return pairs


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[dict[str, str]]:
    """The API with its in-process worker (mock judges) and the Streamlit app, on loopback."""
    # Embedding the pairs would load a sentence-transformers model: not what this test is about.
    monkeypatch.setenv("PRELABEL_REVIEW_PREPARE", "0")
    with live_copy(migrated_sqlite, tmp_path / "e2e.db", run_worker=True) as live:
        with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=live.url, headers=ADMIN) as http:
            project = make_project(http, "e2e", ["mock/alpha", "mock/beta"])
            assert http.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs()}).status_code == 201
            # The worker is a spawned process: on a busy machine its imports alone take a while.
            wait_for_progress(
                lambda: bool(http.get(f"/v1/projects/{project}/jobs").json()[0]["complete"]),
                lambda: (http.get(f"/v1/projects/{project}/jobs").json()[0]["done"], cpu_seconds()),
                "the worker to judge the pairs",
            )
            token = new_reviewer(http, "e2e-reviewer")  # a fresh database: the name is free
        with review_app(live.url) as app_url:
            yield {"api": live.url, "app": app_url, "token": token, "project": str(project)}


def test_sign_in_label_with_the_keyboard_and_see_the_dashboard(stack: dict[str, str]) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = new_page(browser, 1440, 1000, timeout_ms=20_000)
        page.goto(stack["app"])
        expect(page.get_by_label("Reviewer token")).to_be_visible()
        page.screenshot(path=str(SHOTS / "sign_in.png"))
        sign_in(page, stack["token"])

        expect(page.get_by_role("heading", name="Review")).to_be_visible()
        expect(page.get_by_text("Why am I seeing this?")).to_be_visible()
        expect(page.get_by_text("Response A", exact=True)).to_be_visible()
        page.wait_for_timeout(500)  # let the layout settle for the screenshot
        # Streamlit scrolls an inner element, so "full page" is the viewport: make it tall.
        page.set_viewport_size({"width": 1440, "height": 1500})
        page.screenshot(path=str(SHOTS / "review.png"))
        screenshots(page, "review", settle_ms=500)

        # Label with the keyboard: focus away from any input, then press 2 (A > B).
        wait_until_idle(page)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press("2")
        expect(page.get_by_text("Saved: A > B")).to_be_visible()
        expect(page.get_by_text("Response A", exact=True)).to_be_visible()  # the next pair

        labels = httpx.get(
            f"{stack['api']}/v1/projects/{stack['project']}/review/labels",
            headers=auth(stack["token"]),
            timeout=HTTP_TIMEOUT_S,
        ).json()["labels"]
        assert [(lab["label"], lab["annotator"], lab["source"]) for lab in labels] == [
            ("A>B", "e2e-reviewer", "review")
        ]
        assert labels[0]["time_on_task_s"] > 0 and labels[0]["redaction_version"]

        # Change it: the previous item comes back with its answer marked; 4 makes it B > A.
        page.get_by_role("link", name="Change it").click()
        expect(page.get_by_role("heading", name="Previous items")).to_be_visible()
        expect(page.get_by_text("You said A > B")).to_be_visible()
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "previous_items.png"))
        wait_until_idle(page)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press("4")
        expect(page.get_by_text("changed from A > B to B > A")).to_be_visible()
        history = httpx.get(
            f"{stack['api']}/v1/projects/{stack['project']}/review/history",
            headers=auth(stack["token"]),
            timeout=HTTP_TIMEOUT_S,
        ).json()
        assert [row["label"] for row in history] == ["B>A"]  # the one current label, changed

        page.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        expect(page.get_by_text("Override rate: judge's pre-label shown vs hidden")).to_be_visible()
        expect(page.get_by_text("Gate", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Reviewers", exact=True)).to_be_visible()
        page.set_viewport_size({"width": 1440, "height": 2400})
        page.wait_for_timeout(1500)  # charts draw after the data arrives
        page.screenshot(path=str(SHOTS / "dashboard.png"))
        screenshots(page, "dashboard", settle_ms=500)
