"""Replaying the real recorded judgments through the API and worker reproduces every verdict."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import Judgment, Pair
from api.settings import Settings
from judge.recorded import load_recorded, recorded_to_five_point
from judge.verdicts import order_sensitivity
from tests.helpers import LLMBAR, run_worker

pytestmark = pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")


def test_whole_llmbar_file_replays_exactly(client: TestClient, engine: Engine, settings: Settings) -> None:
    recorded = load_recorded(LLMBAR)
    # Pairs with the same judge set share a project, so no judge is asked for a pair it never saw.
    groups: dict[tuple[str, ...], list] = defaultdict(list)
    for pair in recorded:
        groups[tuple(sorted({j.judge for j in pair.judgments}))].append(pair)
    jobs = []
    for number, (judges, pairs) in enumerate(sorted(groups.items())):
        spec = [{"model": f"replay/{j}", "api_base": str(LLMBAR)} for j in judges]
        project = client.post(
            "/v1/projects", json={"name": f"llmbar-{number}", "judges": spec, "allow_empty_responses": True}
        ).json()["id"]
        body = "\n".join(
            json.dumps(
                {
                    "client_id": p.id,
                    "prompt": p.prompt,
                    "response_a": p.response_a,
                    "response_b": p.response_b,
                }
            )
            for p in pairs
        )
        r = client.post(
            f"/v1/projects/{project}/jobs", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert r.status_code == 201, r.text
        jobs.append(r.json()["job_id"])
    run_worker(engine, settings)

    with Session(engine) as session:
        stored = {
            (client_id, j.judge.removeprefix("replay/"), j.order): j
            for j, client_id in session.exec(
                select(Judgment, Pair.client_id).join(Pair, Pair.id == Judgment.pair_id)
            )
        }
    expected = {
        (p.id, j.judge, j.order): recorded_to_five_point(j.verdict) for p in recorded for j in p.judgments
    }
    assert len(stored) == len(expected)
    assert all(j.error is None for j in stored.values())
    mismatches = [key for key, verdict in expected.items() if stored[key].verdict != verdict]
    assert mismatches == [], f"{len(mismatches)} of {len(expected)} verdicts differ, e.g. {mismatches[:3]}"

    # Order sensitivity per judge, read back through the results API, matches the file.
    from_api: list[dict] = []
    for job in jobs:
        lines = client.get(f"/v1/jobs/{job}/results", params={"format": "ndjson"}).text.splitlines()
        from_api.extend(json.loads(line) for line in lines)
    api_rates = order_sensitivity(
        (j["judge"].removeprefix("replay/"), row["client_id"], j["order"], j["verdict"])
        for row in from_api
        for j in row["judgments"]
    )
    file_rates = order_sensitivity(
        (j.judge, p.id, j.order, recorded_to_five_point(j.verdict)) for p in recorded for j in p.judgments
    )
    assert api_rates == file_rates
    # The README's fact: gpt-4/vanilla_norules is swap-consistent on 86% of pairs.
    assert file_rates["gpt-4/vanilla_norules"]["consistent_rate"] == pytest.approx(0.86, abs=0.01)
