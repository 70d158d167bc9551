"""The dashboard's control charts, on a project where one reviewer drifts: rendered by the
Streamlit app (AppTest) and drawn in a real browser (headless Debian chromium), screenshots at
1366x768 under test-output/screenshots/control-*.png.

The API runs in-process on loopback; the app reaches it over HTTP only.
"""

from __future__ import annotations

import doctest
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from api.main import create_app
from review_app import control_charts
from review_app.api_client import ApiClient
from tests import fakes
from tests.browser import SHOTS, chromium, in_a_browser, new_page, review_app, sign_in, wait_until_idle
from tests.helpers import (
    ADMIN,
    copy_sqlite,
    fast_settings,
    live_api,
    make_project,
    new_reviewer,
    post_labels,
    run_worker,
    sqlite_url_for,
    store_reviewer_labels,
)
from tests.waiting import HTTP_TIMEOUT_S, slowdown

APP = Path(__file__).resolve().parents[1] / "review_app" / "app.py"
SCRIPT_RUN_S = 30.0  # one script run, stretched by the contention (as in tests/test_review_app.py)
BATCHES, PAIRS_PER_BATCH = 6, 40
# Reviewer -> (labels, chance of agreeing with gold per label, label from which "late" applies, late chance).
REVIEWERS = {"ana": (240, 0.92, 240, 0.92), "ben": (240, 0.92, 160, 0.45), "cy": (120, 0.85, 120, 0.85)}


def _seed(http: httpx.Client, engine: Any, settings: Any) -> tuple[int, str]:
    """Six batches of 40 gold-labelled pairs; ana steady, ben drifting from his 161st label on,
    cy on the first three batches. Returns the project and ana's token."""
    project = make_project(http, "drift")
    ids: list[str] = []
    for batch in range(BATCHES):
        pairs = [
            {
                "client_id": f"b{batch}-{i}",
                "prompt": f"How do I sort a list in Python? ({batch}, {i})",
                "response_a": "sorted(xs)",
                "response_b": "a hand-written bubble sort",
            }
            for i in range(PAIRS_PER_BATCH)
        ]
        assert http.post(f"/v1/projects/{project}/jobs", json={"pairs": pairs}).status_code == 201
        ids += [p["client_id"] for p in pairs]
    run_worker(engine, settings)
    post_labels(http, project, [(cid, "A>B") for cid in ids], "gold")
    rng = random.Random(7)
    tokens = {name: new_reviewer(http, name, projects=[project]) for name in REVIEWERS}
    for name, (n, early, drift_at, late) in REVIEWERS.items():
        rows = [
            {
                "client_id": cid,
                "label": "A>B" if rng.random() < (early if i < drift_at else late) else "B>A",
                "source": "review",
                "annotator": name,
            }
            for i, cid in enumerate(ids[:n])
        ]
        assert store_reviewer_labels(engine, project, rows).created == n
    return project, tokens["ana"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[dict[str, Any]]:
    fakes.install()
    path = tmp_path_factory.mktemp("control-charts") / "app.db"
    engine = copy_sqlite(migrated_sqlite, path)
    settings = fast_settings(sqlite_url_for(path))
    with live_api(create_app(settings, engine, run_worker=False)) as base:
        with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=base, headers=ADMIN) as http:
            project, token = _seed(http, engine, settings)
            answer = http.get(f"/v1/projects/{project}/review/control-charts").json()
        previous = os.environ.get("PRELABEL_API_URL")
        os.environ["PRELABEL_API_URL"] = base
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(ApiClient.__init__, "__defaults__", (None, None, 10.0 * slowdown()))
                yield {"api": base, "project": project, "token": token, "answer": answer}
        finally:
            if previous is None:
                os.environ.pop("PRELABEL_API_URL", None)
            else:
                os.environ["PRELABEL_API_URL"] = previous
    engine.dispose()


