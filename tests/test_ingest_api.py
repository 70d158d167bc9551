"""Job ingest: idempotency, 409 on changed content, and all-or-nothing bad input."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from api.ingest import store
from api.models import Pair, Project
from api.schemas import PairIn
from tests import fakes


def pair(i: int, **overrides: object) -> dict[str, object]:
    base = {"client_id": f"c{i}", "prompt": f"prompt {i}", "response_a": f"a {i}", "response_b": f"b {i}"}
    base.update(overrides)
    return base


def count_pairs(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Pair)).one()


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    """``fake/`` judges are known to litellm here (project creation checks that judges exist)."""
    return fakes.install()


@pytest.fixture
def project_id(client: TestClient) -> int:
    response = client.post("/v1/projects", json={"name": "p", "judges": ["fake/ok"]})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_json_and_ndjson_bodies_are_stored(client: TestClient, project_id: int, engine: Engine) -> None:
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": [pair(1), pair(2)]})
    assert r.status_code == 201, r.text
    assert r.json()["pairs_created"] == 2
    body = "\n".join(json.dumps(pair(i)) for i in (3, 4, 5)) + "\n\n"
    r = client.post(
        f"/v1/projects/{project_id}/jobs", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["pairs_created"] == 3
    r = client.post(f"/v1/projects/{project_id}/jobs", json=[pair(6)])
    assert r.status_code == 201
    assert count_pairs(engine) == 6


def test_same_id_same_content_is_a_no_op(client: TestClient, project_id: int, engine: Engine) -> None:
    client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": [pair(1), pair(2)]})
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": [pair(1), pair(2), pair(3)]})
    assert r.status_code == 201
    assert r.json()["pairs_created"] == 1
    assert sorted(r.json()["existing_client_ids"]) == ["c1", "c2"]
    assert count_pairs(engine) == 3


def test_same_id_different_content_is_409_naming_the_id(
    client: TestClient, project_id: int, engine: Engine
) -> None:
    client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": [pair(1)]})
    r = client.post(
        f"/v1/projects/{project_id}/jobs", json={"pairs": [pair(2), pair(1, response_b="changed")]}
    )
    assert r.status_code == 409
    assert "c1" in r.json()["detail"] and r.json()["client_ids"] == ["c1"]
    assert count_pairs(engine) == 1  # c2 was not stored either


def test_client_ids_are_per_project(client: TestClient, project_id: int, engine: Engine) -> None:
    other = client.post("/v1/projects", json={"name": "other", "judges": ["fake/ok"]}).json()["id"]
    client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": [pair(1)]})
    r = client.post(f"/v1/projects/{other}/jobs", json={"pairs": [pair(1, prompt="different")]})
    assert r.status_code == 201
    assert count_pairs(engine) == 2


BAD_CASES = {
    "bad_json": ('{"client_id": "x", "prompt": ', "invalid JSON"),
    "missing_field": (json.dumps({"client_id": "x", "prompt": "p", "response_a": "a"}), "response_b"),
    "empty_response": (json.dumps(pair(9, response_a="   ")), "response_a: must not be empty"),
    "oversize_field": (json.dumps(pair(9, prompt="x" * 2001)), "exceed the limit of 2000"),
    "not_an_object": ("[1, 2]", "JSON object"),
    "wrong_type": (json.dumps(pair(9, response_b=5)), "response_b"),
    "unknown_field": (json.dumps(pair(9, respnse_c="typo")), "respnse_c"),
    "bad_split": (json.dumps(pair(9, split="test")), "split"),
    "empty_client_id": (json.dumps(pair(9, client_id="")), "client_id"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_each_bad_line_is_listed_and_nothing_is_stored(
    case: str, client: TestClient, project_id: int, engine: Engine
) -> None:
    client.app.state.settings.max_field_chars = 2000  # type: ignore[attr-defined]
    bad_line, expected = BAD_CASES[case]
    lines = [json.dumps(pair(1)), bad_line, json.dumps(pair(2)), bad_line]
    r = client.post(
        f"/v1/projects/{project_id}/jobs",
        content="\n".join(lines),
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["line"] for e in errors] == [2, 4]
    assert all(any(expected in message for message in e["errors"]) for e in errors), errors
    assert count_pairs(engine) == 0


def test_duplicate_ids_within_one_request(client: TestClient, project_id: int, engine: Engine) -> None:
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": [pair(1), pair(2), pair(1)]})
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["line"] == 3 and "duplicate of line 1" in error["errors"][0]
    assert count_pairs(engine) == 0


def test_whole_body_errors(client: TestClient, project_id: int, engine: Engine) -> None:
    typed = {"content-type": "application/json"}
    jobs = f"/v1/projects/{project_id}/jobs"
    assert client.post(jobs, content=b"{not json", headers=typed).status_code == 422
    assert client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": []}).status_code == 422
    assert client.post(f"/v1/projects/{project_id}/jobs", json={"nope": 1}).status_code == 422
    assert client.post(jobs, content=b"\xff\xfe", headers=typed).status_code == 422
    # A body that does not say it is JSON: 415 with the header to send (api/media_types.py).
    untyped = client.post(f"/v1/projects/{project_id}/jobs", content=b'{"pairs": []}')
    assert untyped.status_code == 415 and "application/json" in untyped.text
    client.app.state.settings.max_pairs_per_request = 2  # type: ignore[attr-defined]
    r = client.post(f"/v1/projects/{project_id}/jobs", json=[pair(1), pair(2), pair(3)])
    assert r.status_code == 422 and "limit of 2" in r.json()["errors"][0]["errors"][0]
    assert client.post("/v1/projects/999/jobs", json=[pair(1)]).status_code == 404
    assert count_pairs(engine) == 0


def test_project_validation(client: TestClient, project_id: int) -> None:
    assert client.post("/v1/projects", json={"name": "p", "judges": ["fake/ok"]}).status_code == 409
    assert client.post("/v1/projects", json={"name": "q", "judges": []}).status_code == 422
    assert (
        client.post("/v1/projects", json={"name": "q", "judges": ["fake/ok", "fake/ok"]}).status_code == 422
    )
    assert (
        client.post(
            "/v1/projects", json={"name": "q", "judges": ["x"], "routing": {"audit_rate": 2}}
        ).status_code
        == 422
    )
    for rank in (-1, "nan", "inf"):  # a cascade orders judges by it: it must be a real cost
        bad = {"name": "q", "judges": [{"model": "fake/ok", "cost_rank": rank}]}
        r = client.post("/v1/projects", json=bad)
        assert r.status_code == 422 and "cost_rank" in r.text, r.text
    assert client.get(f"/v1/projects/{project_id}").json()["judges"][0]["model"] == "fake/ok"
    assert client.get("/v1/projects/12345").status_code == 404


def _store(engine: Engine, project_id: int, pairs: list[dict[str, object]]) -> store.JobCreated:
    return store.create_job(engine, project_id, [PairIn.model_validate(p) for p in pairs])


def test_stored_pairs_read_back_whole_on_either_database(any_engine: Engine) -> None:
    """The bulk store (COPY on PostgreSQL) keeps metadata as JSON, texts exactly, and the time;
    a re-post is the same job and changed metadata is a conflict."""
    with Session(any_engine, expire_on_commit=False) as session:
        project = Project(name="bulk", judges=[{"model": "fake/ok"}], routing={})
        session.add(project)
        session.commit()
    odd = 'tab\there, "quotes", back\\slash, newline\nand \u00e9\u2028 \U0001f600'
    meta = {"source": "x", "scores": [1, 2.5, None], "nested": {"deep": [True, "\\N"]}}
    pairs = [pair(1, prompt=odd, metadata=meta, split="frozen_eval"), pair(2, response_b="\\N")]
    created = _store(any_engine, project.id, pairs)  # type: ignore[arg-type]
    assert created.created == 2
    with Session(any_engine) as session:
        stored = {p.client_id: p for p in session.exec(select(Pair).where(Pair.project_id == project.id))}
    assert stored["c1"].prompt == odd and stored["c1"].meta == meta and stored["c1"].split == "frozen_eval"
    assert stored["c2"].response_b == "\\N" and stored["c2"].meta == {} and stored["c2"].safety_reasons == []
    assert stored["c1"].job_id == created.job_id and stored["c1"].created_at is not None

    again = _store(any_engine, project.id, pairs)  # type: ignore[arg-type]
    assert again.resubmitted and again.job_id == created.job_id
    changed = [pair(1, prompt=odd, metadata={**meta, "source": "y"}, split="frozen_eval")]
    with pytest.raises(store.ClientIdConflict) as conflict:
        _store(any_engine, project.id, changed)  # type: ignore[arg-type]
    assert conflict.value.client_ids == ["c1"]


def test_two_posts_of_the_same_new_ids_at_once_store_each_pair_once(any_engine: Engine) -> None:
    """A duplicate key met while storing (another post stored the id first) is checked again,
    not a 500: one post creates the pairs, the other finds them."""
    with Session(any_engine, expire_on_commit=False) as session:
        project = Project(name="race", judges=[{"model": "fake/ok"}], routing={})
        session.add(project)
        session.commit()
    pairs = [pair(i) for i in range(200)]
    results: list[store.JobCreated] = []
    barrier = threading.Barrier(4)

    def post() -> None:
        barrier.wait()
        results.append(_store(any_engine, project.id, pairs))  # type: ignore[arg-type]

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 4 and sum(r.created for r in results) == 200
    with Session(any_engine) as session:
        count = session.exec(
            select(func.count()).select_from(Pair).where(Pair.project_id == project.id)
        ).one()
    assert count == 200
