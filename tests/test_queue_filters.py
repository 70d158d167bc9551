"""A queue reviewers can steer: filters (reason, source job, metadata, text) and assignments.

On SQLite and, with PRELABEL_TEST_DATABASE_URL, PostgreSQL. One small world, built once per
module and database and copied per test: a project with two jobs of pairs judged by the fake
judge, each item's reasons and priority set by the test (routing is not what is under test), a
lead (senior reviewer) and two reviewers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.main import create_app
from api.models import AuditEvent, Pair, ReviewAssignment, ReviewerStatus, ReviewItem, utcnow
from api.settings import Settings
from tests import fakes
from tests.helpers import (
    ADMIN,
    auth,
    copy_sqlite,
    fast_settings,
    fold_wal,
    make_project,
    new_reviewer,
    pg_clone,
    post_question_pairs,
    run_worker,
)

# client id -> (prompt, metadata, reasons, priority); the first three in job 1, the rest in job 2.
PAIRS: dict[str, tuple[str, dict[str, Any], list[str], float]] = {
    "refund": (
        "Refund request from jane.roe@example.com: the blender broke after a week.",
        {"lang": "en", "turns": 3},
        ["judges_disagree"],
        0.9,
    ),
    "sort": (
        "How do I sort a list in Python?",
        {"lang": "en", "multi": True},
        ["order_sensitive", "low_confidence"],
        0.8,
    ),
    "fridge": ("Übersetze 'KÜHLSCHRANK' ins Englische.", {"lang": "de"}, ["audit"], 0.7),
    "progress": (
        "Report says 100%_done for the build.",
        {"lang": "en", "turns": "3"},
        ["order_sensitive"],
        0.6,
    ),
    "poem": ("Write a poem about the sea.", {"lang": "fr", "score": 2.5}, ["injection_suspected"], 0.5),
}
JOB1 = ("refund", "sort", "fridge")


@dataclass
class World:
    client: TestClient
    engine: Engine
    project: int
    jobs: tuple[int, int]
    items: dict[str, int]  # client id -> review item id
    lead: str
    ana: str
    bo: str
    ids: dict[str, int]  # reviewer name -> id

    def next(self, token: str, flt: dict[str, Any] | None = None, queue: str = "review") -> Any:
        body: dict[str, Any] = {"queue": queue}
        if flt is not None:
            body["filter"] = flt
        return self.client.post(f"/v1/projects/{self.project}/review/next", json=body, headers=auth(token))

    def listed(self, token: str | None = None, **params: Any) -> Any:
        headers = auth(token) if token else ADMIN
        return self.client.get(f"/v1/projects/{self.project}/review/queue", params=params, headers=headers)

    def assign(self, token: str | None, body: dict[str, Any]) -> Any:
        headers = auth(token) if token else ADMIN
        return self.client.post(f"/v1/projects/{self.project}/review/assignments", json=body, headers=headers)

    def name_of(self, item_id: int) -> str:
        return next(name for name, i in self.items.items() if i == item_id)


@pytest.fixture(autouse=True)
def _fake_judges() -> None:
    fakes.install()


@dataclass(frozen=True)
class _Built:
    """The world's ids, and where its database is: a SQLite file or a PostgreSQL database to
    copy per test (None: PostgreSQL without CREATEDB, each test builds its own)."""

    project: int
    jobs: tuple[int, int]
    items: dict[str, int]
    lead: str
    ana: str
    bo: str
    ids: dict[str, int]
    source: Path | str | None = None
    pg: Any = None  # conftest's PgServer, for a PostgreSQL source


def _build(engine: Engine) -> _Built:
    settings: Settings = fast_settings(engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, engine, run_worker=False), headers=ADMIN) as client:
        project = make_project(
            client, "steer", routing={"min_seconds_base": 0.0, "min_seconds_per_1k_chars": 0.0}
        )
        jobs = []
        for names in (JOB1, tuple(n for n in PAIRS if n not in JOB1)):
            pairs = [
                {
                    "client_id": name,
                    "prompt": PAIRS[name][0],
                    "response_a": f"An answer to {name}.",
                    "response_b": f"Another answer to {name}.",
                    "metadata": PAIRS[name][1],
                }
                for name in names
            ]
            jobs.append(post_question_pairs(client, project, pairs=pairs))
        run_worker(engine, settings)
        items = _set_reasons(engine, project)
        lead = client.post("/v1/reviewers", json={"name": "lead", "projects": [project], "senior": True})
        assert lead.status_code == 201, lead.text
        ana, bo = new_reviewer(client, "ana", [project]), new_reviewer(client, "bo", [project])
        ids = {r["name"]: r["id"] for r in client.get("/v1/reviewers").json()}
    return _Built(project, (jobs[0], jobs[1]), items, lead.json()["token"], ana, bo, ids)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def built(
    request: pytest.FixtureRequest, migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Built]:
    """The world built (ingested, judged, reviewers made) once per module and database; each
    test gets a copy of it: N x (project + ingest + judge) became 1 x that + N x a copy."""
    fakes.install()  # before the function-scoped autouse fixture: the build judges
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("queue-world") / "world.db"
        engine = copy_sqlite(migrated_sqlite, path)
        try:
            world = _build(engine)
        finally:
            engine.dispose()
        fold_wal(path)
        yield replace(world, source=path)
        return
    # Looked up here, not requested: SQLite runs must not need a PostgreSQL server.
    server = request.getfixturevalue("pg_server")
    if server is None:
        pytest.skip("PostgreSQL tests need PRELABEL_TEST_DATABASE_URL")
    if server.template is None:  # no CREATEDB: nothing to clone, each test builds its world
        yield _Built(0, (0, 0), {}, "", "", "", {})
        return
    with pg_clone(server.admin, server.url, server.template) as engine:
        world = _build(engine)
        engine.dispose()  # a template with a connection open cannot be cloned
        yield replace(world, source=engine.url.database, pg=server)


@contextmanager
def _copy_of(built: _Built, path: Path) -> Iterator[Engine]:
    """An engine on a fresh copy of the built world's database (``path``: where a SQLite copy goes)."""
    if isinstance(built.source, Path):
        engine = copy_sqlite(built.source, path)
        try:
            yield engine
        finally:
            engine.dispose()
    else:
        assert built.source is not None
        with pg_clone(built.pg.admin, built.pg.url, built.source) as engine:
            yield engine


