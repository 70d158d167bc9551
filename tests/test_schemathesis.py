"""Schemathesis over the whole OpenAPI spec, in-process (issue 10, item 3).

Every operation gets generated requests, valid and invalid (schemathesis' positive and negative
strategies under Hypothesis, derandomized so CI runs the same cases every time), as the admin
or, for the reviewer-only operations, as an assigned reviewer. A third of the generated ids are
swapped for ids that exist (so requests reach the route bodies, not only the 404) and a third
for ids beyond any id column. It fails on any 5xx, any status code or content type the spec does
not list, and any response body that violates its own schema. The last test checks that at
least 1,000 cases ran (about 1,800 in ~40 s on the project's 2-core machine).

The operations are parametrized here with pytest, not with ``@schema.parametrize()``: on
pytest 9 that gives every operation the same node id, and pytest-xdist (``make test``) then
runs only the first operation.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from api.db import make_engine
from api.main import create_app
from api.settings import Settings
from tests.helpers import ADMIN, PG_URL, auth, fast_settings, new_reviewer, sqlite_url_for

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES_PER_OPERATION = 60
MIN_CASES = 1000
RAN: Counter[str] = Counter()  # cases per operation
STARTED: list[float] = []


@dataclass
class Seeded:
    project: int
    job: int
    reviewer_token: str


# The spec is read when the module loads (pytest parametrizes by operation at collection), so
# the app exists then, untouched: its database is created in `seeded` and migrated by the app's
# lifespan (schemathesis.pytest.from_fixture would defer all this, but breaks on pytest 9).
# PostgreSQL when the tests have one (it refuses more than SQLite: NUL in text), in a schema
# of its own; else SQLite.
_DIR = Path(tempfile.gettempdir()) / f"prelabel-schemathesis-{uuid.uuid4().hex[:12]}"  # made by `seeded`
_URL = Settings(database_url=PG_URL).database_url if PG_URL else sqlite_url_for(_DIR / "api.db")
_SCHEMA = f"fuzz_{uuid.uuid4().hex[:12]}" if PG_URL else None
_ENGINE = make_engine(_URL, schema=_SCHEMA)
APP: FastAPI = create_app(fast_settings(_URL), _ENGINE, run_worker=False)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # what from_asgi sets: calls go to the app in-process
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


def _pg_schema(statement: str) -> None:
    admin = make_engine(_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement))
    admin.dispose()


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    """A project with mock judges, a job, a gold label and a reviewer assigned to the project."""
    STARTED.append(time.perf_counter())
    _DIR.mkdir()
    if _SCHEMA:
        _pg_schema(f'CREATE SCHEMA "{_SCHEMA}"')
    try:
        with TestClient(APP, headers=ADMIN) as client:
            body = {"name": "fuzz", "judges": ["mock/a", "mock/b"]}
            project = client.post("/v1/projects", json=body).json()
            pairs = [
                {"client_id": f"c{i}", "prompt": f"Question {i}?", "response_a": "yes", "response_b": "no"}
                for i in range(5)
            ]
            job = client.post(f"/v1/projects/{project['id']}/jobs", json={"pairs": pairs}).json()
            label = {"labels": [{"client_id": "c0", "label": "A", "source": "gold"}]}
            assert client.post(f"/v1/projects/{project['id']}/labels", json=label).status_code == 201
            token = new_reviewer(client, "fuzz-reviewer", [project["id"]])
            yield Seeded(project["id"], job["job_id"], token)
    finally:
        _ENGINE.dispose()
        if _SCHEMA:
            _pg_schema(f'DROP SCHEMA "{_SCHEMA}" CASCADE')
        shutil.rmtree(_DIR, ignore_errors=True)


REQUEST_TIMEOUT_S = 300.0
REVIEWER_ONLY = ("/v1/review/", "/review/next", "/review/progress")


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_every_operation_conforms(operation: schemathesis.APIOperation, seeded: Seeded) -> None:
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case) -> None:
        _call_and_validate(case, seeded)

    conforms()


def _call_and_validate(case: schemathesis.Case, seeded: Seeded) -> None:
    real = {"project_id": seeded.project, "job_id": seeded.job}
    ids = case.path_parameters or {}
    for name, value in ids.items():
        if name.endswith("_id") and isinstance(value, int):
            # A third of the ids exist (the request reaches the route's body), a third lie
            # beyond any id column (the spec gives no bound, so generation seldom goes there).
            if value % 3 == 0 and name in real:
                ids[name] = real[name]
            elif value % 3 == 1:
                ids[name] = value + 2**63
    path = case.operation.path
    headers = auth(seeded.reviewer_token) if any(part in path for part in REVIEWER_ONLY) else ADMIN
    RAN[case.operation.label] += 1
    # schemathesis' own read timeout is 10 s: a wall-clock deadline a busy CI machine misses (it
    # failed 2 operations at load average ~11). 300 s only catches a hang.
    case.call_and_validate(headers=headers, checks=CHECKS, timeout=REQUEST_TIMEOUT_S)


def test_enough_cases_ran() -> None:
    """Runs after the operations above (same module, file order): the case count and time."""
    if not RAN:
        pytest.skip("the schemathesis test did not run (deselected)")
    total = sum(RAN.values())
    seconds = time.perf_counter() - STARTED[0]
    print(f"\nschemathesis: {total} cases over {len(RAN)} operations in {seconds:.0f} s: {dict(RAN)}")
    assert total >= MIN_CASES, RAN
