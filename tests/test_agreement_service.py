"""Agreement in the service: GET /v1/projects/{id}/agreement, the batch gate (a batch whose
reviewers agree too little *with confidence* does not calibrate; gold labels always do) and the
adjudication queue (disputed pairs of low-agreement batches, for senior reviewers only; the
adjudicated label decides the pair)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.calibrate import gate_labels
from api.calibrate.refits import usable_labels
from api.main import create_app
from api.models import Label, Pair
from api.review.agreement_batches import project_agreement
from api.review.human_labels import MIN_OVERLAP_ITEMS, human_label_per_pair
from tests import fakes
from tests.helpers import ADMIN, auth, fast_settings, make_project, new_reviewer, post_question_pairs

ANNOTATORS = ("ann1", "ann2", "ann3")
# Job 1: the three annotators agree everywhere. Job 2: they mostly don't.
AGREED = ["A>>B", "A>B", "tie", "B>A", "B>>A", "A>B", "B>A", "A>>B"]
MESSY = [
    ("A>>B", "B>>A", "tie"),
    ("B>A", "A>B", "A>>B"),
    ("tie", "A>B", "B>>A"),
    ("A>B", "A>B", "B>A"),
    ("B>>A", "A>>B", "tie"),
    ("tie", "tie", "tie"),
    ("A>B", "B>>A", "A>B"),
    ("B>A", "tie", "A>>B"),
]
FAST = {"min_seconds_base": 0.0, "min_seconds_per_1k_chars": 0.0, "honeypot_rate": 0.0}


@pytest.fixture(autouse=True)
def _fake_judges() -> None:
    fakes.install()


@pytest.fixture
def api(any_engine: Engine) -> Iterator[TestClient]:
    """The API as the admin, on SQLite and (with PRELABEL_TEST_DATABASE_URL) PostgreSQL."""
    settings = fast_settings(any_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as test_client:
        yield test_client


def _pairs(prefix: str, n: int) -> list[dict[str, str]]:
    return [
        {
            "client_id": f"{prefix}{i}",
            "prompt": f"{prefix} question {i}?",
            "response_a": "yes",
            "response_b": "no",
        }
        for i in range(n)
    ]


def _post_labels(client: TestClient, project_id: int, rows: list[tuple[str, str, str]]) -> None:
    body = "\n".join(
        json.dumps({"client_id": cid, "label": label, "source": "gold", "annotator": annotator})
        for cid, annotator, label in rows
    )
    r = client.post(
        f"/v1/projects/{project_id}/labels", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 201, r.text


def _setup(client: TestClient) -> tuple[int, int, int]:
    project_id = make_project(client, "agreement", routing=FAST)
    good = post_question_pairs(client, project_id, pairs=_pairs("g", len(AGREED)))
    bad = post_question_pairs(client, project_id, pairs=_pairs("m", len(MESSY)))
    rows = [(f"g{i}", a, label) for i, label in enumerate(AGREED) for a in ANNOTATORS]
    rows += [
        (f"m{i}", a, label)
        for i, labels in enumerate(MESSY)
        for a, label in zip(ANNOTATORS, labels, strict=True)
    ]
    _post_labels(client, project_id, rows)
    return project_id, good, bad


def _pair_ids(engine: Engine, job_id: int) -> dict[str, int]:
    with Session(engine) as session:
        return dict(session.exec(select(Pair.client_id, Pair.id).where(Pair.job_id == job_id)).all())  # type: ignore[arg-type]


def test_agreement_route_and_the_batch_gate(api: TestClient, any_engine: Engine) -> None:
    client, engine = api, any_engine
    project_id, good, bad = _setup(client)
    r = client.get(f"/v1/projects/{project_id}/agreement")
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    assert report["threshold"] == 0.667
    batches = {b["job_id"]: b for b in report["batches"]}
    assert batches[good]["calibrates"] and batches[good]["krippendorff_alpha_ordinal"] == 1.0
    assert batches[good]["disputed"] == 0 and batches[good]["n_items"] == len(AGREED)
    assert batches[bad]["below_threshold"] and batches[bad]["krippendorff_alpha_ordinal"] < 0.3
    # Eight pairs compared are too few to exclude a batch (and these are gold labels, which the
    # batch gate never drops): the disputed pairs still go to adjudication.
    assert (
        len(MESSY) < MIN_OVERLAP_ITEMS and batches[bad]["calibrates"] and batches[bad]["alpha_upper"] is None
    )
    assert batches[bad]["disputed"] == 7  # every messy pair but the unanimous tie
    assert batches[bad]["created_at"] is not None
    project = report["project"]
    assert project["n_items"] == len(AGREED) + len(MESSY)
    for key in (
        "cohen_kappa_mean",
        "fleiss_kappa",
        "krippendorff_alpha_ordinal",
        "krippendorff_alpha_nominal",
    ):
        assert 0.0 < project[key] < 1.0, key
    assert [(p["a"], p["b"], p["n"]) for p in report["pairs_of_reviewers"]] == [
        ("ann1", "ann2", 16),
        ("ann1", "ann3", 16),
        ("ann2", "ann3", 16),
    ]
    assert {r["reviewer"] for r in report["reviewers"]} == set(ANNOTATORS)
    assert all(
        0.0 <= r["ds_accuracy"] <= 1.0 and set(r["confusion"]) == {"A", "tie", "B"}
        for r in report["reviewers"]
    )
    with Session(engine) as session:
        assert project_agreement(session, project_id) == project["krippendorff_alpha_nominal"]
        sides, _ = usable_labels(session, project_id)
    # Gold labels calibrate whatever their batch's agreement.
    assert sorted(sides.index) == sorted(
        [*_pair_ids(engine, good).values(), *_pair_ids(engine, bad).values()]
    )


def _reviewer_labels(engine: Engine, job_id: int, votes: list[tuple[str, ...]], source: str) -> None:
    """Labels as the review flow stores them (a calibration-sample answer per reviewer)."""
    with Session(engine) as session:
        pairs = session.exec(select(Pair).where(Pair.job_id == job_id).order_by(Pair.id)).all()  # type: ignore[arg-type]
        for pair, labels in zip(pairs, votes, strict=True):
            for annotator, label in zip(ANNOTATORS, labels, strict=True):
                session.add(
                    Label(
                        project_id=pair.project_id,
                        pair_id=pair.id,  # type: ignore[arg-type]
                        label=label,
                        source=source,
                        annotator=annotator,
                        idempotency_key=f"{source}|{pair.id}|{annotator}",
                    )
                )
        session.commit()


def test_a_batch_is_excluded_only_with_evidence_and_never_its_gold(
    api: TestClient, any_engine: Engine
) -> None:
    client, engine = api, any_engine
    project_id = make_project(client, "evidence", routing=FAST)
    # 24 pairs the reviewers of the calibration sample disagree on (alpha far below 0.667 on
    # enough pairs), 3 of them also carrying a gold label; and a 4-pair batch just as messy.
    messy = MESSY * 3
    big = post_question_pairs(client, project_id, pairs=_pairs("c", len(messy)))
    small = post_question_pairs(client, project_id, pairs=_pairs("s", 4))
    _reviewer_labels(engine, big, messy, "calibration")
    _reviewer_labels(engine, small, MESSY[:4], "calibration")
    _post_labels(client, project_id, [(f"c{i}", "gold-import", "A>B") for i in range(3)])
    report = client.get(f"/v1/projects/{project_id}/agreement").json()
    batches = {b["job_id"]: b for b in report["batches"]}
    assert batches[big]["n_items"] == len(messy) >= MIN_OVERLAP_ITEMS
    assert batches[big]["alpha_upper"] < report["threshold"] and not batches[big]["calibrates"]
    assert batches[small]["below_threshold"] and batches[small]["calibrates"]  # 4 pairs: no evidence
    with Session(engine) as session:
        found = gate_labels.usable_label_set(session, project_id)
    big_ids, small_ids = _pair_ids(engine, big), _pair_ids(engine, small)
    assert sorted(found.sides.index) == sorted([*(big_ids[f"c{i}"] for i in range(3)), *small_ids.values()])
    assert found.n_excluded == len(messy) - 3
    # On a gold pair only the gold label votes: three reviewers who disagree with it do not flip it.
    assert {found.sides[big_ids[f"c{i}"]] for i in range(3)} == {"A"}
    version = client.post(f"/v1/projects/{project_id}/calibration/refit").json()
    assert version["state"] == "closed"
    reason = version["reason"]
    # The reason names what keeps the gate closed: the excluded batch (alpha, n, bound), and
    # the annotators' own agreement below the target.
    assert f"excluded the labels of {len(messy) - 3} pairs in 1 batch" in reason
    assert (
        f"job {big}: alpha {batches[big]['krippendorff_alpha_ordinal']:.2f} over {len(messy)} pairs" in reason
    )
    assert "your annotators agree with each other on" in reason and "cannot be guaranteed" in reason


def test_low_threshold_lets_every_batch_calibrate(api: TestClient, any_engine: Engine) -> None:
    client, engine = api, any_engine
    project_id = make_project(client, "lenient", routing={**FAST, "agreement_threshold": -1.0})
    post_question_pairs(client, project_id, pairs=_pairs("m", len(MESSY)))
    _post_labels(
        client,
        project_id,
        [(f"m{i}", a, x) for i, xs in enumerate(MESSY) for a, x in zip(ANNOTATORS, xs, strict=True)],
    )
    with Session(engine) as session:
        sides, _ = usable_labels(session, project_id)
    assert len(sides) == len(MESSY)


def test_disputed_pairs_reach_seniors_only_and_the_adjudication_decides(
    api: TestClient, any_engine: Engine
) -> None:
    client, engine = api, any_engine
    project_id, good, bad = _setup(client)
    messy = {pid: cid for cid, pid in _pair_ids(engine, bad).items()}
    plain = new_reviewer(client, "plain", projects=[project_id])
    r = client.post("/v1/reviewers", json={"name": "senior", "projects": [project_id], "senior": True})
    assert r.status_code == 201 and r.json()["senior"] is True
    senior = r.json()["token"]

    r = client.post(f"/v1/projects/{project_id}/adjudication/next", headers=auth(plain))
    assert r.status_code == 403
    # Nor through the ordinary queue route.
    r = client.post(
        f"/v1/projects/{project_id}/review/next", json={"queue": "adjudication"}, headers=auth(plain)
    )
    assert r.status_code == 422
    # Clients cannot import adjudicated labels.
    r = client.post(
        f"/v1/projects/{project_id}/labels",
        json={"labels": [{"client_id": "m0", "label": "A>B", "source": "adjudicated"}]},
    )
    assert r.status_code == 403, r.text

    served = []
    while True:
        r = client.post(f"/v1/projects/{project_id}/adjudication/next", headers=auth(senior))
        assert r.status_code == 200, r.text
        item = r.json()["item"]
        if item is None:
            break
        assert item["queue"] == "adjudication" and item["prelabel"] is None
        assert [x["code"] for x in item["why"]["reasons"]] == ["disputed"]
        served.append(item["pair_id"])
        r = client.post(
            f"/v1/review/leases/{item['lease_id']}/submit", json={"label": "A>>B"}, headers=auth(senior)
        )
        assert r.status_code == 201, r.text
        assert r.json()["source"] == "adjudicated"
    assert len(served) == 7 and set(served) <= set(messy)
    assert messy[next(p for p in messy if p not in served)] == "m5"  # the unanimous pair is not disputed

    with Session(engine) as session:
        answers = human_label_per_pair(session, project_id, served)
        assert {(a.label, a.method) for a in answers.values()} == {("A>>B", "adjudicated")}
        n_adjudicated = len(session.exec(select(Label).where(Label.source == "adjudicated")).all())
        assert n_adjudicated == 7
        others = human_label_per_pair(session, project_id)
        assert others[_pair_ids(engine, good)["g0"]].method == "dawid_skene"
    # Settled: nothing left to adjudicate (the queue follows the labels).
    r = client.post(f"/v1/projects/{project_id}/adjudication/next", headers=auth(senior))
    assert r.json()["item"] is None


def test_a_crowd_that_agrees_with_itself_half_the_time_is_named_as_the_ceiling(
    client: TestClient, engine: Engine, settings: Any
) -> None:
    """Three gold votes per pair from a crowd that agrees ~50 % of the time: the gold is kept
    (no "no usable labels"), the gate stays closed, and the reason names the human ceiling."""
    from tests.helpers import run_worker

    project_id = make_project(client, "crowd", routing=FAST)
    post_question_pairs(client, project_id, pairs=_pairs("q", 80))
    run_worker(engine, settings)
    rows = []
    for i in range(80):
        # Two annotators name one side, the third (in rotation) the other: of the three pairs
        # of annotators on each pair one agrees, a raw agreement of 1/3.
        majority, minority = ("A>B", "B>A") if i % 2 else ("B>A", "A>B")
        votes = [majority, majority, minority]
        votes = votes[i % 3 :] + votes[: i % 3]
        rows += [(f"q{i}", a, v) for a, v in zip(ANNOTATORS, votes, strict=True)]
    _post_labels(client, project_id, rows)
    version = client.post(f"/v1/projects/{project_id}/calibration/refit").json()
    assert version["state"] == "closed" and version["n_labels"] == 80
    assert "no usable labels" not in version["reason"]
    assert "your annotators agree with each other on 33% of 240 comparisons" in version["reason"]
    assert "a target of 90% agreement with a human label cannot be guaranteed" in version["reason"]


def test_an_imported_label_does_not_carry_an_excluded_batch_into_calibration(
    api: TestClient, any_engine: Engine
) -> None:
    """Only gold keeps its pair in an excluded batch: on a pair with an ``import`` label the
    batch's reviewers still vote, so keeping it let the excluded labels calibrate after all."""
    client, engine = api, any_engine
    project_id = make_project(client, "import-evidence", routing=FAST)
    messy = MESSY * 3
    big = post_question_pairs(client, project_id, pairs=_pairs("c", len(messy)))
    _reviewer_labels(engine, big, messy, "calibration")
    body = "\n".join(
        json.dumps({"client_id": f"c{i}", "label": "A>B", "source": "import", "annotator": "vendor"})
        for i in range(3)
    )
    r = client.post(
        f"/v1/projects/{project_id}/labels", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 201, r.text
    with Session(engine) as session:
        found = gate_labels.usable_label_set(session, project_id)
    assert len(found.sides) == 0 and found.n_excluded == len(messy)