@contextmanager
def _world_on(built: _Built, engine: Engine) -> Iterator[World]:
    settings: Settings = fast_settings(engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, engine, run_worker=False), headers=ADMIN) as client:
        yield World(
            client, engine, built.project, built.jobs, dict(built.items), built.lead, built.ana, built.bo,
            dict(built.ids),
        )  # fmt: skip


@pytest.fixture
def world(built: _Built, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    """The world on its own copy of the database: the test may change anything."""
    if built.source is None:  # PostgreSQL without CREATEDB: built per test, as before
        engine = request.getfixturevalue("pg_engine")
        with _world_on(_build(engine), engine) as w:
            yield w
        return
    with _copy_of(built, tmp_path / "test.db") as engine, _world_on(built, engine) as w:
        yield w


@pytest.fixture(scope="module")
def _shared_world(built: _Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("queue-shared") / "test.db"
    with _copy_of(built, path) as engine, _world_on(built, engine) as w:
        yield w


@pytest.fixture
def read_only_world(built: _Built, request: pytest.FixtureRequest) -> World:
    """For tests whose requests are all refused (a 422 changes nothing): one copy of the world
    served per module and database, not a copy and an app per case (the app's first request
    to a router costs ~0.2 s CPU of FastAPI building that router's routes)."""
    return request.getfixturevalue("_shared_world" if built.source is not None else "world")


def _set_reasons(engine: Engine, project: int) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Pair.client_id, ReviewItem.id)
            .join(ReviewItem, col(ReviewItem.pair_id) == col(Pair.id))
            .where(Pair.project_id == project, ReviewItem.queue == "review")
        ).all()
        items = dict(rows)
        assert set(items) == set(PAIRS), items  # the fake judge sends every pair to review
        for name, (_, _, reasons, priority) in PAIRS.items():
            session.execute(
                update(ReviewItem)
                .where(col(ReviewItem.id) == items[name])
                .values(reasons=reasons, priority=priority)
            )
        session.commit()
    return items