def test_the_seeded_drift_is_out_of_control(served: dict[str, Any]) -> None:
    """The world the screenshots show (labels drawn with a fixed seed)."""
    answer = served["answer"]
    charts = {chart["unit"]: chart for chart in answer["reviewers"]}
    assert [len(charts[name]["points"]) for name in REVIEWERS] == [12, 12, 6]
    # ben's last two windows (5 and 6 of 20 agreed) are below his limits; his first eight are
    # all above his centre line, which the run rule flags at the eighth: his level changed.
    ben = [p["rules"] for p in charts["ben"]["points"]]
    assert ben == [[]] * 7 + [["run_of_8"], [], [], ["outside_limits"], ["outside_limits"]]
    assert not any(p["out_of_control"] for name in ("ana", "cy") for p in charts[name]["points"])
    # The last batch (ben's worst labels) is below the limits.
    assert answer["batches"]["points"][-1]["rules"] == ["outside_limits"]


def test_the_chart_helpers_doctests() -> None:
    assert doctest.testmod(control_charts).failed == 0


def _vega_specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def test_the_dashboard_draws_a_p_chart_per_reviewer_and_one_for_batches(served: dict[str, Any]) -> None:
    at = AppTest.from_file(str(APP), default_timeout=SCRIPT_RUN_S * slowdown())
    at.session_state["token"] = served["token"]
    at.session_state["reviewer_name"] = "ana"
    at.session_state["project_id"] = served["project"]
    at.switch_page("views/dashboard.py")
    at.run()
    assert not at.exception, at.exception
    assert "Agreement over time: control charts" in [h.value for h in at.subheader]
    specs = [spec for spec in _vega_specs(at) if "centre" in json.dumps(spec.get("title", ""))]
    titles = [spec["title"] for spec in specs]
    # Batches first, then reviewers with flagged points first.
    assert len(specs) == 4 and titles[0].startswith("batches: centre") and titles[1].startswith("ben:")
    for spec in specs:
        # Limits (two dashed steps), the centre line, the path, the points coloured by status.
        marks = [layer["mark"] for layer in spec["layer"]]
        assert [m["type"] for m in marks] == ["line", "line", "line", "line", "circle"]
        assert marks[0]["interpolate"] == "step" and marks[0]["strokeDash"]
        assert "height" not in spec  # under Streamlit's theme a fixed height squeezed the plot away
        colour = spec["layer"][4]["encoding"]["color"]["scale"]
        assert colour["domain"][-1] == "out of control" and colour["range"][-1] == "#d62728"
    flagged = next(d.value for d in at.dataframe if "Why" in d.value.columns)
    assert set(flagged["Chart"]) >= {"Batches", "ben"}
    assert "below the lower limit" in set(flagged["Why"]) and "Western Electric rule 4" in " ".join(
        c.value for c in at.caption
    )
    # A wider window: fewer points per reviewer, drawn again.
    at.select_slider(key="chart_window").set_value(50).run()
    assert not at.exception, at.exception
    ben = next(spec for spec in _vega_specs(at) if str(spec.get("title", "")).startswith("ben:"))
    assert ben["title"].startswith("ben: centre")


@in_a_browser
def test_the_control_charts_draw_in_a_browser(served: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    with review_app(served["api"]) as app_url, chromium() as browser:
        page = new_page(browser, 1366, 768)
        page.goto(app_url)
        sign_in(page, served["token"])
        page.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        wait_until_idle(page)  # the page's API calls take a few seconds: the run's end, not a guess
        heading = page.get_by_role("heading", name="Agreement over time: control charts")
        expect(heading).to_be_visible()
        assert page.locator('[data-testid="stException"]').count() == 0
        # The batch chart and three reviewers' charts (the page has other Vega-Lite charts).
        charts = page.locator('.st-key-control_charts [data-testid="stVegaLiteChart"]')
        expect(charts.nth(3)).to_be_attached()
        expect(charts.nth(3).locator("canvas, svg").first).to_be_attached()  # drawn by Vega
        assert charts.count() == 4
        # The section, the batch chart, the reviewers' charts, the table of flagged points.
        flagged = page.get_by_text("Out-of-control points", exact=False)
        views = {"charts": heading, "batches": charts.nth(0), "reviewers": charts.nth(1), "flagged": flagged}
        for name, where in views.items():
            where.evaluate("element => element.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(1000)  # Vega draws after the data arrives
            page.screenshot(path=str(SHOTS / f"control-{name}_1366x768.png"))
        for i in range(4):  # each chart has its plot area (a fixed height squeezed it to a line)
            box = charts.nth(i).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 300, (i, box)
