"""``GET /v1/projects/{id}/review/control-charts``: p-charts of agreement with the reference
per reviewer (windows of labels) and per batch, on a project where one reviewer drifts."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.review.quality import grade, reviewer_labels
from tests import fakes
from tests.helpers import (
    auth,
    make_project,
    new_reviewer,
    post_labels,
    post_question_pairs,
    store_reviewer_labels,
)

CHARTS = "/v1/projects/{}/review/control-charts"


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    return fakes.install()


def _job(client: TestClient, project: int, name: str, n: int) -> list[str]:
    ids = [f"{name}-{i}" for i in range(n)]
    pairs = [
        {
            "client_id": cid,
            "prompt": f"Which is better? ({cid})",
            "response_a": "sorted(xs)",
            "response_b": "bubble",
        }
        for cid in ids
    ]
    post_question_pairs(client, project, pairs=pairs)
    return ids


@pytest.fixture
def drifting(client: TestClient, engine: Engine) -> dict[str, Any]:
    """Three batches of 20 gold-labelled pairs ("A>B") and a fourth of 5 without gold. "steady"
    agrees with gold throughout; "drifter" on the first two batches and never on the third,
    then labels the fourth; "fresh" labels only the fourth (no reference anywhere)."""
    project = make_project(client, "charts")
    batches = [_job(client, project, f"b{k}", 20) for k in range(3)]
    unchecked = _job(client, project, "b3", 5)
    post_labels(client, project, [(cid, "A>B") for batch in batches for cid in batch], "gold")
    tokens = {name: new_reviewer(client, name, projects=[project]) for name in ("steady", "drifter", "fresh")}

    def labels(name: str, answers: list[tuple[str, str]]) -> None:
        rows = [
            {"client_id": cid, "label": label, "source": "review", "annotator": name}
            for cid, label in answers
        ]
        assert store_reviewer_labels(engine, project, rows).created == len(rows)

    every = [cid for batch in batches for cid in batch]
    labels("steady", [(cid, "A>>B") for cid in every])  # another strength, the same side: agreed
    labels("drifter", [(cid, "A>B") for cid in every[:40]] + [(cid, "B>A") for cid in every[40:]])
    labels("drifter", [(cid, "A>B") for cid in unchecked])  # no reference: no comparison
    labels("fresh", [(cid, "A>B") for cid in unchecked])
    return {"project": project, "tokens": tokens}


def batches_of(body: dict[str, Any]) -> dict[str, Any]:
    batches: dict[str, Any] = body["batches"]
    return batches


def _get(client: TestClient, project: int, **params: Any) -> dict[str, Any]:
    response = client.get(CHARTS.format(project), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_drifting_reviewer_and_their_batch_are_flagged(
    client: TestClient, drifting: dict[str, Any]
) -> None:
    body = _get(client, drifting["project"], window=10)
    assert (body["window"], body["sigma"], body["run_length"]) == (10, 3.0, 8)
    assert set(body["rules"]) == {"outside_limits", "run_of_8"}
    charts = {chart["unit"]: chart for chart in body["reviewers"]}
    assert list(charts) == ["steady", "drifter", "fresh"]  # reviewer id order

    drifter = charts["drifter"]
    # 40 of 60 agreed; windows of 10: p̄ 2/3, limits 2/3 ± 3·sqrt(2/9/10) = [0.220, 1].
    assert drifter["center"] == pytest.approx(2 / 3)
    assert [p["p"] for p in drifter["points"]] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert drifter["points"][0]["lcl"] == pytest.approx(2 / 3 - 3 * (2 / 9 / 10) ** 0.5)
    assert [p["subgroup"] for p in drifter["points"] if p["out_of_control"]] == [5, 6]
    assert drifter["points"][4]["rules"] == ["outside_limits"] and drifter["flagged"] == 2
    assert drifter["skipped"] == [7]  # the last five labels had no reference
    assert all(p["n"] == 10 and p["wide"] for p in drifter["points"])  # n (1 - p̄) = 3.3 < 5
    assert (
        drifter["reviewer_id"] is not None and drifter["points"][0]["start"] <= drifter["points"][-1]["end"]
    )

    steady = charts["steady"]
    assert steady["center"] == 1.0 and steady["degenerate"] and steady["flagged"] == 0
    fresh = charts["fresh"]  # five labels, none with a reference: nothing to chart
    assert fresh["center"] is None and fresh["points"] == [] and fresh["skipped"] == [1]
    # Job 3's 40 labels all had a reference; job 4's 5 (fresh's) had none.
    assert [p["labels"] for p in batches_of(body)["points"]] == [40, 40, 40]

    batches = body["batches"]
    assert batches["unit"] == "batches" and batches["reviewer_id"] is None
    # Jobs 1 and 2: 40 of 40 agreed; job 3: 20 of 40; job 4 has no reference (skipped).
    assert [(p["n"], p["agreed"]) for p in batches["points"]] == [(40, 40), (40, 40), (40, 20)]
    job_ids = [p["subgroup"] for p in batches["points"]]
    assert job_ids == sorted(job_ids) and batches["skipped"] == [job_ids[-1] + 1]
    assert batches["center"] == pytest.approx(100 / 120)
    assert [p["out_of_control"] for p in batches["points"]] == [False, False, True]


def test_the_points_are_the_quality_tests_grades(
    client: TestClient, engine: Engine, drifting: dict[str, Any]
) -> None:
    """One definition of "agreed": a point's counts are what api.review.quality.grade says."""
    from sqlmodel import Session

    body = _get(client, drifting["project"], window=25)
    drifter = next(chart for chart in body["reviewers"] if chart["unit"] == "drifter")
    with Session(engine) as session:
        labels = reviewer_labels(session, drifting["project"], "drifter")
        agreed = {g.label_id: g.agreed for g in grade(session, drifting["project"], "drifter", labels)}
    windows = [labels[i : i + 25] for i in range(0, len(labels), 25)]
    expected = [
        (len(w), sum(label.id in agreed for label in w), sum(agreed.get(label.id, False) for label in w))
        for w in windows
    ]
    assert [(p["labels"], p["n"], p["agreed"]) for p in drifter["points"]] == expected
    # The last window: 10 labels on gold pairs, then the 5 without a reference.
    assert expected[-1] == (15, 10, 0)