def _served(world: World, token: str, flt: dict[str, Any] | None = None) -> list[str]:
    """Everything the reviewer is served under ``flt``, in order (each answered at once)."""
    out = []
    while True:
        r = world.next(token, flt)
        assert r.status_code == 200, r.text
        item = r.json()["item"]
        if item is None:
            return out
        out.append(world.name_of(item["item_id"]))
        sub = world.client.post(
            f"/v1/review/leases/{item['lease_id']}/submit", json={"label": "A>B"}, headers=auth(token)
        )
        assert sub.status_code == 201, sub.text


def _names(page: Any, world: World) -> list[str]:
    assert page.status_code == 200, page.text
    return [world.name_of(i["item_id"]) for i in page.json()["items"]]


# --- filters -------------------------------------------------------------------------------------


def test_each_filter_lists_what_it_says(world: World) -> None:
    w = world
    assert _names(w.listed(w.ana), w) == ["refund", "sort", "fridge", "progress", "poem"]  # priority order
    assert _names(w.listed(w.ana, reason="order_sensitive"), w) == ["sort", "progress"]
    assert _names(w.listed(w.ana, reason=["audit", "injection_suspected"]), w) == ["fridge", "poem"]
    # "order_sensitive" must not match inside another word, nor a reason the item lacks.
    assert _names(w.listed(w.ana, reason="low_confidence"), w) == ["sort"]
    assert _names(w.listed(w.ana, job=w.jobs[0]), w) == list(JOB1)
    assert _names(w.listed(w.ana, job=[w.jobs[1], 999]), w) == ["progress", "poem"]
    # Metadata: compared as text, so 3 and "3" match either; booleans and floats as JSON writes them.
    assert _names(w.listed(w.ana, meta="lang:de"), w) == ["fridge"]
    assert _names(w.listed(w.ana, meta="turns:3"), w) == ["refund", "progress"]
    assert _names(w.listed(w.ana, meta="multi:true"), w) == ["sort"]
    assert _names(w.listed(w.ana, meta="score:2.5"), w) == ["poem"]
    assert _names(w.listed(w.ana, meta=["lang:en", "turns:3"]), w) == ["refund", "progress"]
    assert _names(w.listed(w.ana, meta="lang:xx"), w) == []
    assert _names(w.listed(w.ana, meta="missing:1"), w) == []
    # Everything together is an AND.
    both = w.listed(w.ana, reason="order_sensitive", job=w.jobs[1], meta="lang:en")
    assert _names(both, w) == ["progress"] and both.json()["matched"] == 1
    # Paging: offset and the next offset.
    page = w.listed(w.ana, limit=2)
    assert page.json()["matched"] == 5 and page.json()["next_offset"] == 2
    assert _names(w.listed(w.ana, limit=2, offset=4), w) == ["poem"]
    assert w.listed(w.ana, limit=2, offset=4).json()["next_offset"] is None


def test_text_search_is_case_insensitive_literal_and_only_sees_redacted_text(world: World) -> None:
    w = world
    assert _names(w.listed(w.ana, text="BLENDER"), w) == ["refund"]
    assert _names(w.listed(w.ana, text="sort a LIST"), w) == ["sort"]
    assert _names(w.listed(w.ana, text="answer to poem"), w) == ["poem"]  # responses are searched too
    # Not only ASCII letters fold (SQLite's own lower() would not).
    if w.engine.dialect.name == "sqlite":
        assert _names(w.listed(w.ana, text="kühlschrank"), w) == ["fridge"]
    # % and _ are letters here, not LIKE wildcards.
    assert _names(w.listed(w.ana, text="100%_done"), w) == ["progress"]
    assert _names(w.listed(w.ana, text="100%"), w) == ["progress"]
    assert _names(w.listed(w.ana, text="1_0"), w) == []
    # The e-mail address is redacted in what reviewers see: searching for it finds nothing,
    # by any part of it, so search cannot probe hidden personal data.
    for probe in ("jane.roe@example.com", "jane.roe", "example.com", "roe@"):
        assert _names(w.listed(w.ana, text=probe), w) == [], probe
    preview = w.listed(w.ana, text="blender").json()["items"][0]["prompt"]
    assert "jane" not in preview.lower() and "blender" in preview
    assert w.listed(w.ana, text="blender").json()["searched_unprepared"] == 0
    # Next: the same filter serves only matching items.
    r = w.next(w.ana, {"text": "BLENDER"})
    assert w.name_of(r.json()["item"]["item_id"]) == "refund"


