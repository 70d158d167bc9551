"""Recovery and control: retry a job's failed judgments, cancel its pending work, edit a
project's panel and routing settings (audited, refitted), NDJSON posted as JSON."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.judging.claims import claim_pairs
from api.judging.worker import Worker
from api.models import AuditEvent, CalibrationVersion, Decision, Judgment, Pair
from api.routing.decisions import PairOutcome, cancel_job, store_outcomes
from api.settings import Settings
from judge.content import content_hash
from tests import fakes
from tests.helpers import auth, job_progress, make_project, post_question_pairs, run_worker
from tests.waiting import wait_for_progress


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    return fakes.install()


def _pairs(prefix: str, markers: dict[int, str], n: int) -> list[dict[str, Any]]:
    return [
        {
            "client_id": f"{prefix}{i}",
            "prompt": f"Question {i}: how do I sort a list? {markers.get(i, '')}".strip(),
            "response_a": f"Use sorted(xs) ({i}).",
            "response_b": f"Bubble sort by hand ({i}).",
        }
        for i in range(n)
    ]


def _calls(fake: fakes.FakeJudge, pairs: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """Calls the fake received per (model, client_id, order) since its counter was cleared."""
    out: Counter[tuple[str, str, str]] = Counter()
    for p in pairs:
        shown = {
            "ab": content_hash(p["prompt"], p["response_a"], p["response_b"]),
            "ba": content_hash(p["prompt"], p["response_b"], p["response_a"]),
        }
        for (model, digest), n in fake.calls.items():
            for order, expected in shown.items():
                if digest == expected:
                    out[(model, p["client_id"], order)] += n
    return out


def _results(client: TestClient, job_id: int) -> dict[str, dict[str, Any]]:
    rows = client.get(f"/v1/jobs/{job_id}/results", params={"format": "ndjson"}).text.splitlines()
    return {row["client_id"]: row for row in map(json.loads, rows)}


def _bad(row: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (j["judge"], j["order"]) for j in row["judgments"] if j["error"] or j["verdict"] in (None, "invalid")
    }


def test_retry_re_judges_only_the_failed_and_invalid_calls(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    settings = settings.model_copy(update={"judge_max_attempts": 2})
    project = make_project(client, "retry", judges=["fake/flaky", "fake/ok"])
    fake.broken.update({"[err]": "error", "[bad]": "garbage"})
    pairs = _pairs("p", {0: "[err]", 1: "[err]", 2: "[bad]"}, 6)
    job = post_question_pairs(client, project, pairs=pairs)
    run_worker(engine, settings)
    before = _results(client, job)
    assert {cid for cid, row in before.items() if _bad(row)} == {"p0", "p1", "p2"}
    assert _bad(before["p0"]) == {("fake/flaky", "ab"), ("fake/flaky", "ba")}
    assert all("judge_failed" in before[c]["reasons"] for c in ("p0", "p1"))
    status = client.get(f"/v1/jobs/{job}").json()
    assert status["judge_errors"] == 4 and status["complete"]

    fake.broken.clear()  # the provider is mended
    fake.calls.clear()
    # A second job with p0's texts: the content cache serves fake/ok's verdict, never the
    # failed fake/flaky one (that call is made again).
    twin = post_question_pairs(client, project, pairs=[dict(pairs[0], client_id="twin")])
    run_worker(engine, settings)
    twin_calls = _calls(fake, [dict(pairs[0], client_id="twin")])
    assert twin_calls == {("flaky", "twin", "ab"): 1, ("flaky", "twin", "ba"): 1}, twin_calls
    assert not _bad(_results(client, twin)["twin"])

    fake.calls.clear()
    r = client.post(f"/v1/jobs/{job}/retry", json={"include_invalid": False})
    assert r.status_code == 200, r.text
    assert r.json()["requeued"] == 2 and r.json()["by_state"]["pending"] == 2
    assert r.json()["judge_errors"] == 0  # the failed calls are superseded, waiting to be asked again
    run_worker(engine, settings)
    # p1's two failed calls are made again; p0's are served by the twin's valid verdicts.
    calls = _calls(fake, pairs)
    assert calls == {("flaky", "p1", "ab"): 1, ("flaky", "p1", "ba"): 1}, calls
    after = _results(client, job)
    assert [j["cached"] for j in after["p0"]["judgments"] if j["judge"] == "fake/flaky"] == [True, True]
    assert not _bad(after["p0"]) and not _bad(after["p1"])
    assert _bad(after["p2"]) == {("fake/flaky", "ab"), ("fake/flaky", "ba")}  # invalid: not asked
    # The valid judgments were kept as they were: same rows, not asked again.
    for cid in ("p3", "p4", "p5"):
        assert after[cid]["judgments"] == before[cid]["judgments"]
        assert after[cid]["decision_version"] == before[cid]["decision_version"]
    assert len(after["p0"]["judgments"]) == 4 and "judge_failed" not in after["p0"]["reasons"]

    fake.calls.clear()
    r = client.post(f"/v1/jobs/{job}/retry")  # no body: include_invalid defaults to true
    assert r.status_code == 200 and r.json()["requeued"] == 1, r.text
    run_worker(engine, settings)
    assert _calls(fake, pairs) == {("flaky", "p2", "ab"): 1, ("flaky", "p2", "ba"): 1}
    final = _results(client, job)
    assert not any(_bad(row) for row in final.values())
    assert all(row["state"] == "done" and row["route"] for row in final.values())
    # The call log keeps the superseded calls: 6 pairs x 4 calls + 4 + 2 asked again.
    status = client.get(f"/v1/jobs/{job}").json()
    assert status["judge_calls"] == 30 and status["judge_errors"] == 0 and status["complete"]
    with Session(engine) as session:
        superseded = session.exec(select(Judgment).where(col(Judgment.superseded_at).is_not(None))).all()
        kinds = [e.kind for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq)))]
    assert len(superseded) == 6 and all(j.judge == "fake/flaky" for j in superseded)
    assert kinds.count("job_retried") == 2

    fake.calls.clear()
    assert client.post(f"/v1/jobs/{job}/retry").json()["requeued"] == 0  # nothing left to retry
    run_worker(engine, settings)
    assert fake.total() == 0


def test_retry_with_a_new_panel_takes_the_admin_and_is_checked(client: TestClient, engine: Engine) -> None:
    project = make_project(client, "panel", judges=["fake/always-500"])
    job = post_question_pairs(client, project, n=3)
    key = client.post(f"/v1/projects/{project}/keys", json={"name": "k"}).json()["key"]
    body = {"judges": ["fake/ok"]}
    assert client.post(f"/v1/jobs/{job}/retry", json=body, headers=auth(key)).status_code == 403
    r = client.post(f"/v1/jobs/{job}/retry", json={"judges": ["fake/ok", "fake/ok"]})
    assert r.status_code == 422 and "twice" in r.text
    assert client.get(f"/v1/projects/{project}").json()["judges"][0]["model"] == "fake/always-500"
    assert client.post(f"/v1/jobs/{job}/retry", json={"include_invalid": "maybe"}).status_code == 422
    # The key may retry with the project's own panel.
    assert client.post(f"/v1/jobs/{job}/retry", headers=auth(key)).status_code == 200


def test_retry_with_a_new_panel_judges_the_failed_pairs_with_it(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    settings = settings.model_copy(update={"judge_max_attempts": 1})
    project = make_project(client, "swap", judges=["fake/always-500"])
    job = post_question_pairs(client, project, n=3)
    worker = Worker(engine, settings)  # one long-lived worker: it must see the new panel
    asyncio.run(worker.run(until_idle=True))
    assert client.get(f"/v1/jobs/{job}").json()["judge_errors"] == 6
    fake.calls.clear()
    r = client.post(f"/v1/jobs/{job}/retry", json={"judges": ["fake/ok"]})
    assert r.status_code == 200 and r.json()["requeued"] == 3, r.text
    worker.gates.get(project, fresh=True)  # as after the gate cache's few seconds
    asyncio.run(worker.run(until_idle=True))
    assert {model for model, _ in fake.calls} == {"ok"} and fake.total() == 6
    rows = _results(client, job).values()
    assert all(not _bad(row) and row["state"] == "done" for row in rows)
    with Session(engine) as session:
        versions = session.exec(select(CalibrationVersion.trigger)).all()
        kinds = session.exec(select(AuditEvent.kind)).all()
    assert versions == ["settings"] and "project_settings" in kinds


def test_cancel_stops_pending_work_and_loses_nothing_judged(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    # Each call takes 100 ms: the worker holds up to 8 pairs in flight at any moment.
    settings = settings.model_copy(update={"worker_pairs_in_flight": 8, "judge_concurrency": 16})
    judges = [{"model": "mock/slow", "api_base": "latency_ms=100"}]
    project = make_project(client, "cancel", judges=judges)
    job = post_question_pairs(client, project, n=200)
    worker = threading.Thread(target=lambda: asyncio.run(Worker(engine, settings).run(until_idle=True)))
    worker.start()
    try:
        wait_for_progress(lambda: job_progress(client, job)[0] >= 8, lambda: job_progress(client, job))
        r = client.post(f"/v1/jobs/{job}/cancel")
        assert r.status_code == 200, r.text
        status = r.json()
        with Session(engine) as session:
            judged = {
                p.id: (
                    p.decision_id,
                    sorted(j.id for j in session.exec(select(Judgment).where(Judgment.pair_id == p.id))),
                )
                for p in session.exec(select(Pair).where(Pair.job_id == job, Pair.state == "done"))
            }
            event = session.exec(select(AuditEvent).where(AuditEvent.kind == "job_cancelled")).one()
    finally:
        worker.join()  # until_idle: it returns once nothing is left to claim and its calls are in
    assert status["cancelled"] > 0 and status["done"] == len(judged) >= 8
    assert status["cancelled"] + status["done"] == 200 and status["complete"]
    assert status["by_state"]["pending"] == status["by_state"]["judging"] == 0
    assert event.payload["in_flight"] > 0  # calls were in flight: the late results were dropped
    after = client.get(f"/v1/jobs/{job}").json()
    assert after["by_state"] == status["by_state"] and after["cancelled"] == status["cancelled"]
    with Session(engine) as session:
        pairs = session.exec(select(Pair).where(Pair.job_id == job)).all()
        for pair in pairs:
            judgments = sorted(
                j.id for j in session.exec(select(Judgment).where(Judgment.pair_id == pair.id))
            )
            if pair.id in judged:
                assert (pair.state, (pair.decision_id, judgments)) == ("done", judged[pair.id])
            else:
                assert pair.state == "cancelled" and pair.decision_id is None and judgments == []
    # Idempotent: a second cancel changes nothing.
    again = client.post(f"/v1/jobs/{job}/cancel").json()
    assert again["by_state"] == status["by_state"]
    with Session(engine) as session:
        assert len(session.exec(select(AuditEvent).where(AuditEvent.kind == "job_cancelled")).all()) == 1
    # A retry resumes the cancelled pairs (and only those: nothing judged failed).
    r = client.post(f"/v1/jobs/{job}/retry")
    assert r.json()["requeued"] == status["cancelled"] and r.json()["cancelled"] == 0
    run_worker(engine, settings.model_copy(update={"worker_pairs_in_flight": 256, "judge_concurrency": 128}))
    done = client.get(f"/v1/jobs/{job}").json()
    assert done["done"] == 200 and done["complete"]


def test_a_worker_never_stores_a_result_on_a_cancelled_pair(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = make_project(client, "guard")
    job = post_question_pairs(client, project, n=2)
    claimed = claim_pairs(engine, "w1", 10, 30.0)
    assert len(claimed) == 2
    with Session(engine) as session:
        assert cancel_job(session, project, job) == 2
        session.commit()
    judgment = {
        "judge": "fake/ok", "order": "ab", "verdict": "A>B", "both_bad": False, "safety_flag": False,
        "confidence": None, "raw": "{}", "latency_ms": 1.0, "prompt_tokens": 1, "completion_tokens": 1,
        "cost": 0.0, "attempts": 1, "error": None, "content_hash": "x", "prompt_version": "v",
        "judge_key": "k", "cached": False,
    }  # fmt: skip
    decision = {"label": "A>B", "chosen": "A", "confidence": None, "route": "review", "reasons": [],
                "version": "routing-v0", "stage": None, "judge_calls_saved": 0}  # fmt: skip
    outcomes = [PairOutcome(pair_id=p.id, judgments=[judgment], decision=decision) for p in claimed]
    assert store_outcomes(engine, "w1", outcomes) == 0
    with Session(engine) as session:
        assert session.exec(select(Judgment)).all() == [] and session.exec(select(Decision)).all() == []
        assert {p.state for p in session.exec(select(Pair))} == {"cancelled"}
    assert claim_pairs(engine, "w2", 10, 30.0) == []  # nothing claims a cancelled pair


# --- project settings edits ---------------------------------------------------------------------


def _versions(engine: Engine, project: int) -> list[str]:
    with Session(engine) as session:
        return list(
            session.exec(select(CalibrationVersion.trigger).where(CalibrationVersion.project_id == project))
        )


def test_settings_edits_are_checked_audited_and_refitted(client: TestClient, engine: Engine) -> None:
    project = make_project(client, "edit", judges=["fake/ok"])
    original = client.get(f"/v1/projects/{project}").json()
    refused = [
        {},
        {"routing": {"target_agreement": 2}},
        {"routing": {"no_such_field": 1}},
        {"routing": {"honeypot_min_accuracy": 0.95}},  # must stay below quality_good_accuracy
        {"routing": {"order_sensitive_judges": ["fake/other"]}},  # not a judge of the panel
        {"judges": []},
        {"judges": ["fake/ok", "fake/ok"]},
        {"judges": ["mock/"]},
        {"judges": ["fake/ok"], "rubric": "x"},
        {"judges": None, "routing": None},
    ]
    for body in refused:
        r = client.patch(f"/v1/projects/{project}", json=body)
        assert r.status_code == 422, (body, r.text)
    assert client.get(f"/v1/projects/{project}").json() == original
    assert _versions(engine, project) == []

    r = client.patch(
        f"/v1/projects/{project}", json={"routing": {"target_agreement": 0.8, "audit_rate": 0.1}}
    )
    assert r.status_code == 200, r.text
    routing = r.json()["routing"]
    assert routing["target_agreement"] == 0.8 and routing["audit_rate"] == 0.1
    assert {k: v for k, v in routing.items() if k not in ("target_agreement", "audit_rate")} == {
        k: v for k, v in original["routing"].items() if k not in ("target_agreement", "audit_rate")
    }
    assert _versions(engine, project) == ["settings"]
    r = client.patch(f"/v1/projects/{project}", json={"judges": ["fake/ok", {"model": "fake/garbage"}]})
    assert r.status_code == 200 and [j["model"] for j in r.json()["judges"]] == ["fake/ok", "fake/garbage"]
    assert r.json()["routing"]["target_agreement"] == 0.8  # the earlier edit stays
    assert _versions(engine, project) == ["settings", "settings"]
    # The same values again change nothing: no event, no version.
    assert client.patch(f"/v1/projects/{project}", json={"routing": {"audit_rate": 0.1}}).status_code == 200
    assert _versions(engine, project) == ["settings", "settings"]

    events = client.get("/v1/audit/events", params={"project_id": project}).json()["events"]
    edits = [e["payload"] for e in events if e["kind"] == "project_settings"]
    assert len(edits) == 2
    assert edits[0]["changed"] == {
        "routing": {
            "target_agreement": {"before": 0.9, "after": 0.8},
            "audit_rate": {"before": 0.05, "after": 0.1},
        }
    }
    assert [j["model"] for j in edits[1]["changed"]["judges"]["after"]] == ["fake/ok", "fake/garbage"]
    assert "routing" not in edits[1]["changed"]
    assert client.get("/v1/audit/verify").json()["ok"]

    key = client.post(f"/v1/projects/{project}/keys", json={"name": "k"}).json()["key"]
    assert (
        client.patch(f"/v1/projects/{project}", json={"routing": {"n_min": 5}}, headers=auth(key)).status_code
        == 403
    )
    assert client.patch("/v1/projects/999999", json={"routing": {"n_min": 5}}).status_code == 404


# --- NDJSON sent as JSON --------------------------------------------------------------------------


def test_ndjson_posted_as_json_is_read_as_ndjson(client: TestClient, engine: Engine) -> None:
    project = make_project(client, "ndjson")
    lines = [json.dumps(p) for p in _pairs("n", {}, 3)]
    r = client.post(
        f"/v1/projects/{project}/jobs",
        content="\n".join(lines) + "\n",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["pairs_created"] == 3, r.text
    one = json.dumps(_pairs("single", {}, 1)[0])
    r = client.post(f"/v1/projects/{project}/jobs", content=one, headers={"content-type": "application/json"})
    assert r.status_code == 201 and r.json()["pairs_created"] == 1, r.text
    # A bad line is named by its line number, as for NDJSON sent as such; nothing stored.
    bad = "\n".join([json.dumps(_pairs("b", {}, 1)[0]), '{"client_id": "b1", "prompt": '])
    r = client.post(f"/v1/projects/{project}/jobs", content=bad, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 2, r.text
    # Not NDJSON either (the first line is no object): the error names the NDJSON content type.
    r = client.post(
        f"/v1/projects/{project}/jobs", content='{"pairs": []}\n{"pairs": []} x',
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 422
    r = client.post(
        f"/v1/projects/{project}/jobs", content="[1]\n[2]", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "application/x-ndjson" in r.text, r.text
    with Session(engine) as session:
        assert len(session.exec(select(Pair).where(Pair.project_id == project)).all()) == 4


def test_a_retried_pair_keeps_its_human_label_as_final(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    settings = settings.model_copy(update={"judge_max_attempts": 1})
    project = make_project(client, "human", judges=["fake/flaky"])
    fake.broken["[err]"] = "error"
    pairs = _pairs("h", {0: "[err]", 1: "[err]"}, 2)
    job = post_question_pairs(client, project, pairs=pairs)
    run_worker(engine, settings)
    gold = {"labels": [{"client_id": "h0", "label": "B", "source": "gold", "annotator": "ana"}]}
    assert client.post(f"/v1/projects/{project}/labels", json=gold).status_code == 201
    fake.broken.clear()
    assert client.post(f"/v1/jobs/{job}/retry").json()["requeued"] == 2  # labelled or not
    run_worker(engine, settings)
    rows = _results(client, job)
    assert not _bad(rows["h0"]) and not _bad(rows["h1"])
    # Re-judged (its verdicts now calibrate), but the human's B still decides h0's final label.
    assert rows["h0"]["label_source"] == "human" and rows["h0"]["final"]["side"] == "B"
    assert rows["h1"]["label_source"] != "human"
