"""Reviewer quality over HTTP: honeypots, the auto-pause (423, quarantine, resume), the speed
filter, the quality table, and incidents not served back to the reviewer who raised them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.calibrate import refits
from api.main import create_app
from api.models import Honeypot, Label, Project, ReviewItem, ReviewLease
from api.review import human_labels
from api.review.quality import grade, reference_side
from api.settings import Settings
from tests import fakes
from tests.helpers import (
    ADMIN,
    auth,
    fast_settings,
    make_project,
    new_reviewer,
    post_question_pairs,
    run_worker,
)

# Tests answer at machine speed: the speed filter is off unless a test is about it.
NO_SPEED = {"min_seconds_base": 0.0, "min_seconds_per_1k_chars": 0.0}


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    return fakes.install()


@pytest.fixture
def on_any(any_engine: Engine) -> Iterator[tuple[TestClient, Engine, Settings]]:
    """The API as the admin on SQLite and on PostgreSQL (when PRELABEL_TEST_DATABASE_URL is set)."""
    settings = fast_settings(any_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        yield client, any_engine, settings


def _project(client: TestClient, engine: Engine, settings: Settings, n: int, **routing: Any) -> int:
    project = make_project(client, "q", routing={**NO_SPEED, **routing})
    post_question_pairs(client, project, n)
    run_worker(engine, settings)
    return project


def _next(client: TestClient, project: int, token: str, queue: str = "review") -> Any:
    return client.post(f"/v1/projects/{project}/review/next", json={"queue": queue}, headers=auth(token))


def _submit(client: TestClient, token: str, lease_id: int, **body: Any) -> Any:
    return client.post(f"/v1/review/leases/{lease_id}/submit", json=body, headers=auth(token))


def _honeypots(client: TestClient, project: int, answers: dict[str, str]) -> None:
    labels = [
        {"client_id": cid, "label": label, "source": "gold", "annotator": "gold", "honeypot": True}
        for cid, label in answers.items()
    ]
    r = client.post(f"/v1/projects/{project}/labels", json={"labels": labels})
    assert r.status_code == 201, r.text


def _quality(client: TestClient, project: int) -> dict[str, dict[str, Any]]:
    r = client.get(f"/v1/projects/{project}/review/quality")
    assert r.status_code == 200, r.text
    return {row["name"]: row for row in r.json()["reviewers"]}


def test_a_honeypot_flag_needs_a_gold_label_and_honeypot_answers_cannot_be_imported(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _project(client, engine, settings, 1)
    for bad, status in (({"source": "import", "honeypot": True}, 422), ({"source": "honeypot"}, 403)):
        body = {"labels": [{"client_id": "c0", "label": "A", **bad}]}
        r = client.post(f"/v1/projects/{project}/labels", json=body)
        assert r.status_code == status and "honeypot" in r.text
    _honeypots(client, project, {"c0": "A>B"})
    _honeypots(client, project, {"c0": "A>B"})  # a repeat is a no-op
    with Session(engine) as session:
        assert [(h.label, h.project_id) for h in session.exec(select(Honeypot))] == [("A>B", project)]


def test_honeypots_are_served_like_review_items_and_graded_with_an_interval(
    on_any: tuple[TestClient, Engine, Settings],
) -> None:
    client, engine, settings = on_any
    project = _project(client, engine, settings, 24, honeypot_rate=0.5)
    _honeypots(client, project, {f"c{i}": "A>B" for i in range(20, 24)})
    token = new_reviewer(client, "hana")
    with Session(engine) as session:
        honeypot_pairs = set(session.exec(select(Honeypot.pair_id)))
    served: list[dict[str, Any]] = []
    missed = None
    while (r := _next(client, project, token)).json()["item"] is not None:
        item = r.json()["item"]
        served.append(item)
        # Wrong on the first honeypot pair met (its side is A), right on every other.
        if missed is None and item["pair_id"] in honeypot_pairs:
            missed = item["pair_id"]
        answer = "B>A" if item["pair_id"] == missed else "A>B"
        assert _submit(client, token, item["lease_id"], label=answer).status_code == 201
    with Session(engine) as session:
        origins = [
            (lease.pair_id, session.get(ReviewItem, lease.item_id).origin)  # type: ignore[union-attr]
            for lease in session.exec(select(ReviewLease))
        ]
        sources = {
            label.pair_id: label.source for label in session.exec(select(Label)) if label.annotator == "hana"
        }
    # Each pair once, honeypot or not: a honeypot pair that is also a review item is not re-asked.
    assert len(origins) == len({p for p, _ in origins}) == 24
    from_honeypot = [p for p, origin in origins if origin == "honeypot"]
    assert from_honeypot, "a 50% rate served no honeypot"
    assert all(sources[p] == "honeypot" for p in from_honeypot)
    # What next returned looks the same for both kinds of item.
    assert len({frozenset(item) for item in served}) == 1
    assert {(i["queue"], i["labels_needed"], i["why"]["selected_by"]) for i in served} == {
        ("review", 1, "uncertainty")
    }
    # Every honeypot pair was answered once (as a honeypot, or as the review item it also is).
    assert honeypot_pairs <= set(sources) and len(served) == len(sources) == 24
    row = _quality(client, project)["hana"]
    assert row["honeypots_seen"] == 4 and row["honeypot_accuracy"] == 0.75
    lo, hi = row["honeypot_ci"]
    assert 0.0 < lo < 0.75 < hi < 1.0
    assert row["labels"] == len(sources) and row["paused"] is False


def test_reference_needs_a_strict_majority_of_at_least_two_peers() -> None:
    assert reference_side(["A", "A"]) == "A"
    assert reference_side(["A", "B", "tie"]) is None
    assert reference_side(["B", None, "B", "A"]) == "B"
    assert reference_side([None, "A"]) is None


def _answer_round(
    client: TestClient, project: int, tokens: dict[str, str], answers: dict[str, str]
) -> dict[str, int]:
    """Each reviewer takes and answers one item; returns their status codes from next."""
    codes = {}
    for name, token in tokens.items():
        r = _next(client, project, token)
        codes[name] = r.status_code
        if r.status_code == 200 and r.json()["item"] is not None:
            lease = r.json()["item"]["lease_id"]
            assert _submit(client, token, lease, label=answers[name]).status_code == 201
    return codes


def test_a_reviewer_who_disagrees_with_their_peers_is_paused_quarantined_and_resumed(
    on_any: tuple[TestClient, Engine, Settings],
) -> None:
    client, engine, settings = on_any
    project = _project(client, engine, settings, 30, review_overlap=3, honeypot_rate=0.0)
    tokens = {name: new_reviewer(client, name) for name in ("ann", "bob", "spam")}
    answers = {"ann": "A>B", "bob": "A>>B", "spam": "B>A"}
    paused_after = None
    for round_ in range(1, 30):
        codes = _answer_round(client, project, tokens, answers)
        if codes["spam"] == 423:
            paused_after = round_ - 1
            break
    # Five straight misses reject H0 (accuracy >= 0.85) for H1 (<= 0.6) at alpha 0.01, beta 0.05.
    assert paused_after == 5
    r = _next(client, project, tokens["spam"])
    assert r.status_code == 423
    detail = r.json()["detail"]
    assert detail["code"] == "reviewer_paused" and "admin" in detail["message"]
    table = _quality(client, project)
    assert table["spam"]["paused"] and "0 of 0 honeypots" in table["spam"]["paused_reason"]
    assert table["spam"]["peer_agreement"] == 0.0 and table["spam"]["quarantined_labels"] == 5
    # ann's peers split (bob A, spam B) before the pause, and one peer is no reference after it.
    assert not table["ann"]["paused"] and table["ann"]["peer_agreement"] is None
    with Session(engine) as session:
        held = session.exec(select(Label).where(Label.annotator == "spam")).all()
        assert len(held) == 5 and all(label.quarantined for label in held)
    # Honest reviewers go on; with spam paused their answers are checked against each other only.
    assert _answer_round(client, project, {k: tokens[k] for k in ("ann", "bob")}, answers) == {
        "ann": 200,
        "bob": 200,
    }
    spam_id = client.get("/v1/review/me", headers=auth(tokens["spam"])).json()["id"]
    resume = f"/v1/reviewers/{spam_id}/resume"
    assert client.post(resume, json={"project_id": 999}).status_code == 404
    assert client.post(resume, json={"project_id": project}, headers=auth(tokens["ann"])).status_code == 403
    r = client.post(resume, json={"project_id": project, "release": True})
    assert r.status_code == 200 and r.json()["released_labels"] == 5
    assert client.post(resume, json={"project_id": project}).status_code == 409  # not paused now
    with Session(engine) as session:
        assert not any(label.quarantined for label in session.exec(select(Label)))
    assert _next(client, project, tokens["spam"]).status_code == 200
    assert _quality(client, project)["spam"]["paused"] is False


def test_a_spammer_caught_by_honeypots_alone(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = _project(client, engine, settings, 40, honeypot_rate=0.5, quality_alpha=0.2, quality_beta=0.2)
    _honeypots(client, project, {f"c{i}": "A>B" for i in range(30, 40)})
    token = new_reviewer(client, "lazy")
    n = 0
    while (r := _next(client, project, token)).status_code == 200 and r.json()["item"] is not None:
        assert _submit(client, token, r.json()["item"]["lease_id"], label="B>>A").status_code == 201
        n += 1
    assert r.status_code == 423 and n < 40
    row = _quality(client, project)["lazy"]
    assert row["paused"] and row["honeypot_accuracy"] == 0.0 and row["honeypots_seen"] >= 2


def test_a_label_faster_than_reading_time_is_flagged_and_never_calibrates(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    # Every pair is in the random calibration sample: its reviewer labels would calibrate.
    project = make_project(
        client,
        "fast",
        routing={"calibration_sample_rate": 1.0, "min_seconds_base": 2.0, "min_seconds_per_1k_chars": 5.0},
    )
    post_question_pairs(client, project, 3)
    run_worker(engine, settings)
    token = new_reviewer(client, "quick")
    item = _next(client, project, token).json()["item"]
    r = _submit(client, token, item["lease_id"], label="A>B")  # answered at once
    assert r.status_code == 201
    assert [w["code"] for w in r.json()["warnings"]] == ["too_fast"] and r.json()["source"] == "calibration"
    # A client claiming more time than the server saw does not hide a quick answer either.
    item = _next(client, project, token).json()["item"]
    r = _submit(client, token, item["lease_id"], label="A>B", time_on_task_s=600)
    assert [w["code"] for w in r.json()["warnings"]] == ["too_fast"]
    with Session(engine) as session:
        labels = session.exec(select(Label)).all()
        assert len(labels) == 2 and all(label.speed_flagged for label in labels)
        usable, sources = refits.usable_labels(session, project)
        assert usable.empty and sources["calibration"]["n"] == 0
        # Lift the flag and the same labels calibrate: the flag is what kept them out.
        for label in labels:
            label.speed_flagged = False
            session.add(label)
        session.commit()
        assert len(refits.usable_labels(session, project)[0]) == 2
        # A quarantined label is kept out the same way, and a refit counts none of them.
        for label in labels:
            label.quarantined = True
            session.add(label)
        session.commit()
        assert refits.usable_labels(session, project)[0].empty
        stored_project = session.get(Project, project)
    assert stored_project is not None and refits.refit(engine, stored_project).n_labels == 0


def test_grading_uses_known_answers_on_sides(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = _project(client, engine, settings, 2, honeypot_rate=0.0)
    _honeypots(client, project, {"c0": "A>>B"})
    token = new_reviewer(client, "side")
    with Session(engine) as session:
        honeypot_pair = session.exec(select(Honeypot.pair_id)).one()
    for _ in range(2):
        item = _next(client, project, token).json()["item"]
        # A weaker "A>B" on the "A>>B" honeypot still agrees: grades compare sides.
        answer = "A>B" if item["pair_id"] == honeypot_pair else "tie"
        assert _submit(client, token, item["lease_id"], label=answer).status_code == 201
    with Session(engine) as session:
        labels = session.exec(select(Label).where(Label.annotator == "side").order_by(Label.id)).all()
        graded = grade(session, project, "side", labels)
    # Only the honeypot pair has a reference (no peers on the other).
    assert [(g.pair_id, g.kind, g.agreed) for g in graded] == [(honeypot_pair, "honeypot", True)]


def test_an_escalation_is_not_served_back_to_the_reviewer_who_raised_it(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _project(client, engine, settings, 1)
    raiser, other = new_reviewer(client, "raiser"), new_reviewer(client, "other")
    item = _next(client, project, raiser).json()["item"]
    assert _submit(client, raiser, item["lease_id"], label="tie", safety_flag=True).status_code == 201
    assert _next(client, project, raiser, "incident").json()["item"] is None
    escalated = _next(client, project, other, "incident").json()["item"]
    assert escalated is not None and escalated["pair_id"] == item["pair_id"]


def test_a_honeypot_answer_grades_the_reviewer_and_never_labels_the_pair(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _project(client, engine, settings, 6, honeypot_rate=0.5)
    # The honeypot is a pair of a later job, never routed: a routed honeypot pair could be served
    # as a routine item first (the queue's order among equal priorities is not fixed), and a
    # reviewer is never shown a honeypot pair twice.
    honeypot = {"client_id": "h0", "prompt": "Sort a list?", "response_a": "sorted(xs)", "response_b": "?"}
    post_question_pairs(client, project, pairs=[honeypot])
    _honeypots(client, project, {"h0": "A>B"})
    token = new_reviewer(client, "wrong")
    served_as_honeypot = []
    while (item := _next(client, project, token).json()["item"]) is not None:
        with Session(engine) as session:
            lease = session.get(ReviewLease, item["lease_id"])
            origin = session.get(ReviewItem, lease.item_id).origin  # type: ignore[union-attr]
        if origin == "honeypot":
            served_as_honeypot.append(item["pair_id"])
        answer = "B>>A" if origin == "honeypot" else "A>B"
        assert _submit(client, token, item["lease_id"], label=answer).status_code == 201
    assert len(served_as_honeypot) == 1
    (pair_id,) = served_as_honeypot
    run_worker(engine, settings)  # judged now, so that it could calibrate if it were allowed to
    with Session(engine) as session:
        answers = session.exec(select(Label).where(Label.source == "honeypot")).all()
        assert [(a.pair_id, a.label) for a in answers] == [(pair_id, "B>>A")]
        assert answers[0].id not in {label.id for label in human_labels.counting_labels(session, project)}
        usable, _ = refits.usable_labels(session, project)
        sides = human_labels.human_sides(human_labels.counting_labels(session, project))
    # The pair's answer is its gold label alone (the reviewer's "B" did not turn it into a tie),
    # and it does not calibrate: honeypots are picked for being clear, not drawn from the stream.
    assert sides[pair_id] == "A"
    assert pair_id not in usable.index
    assert _quality(client, project)["wrong"]["honeypot_accuracy"] == 0.0


def test_a_reviewer_who_contradicts_gold_is_graded_by_it_and_the_gold_keeps_its_pair(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    """Disagreeing with gold is a reviewer-quality signal, never a veto of the gold label."""
    project = _project(client, engine, settings, 12, honeypot_rate=0.0)
    gold = [{"client_id": f"c{i}", "label": "A>B", "source": "gold", "annotator": "gold"} for i in range(12)]
    assert client.post(f"/v1/projects/{project}/labels", json={"labels": gold}).status_code == 201
    token = new_reviewer(client, "contrarian")
    n = 0
    while (r := _next(client, project, token)).status_code == 200 and r.json()["item"] is not None:
        assert _submit(client, token, r.json()["item"]["lease_id"], label="B>>A").status_code == 201
        n += 1
    # Five straight misses against known answers pause the reviewer (as with honeypots).
    assert r.status_code == 423 and n == 5
    row = _quality(client, project)["contrarian"]
    assert row["paused"] and row["honeypots_seen"] == 5 and row["honeypot_accuracy"] == 0.0
    assert "5 honeypots or gold labels" in row["paused_reason"]
    with Session(engine) as session:
        labels = session.exec(select(Label).where(Label.annotator == "contrarian")).all()
        assert {g.kind for g in grade(session, project, "contrarian", list(labels))} == {"gold"}
        answers = human_labels.human_label_per_pair(session, project)
    assert {a.side for a in answers.values()} == {"A"}  # every pair keeps its gold side