def test_next_serves_only_what_matches_and_says_why_when_nothing_does(world: World) -> None:
    w = world
    # A lease held is given back whatever the filter: it is answered or skipped first.
    first = w.next(w.bo).json()["item"]
    assert w.name_of(first["item_id"]) == "refund"
    again = w.next(w.bo, {"reasons": ["audit"]}).json()["item"]
    assert again["lease_id"] == first["lease_id"]
    assert _served(w, w.bo) == ["refund", "sort", "fridge", "progress", "poem"]
    # Ana: the overlap is 1, so Bo's labels emptied the queue; a new job fills it again.
    assert w.next(w.ana).json()["item"] is None


def test_next_serves_matching_items_in_priority_order(world: World) -> None:
    w = world
    assert _served(w, w.ana, {"reasons": ["order_sensitive"]}) == ["sort", "progress"]
    empty = w.next(w.ana, {"reasons": ["order_sensitive"]}).json()
    assert empty["item"] is None and "No waiting item matches your filter (3 item(s)" in empty["detail"]
    assert _served(w, w.ana, {"jobs": [w.jobs[0]], "metadata": {"lang": "de"}}) == ["fridge"]
    assert _served(w, w.ana, {"metadata": {"turns": 3}}) == ["refund"]
    # Bo holds a lease on the last one: Ana's filter matches it, but it is not hers to take.
    assert w.name_of(w.next(w.bo).json()["item"]["item_id"]) == "poem"
    held = w.next(w.ana, {"text": "poem"}).json()
    assert held["item"] is None and "1 item(s) match your filter" in held["detail"]
    assert _served(w, w.ana) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"reason": "not_a_reason"}, "reasons"),
        ({"job": "abc"}, "jobs"),
        ({"job": "0"}, "jobs"),
        ({"job": str(2**40)}, "jobs"),
        ({"meta": "no-colon"}, "meta"),
        ({"meta": ":v"}, "meta"),
        ({"meta": "bad'key:v"}, "metadata"),
        ({"meta": 'q"uote:v'}, "metadata"),
        ({"text": "   "}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": "x" * 201}, "text"),
        ({"limit": "0"}, "limit"),
        ({"assigned": "everyone"}, "assigned"),
        ({"queue": "adjudication"}, "queue"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(read_only_world: World, params: dict[str, str], field: str) -> None:
    world = read_only_world
    r = world.listed(world.ana, **params)
    assert r.status_code == 422, r.text
    assert field in str(r.json()["detail"]), r.text


@pytest.mark.parametrize(
    "flt",
    [
        {"reasons": ["nope"]},
        {"jobs": [-1]},
        {"metadata": {"": "x"}},
        {"metadata": {"k": None}},
        {"metadata": {"k": {"nested": 1}}},
        {"metadata": {f"k{i}": 1 for i in range(11)}},
        {"text": ""},
        {"colour": "red"},
    ],
)
def test_a_bad_filter_on_next_is_a_422(read_only_world: World, flt: dict[str, Any]) -> None:
    world = read_only_world
    r = world.next(world.ana, flt)
    assert r.status_code == 422, r.text


# --- assignments ---------------------------------------------------------------------------------


def test_assigned_items_come_first_for_the_assignee_and_go_to_nobody_else(world: World) -> None:
    w = world
    ana = w.ids["ana"]
    got = w.assign(w.lead, {"reviewer_id": ana, "item_ids": [w.items["poem"], w.items["fridge"]]})
    assert got.status_code == 200, got.text
    assert got.json() == {
        "reviewer_id": ana,
        "assigned": 2,
        "moved": 0,
        "item_ids": sorted([w.items["poem"], w.items["fridge"]]),
    }
    # Bo never gets Ana's items while the assignment stands.
    bo_listed = w.listed(w.bo, assigned="none")
    assert _names(bo_listed, w) == ["refund", "sort", "progress"]
    listed = {i["item_id"]: i["assigned_to"] for i in w.listed(w.bo).json()["items"]}
    assert listed[w.items["poem"]] == {"reviewer_id": ana, "name": "ana"}
    assert w.listed(w.ana).json()["assigned_to_you"] == 2
    assert _names(w.listed(w.ana, assigned="me"), w) == ["fridge", "poem"]
    # Ana gets hers first (priority order among them), flagged as assigned, then the pool's best.
    first = w.next(w.ana).json()["item"]
    assert w.name_of(first["item_id"]) == "fridge" and first["assigned"] is True
    assert w.next(w.ana).json()["item"]["lease_id"] == first["lease_id"]  # held: given back
    w.client.post(f"/v1/review/leases/{first['lease_id']}/submit", json={"label": "tie"}, headers=auth(w.ana))
    second = w.next(w.ana).json()["item"]
    assert w.name_of(second["item_id"]) == "poem" and second["assigned"] is True
    w.client.post(
        f"/v1/review/leases/{second['lease_id']}/submit", json={"label": "tie"}, headers=auth(w.ana)
    )
    third = w.next(w.ana).json()["item"]
    assert w.name_of(third["item_id"]) == "refund" and third["assigned"] is False
    assert _served(w, w.bo) == ["sort", "progress"]
    # Every assignment is in the audit log, with who made it.
    with Session(w.engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.kind == "review_assigned")).all()
    assert len(events) == 1 and events[0].project_id == w.project
    assert (
        events[0].payload["by"] == f"reviewer:{w.ids['lead']}"
        and events[0].payload["item_ids"] == got.json()["item_ids"]
    )


def test_a_filter_is_assigned_best_first_and_filters_still_apply_to_the_assignee(world: World) -> None:
    w = world
    bo = w.ids["bo"]
    r = w.assign(None, {"reviewer_id": bo, "filter": {"reasons": ["order_sensitive"]}})  # the admin
    assert r.status_code == 200 and r.json()["assigned"] == 2, r.text
    assert sorted(r.json()["item_ids"]) == sorted([w.items["sort"], w.items["progress"]])
    # A second filter assignment to Ana leaves Bo's items to Bo; limit takes the best.
    r = w.assign(w.lead, {"reviewer_id": w.ids["ana"], "filter": {"metadata": {"lang": "en"}}, "limit": 1})
    assert r.json()["item_ids"] == [w.items["refund"]], r.text
    # Bo's filter serves his assigned items that match, then the pool's.
    assert _served(w, w.bo, {"jobs": [w.jobs[1]]}) == ["progress", "poem"]
    assert _served(w, w.bo) == ["sort", "fridge"]  # Ana's refund stays hers
    with Session(w.engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.kind == "review_assigned")).first()
    assert event is not None and event.payload["by"] == "admin"
    assert event.payload["filter"]["reasons"] == ["order_sensitive"]


