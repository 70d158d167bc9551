"""The judge cascade through the service: stage-by-stage judging, calls saved, backfill, re-routing."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.calibrate import refits, versions
from api.models import CalibrationVersion, Judgment, Pair, Project
from api.routing import decisions
from api.routing.route import GatedInput, JudgmentView, needs_full_panel, route_many
from api.schemas import RoutingSettings
from api.settings import Settings
from judge.recorded import load_recorded
from judge.verdicts import from_side
from tests.helpers import LLMBAR, fold_wal, post_labels, post_recorded_pairs, run_worker, served_copy

pytestmark = pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")
# Cheapest first by cost_rank: the cascade calls gpt-3.5, then gpt-4, then palm-2.
PANEL = [("gpt-3.5-turbo/vanilla_norules", 1), ("gpt-4/vanilla_norules", 2), ("palm-2/vanilla_norules", 3)]
STAGES = [[f"replay/{judge}"] for judge, _ in PANEL]
N_CAL = 300


@pytest.fixture(scope="module")
def recorded() -> list:
    pairs = load_recorded(LLMBAR)
    random.Random(1).shuffle(pairs)  # the file is ordered by subset; a calibration sample is random
    return pairs


def post_gold(client: TestClient, project: int, pairs: list) -> None:
    post_labels(client, project, [(p.id, p.gold) for p in pairs], "gold")


def job_rows(client: TestClient, job: int) -> list[dict]:
    text = client.get(f"/v1/jobs/{job}/results", params={"format": "ndjson"}).text
    return [json.loads(line) for line in text.splitlines()]


def judges_of(row: dict) -> set[str]:
    return {j["judge"] for j in row["judgments"]}


@pytest.fixture(scope="module")
def calibrated_db(
    migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory, recorded: list
) -> tuple[Path, int, int]:
    """A cascade project calibrated on 300 gold labels, then fed the other 266 pairs.

    Judging 566 pairs takes ~20 s, so the database is built once per module; each test gets
    a copy of it (``calibrated``), so a test that labels or re-routes changes only its own.
    Returns the database file, the project and the job of the 266 pairs.
    """
    path = tmp_path_factory.mktemp("cascade") / "calibrated.db"
    with served_copy(migrated_sqlite, path) as (client, engine, settings):
        spec = [{"model": f"replay/{j}", "api_base": str(LLMBAR), "cost_rank": rank} for j, rank in PANEL]
        routing = {
            "cascade": True,
            "target_agreement": 0.8,
            "order_sensitive_judges": [f"replay/{PANEL[1][0]}"],
            "calibration_sample_rate": 0.0,
            "refit_every": 1000,
            # Audits at the configured rate from the first pair: the tests replay the audit draw.
            "audit_boost_pairs": 0,
        }
        body = {"name": "cascade", "judges": spec, "allow_empty_responses": True, "routing": routing}
        project = client.post("/v1/projects", json=body).json()["id"]
        cal_job = post_recorded_pairs(client, project, recorded[:N_CAL])
        run_worker(engine, settings)
        # Gate closed: the whole panel judges every pair (the calibration needs every verdict).
        cal_rows = job_rows(client, cal_job)
        assert all(len(r["judgments"]) == 6 and r["reasons"][-1] == "gate_closed" for r in cal_rows)
        assert client.get(f"/v1/jobs/{cal_job}").json()["judge_calls_saved"] == 0
        post_gold(client, project, recorded[:N_CAL])
        version = client.post(f"/v1/projects/{project}/calibration/refit").json()
        assert version["state"] == "open", version
        job = post_recorded_pairs(client, project, recorded[N_CAL:])
        run_worker(engine, settings)
    fold_wal(path)
    return path, project, job


class Calibrated(NamedTuple):
    client: TestClient
    engine: Engine
    settings: Settings
    project: int
    job: int


@pytest.fixture
def calibrated(calibrated_db: tuple[Path, int, int], tmp_path: Path) -> Iterator[Calibrated]:
    """This test's own copy of the calibrated database, with the API on it."""
    path, project, job = calibrated_db
    with served_copy(path, tmp_path / "test.db") as served:
        yield Calibrated(*served, project, job)


def test_open_cascade_judges_stage_by_stage_and_records_calls_saved(
    calibrated: Calibrated, recorded: list
) -> None:
    client, project, job = calibrated.client, calibrated.project, calibrated.job
    rows = job_rows(client, job)
    assert len(rows) == len(recorded) - N_CAL
    routing = RoutingSettings.model_validate(client.get(f"/v1/projects/{project}").json()["routing"])
    stages = Counter(r["decision_stage"] for r in rows)
    assert stages[0] > 20 and stages[1] + stages[2] > 20, stages  # both cheap exits and escalations
    for row in rows:
        stage = row["decision_stage"]
        # Exactly the judges of stages <= the deciding stage were asked, each in both orders;
        # audited pairs (drawn before judging) get the whole panel, for the next fit.
        drawn = needs_full_panel(row["pair_id"], row["decision_version"], routing)
        asked = len(STAGES) if drawn else stage + 1
        assert judges_of(row) == {j for s in STAGES[:asked] for j in s}, row
        assert len(row["judgments"]) == 2 * asked
        if stage < len(STAGES) - 1 and row["route"] == "review":
            # Stopping early for review needs a reason no later judge can undo (or an audit).
            assert set(row["reasons"]) & {"order_sensitive", "judge_failed", "safety_flag", "audit"}, row
    status = client.get(f"/v1/jobs/{job}").json()
    assert status["judge_calls_saved"] == sum(6 - len(r["judgments"]) for r in rows) > 100
    state = client.get(f"/v1/projects/{project}/calibration").json()
    cascade = state["gate"]["cascade"]
    assert cascade["stages"] == STAGES and cascade["judge_calls_saved"] == status["judge_calls_saved"]
    assert cascade["expected_calls_per_pair"] < 6
    gold = {p.id: p.gold for p in recorded}
    accepted = [r for r in rows if r["route"] == "auto_accept"]
    assert len(accepted) > 40
    agreement = sum(r["chosen"] == gold[r["client_id"]] for r in accepted) / len(accepted)
    assert agreement >= 0.75, agreement  # one split; `prelabel bench replay` checks the guarantee
    html = client.get(f"/v1/projects/{project}/calibration/report.html").text
    assert "Judge cascade" in html and "judge calls saved so far" in html


