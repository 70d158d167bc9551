"""Who may call what: every route of the OpenAPI spec x every role x own / other project.

The policy is ``api/policy.py``: one access class per route, and the dependencies that enforce
each class. These tests fail when a route of the spec is missing from it (a new route must say
who may call it), when a route does not use its class's dependencies, or when a role gets a
status its class does not allow. "Allowed" means the request got past authorization (any
status but 401/403, and not the 404 a job of another project answers with); a refused request
gets exactly the status the class names below.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.deps import get_caller
from api.models import ApiKey, Label, Project
from api.policy import ACCESS, POLICY
from tests import fakes
from tests.helpers import (
    ADMIN,
    NO_AUTH,
    auth,
    fold_wal,
    make_project,
    new_reviewer,
    post_question_pairs,
    run_worker,
    served_copy,
)

ROLES = (
    "anonymous",
    "admin",
    "client",
    "other_client",
    "reviewer",
    "senior",
    "other_senior",
    "other_reviewer",
)

# Access class -> the status each caller of the test's world gets when refused (None: allowed).
# "reviewer" is assigned to the project and not senior, "senior" is a senior reviewer assigned
# to it; the "other_" callers belong to another project ("other_senior" a senior one there).
REFUSED: dict[str, dict[str, int | None]] = {
    "public": dict.fromkeys(ROLES),
    "admin": {**dict.fromkeys(ROLES, 403), "anonymous": 401, "admin": None},
    "any_token": {**dict.fromkeys(ROLES), "anonymous": 401},
    "client": {**dict.fromkeys(ROLES, 403), "anonymous": 401, "admin": None, "client": None},
    "client_job": {**dict.fromkeys(ROLES, 404), "anonymous": 401, "admin": None, "client": None},
    "member": {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "admin": None,
        "client": None,
        "reviewer": None,
        "senior": None,
    },
    "review_reader": {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "admin": None,
        "reviewer": None,
        "senior": None,
    },
    "review_worker": {**dict.fromkeys(ROLES, 403), "anonymous": 401, "reviewer": None, "senior": None},
    "senior_worker": {**dict.fromkeys(ROLES, 403), "anonymous": 401, "senior": None},
    # Assignments: a senior reviewer of the project, or the admin; never a plain reviewer.
    "review_lead": {**dict.fromkeys(ROLES, 403), "anonymous": 401, "admin": None, "senior": None},
    "any_reviewer": {
        **dict.fromkeys(ROLES, 403),
        "anonymous": 401,
        "reviewer": None,
        "senior": None,
        "other_senior": None,
        "other_reviewer": None,
    },
}


@dataclass
class World:
    client: TestClient
    tokens: dict[str, dict[str, str]]
    params: dict[str, int]


def _build(client: TestClient, engine: Engine, settings: Any) -> World:
    fakes.install()
    own = make_project(client, "own")
    other = make_project(client, "other")
    key = client.post(f"/v1/projects/{own}/keys", json={"name": "batch"}).json()["key"]
    other_key = client.post(f"/v1/projects/{other}/keys", json={"name": "batch"}).json()["key"]
    job = client.post(
        f"/v1/projects/{own}/jobs",
        json={"pairs": [{"client_id": "p1", "prompt": "Q?", "response_a": "a", "response_b": "b"}]},
        headers=auth(key),
    ).json()["job_id"]
    run_worker(engine, settings)
    reviewer = new_reviewer(client, "assigned", projects=[own])
    other_reviewer = new_reviewer(client, "elsewhere", projects=[other])
    senior = client.post("/v1/reviewers", json={"name": "lead", "projects": [own], "senior": True})
    other_senior = client.post(
        "/v1/reviewers", json={"name": "lead-elsewhere", "projects": [other], "senior": True}
    )
    spare = client.post("/v1/reviewers", json={"name": "spare"}).json()["id"]  # its token may be rotated
    with Session(engine) as session:
        pair_id = session.exec(select(Label.pair_id)).first() or 1
    tokens = {
        "anonymous": NO_AUTH,
        "admin": ADMIN,
        "client": auth(key),
        "other_client": auth(other_key),
        "reviewer": auth(reviewer),
        "senior": auth(senior.json()["token"]),
        "other_senior": auth(other_senior.json()["token"]),
        "other_reviewer": auth(other_reviewer),
    }
    # Ids that exist where a route needs one, and harmless ones where acting would change the
    # world for the next requests (a key that does not exist, a lease nobody holds).
    params = {"project_id": own, "job_id": job, "reviewer_id": spare, "key_id": 999_999, "lease_id": 999_999}
    params["label_id"] = 999_999  # a label nobody has: revising it must not change the world
    params["pair_id"] = pair_id
    params["number"] = 999_999  # an export number nobody has
    return World(client, tokens, params)


@pytest.fixture(scope="module")
def _built(migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The world built (projects, keys, a judged job, reviewers) once per module: each test
    gets a copy of the file, not a build of its own (run_worker and ~12 requests per test)."""
    path = tmp_path_factory.mktemp("authz") / "world.db"
    with served_copy(migrated_sqlite, path) as (client, engine, settings):
        built = _build(client, engine, settings)
    fold_wal(path)
    return path, built