def test_explicit_ids_move_an_item_and_bad_ids_store_nothing(world: World) -> None:
    w = world
    ana, bo = w.ids["ana"], w.ids["bo"]
    assert w.assign(w.lead, {"reviewer_id": ana, "item_ids": [w.items["sort"]]}).json()["assigned"] == 1
    moved = w.assign(w.lead, {"reviewer_id": bo, "item_ids": [w.items["sort"], w.items["poem"]]}).json()
    assert moved["assigned"] == 2 and moved["moved"] == 1
    with Session(w.engine) as session:
        assert dict(session.exec(select(ReviewAssignment.item_id, ReviewAssignment.reviewer_id)).all()) == {
            w.items["sort"]: bo,
            w.items["poem"]: bo,
        }
    before = _assignments(w)
    bad = [
        ({"reviewer_id": ana, "item_ids": [999_999]}, 422, "not waiting"),
        ({"reviewer_id": 999_999, "item_ids": [w.items["refund"]]}, 422, "not an active reviewer"),
        ({"reviewer_id": ana}, 422, "item_ids or a filter"),
        ({"reviewer_id": ana, "item_ids": [w.items["refund"]], "filter": {}}, 422, "item_ids or a filter"),
        ({"reviewer_id": ana, "item_ids": []}, 422, "item_ids"),
        ({"reviewer_id": ana, "filter": {"reasons": ["nope"]}}, 422, "reasons"),
        ({"reviewer_id": ana, "item_ids": [w.items["refund"]], "queue": "incident"}, 422, "not waiting"),
    ]
    for body, status, words in bad:
        r = w.assign(w.lead, body)
        assert r.status_code == status and words in r.text, (body, r.text)
    # A reviewer who already had an item cannot be given it (nobody gets an item twice).
    served = w.next(w.ana).json()["item"]
    w.client.post(
        f"/v1/review/leases/{served['lease_id']}/skip", json={"reason": "unsure"}, headers=auth(w.ana)
    )
    r = w.assign(w.lead, {"reviewer_id": ana, "item_ids": [served["item_id"]]})
    assert r.status_code == 422 and "already had" in r.text
    # A reviewer of another project is not an assignee here.
    other = make_project(w.client, "elsewhere")
    stranger = w.client.post("/v1/reviewers", json={"name": "stranger", "projects": [other]}).json()["id"]
    r = w.assign(w.lead, {"reviewer_id": stranger, "item_ids": [w.items["refund"]]})
    assert r.status_code == 422 and "not an active reviewer" in r.text
    assert _assignments(w) == before


