"""The judging path end to end on SQLite: ingest, worker, faults, cache, routing, results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import Judgment
from api.settings import Settings
from tests import fakes
from tests.helpers import fast_settings, run_worker


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    return fakes.install()


def make_project(client: TestClient, name: str, judges: list[str]) -> int:
    r = client.post("/v1/projects", json={"name": name, "judges": judges})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def post_pairs(client: TestClient, project_id: int, n: int, prefix: str = "c") -> int:
    pairs = [
        {"client_id": f"{prefix}{i}", "prompt": f"p{i}", "response_a": f"a{i}", "response_b": f"b{i}"}
        for i in range(n)
    ]
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": pairs})
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


def results(client: TestClient, job_id: int) -> list[dict]:
    r = client.get(f"/v1/jobs/{job_id}/results", params={"format": "ndjson"})
    assert r.status_code == 200
    return [json.loads(line) for line in r.text.splitlines()]


def test_every_pair_is_judged_in_both_orders_and_routed(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    project = make_project(client, "p", ["fake/ok"])
    job = post_pairs(client, project, 5)
    assert client.get(f"/v1/jobs/{job}").json()["by_state"]["pending"] == 5
    run_worker(engine, settings)
    status = client.get(f"/v1/jobs/{job}").json()
    assert status["complete"] and status["progress"] == 1.0
    assert status["judge_calls"] == 10 and status["judge_errors"] == 0
    assert status["by_route"] == {"review": 5}
    rows = results(client, job)
    assert len(rows) == 5
    for row in rows:
        # The fake always prefers the response shown first: A in order ab, B in order ba.
        verdicts = {j["order"]: j["verdict"] for j in row["judgments"]}
        assert verdicts == {"ab": "A>B", "ba": "B>A"}
        assert row["route"] == "review"
        assert "order_sensitive" in row["reasons"] and "gate_closed" in row["reasons"]
    assert fake.total() == 10


def test_results_pages_and_ndjson_agree(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = make_project(client, "p", ["fake/ok"])
    job = post_pairs(client, project, 7)
    run_worker(engine, settings)
    pages, after = [], 0
    while True:
        page = client.get(f"/v1/jobs/{job}/results", params={"limit": 3, "after": after}).json()
        pages.extend(page["results"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    streamed = client.get(f"/v1/jobs/{job}/results", headers={"accept": "application/x-ndjson"})
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in streamed.text.splitlines()] == pages
    assert [r["client_id"] for r in pages] == [f"c{i}" for i in range(7)]
    assert client.get("/v1/jobs/999").status_code == 404


def test_rate_limit_then_success_is_retried(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = make_project(client, "p", ["fake/ratelimit-then-ok"])
    job = post_pairs(client, project, 2)
    run_worker(engine, settings)
    with Session(engine) as session:
        rows = session.exec(select(Judgment)).all()
    assert len(rows) == 4
    assert all(j.error is None and j.attempts == 2 and j.verdict in ("A>B", "B>A") for j in rows)
    assert all("judge_failed" not in r["reasons"] for r in results(client, job))


def test_repeated_500s_fail_the_call_and_route_to_review(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    project = make_project(client, "p", ["fake/always-500"])
    job = post_pairs(client, project, 1)
    run_worker(engine, settings)
    (row,) = results(client, job)
    assert row["route"] == "review" and "judge_failed" in row["reasons"]
    assert all("InternalServerError" in j["error"] for j in row["judgments"])
    assert fake.total() == 2 * settings.judge_max_attempts
    status = client.get(f"/v1/jobs/{job}").json()
    assert status["judge_errors"] == 2 and status["recent_errors"][0]["client_id"] == "c0"


def test_timeout_is_a_judge_failure(client: TestClient, engine: Engine, sqlite_url: str) -> None:
    settings = fast_settings(sqlite_url, judge_timeout_s=0.2, judge_max_attempts=2)
    project = make_project(client, "p", ["fake/slow"])
    job = post_pairs(client, project, 1)
    run_worker(engine, settings)
    (row,) = results(client, job)
    assert "judge_failed" in row["reasons"] and row["route"] == "review"
    assert all("Timeout" in j["error"] for j in row["judgments"])


def test_garbage_text_is_invalid_never_a_guess(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = make_project(client, "p", ["fake/garbage"])
    job = post_pairs(client, project, 1)
    run_worker(engine, settings)
    (row,) = results(client, job)
    assert [j["verdict"] for j in row["judgments"]] == ["invalid", "invalid"]
    assert row["label"] is None and "judge_failed" in row["reasons"] and row["route"] == "review"


def test_both_bad_goes_to_incident(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = make_project(client, "p", ["fake/both-bad"])
    job = post_pairs(client, project, 1)
    run_worker(engine, settings)
    (row,) = results(client, job)
    assert row["route"] == "incident" and "both_bad" in row["reasons"]


def test_cache_never_pays_twice(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    first = make_project(client, "first", ["fake/ok"])
    post_pairs(client, first, 3)
    run_worker(engine, settings)
    assert fake.total() == 6
    # Same content, same judge and prompt version, in another project under other ids.
    second = make_project(client, "second", ["fake/ok"])
    job = post_pairs(client, second, 3, prefix="other-")
    run_worker(engine, settings)
    assert fake.total() == 6
    rows = results(client, job)
    assert all(j["cached"] for row in rows for j in row["judgments"])
    assert client.get(f"/v1/jobs/{job}").json()["cost"] == 0.0


def test_cache_key_covers_everything_that_changes_the_answer(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    """A verdict is reused only for the same model, endpoint, rubric, prompt version and call
    parameters; any one of them differing means a fresh call."""
    base = {"judges": [{"model": "fake/ok"}]}
    variants = {
        "base": base,
        "same-again": base,
        "api_base": {"judges": [{"model": "fake/ok", "api_base": "http://127.0.0.1:9/v1"}]},
        "logprobs": {"judges": [{"model": "fake/ok", "logprobs": True}]},
        "rubric": {**base, "rubric": "Prefer the shorter answer."},
        "prompt_version": {**base, "prompt_version": "rubric-v2"},
    }
    paid: dict[str, int] = {}
    for name, body in variants.items():
        before = fake.total()
        project = client.post("/v1/projects", json={"name": name, **body}).json()["id"]
        post_pairs(client, project, 2, prefix=f"{name}-")
        run_worker(engine, settings)
        paid[name] = fake.total() - before
    assert paid == {
        "base": 4,
        "same-again": 0,
        "api_base": 4,
        "logprobs": 4,
        "rubric": 4,
        "prompt_version": 4,
    }


def test_a_replay_judge_on_a_missing_file_is_not_served_another_files_verdicts(
    client: TestClient, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """The regression: the cache ignored api_base, so a replay judge pointing at a file that
    does not exist was served the verdicts another project's replay judge had recorded."""
    recorded = tmp_path / "recorded.jsonl"
    pair = {"prompt": "2+2?", "response_a": "4", "response_b": "5"}
    judgments = [{"judge": "j", "order": o, "verdict": "A"} for o in ("ab", "ba")]
    recorded.write_text(json.dumps({"id": "x", **pair, "judgments": judgments}) + "\n", encoding="utf-8")
    for name, path in (("real", recorded), ("missing", tmp_path / "missing.jsonl")):
        spec = [{"model": "replay/j", "api_base": str(path)}]
        if name == "missing":  # a file that is there at creation (which checks it), gone by judging time
            path.write_bytes(recorded.read_bytes())
        project = client.post("/v1/projects", json={"name": name, "judges": spec}).json()["id"]
        if name == "missing":
            path.unlink()
        r = client.post(f"/v1/projects/{project}/jobs", json={"pairs": [{"client_id": "x", **pair}]})
        run_worker(engine, settings)
        (row,) = results(client, r.json()["job_id"])
        if name == "real":
            assert [j["verdict"] for j in row["judgments"]] == ["A>B", "A>B"]
        else:
            assert row["route"] == "review" and "judge_failed" in row["reasons"]
            assert all(j["error"] and "not found" in j["error"] for j in row["judgments"])