@pytest.fixture
def world(_built: tuple[Path, World], engine: Engine, request: pytest.FixtureRequest) -> World:
    """The built world in this test's database (the ``engine`` fixture's file, replaced by a
    copy of the built one before anything is served on it), and the ``client`` on it."""
    fakes.install()
    source, built = _built
    engine.dispose()
    target = Path(engine.url.database or "")
    assert not target.with_name(target.name + "-wal").exists(), "the test database is in use"
    shutil.copyfile(source, target)
    client: TestClient = request.getfixturevalue("client")
    return World(client, {role: dict(headers) for role, headers in built.tokens.items()}, dict(built.params))


def spec_routes(client: TestClient) -> set[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_route_of_the_spec_has_an_owner(client: TestClient) -> None:
    routes = spec_routes(client)
    assert routes - POLICY.keys() == set(), "routes without an entry in api/policy.py (who may call them?)"
    assert POLICY.keys() - routes == set(), "api/policy.py names routes the API no longer has"
    assert set(POLICY.values()) <= ACCESS.keys() == REFUSED.keys()


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every dependency a route resolves, at any depth (its own, its router's, theirs)."""
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def test_every_route_uses_the_dependencies_of_its_access_class(client: TestClient) -> None:
    """The table is what the code does: a route of a class resolves the dependencies that
    enforce it, and a public route asks for no token at all."""
    wrong = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods:
            access = POLICY[(method, route.path)]
            calls = set(_calls(route.dependant))
            needed = set(ACCESS[access].enforced_by)
            if not needed <= calls or (access == "public" and get_caller in calls):
                wrong.append(f"{method} {route.path} ({access})")
    assert not wrong, "routes that do not enforce their access class:\n" + "\n".join(wrong)


def test_every_role_gets_what_its_class_allows_and_nothing_more(world: World) -> None:
    failures = []
    for (method, template), access in sorted(POLICY.items()):
        path = template.format(**world.params)
        for role in ROLES:
            body = {} if method in ("POST", "PUT") else None
            response = world.client.request(method, path, json=body, headers=world.tokens[role])
            refused_with = REFUSED[access][role]
            got = response.status_code
            if refused_with is None:
                ok = got not in (401, 403) and not (access == "client_job" and got == 404)
            else:
                ok = got == refused_with
            assert got < 500, (method, path, role, response.text)
            if not ok:
                failures.append(f"{method} {template} as {role}: {got} (class {access})")
    assert not failures, "\n".join(failures)


def test_revoked_keys_and_unknown_tokens_are_refused(world: World) -> None:
    client, own = world.client, world.params["project_id"]
    created = client.post(f"/v1/projects/{own}/keys", json={"name": "temp"}).json()
    assert created["key"].startswith("plk_") and created["prefix"] == created["key"][:12]
    listed = client.get(f"/v1/projects/{own}/keys").json()
    assert all("key" not in row and "key_hash" not in row for row in listed)
    assert client.get(f"/v1/projects/{own}", headers=auth(created["key"])).status_code == 200
    assert client.delete(f"/v1/projects/{own}/keys/{created['id']}").json()["revoked_at"] is not None
    assert client.get(f"/v1/projects/{own}", headers=auth(created["key"])).status_code == 401
    for token in ("plk_forged", "rvw_forged", "admin-dev-token", "ünïcödé-tøken", ""):
        # Raw latin-1 bytes: what a client sending a non-ASCII token puts on the wire.
        header = f"Bearer {token}".encode()
        got = client.get(f"/v1/projects/{own}", headers=[(b"authorization", header)])
        assert got.status_code == 401, (token, got.text)


def test_a_client_and_a_reviewer_see_only_their_projects(world: World, engine: Engine) -> None:
    client = world.client
    with Session(engine) as session:
        names = {p.id: p.name for p in session.exec(select(Project))}
        assert len(session.exec(select(ApiKey)).all()) == 2
    seen = {
        role: {p["name"] for p in client.get("/v1/projects", headers=world.tokens[role]).json()}
        for role in ROLES[1:]
    }
    assert seen["admin"] == set(names.values())
    assert seen["client"] == seen["reviewer"] == seen["senior"] == {"own"}
    assert seen["other_client"] == seen["other_reviewer"] == seen["other_senior"] == {"other"}
    # Gold labels need the project's key: a reviewer cannot open the gate by posting "gold".
    gold = {"labels": [{"client_id": "p1", "label": "A", "source": "gold"}]}
    labels = f"/v1/projects/{world.params['project_id']}/labels"
    assert client.post(labels, json=gold, headers=world.tokens["reviewer"]).status_code == 403
    assert client.post(labels, json=gold, headers=world.tokens["client"]).status_code == 201


def test_a_reviewer_is_assigned_by_the_admin_only(world: World) -> None:
    client, spare = world.client, world.params["reviewer_id"]
    own = world.params["project_id"]
    assert client.put(f"/v1/reviewers/{spare}/projects", json={"projects": [own]}).json()["projects"] == [own]
    assert client.put(f"/v1/reviewers/{spare}/projects", json={"projects": [987654]}).status_code == 422
    denied = client.put(
        f"/v1/reviewers/{spare}/projects", json={"projects": [own]}, headers=world.tokens["reviewer"]
    )
    assert denied.status_code == 403


# --- label sources x callers ----------------------------------------------------------------
#
# Who may give which label source (api/vocab.py IMPORT_SOURCES): the project's key and the
# admin import gold and import labels; review, audit, calibration, adjudicated and honeypot
# labels come only from the review flow, with the reviewer as the caller. Refused with 403
# (anonymous: 401), nothing stored.

IMPORTED = ("gold", "import")
REVIEW_FLOW = ("review", "audit", "calibration", "adjudicated", "honeypot")
MAY_IMPORT = ("admin", "client")


def _label_count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Label.id)).all())


