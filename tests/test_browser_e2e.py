"""End to end in a real browser: API + worker + Streamlit app on loopback, headless Chromium.

Signs in, labels one pair WITH THE KEYBOARD, checks the label through the API, changes it on
the "Previous items" page (keyboard again), and saves screenshots of the review page, the
previous item and the dashboard under test-output/screenshots/.
Needs Debian's chromium (``apt-get install chromium``); Playwright never downloads a browser.
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
from tests.helpers import (
    ADMIN,
    CHROMIUM,
    CHROMIUM_FLAGS,
    auth,
    copy_sqlite,
    fast_settings,
    free_port,
    live_api,
    make_project,
    new_reviewer,
    sqlite_url_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-output" / "screenshots"
SAMPLE = ROOT / "api" / "sample_data" / "llmbar_sample.jsonl"


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


def _wait_http(url: str, process: subprocess.Popen[bytes] | None = None, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {seconds:.0f}s")


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[dict[str, str]]:
    """The API with its in-process worker (mock judges) and the Streamlit app, on loopback."""
    # Embedding the pairs would load a sentence-transformers model: not what this test is about.
    monkeypatch.setenv("PRELABEL_REVIEW_PREPARE", "0")
    engine = copy_sqlite(migrated_sqlite, tmp_path / "e2e.db")
    settings = fast_settings(sqlite_url_for(tmp_path / "e2e.db"))
    with live_api(create_app(settings, engine, run_worker=True)) as api_url:
        with httpx.Client(base_url=api_url, headers=ADMIN) as http:
            project = make_project(http, "e2e", ["mock/alpha", "mock/beta"])
            assert http.post(f"/v1/projects/{project}/jobs", json={"pairs": _pairs()}).status_code == 201
            # The worker is a spawned process: on a busy machine its imports alone take a while.
            deadline = time.monotonic() + 120
            while not http.get(f"/v1/projects/{project}/jobs").json()[0]["complete"]:
                assert time.monotonic() < deadline, "the worker did not judge the pairs"
                time.sleep(0.2)
            token = new_reviewer(http, "e2e-reviewer")  # a fresh database: the name is free
        port = free_port()
        app = run_streamlit(port, api_url, headless=True)
        try:
            app_url = f"http://127.0.0.1:{port}"
            _wait_http(f"{app_url}/_stcore/health", app)
            yield {"api": api_url, "app": app_url, "token": token, "project": str(project)}
        finally:
            app.terminate()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
    engine.dispose()


def _screens(page: Any, name: str) -> None:
    """What a reviewer sees on a laptop and on a desktop screen (viewport only, as they would)."""
    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / f"{name}_{width}x{height}.png"))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_sign_in_label_with_the_keyboard_and_see_the_dashboard(stack: dict[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(20_000)
            page.goto(stack["app"])
            token_box = page.get_by_label("Reviewer token")
            expect(token_box).to_be_visible()
            page.screenshot(path=str(SHOTS / "sign_in.png"))
            token_box.fill(stack["token"])
            token_box.press("Enter")  # submits the sign-in form

            expect(page.get_by_role("heading", name="Review")).to_be_visible()
            expect(page.get_by_text("Why am I seeing this?")).to_be_visible()
            expect(page.get_by_text("Response A", exact=True)).to_be_visible()
            page.wait_for_timeout(500)  # let the layout settle for the screenshot
            # Streamlit scrolls an inner element, so "full page" is the viewport: make it tall.
            page.set_viewport_size({"width": 1440, "height": 1500})
            page.screenshot(path=str(SHOTS / "review.png"))
            _screens(page, "review")

            # Label with the keyboard: focus away from any input, then press 2 (A > B).
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press("2")
            expect(page.get_by_text("Saved: A > B")).to_be_visible()
            expect(page.get_by_text("Response A", exact=True)).to_be_visible()  # the next pair

            labels = httpx.get(
                f"{stack['api']}/v1/projects/{stack['project']}/review/labels", headers=auth(stack["token"])
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
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press("4")
            expect(page.get_by_text("changed from A > B to B > A")).to_be_visible()
            history = httpx.get(
                f"{stack['api']}/v1/projects/{stack['project']}/review/history", headers=auth(stack["token"])
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
            _screens(page, "dashboard")
        finally:
            browser.close()