def test_staged_judging_decides_as_the_full_panel_replay_would(
    calibrated: Calibrated, recorded: list
) -> None:
    """The worker's incremental calls reach the decision that routing on every verdict gives."""
    client, engine, project, job = calibrated.client, calibrated.engine, calibrated.project, calibrated.job
    rows = job_rows(client, job)
    by_client = {p.id: p for p in recorded}
    with Session(engine) as session:
        version = versions.latest_version(session, project)
        db_project = session.get(Project, project)
        assert db_project is not None
        routing = db_project.routing_settings()
        precheck = dict(session.exec(select(Pair.id, Pair.safety_flag).where(Pair.job_id == job)).all())
    gate, name = versions.gate_model(version), versions.version_name(version)
    frame_rows, inputs = [], {}
    for row in rows:
        views = []
        for j in by_client[row["client_id"]].judgments:
            judge = f"replay/{j.judge}"
            if judge in {s[0] for s in STAGES}:
                verdict = from_side(j.verdict) if j.verdict != "invalid" else "invalid"
                views.append(JudgmentView(judge, j.order, verdict))
                frame_rows.append((row["pair_id"], judge, j.order, verdict, None, False))
        inputs[row["pair_id"]] = GatedInput(views, precheck[row["pair_id"]])
    frame = pd.DataFrame(frame_rows, columns=["pair_id", "judge", "order", "verdict", "confidence", "failed"])
    replayed = route_many(list(inputs), inputs, frame, gate, name, routing)
    for row in rows:
        expected = replayed[row["pair_id"]]
        assert (row["route"], row["decision_stage"], row["chosen"]) == (
            expected.route,
            expected.stage,
            expected.chosen,
        ), row["client_id"]


def test_labelled_pairs_get_the_missing_judges_and_stricter_versions_escalate(
    calibrated: Calibrated, recorded: list
) -> None:
    client, engine, settings = calibrated.client, calibrated.engine, calibrated.settings
    project, job = calibrated.project, calibrated.job
    rows = job_rows(client, job)
    cheap = [r for r in rows if r["decision_stage"] == 0 and r["route"] == "auto_accept"]
    assert len(cheap) >= 10
    by_client = {p.id: p for p in recorded}
    # Gold on pairs accepted at stage 0: the fit needs every stage's verdicts on them.
    post_gold(client, project, [by_client[r["client_id"]] for r in cheap[:5]])
    actions = refits.maintain(engine)
    assert any("5 labelled pairs sent to the missing judges" in a for a in actions), actions
    assert client.get(f"/v1/jobs/{job}").json()["by_state"]["pending"] == 5
    run_worker(engine, settings)
    ids = {r["pair_id"] for r in cheap[:5]}
    with Session(engine) as session:
        got = session.exec(
            select(Judgment.pair_id, Judgment.judge, Judgment.order).where(Judgment.pair_id.in_(ids))
        )
        counts = Counter(got)
    assert len(counts) == 5 * 6 and set(counts.values()) == {1}  # whole panel, nothing stored twice
    assert refits.maintain(engine) == []  # nothing left to backfill

    # A stricter version (threshold no stage-0 score reaches): stage-0 accepts need stage 1.
    with Session(engine, expire_on_commit=False) as session:
        current = versions.latest_version(session, project)
        db_project = session.get(Project, project)
        assert current is not None and db_project is not None
        strict = CalibrationVersion(
            project_id=project,
            version=current.version + 1,
            trigger="manual",
            open=True,
            reason="test: stricter threshold",
            threshold=0.9999,
            n_labels=current.n_labels,
            label_sources=current.label_sources,
            model={**current.model, "threshold": 0.9999},  # type: ignore[dict-item]
            report={},
        )
        session.add(strict)
        session.commit()
    decisions.reroute(engine, db_project, strict)
    with Session(engine) as session:
        pending = set(session.exec(select(Pair.id).where(Pair.job_id == job, Pair.state == "pending")))
    assert {r["pair_id"] for r in cheap[5:]} <= pending
    run_worker(engine, settings)
    after = {r["pair_id"]: r for r in job_rows(client, job)}
    for row in cheap[5:]:
        again = after[row["pair_id"]]
        assert again["state"] == "done" and again["decision_version"] == f"cal-{strict.version}"
        assert again["decision_stage"] >= 1 and len(again["judgments"]) >= 4