@pytest.mark.parametrize("source", IMPORTED + REVIEW_FLOW)
def test_label_sources_x_callers(world: World, engine: Engine, source: str) -> None:
    client, own = world.client, world.params["project_id"]
    path = f"/v1/projects/{own}/labels"
    for role in ROLES:
        before = _label_count(engine)
        # The annotator names a reviewer: what a forged review label would claim.
        line = {"client_id": "p1", "label": "A", "source": source, "annotator": "assigned"}
        line["idempotency_key"] = f"{source}-{role}"
        got = client.post(path, json={"labels": [line]}, headers=world.tokens[role])
        if role == "anonymous":
            expected = 401
        elif role in MAY_IMPORT and source in IMPORTED:
            expected = 201
        else:
            expected = 403
        assert got.status_code == expected, (source, role, got.text)
        assert _label_count(engine) == before + (expected == 201), (source, role)
        if expected == 403 and role in MAY_IMPORT:
            assert got.json()["errors"][0]["line"] == 1 and "review queue" in got.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_a_batch_with_one_review_flow_line_is_refused_whole(
    world: World, engine: Engine, content_type: str
) -> None:
    """A key's batch of gold labels with one audit line (an annotator named like a reviewer,
    which the kill-switch would read): 403, and not even the gold lines are stored."""
    client, own = world.client, world.params["project_id"]
    lines = [
        {"client_id": "p1", "label": "A", "source": "gold", "annotator": "g"},
        {"client_id": "p1", "label": "B", "source": "audit", "annotator": "assigned"},
        {"client_id": "nope", "label": "C", "source": "gold"},  # invalid too: 403 comes first
    ]
    body = (
        json.dumps({"labels": lines})
        if content_type == "application/json"
        else "\n".join(json.dumps(line) for line in lines)
    )
    before = _label_count(engine)
    for role in MAY_IMPORT:
        got = world.client.post(
            f"/v1/projects/{own}/labels",
            content=body,
            headers={**world.tokens[role], "content-type": content_type},
        )
        assert got.status_code == 403, got.text
        assert [e["line"] for e in got.json()["errors"]] == [2]
    assert _label_count(engine) == before
    # A gold label naming the reviewer as its annotator is stored (the key's own word), but it
    # is not theirs: their history and label list hold nothing they did not give.
    gold = {"labels": [{"client_id": "p1", "label": "A", "source": "gold", "annotator": "assigned"}]}
    stored = client.post(f"/v1/projects/{own}/labels", json=gold, headers=world.tokens["client"])
    assert stored.status_code == 201, stored.text
    reviewer = world.tokens["reviewer"]
    assert client.get(f"/v1/projects/{own}/review/history", headers=reviewer).json() == []
    assert client.get(f"/v1/projects/{own}/review/labels", headers=reviewer).json()["labels"] == []


