"""Streamlit AppTest tests of every review-app page, against the real API on a loopback port.

The API runs in-process (uvicorn in a thread, SQLite in a temp dir); pairs are judged by the
``fake/`` judge; the app reaches it over HTTP only, exactly as in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from api.main import create_app
from tests import fakes
from tests.helpers import (
    ADMIN,
    auth,
    copy_sqlite,
    fast_settings,
    live_api,
    make_project,
    new_reviewer,
    run_worker,
    sqlite_url_for,
)

APP = Path(__file__).resolve().parents[1] / "review_app" / "app.py"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[str]:
    fakes.install()
    path = tmp_path_factory.mktemp("review-app") / "app.db"
    engine = copy_sqlite(migrated_sqlite, path)
    settings = fast_settings(sqlite_url_for(path))
    with live_api(create_app(settings, engine, run_worker=False)) as base:
        with httpx.Client(base_url=base, headers=ADMIN) as http:
            review = make_project(http, "app-review", ["fake/ok"])
            pairs = [
                {
                    "client_id": f"r{i}",
                    "prompt": f"How do I reverse a list in Python? (ask {i}, from jane.doe@example.com)",
                    "response_a": "Use slicing:\n\n```python\nxs[::-1]\n```",
                    "response_b": "Call `xs.reverse()` (in place) <b>or</b> `reversed(xs)`; costs $0.",
                }
                for i in range(4)
            ]
            assert http.post(f"/v1/projects/{review}/jobs", json={"pairs": pairs}).status_code == 201
            incident = make_project(http, "app-incident", ["fake/both-bad"])
            pairs = [
                {"client_id": "x0", "prompt": "Tell me a joke.", "response_a": "No.", "response_b": "..."}
            ]
            assert http.post(f"/v1/projects/{incident}/jobs", json={"pairs": pairs}).status_code == 201
        run_worker(engine, settings)
        previous = os.environ.get("PRELABEL_API_URL")
        os.environ["PRELABEL_API_URL"] = base
        try:
            yield base
        finally:
            if previous is None:
                os.environ.pop("PRELABEL_API_URL", None)
            else:
                os.environ["PRELABEL_API_URL"] = previous
    engine.dispose()


def _project_id(api_url: str, name: str) -> int:
    projects = httpx.get(f"{api_url}/v1/projects", headers=ADMIN).json()
    return next(p["id"] for p in projects if p["name"] == name)


def _signed_in_app(api_url: str, name: str, project: str, page: str) -> tuple[AppTest, str]:
    token = new_reviewer(httpx.Client(base_url=api_url, headers=ADMIN), name)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state["token"] = token
    at.session_state["reviewer_name"] = name
    at.session_state["project_id"] = _project_id(api_url, project)
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at, token


def _texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_sign_in_page_accepts_a_token_and_refuses_a_bad_one(api_url: str) -> None:
    token = new_reviewer(httpx.Client(base_url=api_url, headers=ADMIN), "signer")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and at.title[0].value == "Sign in"
    at.text_input[0].input("rvw_wrong")
    at.button[0].click().run()
    assert "not accepted" in at.error[0].value
    at.text_input[0].input(token)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["reviewer_name"] == "signer"
    assert at.title[0].value == "Review"  # signed in: the review page is the default


def test_review_page_shows_a_redacted_pair_and_stores_a_label(api_url: str) -> None:
    at, token = _signed_in_app(api_url, "paige", "app-review", "views/review.py")
    assert at.title[0].value == "Review"
    text = _texts(at)
    assert "Why am I seeing this?" in [e.label for e in at.expander]
    assert "swapped" in text  # the order-sensitivity reason, in words
    assert "jane.doe@example.com" not in text and "&lt;EMAIL_1>" in text  # redacted, token kept visible
    assert "xs[::-1]" in text and "\\$0" in text  # code kept; dollars not typeset as math
    label_buttons = [b for b in at.button if b.key and b.key.startswith("label:")]
    assert [b.label for b in label_buttons] == ["A ≫ B", "A > B", "Tie", "B > A", "B ≫ A"]

    # Both bad without a rationale is refused, with the reason.
    next(b for b in at.button if b.key and b.key.startswith("both_bad:")).click().run()
    assert "rationale" in at.error[0].value

    next(b for b in at.button if b.key and b.key.startswith("label:A>B:")).click().run()
    assert not at.exception
    assert "Saved: A > B" in at.success[0].value
    project = _project_id(api_url, "app-review")
    labels = httpx.get(f"{api_url}/v1/projects/{project}/review/labels", headers=auth(token)).json()["labels"]
    mine = [lab for lab in labels if lab["annotator"] == "paige"]
    assert len(mine) == 1 and mine[0]["label"] == "A>B" and mine[0]["time_on_task_s"] >= 0
    # The next pair is already on screen.
    assert any(b.key and b.key.startswith("label:") for b in at.button)


def test_incidents_page_serves_both_bad_items(api_url: str) -> None:
    at, token = _signed_in_app(api_url, "ines", "app-incident", "views/incidents.py")
    assert at.title[0].value == "Incidents"
    assert "both responses may be bad" in _texts(at)
    lease_key = next(b.key for b in at.button if b.key and b.key.startswith("both_bad:"))
    lease = lease_key.split(":")[1]
    at.text_area(key=f"rationale:{lease}").input("Neither answers the request.")
    next(b for b in at.button if b.key == f"safety_button:{lease}").click().run()
    next(b for b in at.button if b.key == lease_key).click().run()
    assert not at.exception and "Saved: Both bad + safety flag" in at.success[0].value
    assert any("Nothing to label" in i.value for i in at.info)
    project = _project_id(api_url, "app-incident")
    (label,) = httpx.get(f"{api_url}/v1/projects/{project}/review/labels", headers=auth(token)).json()[
        "labels"
    ]
    assert label["both_bad"] and label["safety_flag"] and label["rationale"] == "Neither answers the request."


def test_dashboard_page_reports_progress_queues_and_overrides(api_url: str) -> None:
    at, _ = _signed_in_app(api_url, "dana", "app-review", "views/dashboard.py")
    assert at.title[0].value == "Dashboard"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Review: waiting"] != "" and "Gate" in metrics
    assert any("Judging:" in (p.proto.text or "") for p in at.get("progress"))
    frames = [d.value for d in at.dataframe]
    assert any("override rate" in f.columns for f in frames)


def test_admin_token_is_not_a_reviewer_token(api_url: str) -> None:
    # The app signs reviewers in; the admin token is for account management only.
    assert httpx.get(f"{api_url}/v1/review/me", headers=ADMIN).status_code == 403
