"""Rate limits per caller (api/ratelimit.py): writes and review/next, 429 with Retry-After.

The buckets run on an injected clock here, so nothing depends on how fast the test runs: the
HTTP tests use a refill rate so slow that no token comes back while they run.
"""

from __future__ import annotations

import doctest
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api import media_types, ratelimit
from api.main import create_app
from api.ratelimit import TokenBuckets
from api.settings import Settings
from tests import fakes
from tests.helpers import (
    ADMIN,
    ADMIN_TOKEN,
    auth,
    fast_settings,
    make_project,
    new_reviewer,
    post_question_pairs,
    run_worker,
)


def test_doctests() -> None:
    assert doctest.testmod(ratelimit).failed == 0
    assert doctest.testmod(media_types).failed == 0


def test_a_bucket_refills_at_its_rate_and_says_how_long_to_wait() -> None:
    now = [100.0]
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back in 1/2 s
    assert buckets.take("b") == 0.0  # another caller has a bucket of its own
    now[0] += 0.25
    assert buckets.take("a") == pytest.approx(0.25)  # half a token so far
    now[0] += 10
    assert [buckets.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, not beyond


def test_the_map_of_callers_is_bounded() -> None:
    """Made-up tokens cannot grow memory without end: the least recently seen go first."""
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=0.001, burst=1, clock=lambda: now[0], max_keys=3)
    assert buckets.take("kept") == 0.0
    for i in range(3):
        buckets.take(f"flood-{i}")
    assert len(buckets._buckets) == 3 and "kept" not in buckets._buckets


@pytest.fixture
def limited(any_engine: Engine) -> Iterator[TestClient]:
    url = any_engine.url.render_as_string(hide_password=False)
    settings = fast_settings(
        url,
        rate_limit_writes_per_s=0.001,
        rate_limit_writes_burst=4,
        rate_limit_next_per_s=0.001,
        rate_limit_next_burst=2,
    )
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        yield client


def test_writes_over_the_burst_get_429_with_retry_after(limited: TestClient) -> None:
    client = limited
    fakes.install()
    project = make_project(client, "limited")  # write 1
    key = client.post(f"/v1/projects/{project}/keys", json={"name": "k"}).json()["key"]  # 2
    assert client.post(f"/v1/projects/{project}/keys", json={"name": "k2"}).status_code == 201  # 3
    assert client.post(f"/v1/projects/{project}/keys", json={"name": "k3"}).status_code == 201  # 4
    refused = client.post(f"/v1/projects/{project}/keys", json={"name": "k4"})
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1 and "retry in" in refused.json()["detail"]
    # Reads are not limited; another token (the project key) has a bucket of its own.
    assert all(client.get(f"/v1/projects/{project}").status_code == 200 for _ in range(10))
    pairs = [{"client_id": "c", "prompt": "q", "response_a": "a", "response_b": "b"}]
    posted = client.post(f"/v1/projects/{project}/jobs", json={"pairs": pairs}, headers=auth(key))
    assert posted.status_code == 201, posted.text
    # Nothing was done by the refused request.
    assert len(client.get(f"/v1/projects/{project}/keys").json()) == 3


def test_review_next_has_a_bucket_of_its_own(any_engine: Engine) -> None:
    fakes.install()
    url = any_engine.url.render_as_string(hide_password=False)
    settings: Settings = fast_settings(url, rate_limit_next_per_s=0.001, rate_limit_next_burst=2)
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        project = make_project(client, "next-limited")
        post_question_pairs(client, project, 3)
        run_worker(any_engine, settings)
        token = new_reviewer(client, "quick", projects=[project])
        nexts = [
            client.post(f"/v1/projects/{project}/review/next", json={}, headers=auth(token)).status_code
            for _ in range(3)
        ]
        assert nexts == [200, 200, 429]
        # Writes of the same reviewer are counted apart: a skip is answered (404: no such lease).
        skipped = client.post("/v1/review/leases/999999/skip", json={"reason": "x"}, headers=auth(token))
        assert skipped.status_code == 404, skipped.text


def test_a_rate_of_zero_turns_a_limit_off(any_engine: Engine) -> None:
    url = any_engine.url.render_as_string(hide_password=False)
    settings = fast_settings(url, rate_limit_writes_per_s=0, rate_limit_writes_burst=1)
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        statuses = {client.post("/v1/reviewers", json={"name": f"r{i}"}).status_code for i in range(5)}
        assert statuses == {201}


def test_the_spec_documents_415_and_429(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()["paths"]
    assert {"415", "429"} <= spec["/v1/projects/{project_id}/jobs"]["post"]["responses"].keys()
    assert "429" in spec["/v1/projects/{project_id}/review/next"]["post"]["responses"]
    assert "429" not in spec["/v1/jobs/{job_id}"]["get"]["responses"]


def test_spellings_of_one_token_share_its_bucket(limited: TestClient) -> None:
    """The scheme's case and the spaces around the token do not make another caller: each
    spelling used to get a fresh bucket, so padding the header lifted the limit."""
    client = limited
    token = ADMIN_TOKEN
    spellings = [f"{scheme} {token}" for scheme in ("Bearer", "bearer", "BEARER ", "Bearer  ", "bEaReR")]
    statuses = [
        client.post("/v1/reviewers", json={"name": f"s{i}"}, headers={"Authorization": header}).status_code
        for i, header in enumerate(spellings)
    ]
    assert statuses == [201, 201, 201, 201, 429]
