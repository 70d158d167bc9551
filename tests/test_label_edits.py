"""Edit and undo: a reviewer revises their own label (append-only) and reads their history."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.calibrate import refits
from api.models import Label
from api.review import human_labels
from api.settings import Settings
from tests import fakes
from tests.helpers import auth, make_project, new_reviewer, post_question_pairs, run_worker


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    return fakes.install()


def _labelled(
    client: TestClient, engine: Engine, settings: Settings, name: str, n: int = 2, **routing: Any
) -> tuple[str, list[dict[str, Any]]]:
    """A project of ``n`` pairs and a reviewer (token) who labels each "A>B"; their labels."""
    project = make_project(
        client, f"edits-{name}", routing={"min_seconds_base": 0.0, "min_seconds_per_1k_chars": 0.0, **routing}
    )
    post_question_pairs(client, project, n)
    run_worker(engine, settings)
    token = new_reviewer(client, name, projects=[project])
    out = []
    for _ in range(n):
        item = client.post(f"/v1/projects/{project}/review/next", json={}, headers=auth(token)).json()["item"]
        r = client.post(
            f"/v1/review/leases/{item['lease_id']}/submit", json={"label": "A>B"}, headers=auth(token)
        )
        assert r.status_code == 201, r.text
        out.append({**r.json(), "project_id": project})
    return token, out


def _revise(client: TestClient, token: str, label_id: int, **body: Any) -> Any:
    return client.post(f"/v1/review/labels/{label_id}/revise", json=body, headers=auth(token))


def test_a_revision_supersedes_the_old_label_and_both_are_kept(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    # Every pair is in the random calibration sample: the labels calibrate.
    token, labels = _labelled(client, engine, settings, "rita", calibration_sample_rate=1.0)
    project = labels[0]["project_id"]
    old = labels[0]["label_id"]
    r = _revise(client, token, old, label="B>>A", rationale="misread A")
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["supersedes"] == old and new["label"] == "B>>A" and new["warnings"] == []
    assert new["source"] == "calibration" and new["label_id"] != old
    # A retry of the same revision is a no-op; revising the replaced label again is a conflict.
    again = _revise(client, token, old, label="B>>A", rationale="misread A")
    assert (
        again.status_code == 200 and again.json()["label_id"] == new["label_id"] and again.json()["duplicate"]
    )
    assert _revise(client, token, old, label="tie").status_code == 409
    # The newest can be revised in turn (undo).
    undo = _revise(client, token, new["label_id"], label="A>B")
    assert undo.status_code == 201 and undo.json()["supersedes"] == new["label_id"]
    with Session(engine) as session:
        rows = session.exec(
            select(Label).where(Label.pair_id == labels[0]["pair_id"]).order_by(Label.id)
        ).all()
        assert [(r.label, r.superseded_by_id) for r in rows] == [
            ("A>B", rows[1].id),
            ("B>>A", rows[2].id),
            ("A>B", None),
        ]
        assert rows[0].created_at <= rows[1].created_at <= rows[2].created_at
        # Only the current label counts; the calibration sees one label per pair, the newest.
        counting = [r.id for r in human_labels.counting_labels(session, project)]
        assert rows[2].id in counting and rows[0].id not in counting and rows[1].id not in counting
        assert len(refits.usable_labels(session, project)[0]) == 2
        # The revision counts towards the next refit like any new calibration label.
        assert refits.new_usable_labels(session, project, rows[0].created_at) >= 2


def test_only_your_own_current_label_can_be_revised(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    token, labels = _labelled(client, engine, settings, "sam", n=1)
    other = new_reviewer(client, "tom")
    label_id = labels[0]["label_id"]
    assert _revise(client, other, label_id, label="tie").status_code == 403
    assert _revise(client, token, 999_999, label="tie").status_code == 404
    assert _revise(client, token, label_id, both_bad=True).status_code == 422  # both_bad needs a rationale
    assert (
        client.post(f"/v1/review/labels/{label_id}/revise", json={"label": "tie"}).status_code == 403
    )  # admin


def test_history_lists_your_current_labels_newest_first_with_the_redacted_pair(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    token, labels = _labelled(client, engine, settings, "uma", n=3)
    project, given = labels[0]["project_id"], [label["label_id"] for label in labels]
    revised = _revise(client, token, given[0], label="tie").json()["label_id"]
    history = client.get(f"/v1/projects/{project}/review/history?limit=2", headers=auth(token))
    assert history.status_code == 200
    rows = history.json()
    assert [r["label_id"] for r in rows] == [revised, given[2]]
    assert set(rows[0]) == {
        "label_id",
        "pair_id",
        "label",
        "aspects",  # issue 23: per-aspect labels (None without aspects)
        "both_bad",
        "safety_flag",
        "rationale",
        "created_at",
        "prompt",
        "response_a",
        "response_b",
    }
    assert rows[0]["label"] == "tie" and rows[0]["prompt"].startswith("Question")
    # Another reviewer's history is their own (empty); the limit is bounded.
    other = new_reviewer(client, "vic", projects=[project])
    assert client.get(f"/v1/projects/{project}/review/history", headers=auth(other)).json() == []
    assert (
        client.get(f"/v1/projects/{project}/review/history?limit=0", headers=auth(token)).status_code == 422
    )