def test_a_judge_is_asked_in_the_orders_its_config_names(
    client: TestClient, engine: Engine, settings: Settings, fake: fakes.FakeJudge
) -> None:
    """ "ab": one call a pair, always AB; "random": one call a pair, the order drawn from the
    pair (both orders occur, the same pair always gets the same one). Nothing is a failure."""
    judges = [{"model": "fake/ok", "orders": "ab"}]
    one = client.post("/v1/projects", json={"name": "ab", "judges": judges}).json()["id"]
    job = post_pairs(client, one, 6, prefix="ab-")
    run_worker(engine, settings)
    rows = results(client, job)
    assert fake.total() == 6
    assert all([j["order"] for j in r["judgments"]] == ["ab"] for r in rows)
    assert not any("judge_failed" in r["reasons"] or "order_sensitive" in r["reasons"] for r in rows)

    judges = [{"model": "fake/ok", "orders": "random"}]
    drawn = client.post("/v1/projects", json={"name": "random", "judges": judges}).json()["id"]
    job = post_pairs(client, drawn, 40, prefix="r-")
    run_worker(engine, settings)
    rows = results(client, job)
    orders = [j["order"] for r in rows for j in r["judgments"]]
    assert len(orders) == 40 and 8 < orders.count("ab") < 32
    assert client.get(f"/v1/jobs/{job}").json()["judge_calls_saved"] == 0  # one call is the full panel
    bad = client.post("/v1/projects", json={"name": "bad", "judges": [{"model": "fake/ok", "orders": "xy"}]})
    assert bad.status_code == 422 and "orders" in bad.text


def test_health_and_metrics(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = make_project(client, "p", ["fake/ok"])
    post_pairs(client, project, 2)
    run_worker(engine, settings)
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics").text
    assert 'prelabel_pairs{state="done"} 2.0' in text
    assert "prelabel_judge_calls_total" in text and "prelabel_judge_latency_seconds_bucket" in text
    assert client.get("/docs").status_code == 200