def _review_project(client: TestClient, engine: Engine, settings: Any, name: str, n: int) -> int:
    project = make_project(client, name, routing={"min_seconds_base": 0.0, "min_seconds_per_1k_chars": 0.0})
    post_question_pairs(client, project, n)
    run_worker(engine, settings)
    return project


def _lease(client: TestClient, project: int, token: str) -> int:
    r = client.post(f"/v1/projects/{project}/review/next", json={}, headers=auth(token))
    assert r.status_code == 200 and r.json()["item"] is not None, r.text
    return r.json()["item"]["lease_id"]


def test_a_reviewer_removed_from_a_project_can_neither_submit_nor_revise(
    client: TestClient, engine: Engine, settings: Any
) -> None:
    fakes.install()
    project = _review_project(client, engine, settings, "removal", 3)
    token = new_reviewer(client, "leaver", projects=[project])
    reviewer_id = client.get("/v1/review/me", headers=auth(token)).json()["id"]
    # A label given while assigned, and a lease taken while assigned.
    lease = _lease(client, project, token)
    first = client.post(f"/v1/review/leases/{lease}/submit", json={"label": "A>B"}, headers=auth(token))
    assert first.status_code == 201, first.text
    assert first.json()["annotator"] == "leaver"
    assert first.json()["source"] in ("review", "calibration", "audit")
    held = _lease(client, project, token)
    assert client.put(f"/v1/reviewers/{reviewer_id}/projects", json={"projects": []}).status_code == 200
    before = _label_count(engine)
    late = client.post(f"/v1/review/leases/{held}/submit", json={"label": "B>A"}, headers=auth(token))
    assert late.status_code == 403 and "no longer assigned" in late.text, late.text
    revised = client.post(
        f"/v1/review/labels/{first.json()['label_id']}/revise", json={"label": "tie"}, headers=auth(token)
    )
    assert revised.status_code == 403, revised.text
    assert client.post(f"/v1/projects/{project}/review/next", json={}, headers=auth(token)).status_code == 403
    assert _label_count(engine) == before
    # Assigned again: the same lease may be answered (it is still theirs).
    assignment = {"projects": [project]}
    assert client.put(f"/v1/reviewers/{reviewer_id}/projects", json=assignment).status_code == 200
    again = client.post(f"/v1/review/leases/{held}/submit", json={"label": "B>A"}, headers=auth(token))
    assert again.status_code == 201, again.text


def test_a_reviewer_cannot_choose_a_label_source(client: TestClient, engine: Engine, settings: Any) -> None:
    """The review flow sets the source from why the pair is in the queue, never the caller."""
    fakes.install()
    project = _review_project(client, engine, settings, "no-source", 1)
    token = new_reviewer(client, "chooser", projects=[project])
    lease = _lease(client, project, token)
    for extra in ({"source": "gold"}, {"annotator": "someone-else"}):
        body = {"label": "A>B", **extra}
        r = client.post(f"/v1/review/leases/{lease}/submit", json=body, headers=auth(token))
        assert r.status_code == 422, (extra, r.text)
    assert _label_count(engine) == 0


# --- assignments x callers ------------------------------------------------------------------------


def test_assignment_x_callers(world: World, engine: Engine) -> None:
    """Assigning and giving back with a real body, as every role: only the project's senior
    reviewer and the admin change anything (a plain reviewer cannot hand work around, a senior
    of another project cannot reach in); the refused change nothing and write no audit event."""
    from api.models import AuditEvent, ReviewAssignment, ReviewItem

    client, own = world.client, world.params["project_id"]
    with Session(engine) as session:
        item = session.exec(select(ReviewItem.id).where(ReviewItem.project_id == own)).first()
    assert item is not None
    assignee = client.get("/v1/review/me", headers=world.tokens["reviewer"]).json()["id"]
    assign = f"/v1/projects/{own}/review/assignments"
    for role in ROLES:
        expected = REFUSED["review_lead"][role]
        got = client.post(
            assign, json={"reviewer_id": assignee, "item_ids": [item]}, headers=world.tokens[role]
        )
        back = client.post(f"{assign}/release", json={"item_ids": [item]}, headers=world.tokens[role])
        listed = client.get(assign, headers=world.tokens[role])
        if expected is None:
            assert (got.status_code, back.status_code, listed.status_code) == (200, 200, 200), (
                role,
                got.text,
            )
            assert got.json()["item_ids"] == back.json()["item_ids"] == [item]
        else:
            assert got.status_code == back.status_code == listed.status_code == expected, (role, got.text)
    with Session(engine) as session:
        assert session.exec(select(ReviewAssignment)).all() == []
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
    allowed = [role for role in ROLES if REFUSED["review_lead"][role] is None]
    assert kinds.count("review_assigned") == kinds.count("review_unassigned") == len(allowed) == 2