def test_the_parameters_change_the_chart(client: TestClient, drifting: dict[str, Any]) -> None:
    def drifter(**params: Any) -> dict[str, Any]:
        body = _get(client, drifting["project"], **params)
        return next(chart for chart in body["reviewers"] if chart["unit"] == "drifter")

    # Windows of 20: the limits narrow to 2/3 ± 0.316 and a perfect window (1.0) is above them too.
    chart = drifter(window=20)
    assert [p["p"] for p in chart["points"]] == [1.0, 1.0, 0.0]
    assert chart["points"][0]["ucl"] == pytest.approx(2 / 3 + 3 * (2 / 9 / 20) ** 0.5)
    assert [p["out_of_control"] for p in chart["points"]] == [True, True, True]
    # Windows of 10 at one sigma (2/3 ± 0.149): every point is outside, and the run rule of two
    # flags every second and later point in a row on one side.
    chart = drifter(window=10, sigma=1.0, run_length=2)
    out, both = ["outside_limits"], ["outside_limits", "run_of_2"]
    assert [p["rules"] for p in chart["points"]] == [out, both, both, both, out, both]


def test_a_reviewer_of_the_project_may_read_the_charts(client: TestClient, drifting: dict[str, Any]) -> None:
    response = client.get(CHARTS.format(drifting["project"]), headers=auth(drifting["tokens"]["fresh"]))
    assert response.status_code == 200 and len(response.json()["reviewers"]) == 3


def test_a_project_without_labels_has_empty_charts(client: TestClient) -> None:
    project = make_project(client, "empty")
    body = _get(client, project)
    assert body["reviewers"] == [] and body["batches"] is None and body["window"] == 20


@pytest.mark.parametrize(
    "query",
    [
        "window=0",
        "window=4",
        "window=1001",
        "window=abc",
        "window=99999999999999999999999",
        "window=1.5",
        "sigma=0",
        "sigma=-1",
        "sigma=nan",
        "sigma=inf",
        "sigma=-inf",
        "sigma=7",
        "sigma=x",
        "run_length=1",
        "run_length=0",
        "run_length=51",
        "run_length=",
    ],
)
def test_malformed_parameters_are_a_422(client: TestClient, query: str) -> None:
    project = make_project(client, "bad")
    response = client.get(f"{CHARTS.format(project)}?{query}")
    assert response.status_code == 422, (query, response.status_code, response.text)
