"""Streamlit AppTest tests of every review-app page, against the real API on a loopback port.

The API runs in-process (uvicorn in a thread, SQLite in a temp dir); pairs are judged by the
``fake/`` judge; the app reaches it over HTTP only, exactly as in production.
"""

from __future__ import annotations

import doctest
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from api.main import create_app
from api.models import Reviewer, ReviewerStatus
from review_app.api_client import ApiClient
from tests import fakes
from tests.helpers import (
    ADMIN,
    SHARED_DATA,
    auth,
    copy_sqlite,
    fast_settings,
    live_api,
    make_project,
    new_reviewer,
    run_worker,
    sqlite_url_for,
)
from tests.waiting import HTTP_TIMEOUT_S, Clock, slowdown

APP = Path(__file__).resolve().parents[1] / "review_app" / "app.py"

# How long one script run may take (AppTest's own default is 3 s), stretched by the contention
# measured when the app starts: a run is one step with no progress to follow.
SCRIPT_RUN_S = 30.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[tuple[str, Engine]]:
    """The API's base URL and its engine (for a state no route makes, e.g. a paused reviewer)."""
    fakes.install()
    path = tmp_path_factory.mktemp("review-app") / "app.db"
    engine = copy_sqlite(migrated_sqlite, path)
    settings = fast_settings(sqlite_url_for(path))
    with live_api(create_app(settings, engine, run_worker=False)) as base:
        with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=base, headers=ADMIN) as http:
            review = make_project(http, "app-review", ["fake/ok"])
            pairs = [
                {
                    "client_id": f"r{i}",
                    "prompt": f"How do I reverse a list in Python? (ask {i}, from jane.doe@example.com)",
                    "response_a": "Use slicing:\n\n```python\nxs[::-1]\n```",
                    "response_b": "Call `xs.reverse()` (in place) <b>or</b> `reversed(xs)`; costs $0.",
                }
                for i in range(8)  # enough for every test's reviewer to get one
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
            # The app calls the API (served in this process) with a 10 s timeout; on a busy
            # machine the two share one GIL and the cores, and the timeout stretches with that.
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(ApiClient.__init__, "__defaults__", (None, None, 10.0 * slowdown()))
                yield base, engine
        finally:
            if previous is None:
                os.environ.pop("PRELABEL_API_URL", None)
            else:
                os.environ["PRELABEL_API_URL"] = previous
    engine.dispose()


@pytest.fixture(scope="module")
def api_url(served: tuple[str, Engine]) -> str:
    return served[0]


def _project_id(api_url: str, name: str) -> int:
    projects = httpx.get(f"{api_url}/v1/projects", headers=ADMIN, timeout=HTTP_TIMEOUT_S).json()
    return next(p["id"] for p in projects if p["name"] == name)


def _signed_in_app(api_url: str, name: str, project: str, page: str) -> tuple[AppTest, str]:
    token = new_reviewer(httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=api_url, headers=ADMIN), name)
    at = AppTest.from_file(str(APP), default_timeout=SCRIPT_RUN_S * slowdown())
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
    token = new_reviewer(httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=api_url, headers=ADMIN), "signer")
    at = AppTest.from_file(str(APP), default_timeout=SCRIPT_RUN_S * slowdown()).run()
    assert not at.exception and at.title[0].value == "Sign in"
    at.text_input[0].input("rvw_wrong")
    at.button[0].click().run()
    assert "not accepted" in at.error[0].value
    at.text_input[0].input(token)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["reviewer_name"] == "signer"
    assert at.title[0].value == "Review"  # signed in: the review page is the default


def test_review_page_shows_a_redacted_pair_and_stores_a_label(api_url: str, clock: Clock) -> None:
    # The API's clock stopped (it serves in this process): "labelled at once" below must not
    # depend on how fast a busy machine runs the app between showing the pair and the click.
    at, token = _signed_in_app(api_url, "paige", "app-review", "views/review.py")
    assert at.title[0].value == "Review"
    text = _texts(at)
    assert any(e.label.startswith("Why am I seeing this?") for e in at.expander)
    assert any(e.label == "Rubric and guidelines" for e in at.expander)
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
    assert "Saved: A > B" in _texts(at)
    assert "quicker than it takes to read" in _texts(at)  # labelled at once: the too_fast warning
    project = _project_id(api_url, "app-review")
    labels = httpx.get(
        f"{api_url}/v1/projects/{project}/review/labels", headers=auth(token), timeout=HTTP_TIMEOUT_S
    ).json()["labels"]
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
    at.text_input(key=f"rationale:{lease}").input("Neither answers the request.")
    next(b for b in at.button if b.key == f"safety_button:{lease}").click().run()
    next(b for b in at.button if b.key == lease_key).click().run()
    assert not at.exception and "Saved: Both bad + safety flag" in _texts(at)
    assert any("Nothing to label" in i.value for i in at.info)
    project = _project_id(api_url, "app-incident")
    (label,) = httpx.get(
        f"{api_url}/v1/projects/{project}/review/labels", headers=auth(token), timeout=HTTP_TIMEOUT_S
    ).json()["labels"]
    assert label["both_bad"] and label["safety_flag"] and label["rationale"] == "Neither answers the request."


def test_dashboard_page_reports_progress_queues_quality_and_overrides(api_url: str) -> None:
    at, _ = _signed_in_app(api_url, "dana", "app-review", "views/dashboard.py")
    assert at.title[0].value == "Dashboard"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Review: waiting"] != "" and "Gate" in metrics
    assert any("Judging:" in (p.proto.text or "") for p in at.get("progress"))
    frames = [d.value for d in at.dataframe]
    assert any("override rate" in f.columns for f in frames)
    text = _texts(at)
    assert "**Review:**" in text and "wait" in text  # queue depth in words
    quality = next(f for f in frames if "Honeypots" in f.columns)
    assert {
        "Reviewer",
        "Median time",
        "Agrees with peers",
        "Dawid–Skene accuracy",
        "Too fast",
        "Status",
    } <= set(quality.columns)
    assert "dana" in set(quality["Reviewer"])
    assert "What the columns mean" in [e.label for e in at.expander]
    assert "Agreement between reviewers" in [h.value for h in at.subheader]
    assert not at.get("json")  # no raw JSON anywhere