def _assignments(w: World) -> dict[int, int]:
    with Session(w.engine) as session:
        return dict(session.exec(select(ReviewAssignment.item_id, ReviewAssignment.reviewer_id)).all())


def test_unassign_returns_items_to_the_pool_and_is_audited(world: World) -> None:
    w = world
    ana = w.ids["ana"]
    w.assign(w.lead, {"reviewer_id": ana, "item_ids": [w.items["refund"], w.items["sort"], w.items["poem"]]})
    release = f"/v1/projects/{w.project}/review/assignments/release"
    one = w.client.post(
        release, json={"item_ids": [w.items["refund"], w.items["fridge"]]}, headers=auth(w.lead)
    )
    assert one.status_code == 200 and one.json() == {"unassigned": 1, "item_ids": [w.items["refund"]]}, (
        one.text
    )
    assert _names(w.listed(w.bo, assigned="none"), w) == ["refund", "fridge", "progress"]
    rest = w.client.post(release, json={"reviewer_id": ana}, headers=ADMIN).json()
    assert rest["unassigned"] == 2
    assert w.client.post(release, json={"reviewer_id": ana}, headers=ADMIN).json()["unassigned"] == 0
    assert w.client.post(release, json={}, headers=ADMIN).status_code == 422
    assert _served(w, w.bo) == ["refund", "sort", "fridge", "progress", "poem"]
    with Session(w.engine) as session:
        kinds = [e.kind for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq)))]
    assert kinds.count("review_unassigned") == 2  # the empty release wrote nothing
    assert w.client.get("/v1/audit/verify").json()["ok"] is True


def test_a_paused_or_removed_assignee_gives_the_items_back_to_the_pool(world: World) -> None:
    w = world
    ana = w.ids["ana"]
    w.assign(w.lead, {"reviewer_id": ana, "item_ids": [w.items["refund"], w.items["sort"]]})
    overview = f"/v1/projects/{w.project}/review/assignments"
    assert [a["standing"] for a in w.client.get(overview).json()["assignments"]] == [True, True]
    # Paused (the quality check's pause, written as api/review/quality.py writes it).
    with Session(w.engine) as session:
        session.add(ReviewerStatus(reviewer_id=ana, project_id=w.project, paused=True, paused_at=utcnow()))
        session.commit()
    view = w.client.get(overview, headers=auth(w.lead)).json()
    assert {a["why_not"] for a in view["assignments"]} == {"the assignee is paused on the project"}
    assert next(r for r in view["reviewers"] if r["name"] == "ana") | {"assigned": 0} == {
        "reviewer_id": ana,
        "name": "ana",
        "senior": False,
        "paused": True,
        "assigned": 0,
    }
    assert _names(w.listed(w.bo, assigned="none"), w)[:2] == ["refund", "sort"]
    r = w.assign(w.lead, {"reviewer_id": ana, "item_ids": [w.items["poem"]]})
    assert r.status_code == 409 and "paused" in r.text
    first = w.next(w.bo).json()["item"]
    assert w.name_of(first["item_id"]) == "refund" and first["assigned"] is False
    # Resumed: what still waits is hers again. Removed from the project: back to the pool.
    with Session(w.engine) as session:
        session.execute(update(ReviewerStatus).values(paused=False))
        session.commit()
    assert _names(w.listed(w.bo, assigned="none"), w) == ["fridge", "progress", "poem"]
    assert w.client.put(f"/v1/reviewers/{ana}/projects", json={"projects": []}).status_code == 200
    view = w.client.get(overview).json()
    whys = {w.name_of(a["item_id"]): a["why_not"] for a in view["assignments"]}
    assert whys == dict.fromkeys(("refund", "sort"), "the assignee is no longer a reviewer of the project")
    assert _served(w, w.bo) == ["refund", "sort", "fridge", "progress", "poem"]  # refund: his held lease


