"""Bad inputs get a clear 4xx naming the field, and nothing is stored half-way (issue 10).

Every case here was a 500, a silent success or a failure only at judging time before: NUL
bytes and lone surrogates in text, non-finite and huge numbers in metadata, ids and cursors
beyond an id column, a non-ASCII bearer token, unknown fields, judges that do not exist,
replay files that are missing or outside the data directories. Each runs on SQLite and, when
PRELABEL_TEST_DATABASE_URL is set, PostgreSQL (which refuses NUL in text on its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from api.main import create_app
from tests.helpers import ADMIN, LLMBAR, copy_sqlite, fast_settings, pg_clone

NDJSON = {"content-type": "application/x-ndjson"}
JOBS = "/v1/projects/{p}/jobs"
JSON = {"content-type": "application/json"}


@dataclass
class World:
    client: TestClient
    engine: Engine
    project: int
    job: int


def row_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in SQLModel.metadata.tables.items()
        }


def pair(client_id: str = "c1", **overrides: Any) -> dict[str, Any]:
    return {"client_id": client_id, "prompt": "2+2?", "response_a": "4", "response_b": "5", **overrides}


@contextmanager
def _world_on(engine: Engine) -> Iterator[World]:
    """A project with mock judges, one job of two pairs and one label."""
    settings = fast_settings(str(engine.url.render_as_string(hide_password=False)))
    with TestClient(create_app(settings, engine, run_worker=False), headers=ADMIN) as client:
        r = client.post("/v1/projects", json={"name": "p", "judges": ["mock/a", "mock/b"]})
        assert r.status_code == 201, r.text
        project = r.json()["id"]
        pairs = {"pairs": [pair("c1"), pair("c2", prompt="3+3?")]}
        r = client.post(f"/v1/projects/{project}/jobs", json=pairs)
        assert r.status_code == 201, r.text
        labels = {"labels": [{"client_id": "c1", "label": "A", "source": "gold"}]}
        assert client.post(f"/v1/projects/{project}/labels", json=labels).status_code == 201
        yield World(client, engine, project, r.json()["job_id"])


@pytest.fixture
def world(any_engine: Engine) -> Iterator[World]:
    with _world_on(any_engine) as w:
        yield w


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def _module_world(
    request: pytest.FixtureRequest, migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World | None]:
    """One world per module and database for the refused requests (None: PostgreSQL without
    CREATEDB, each case makes its own)."""
    if request.param == "sqlite":
        engine = copy_sqlite(migrated_sqlite, tmp_path_factory.mktemp("bad-inputs") / "world.db")
        try:
            with _world_on(engine) as w:
                yield w
        finally:
            engine.dispose()
        return
    # Looked up here, not requested: SQLite runs must not need a PostgreSQL server.
    server = request.getfixturevalue("pg_server")
    if server is None:
        pytest.skip("PostgreSQL tests need PRELABEL_TEST_DATABASE_URL")
    if server.template is None:
        yield None
        return
    with pg_clone(server.admin, server.url, server.template) as engine, _world_on(engine) as w:
        yield w


@pytest.fixture
def refused_world(_module_world: World | None, request: pytest.FixtureRequest) -> Iterator[World]:
    """The world for requests that must be refused and store nothing: shared by the cases of a
    module and database (each case checks that every table's row count is unchanged, so a case
    that stored something fails itself), not a world and an app per case (an app's first
    request to a router costs ~0.2 s CPU of FastAPI building that router's routes)."""
    if _module_world is not None:
        yield _module_world
        return
    with _world_on(request.getfixturevalue("pg_engine")) as w:
        yield w


# (name, method, path, request keyword arguments, status, what the answer must name)
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("nul in client_id", "POST", JOBS, {"json": {"pairs": [pair("a\x00b")]}}, 422, "client_id"),
    ("nul in prompt, ndjson", "POST", "/v1/projects/{p}/jobs",
     {"content": json.dumps(pair("n1", prompt="x\x00y")), "headers": NDJSON}, 422, "prompt"),
    ("lone surrogate in client_id", "POST", "/v1/projects/{p}/jobs",
     {"content": '[{"client_id": "x\\ud800", "prompt": "p", "response_a": "a", "response_b": "b"}]',
      "headers": JSON}, 422, "client_id"),
    ("lone surrogate in prompt, ndjson", "POST", "/v1/projects/{p}/jobs",
     {"content": '{"client_id": "s1", "prompt": "p\\udc00", "response_a": "a", "response_b": "b"}',
      "headers": NDJSON}, 422, "prompt"),
    ("1e400 in metadata", "POST", "/v1/projects/{p}/jobs",
     {"content": json.dumps(pair("m1"))[:-1] + ', "metadata": {"score": 1e400}}', "headers": NDJSON},
     422, "metadata.score"),
    ("NaN in metadata", "POST", "/v1/projects/{p}/jobs",
     {"content": json.dumps(pair("m2"))[:-1] + ', "metadata": {"score": NaN}}', "headers": NDJSON},
     422, "metadata.score"),
    ("10**5000 in metadata", "POST", "/v1/projects/{p}/jobs",
     {"content": json.dumps(pair("m3"))[:-1] + ', "metadata": {"n": 1' + "0" * 5000 + "}}",
      "headers": NDJSON},
     422, "metadata.n"),
    ("nul in a metadata key", "POST", "/v1/projects/{p}/jobs",
     {"json": {"pairs": [pair("m4", metadata={"k\x00": 1})]}}, 422, "metadata"),
    ("nesting 100000 deep", "POST", "/v1/projects/{p}/jobs",
     {"content": "[" * 100_000 + "]" * 100_000, "headers": JSON}, 422, "invalid JSON"),
    ("nul in a label's client_id", "POST", "/v1/projects/{p}/labels",
     {"json": {"labels": [{"client_id": "c\x00", "label": "A"}]}}, 422, "client_id"),
    ("default idempotency key too long", "POST", "/v1/projects/{p}/labels",
     {"json": {"labels": [{"client_id": "c" * 400, "label": "A", "annotator": "y" * 200}]}}, 422,
     "idempotency_key"),
    ("project id beyond an id column", "GET", "/v1/projects/99999999999999999999999", {}, 422, "project_id"),
    ("job id beyond an id column", "GET", "/v1/jobs/9223372036854775808", {}, 422, "job_id"),
    ("results of a job id beyond range", "GET", "/v1/jobs/99999999999999999999/results", {}, 422, "job_id"),
    ("lease id beyond range", "POST", "/v1/review/leases/99999999999999999999/skip",
     {"json": {"reason": "x"}}, 422, "lease_id"),
    ("limit=-1 on labels", "GET", "/v1/projects/{p}/labels?limit=-1", {}, 422, "limit"),
    ("huge after on labels", "GET", "/v1/projects/{p}/labels?after=" + "9" * 23, {}, 422, "after"),
    ("huge after on results", "GET", "/v1/jobs/{j}/results?after=99999999999999999999999", {}, 422, "after"),
    ("huge after on review labels", "GET", "/v1/projects/{p}/review/labels?after=" + "9" * 20, {}, 422,
     "after"),
    ("nul in a label source filter", "GET", "/v1/projects/{p}/labels?source=gold%00", {}, 422, "source"),
    ("judges [\"\"]", "POST", "/v1/projects", {"json": {"name": "q", "judges": [""]}}, 422, "judges"),
    ("unknown field judgs", "POST", "/v1/projects", {"json": {"name": "q", "judgs": ["mock/a"]}}, 422,
     "judgs"),
    ("unknown judge model", "POST", "/v1/projects", {"json": {"name": "q", "judges": ["gpt-9-ultra"]}}, 422,
     "judges[0].model"),
    ("replay file missing", "POST", "/v1/projects",
     {"json": {"name": "q", "judges": [{"model": "replay/gpt-4/vanilla_norules",
                                          "api_base": str(LLMBAR.parent / "missing.jsonl")}]}},
     422, "judges[0].api_base"),
    ("replay judge not in its file", "POST", "/v1/projects",
     {"json": {"name": "q", "judges": [{"model": "replay/no-such-judge", "api_base": str(LLMBAR)}]}},
     422, "judges[0].model"),
    ("mock options that do not parse", "POST", "/v1/projects",
     {"json": {"name": "q", "judges": [{"model": "mock/a", "api_base": "latency_ms=fast"}]}}, 422,
     "judges[0].api_base"),
    ("NaN in routing", "POST", "/v1/projects",
     {"content": '{"name": "q", "judges": ["mock/a"], "routing": {"min_confidence": NaN}}', "headers": JSON},
     422, "min_confidence"),
    ("lone surrogate in a project name", "POST", "/v1/projects",
     {"content": '{"name": "q\\ud800", "judges": ["mock/a"]}', "headers": JSON}, 422, "name"),
    ("nul in a project name", "POST", "/v1/projects", {"json": {"name": "q\x00", "judges": ["mock/a"]}}, 422,
     "name"),
    ("unknown field surrogate-named", "POST", "/v1/projects",
     {"content": '{"name": "q", "judges": ["mock/a"], "\\ud800": 1}', "headers": JSON}, 422, "unicode"),
    ("non-ASCII bearer token", "GET", "/v1/projects",
     {"headers": {"authorization": "Bearer caf\u00e9-\u2603".encode()}}, 401, "token"),
    ("order_sensitive_judges names no judge of the panel", "POST", "/v1/projects",
     {"json": {"name": "q", "judges": ["mock/a", "mock/b"],
               "routing": {"order_sensitive_judges": ["mock/c"]}}},
     422, "routing.order_sensitive_judges[0]: 'mock/c'"),
    ("mock/ without a name", "POST", "/v1/projects", {"json": {"name": "q", "judges": ["mock/"]}}, 422,
     "judges[0].model"),
    ("replay/ without a name", "POST", "/v1/projects",
     {"json": {"name": "q", "judges": [{"model": "replay/ ", "api_base": str(LLMBAR)}]}}, 422,
     "judges[0].model"),
    ("a JSON job sent as text/plain", "POST", JOBS,
     {"content": json.dumps({"pairs": [pair("t1")]}), "headers": {"content-type": "text/plain"}}, 415,
     "application/json"),
    ("JSON labels sent as text/plain", "POST", "/v1/projects/{p}/labels",
     {"content": json.dumps({"labels": [{"client_id": "c2", "label": "A", "source": "gold"}]}),
      "headers": {"content-type": "text/plain; charset=utf-8"}}, 415, "application/x-ndjson"),
    ("a project sent as text/plain", "POST", "/v1/projects",
     {"content": json.dumps({"name": "q", "judges": ["mock/a"]}), "headers": {"content-type": "text/plain"}},
     415, "text/plain"),
    ("a job sent as a form", "POST", JOBS,
     {"content": "pairs=1", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415,
     "Content-Type"),
    ("a job body without a Content-Type", "POST", JOBS, {"content": json.dumps({"pairs": [pair("t2")]})}, 415,
     "no Content-Type"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "names"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    refused_world: World, method: str, path: str, kwargs: dict[str, Any], status: int, names: str
) -> None:
    world = refused_world
    before = row_counts(world.engine)
    url = path.format(p=world.project, j=world.job)
    response = world.client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert names in response.text, response.text
    assert row_counts(world.engine) == before


def test_no_token_is_401_before_any_remark_on_the_path(world: World) -> None:
    """Without a token (or with an unknown one) a request learns nothing about its path ids."""
    anonymous = TestClient(world.client.app)
    for method, path in [
        ("GET", "/v1/projects/99999999999999999999999"),
        ("GET", "/v1/jobs/9223372036854775808/results"),
        ("POST", "/v1/review/leases/99999999999999999999/skip"),
        ("GET", "/v1/projects/not-a-number/labels"),
        ("GET", f"/v1/projects/{world.project}/labels?limit=-1"),
    ]:
        for headers in ({}, {"authorization": "Bearer rvw_unknown"}):
            response = anonymous.request(method, path, json={"reason": "x"} if method == "POST" else None,
                                         headers=headers)  # fmt: skip
            assert response.status_code == 401, (method, path, headers, response.text)
    # With the admin token the same id is the 422 it always was.
    assert world.client.get("/v1/projects/99999999999999999999999").status_code == 422


def test_reposting_a_job_returns_the_same_job(world: World) -> None:
    """A client's retry of the same pairs gets the job that holds them (and its results), not
    a new empty job; pairs that differ still make a new job."""
    url = f"/v1/projects/{world.project}/jobs"
    before = row_counts(world.engine)
    again = world.client.post(url, json={"pairs": [pair("c2", prompt="3+3?"), pair("c1")]})
    assert again.status_code == 200, again.text
    assert again.json()["job_id"] == world.job and again.json()["resubmitted"] is True
    assert again.json()["pairs_created"] == 0 and again.json()["pairs_existing"] == 2
    ndjson = "\n".join(json.dumps(p) for p in (pair("c1"), pair("c2", prompt="3+3?")))
    assert world.client.post(url, content=ndjson, headers=NDJSON).json()["job_id"] == world.job
    assert row_counts(world.engine) == before
    assert world.client.get(f"/v1/jobs/{world.job}").json()["pairs"] == 2
    subset = world.client.post(url, json={"pairs": [pair("c1")]})  # not the same set: a new job
    assert subset.status_code == 201 and subset.json()["job_id"] != world.job


def test_replay_files_stay_inside_the_data_directories(
    any_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No path escape (``..``, a symlink) out of the replay directories, and no file contents
    in the error, whatever the file holds."""
    data = tmp_path / "data"
    data.mkdir()
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id": "TOP-SECRET-LINE"}\n', encoding="utf-8")
    (data / "link.jsonl").symlink_to(secret)
    (data / "notes.jsonl").write_text("TOP-SECRET-NOTES are not recorded judgments\n", encoding="utf-8")
    monkeypatch.setenv("PRELABEL_REPLAY_DIRS", str(data))
    settings = fast_settings(any_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        before = row_counts(any_engine)
        for i, path in enumerate([f"{data}/../secret.jsonl", str(data / "link.jsonl"), "/etc/passwd",
                                  str(data / "notes.jsonl"), str(data)]):  # fmt: skip
            spec = [{"model": "replay/j", "api_base": path}]
            r = client.post("/v1/projects", json={"name": f"escape-{i}", "judges": spec})
            assert r.status_code == 422 and "judges[0].api_base" in r.text, (path, r.text)
            assert "TOP-SECRET" not in r.text and "root:" not in r.text, r.text
        assert row_counts(any_engine) == before