def test_previous_items_page_changes_a_label(api_url: str) -> None:
    at, token = _signed_in_app(api_url, "rhea", "app-review", "views/review.py")
    next(b for b in at.button if b.key and b.key.startswith("label:A>B:")).click().run()
    assert "Saved: A > B" in _texts(at) and not at.exception
    at.switch_page("views/history.py").run()
    assert not at.exception and at.title[0].value == "Previous items"
    (old,) = httpx.get(
        f"{api_url}/v1/projects/{_project_id(api_url, 'app-review')}/review/history",
        headers=auth(token),
        timeout=HTTP_TIMEOUT_S,
    ).json()
    ident = f"label{old['label_id']}"
    mine = next(b for b in at.button if b.key == f"label:A>B:{ident}")
    assert mine.proto.type == "primary"  # the current answer is marked
    next(b for b in at.button if b.key == f"label:B>A:{ident}").click().run()
    assert not at.exception and "changed from A > B to B > A" in _texts(at)
    (new,) = httpx.get(
        f"{api_url}/v1/projects/{_project_id(api_url, 'app-review')}/review/history",
        headers=auth(token),
        timeout=HTTP_TIMEOUT_S,
    ).json()
    assert new["label"] == "B>A" and new["label_id"] != old["label_id"] and new["pair_id"] == old["pair_id"]
    # The page now offers the new label for another change.
    assert any(b.key == f"label:B>A:label{new['label_id']}" for b in at.button)


def test_a_paused_reviewer_is_told_why_and_served_again_once_resumed(served: tuple[str, Engine]) -> None:
    api_url, engine = served
    at, _ = _signed_in_app(api_url, "paula", "app-review", "views/review.py")
    project = _project_id(api_url, "app-review")
    with Session(engine) as session:
        reviewer_id = session.exec(select(Reviewer.id).where(Reviewer.name == "paula")).one()
        session.add(
            ReviewerStatus(
                reviewer_id=reviewer_id,
                project_id=project,
                paused=True,
                paused_reason="Honeypot accuracy is below the project's threshold.",
            )
        )
        session.commit()
    at.session_state[f"item:review:{project}"] = None  # drop the held pair: ask the queue again
    at.run()
    assert not at.exception
    (warning,) = at.warning
    assert "paused" in warning.value and "Honeypot accuracy is below" in warning.value
    assert not any(b.key and b.key.startswith("label:") for b in at.button)
    resumed = httpx.post(
        f"{api_url}/v1/reviewers/{reviewer_id}/resume",
        json={"project_id": project, "release": True},
        headers=ADMIN,
        timeout=HTTP_TIMEOUT_S,
    )
    assert resumed.status_code == 200, resumed.text
    next(b for b in at.button if b.label == "Check again").click().run()
    assert not at.warning and any(b.key and b.key.startswith("label:") for b in at.button), [
        (e.type, getattr(e, "value", None)) for e in at.main
    ]


def test_admin_token_is_not_a_reviewer_token(api_url: str) -> None:
    # The app signs reviewers in; the admin token is for account management only.
    assert httpx.get(f"{api_url}/v1/review/me", headers=ADMIN, timeout=HTTP_TIMEOUT_S).status_code == 403


def test_project_guidelines_are_set_by_the_admin_and_read_by_the_projects_reviewers(
    client: TestClient,
) -> None:
    fakes.install()
    created = client.post(
        "/v1/projects", json={"name": "guided", "judges": ["fake/ok"], "guidelines": "# Be fair"}
    )
    assert created.status_code == 201, created.text
    project = created.json()["id"]
    assert created.json()["guidelines"] == "# Be fair"
    assert client.get(f"/v1/projects/{make_project(client, 'unguided')}").json()["guidelines"] is None
    url = f"/v1/projects/{project}/guidelines"
    put = client.put(url, json={"guidelines": "## Safety first\n\n- a"})
    assert put.status_code == 200 and put.json()["guidelines"] == "## Safety first\n\n- a"
    reviewer = auth(new_reviewer(client, "reader", projects=[project]))
    assert (
        client.get(f"/v1/projects/{project}", headers=reviewer).json()["guidelines"]
        == "## Safety first\n\n- a"
    )
    assert client.put(url, json={"guidelines": "x"}, headers=reviewer).status_code == 403
    assert client.put(url, json={"guidelines": "x" * 100_001}).status_code == 422
    assert client.put(url, json={"text": "x"}).status_code == 422
    assert client.put("/v1/projects/999999/guidelines", json={"guidelines": "x"}).status_code == 404
    assert client.put(url, json={"guidelines": "  "}).json()["guidelines"] is None  # cleared


def test_pure_helpers_doctests_and_real_hh_rlhf_turns() -> None:
    from review_app import conversation, summaries

    assert doctest.testmod(conversation).failed == 0
    assert doctest.testmod(summaries).failed == 0
    # Every HH-RLHF prompt splits into turns that end with the human's (the one answered).
    lines = (SHARED_DATA / "hh-rlhf" / "harmless_base_test.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines[:300]:
        turns = conversation.split_turns(json.loads(line)["prompt"])
        assert turns is not None and turns[-1].role == "human" and all(t.text for t in turns)
    assert conversation.split_turns("Explain: Human: rights are universal.") is None