def test_who_may_steer(world: World) -> None:
    w = world
    overview = f"/v1/projects/{w.project}/review/assignments"
    body = {"reviewer_id": w.ids["ana"], "item_ids": [w.items["poem"]]}
    assert w.assign(w.ana, body).status_code == 403  # not senior
    assert w.client.get(overview, headers=auth(w.ana)).status_code == 403
    assert w.assign(w.lead, body).status_code == 200
    assert w.client.get(overview, headers=auth(w.lead)).status_code == 200
    key = w.client.post(f"/v1/projects/{w.project}/keys", json={"name": "k"}).json()["key"]
    assert w.assign(key, body).status_code == 403
    assert w.listed(key).status_code == 403
    # A senior of another project steers nothing here.
    other = make_project(w.client, "elsewhere")
    outsider = w.client.post("/v1/reviewers", json={"name": "o", "projects": [other], "senior": True}).json()
    assert w.assign(outsider["token"], body).status_code == 403
    assert (
        w.client.get(f"/v1/projects/{w.project}/review/queue", headers=auth(outsider["token"])).status_code
        == 403
    )


def test_the_python_client_steers_the_queue(world: World) -> None:
    """``client.review``: the same filters and assignments, typed (the admin's client here)."""
    from prelabel import Client

    w = world
    with Client("http://testserver", "unused") as client:
        client.http = w.client  # the app in-process, with the admin's token
        page = client.review.queue(
            w.project, filter={"metadata": {"turns": 3}, "reasons": ["order_sensitive"]}
        )
        assert [w.name_of(i.item_id) for i in page.items] == ["progress"]
        assert client.review.queue(w.project, filter={"text": "blender"}).matched == 1
        done = client.review.assign(w.project, w.ids["bo"], filter={"metadata": {"lang": "en"}}, limit=2)
        assert sorted(w.name_of(i) for i in done.item_ids) == ["refund", "sort"]  # ids: judging order
        overview = client.review.assignments(w.project)
        assert {r.name: r.assigned for r in overview.reviewers} == {"ana": 0, "bo": 2, "lead": 0}
        assert client.review.queue(w.project, assigned="none").matched == 3
        assert client.review.unassign(w.project, reviewer_id=w.ids["bo"]).unassigned == 2


def test_a_text_search_redacts_a_bounded_number_of_pairs_first(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redaction is slow: a search redacts at most SEARCH_PREPARE_LIMIT waiting pairs (best
    first) and says how many it could not see; the rest wait for the background preparation."""
    from api.review import filters

    monkeypatch.setattr(filters, "SEARCH_PREPARE_LIMIT", 2)
    w = world
    first = w.listed(w.ana, text="answer to").json()
    assert first["searched_unprepared"] == 3
    assert [w.name_of(i["item_id"]) for i in first["items"]] == ["refund", "sort"]
    # Two more redacted on this request (fridge, progress): the poem's pair is not searched yet.
    poem = w.listed(w.ana, text="poem").json()
    assert poem["matched"] == 0 and poem["searched_unprepared"] == 1
    assert w.listed(w.ana, text="poem").json() | {"items": []} == {
        "items": [],
        "matched": 1,
        "assigned_to_you": 0,
        "next_offset": None,
        "searched_unprepared": 0,
    }
