"""Job ingest: idempotency, 409 on changed content, and all-or-nothing bad input."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from api.models import Pair
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
    assert client.post(f"/v1/projects/{project_id}/jobs", content=b"{not json").status_code == 422
    assert client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": []}).status_code == 422
    assert client.post(f"/v1/projects/{project_id}/jobs", json={"nope": 1}).status_code == 422
    assert client.post(f"/v1/projects/{project_id}/jobs", content=b"\xff\xfe").status_code == 422
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
