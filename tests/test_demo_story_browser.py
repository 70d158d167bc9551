"""The demo story in a real browser: ``prelabel demo``'s project, a reviewer's ten key presses
through the Streamlit app, the refit, and the dashboard.

Issue 19: the demo opens the gate on its 200 gold labels; a reviewer signs in and presses
``2 4 1 5 3 4 2 0 2 4``. Their labels fall on gold-labelled pairs, so the job's reviewers
"overlap" on a handful of pairs whose Krippendorff alpha is low, and the old batch gate dropped
the whole job, gold included: the refit closed the gate with "no usable labels yet". A handful
of pairs is no evidence, and gold is never dropped by the batch gate: the gate must stay open.
The dashboard, which crashed as soon as a calibration version existed, must render before and
after. Screenshots go to test-output/screenshots/demo_*.png.

Waits follow progress (a label stored, a pair judged), never a fixed wall-clock budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from api.models import Project
from api.tools import demo
from tests.browser import (
    BROWSER_MARKS,
    SHOTS,
    chromium,
    live_copy,
    new_page,
    review_app,
    sign_in,
    wait_until_idle,
)
from tests.helpers import ADMIN, ADMIN_TOKEN, auth
from tests.waiting import HTTP_TIMEOUT_S, cpu_seconds, wait_for_progress

pytestmark = BROWSER_MARKS

KEYS = "2415342024"  # the story's key presses: 0 (both bad) without a rationale stores nothing


@pytest.fixture
def demo_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path
) -> Iterator[dict[str, Any]]:
    """API + worker + review app on loopback with the demo's project, judged and calibrated on
    its gold labels as ``prelabel demo`` does (replay judges on the bundled sample)."""
    monkeypatch.setenv("PRELABEL_REVIEW_PREPARE", "0")  # no embedding model: not this test's subject
    monkeypatch.delenv("PRELABEL_JUDGES", raising=False)  # the demo's replay judges
    with live_copy(migrated_sqlite, tmp_path / "demo.db", run_worker=True) as live:
        with httpx.Client(base_url=live.url, headers=ADMIN, timeout=HTTP_TIMEOUT_S) as http:
            project = demo.demo_project(http)
            demo.post_sample(http, project["id"])

            def judged() -> int:
                return sum(j["done"] for j in http.get(f"/v1/projects/{project['id']}/jobs").json())

            wait_for_progress(
                lambda: judged() == 200, lambda: (judged(), cpu_seconds()), "judging the sample"
            )
            demo.import_gold_and_refit(http, project["id"])
            # The story's reviewer took the time to read: the speed filter (which keeps labels
            # given faster than the reading time out of calibration) is not what it is about.
            with Session(live.engine) as session:
                row = session.get(Project, project["id"])
                assert row is not None
                row.routing = {**row.routing, "min_seconds_base": 0.0, "min_seconds_per_1k_chars": 0.0}
                session.add(row)
                session.commit()
            token = demo.ensure_demo_reviewer(live.url, ADMIN_TOKEN, project["id"])
        with review_app(live.url) as app_url:
            yield {"api": live.url, "app": app_url, "token": token, "project": project["id"]}


def _dashboard(page: Any, name: str) -> None:
    """Open the dashboard, check it rendered without an exception, take screenshots."""
    from playwright.sync_api import expect

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Gate", exact=True)).to_be_visible()
    expect(page.get_by_text("Gate versions", exact=False)).to_be_visible()
    page.get_by_text("Gate versions", exact=False).click()  # the table that crashed
    # The data grid draws on a canvas; its cells are in the accessibility tree, not visible.
    expect(page.get_by_text("gold 200 (used)", exact=False).first).to_be_attached()
    expect(page.get_by_role("heading", name="Agreement between reviewers")).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.set_viewport_size({"width": 1440, "height": 2400})
    page.wait_for_timeout(1000)  # charts draw after the data arrives
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_demo_story_keeps_the_gate_open_and_the_dashboard_renders(demo_stack: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    api, project, token = demo_stack["api"], demo_stack["project"], demo_stack["token"]
    http = httpx.Client(base_url=api, headers=ADMIN, timeout=HTTP_TIMEOUT_S)
    before = http.get(f"/v1/projects/{project}/calibration").json()["gate"]
    assert before["open"], before["reason"]  # the demo opened it on its gold labels

    def my_labels() -> int:
        return len(http.get(f"/v1/projects/{project}/review/labels", headers=auth(token)).json()["labels"])

    try:
        with chromium() as browser:
            page = new_page(browser, 1440, 1000)
            page.goto(demo_stack["app"])
            sign_in(page, token)
            _dashboard(page, "demo_dashboard_after_gold")
            page.get_by_role("link", name="Review").first.click()
            expect(page.get_by_text("Response A", exact=True)).to_be_visible()
            page.set_viewport_size({"width": 1440, "height": 1000})
            for key in KEYS:
                # Shortcuts work once the label bar is drawn and nothing has the focus.
                expect(page.get_by_role("button", name="A > B")).to_be_visible()
                wait_until_idle(page)
                page.get_by_text("Prompt", exact=True).click()
                page.evaluate("document.activeElement && document.activeElement.blur()")
                n = my_labels()
                page.keyboard.press(key)
                if key == "0":
                    expect(page.get_by_text("Both bad needs a rationale")).to_be_visible()
                else:
                    wait_for_progress(lambda n=n: my_labels() > n, my_labels, f"the label of key {key}")
                    expect(page.get_by_text("Response A", exact=True)).to_be_visible()  # the next pair
            labels = http.get(f"/v1/projects/{project}/review/labels", headers=auth(token)).json()["labels"]
            assert len(labels) == len(KEYS) - 1
            # Every one of them fell on a gold-labelled pair: the reviewer and the gold annotator
            # overlap, and on so few pairs their alpha says little.
            report = http.get(f"/v1/projects/{project}/agreement").json()
            (batch,) = report["batches"]
            # Below the threshold (the old gate dropped the job, gold and all), on too few pairs
            # to mean anything: its disputed pairs go to adjudication, its labels still count.
            assert batch["n_items"] == len(labels) and batch["below_threshold"] and batch["calibrates"]
            version = http.post(f"/v1/projects/{project}/calibration/refit").json()
            state = http.get(f"/v1/projects/{project}/calibration").json()["gate"]
            assert version["state"] == "open" and state["open"], version["reason"]
            assert "no usable labels" not in version["reason"]
            assert version["n_labels"] >= 200  # the gold labels still calibrate
            (job,) = http.get(f"/v1/projects/{project}/jobs").json()
            assert job["by_route"].get("auto_accept", 0) > 50, job["by_route"]  # and it still accepts
            _dashboard(page, "demo_dashboard_after_ten_keys")
    finally:
        http.close()
