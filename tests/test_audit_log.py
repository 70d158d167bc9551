"""The tamper-evident audit log: the service's writers log their events, the chain verifies, and
an edited, deleted or reordered row is found (API, CLI, concurrency on both databases)."""

from __future__ import annotations

import doctest
import random
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api import audit
from api.calibrate import kill_switch
from api.main import create_app
from api.models import AuditEvent, Decision, Label, Pair, Project
from api.settings import Settings
from api.tools.cli import main
from judge.recorded import load_recorded
from tests import fakes
from tests.helpers import (
    ADMIN,
    LLMBAR,
    auth,
    fast_settings,
    make_project,
    new_reviewer,
    post_question_pairs,
    post_recorded_pairs,
    run_worker,
    store_reviewer_labels,
)
from tests.waiting import cpu_seconds, wait_for_progress

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    return fakes.install()


@pytest.fixture
def served(any_engine: Engine) -> Iterator[tuple[TestClient, Settings]]:
    """The API (as the admin) on SQLite or PostgreSQL."""
    settings = fast_settings(any_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        yield client, settings


def events(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)))  # type: ignore[arg-type]


def append(engine: Engine, n: int, project_id: int | None = 1) -> None:
    for i in range(n):
        with Session(engine) as session:
            audit.record_event(session, "export", project_id=project_id, subject=f"t:{i}", payload={"i": i})
            session.commit()


def verified(engine: Engine) -> audit.ChainReport:
    with Session(engine) as session:
        return audit.verify(session)


def cli_verify(engine: Engine) -> int:
    return main(["audit", "verify", "--database-url", engine.url.render_as_string(hide_password=False)])


# --- the service's writers ----------------------------------------------------------------------


def test_the_service_logs_labels_decisions_refits_and_tokens(
    served: tuple[TestClient, Settings], any_engine: Engine
) -> None:
    client, settings = served
    project = make_project(client, "audited")
    created = client.post(f"/v1/projects/{project}/keys", json={"name": "batch"}).json()
    key = auth(created["key"])
    job = post_question_pairs(client, project, 6)
    run_worker(any_engine, settings)
    gold = [{"client_id": f"c{i}", "label": "A", "source": "gold", "annotator": "g"} for i in range(3)]
    labels = client.post(f"/v1/projects/{project}/labels", json={"labels": gold}, headers=key)
    assert labels.status_code == 201, labels.text
    assert client.post(f"/v1/projects/{project}/calibration/refit", headers=key).status_code == 200
    # A reviewer's label (fake/ok judges flip with the order: every pair waits for review).
    token = new_reviewer(client, "ana", projects=[project])
    item = client.post(f"/v1/projects/{project}/review/next", json={}, headers=auth(token)).json()["item"]
    submitted = client.post(
        f"/v1/review/leases/{item['lease_id']}/submit", json={"label": "B>A"}, headers=auth(token)
    )
    assert submitted.status_code in (200, 201), submitted.text
    client.post(f"/v1/reviewers/{client.get('/v1/reviewers').json()[0]['id']}/token")  # rotate
    assert client.delete(f"/v1/projects/{project}/keys/{created['id']}").status_code == 200

    logged = events(any_engine)
    kinds = Counter(e.kind for e in logged)
    assert kinds["token_created"] == 3 and kinds["token_revoked"] == 2  # key, reviewer, rotation
    assert kinds["label_written"] == 2 and kinds["refit"] == 1 and kinds["decisions"] >= 2
    with Session(any_engine) as session:
        decision_ids = set(session.exec(select(Decision.id)))
        label_ids = set(session.exec(select(Label.id)))
    # Every decision and label stored is vouched for by exactly one event.
    logged_decisions = [i for e in logged if e.kind == "decisions" for i in e.payload["ids"]]
    assert sorted(logged_decisions) == sorted(decision_ids) and len(logged_decisions) == len(decision_ids)
    logged_labels = [i for e in logged if e.kind == "label_written" for i in e.payload["ids"]]
    assert sorted(logged_labels) == sorted(label_ids)
    imported = next(e for e in logged if e.kind == "label_written")
    assert imported.project_id == project and imported.payload["sources"] == {"gold": 3}
    refit = next(e for e in logged if e.kind == "refit")
    assert refit.payload["open"] is False and refit.payload["reason"]
    assert refit.subject == f"calibration_version:{refit.payload['version_id']}"
    assert all(created["key"] not in str(e.payload) for e in logged)  # no secret in the log
    assert job and [e.seq for e in logged] == list(range(1, len(logged) + 1))

    report = client.get("/v1/audit/verify").json()
    assert report == {
        "ok": True,
        "events": len(logged),
        "last_seq": len(logged),
        "last_hash": logged[-1].hash,
        "broken": None,
    }
    assert cli_verify(any_engine) == 0
    page = client.get("/v1/audit/events", params={"limit": 3}).json()
    assert [e["seq"] for e in page["events"]] == [1, 2, 3] and page["next_after"] == 3
    rest = client.get("/v1/audit/events", params={"after": 3, "limit": 1000}).json()
    assert len(rest["events"]) == len(logged) - 3 and rest["next_after"] is None
    mine = client.get("/v1/audit/events", params={"project_id": project, "limit": 1000}).json()["events"]
    assert mine and all(e["project_id"] == project for e in mine)
    assert client.get("/v1/audit/events", params={"limit": 0}).status_code == 422


def test_a_rolled_back_writer_leaves_no_event_and_no_gap(any_engine: Engine) -> None:
    append(any_engine, 2)
    with Session(any_engine) as session:
        audit.record_event(session, "export", project_id=1, subject="never", payload={})
        session.rollback()
    append(any_engine, 1)
    assert [e.seq for e in events(any_engine)] == [1, 2, 3] and verified(any_engine).ok


def test_the_canonical_form_is_stable() -> None:
    assert doctest.testmod(audit).failed == 0
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    fields: dict[str, Any] = {
        "seq": 1,
        "kind": "export",
        "project_id": None,
        "subject": "s",
        "prev_hash": audit.GENESIS,
    }
    one = audit.event_hash(created_at=moment, payload={"a": 0.1, "b": [1, "x"]}, **fields)
    # Key order and the time zone the instant is written in do not matter; every value does.
    same = audit.event_hash(
        created_at=moment.astimezone(timezone(timedelta(hours=2))),
        payload={"b": [1, "x"], "a": 0.1},
        **fields,
    )
    other = audit.event_hash(created_at=moment, payload={"a": 0.1, "b": [1, "y"]}, **fields)
    assert one == same != other


def test_an_unknown_kind_or_payload_is_refused() -> None:
    with pytest.raises(ValueError):
        audit.record_event(None, "nope", project_id=None, subject="x", payload={})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        audit.plain({"x": object()})
    assert audit.plain({"x": float("nan"), "t": (1, 2)}) == {"x": "nan", "t": [1, 2]}


# --- tampering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "seq", "problem"),
    [
        ("UPDATE audit_event SET payload = '{\"i\": 99}' WHERE seq = 3", 3, "hash"),
        ("UPDATE audit_event SET kind = 'refit' WHERE seq = 2", 2, "hash"),
        ("DELETE FROM audit_event WHERE seq = 3", 4, "link"),
        # Reorder two events (their content swapped between places, hashes and all).
        (
            "UPDATE audit_event SET seq = CASE seq WHEN 2 THEN -4 WHEN 4 THEN -2 END WHERE seq IN (2, 4);"
            "UPDATE audit_event SET seq = -seq WHERE seq < 0",
            2,
            "hash",
        ),
        ("DELETE FROM audit_event WHERE seq = 5", 5, "head"),
    ],
    ids=["payload", "kind", "deleted", "reordered", "truncated"],
)
def test_verify_names_the_first_broken_row(any_engine: Engine, tamper: str, seq: int, problem: str) -> None:
    append(any_engine, 5)
    assert verified(any_engine).ok and cli_verify(any_engine) == 0
    with any_engine.begin() as connection:
        for statement in tamper.split(";"):
            connection.execute(text(statement))
    report = verified(any_engine)
    assert report.broken is not None and (report.broken.seq, report.broken.problem) == (seq, problem)
    assert f"seq {seq}" in report.broken.message
    if problem != "head":
        ids = {e.seq: e.id for e in events(any_engine)}
        assert report.broken.id == ids[seq]
    assert cli_verify(any_engine) == 1


def test_the_cli_reports_the_break(any_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    append(any_engine, 3)
    with any_engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET subject = 'forged' WHERE seq = 2"))
    assert cli_verify(any_engine) == 1
    out = capsys.readouterr().out
    assert "BROKEN at seq 2" in out and "its content was changed" in out
    url = any_engine.url.render_as_string(hide_password=False)
    assert main(["audit", "tail", "--limit", "2", "--database-url", url]) == 0
    assert "forged" in capsys.readouterr().out


def test_a_second_event_at_the_same_place_is_refused(any_engine: Engine) -> None:
    append(any_engine, 1)
    row = events(any_engine)[0]
    with pytest.raises(IntegrityError), any_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_event (seq, created_at, kind, subject, payload, prev_hash, hash) "
                "VALUES (1, CURRENT_TIMESTAMP, 'export', 'fork', '{}', :p, :h)"
            ),
            {"p": row.prev_hash, "h": row.hash},
        )


# --- concurrency ------------------------------------------------------------------------------------


def test_concurrent_appends_make_one_unbroken_chain(any_engine: Engine) -> None:
    """Writers on their own connections append at once (as worker processes do): every event
    gets its own place and the chain stays one chain."""
    threads, each = 6, 15
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        start.wait()
        for i in range(each):
            with Session(any_engine) as session:
                audit.record_event(session, "decisions", project_id=n, subject=f"w{n}:{i}", payload={"i": i})
                session.commit()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(writer, range(threads)))
    logged = events(any_engine)
    assert [e.seq for e in logged] == list(range(1, threads * each + 1))
    assert Counter(e.project_id for e in logged) == dict.fromkeys(range(threads), each)
    report = verified(any_engine)
    assert report.ok and report.events == threads * each


APPENDER = """
import sys
from sqlmodel import Session
from api import audit
from api.db import make_engine

engine, project = make_engine(sys.argv[1]), int(sys.argv[2])
for i in range(int(sys.argv[3])):
    with Session(engine) as session:
        audit.record_event(session, "decisions", project_id=project, subject=f"p:{i}", payload={"i": i})
        session.commit()
"""


def test_worker_processes_appending_at_once_make_one_chain(any_engine: Engine) -> None:
    url = any_engine.url.render_as_string(hide_password=False)
    writers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, url, str(n), "20"], cwd=ROOT) for n in range(3)
    ]
    wait_for_progress(
        lambda: all(writer.poll() is not None for writer in writers),
        lambda: [cpu_seconds(writer.pid) for writer in writers],
        "the writer processes",
    )
    assert [writer.returncode for writer in writers] == [0, 0, 0]
    logged = events(any_engine)
    assert [e.seq for e in logged] == list(range(1, 61))
    assert Counter(e.project_id for e in logged) == dict.fromkeys(range(3), 20)
    assert verified(any_engine).ok


# --- the gate: opened by a refit, closed by the kill-switch -----------------------------------------


@pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")
def test_the_gate_opening_and_the_kill_switch_are_logged_with_their_reasons(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    recorded = load_recorded(LLMBAR)
    random.Random(0).shuffle(recorded)  # the file is ordered by subset; calibration needs a random sample
    judges = ["gpt-4/vanilla_norules", "gpt-3.5-turbo/vanilla_norules", "palm-2/vanilla_norules"]
    routing = {"target_agreement": 0.85, "order_sensitive_judges": [f"replay/{judges[0]}"], "audit_rate": 1.0}
    spec = [{"model": f"replay/{j}", "api_base": str(LLMBAR)} for j in judges]
    body = {"name": "gated", "judges": spec, "allow_empty_responses": True, "routing": routing}
    project_id = client.post("/v1/projects", json=body).json()["id"]
    post_recorded_pairs(client, project_id, recorded)
    run_worker(engine, settings)
    gold = [{"client_id": p.id, "label": p.gold, "source": "gold", "annotator": "g"} for p in recorded[:300]]
    assert client.post(f"/v1/projects/{project_id}/labels", json={"labels": gold}).status_code == 201
    assert client.post(f"/v1/projects/{project_id}/calibration/refit").status_code == 200
    with Session(engine) as session:
        decided = session.exec(
            select(Pair.client_id, Decision.chosen, Decision.reasons)
            .join(Decision, Decision.id == Pair.decision_id)  # type: ignore[arg-type]
            .where(Pair.project_id == project_id)
        ).all()
    audited = [(client_id, chosen) for client_id, chosen, reasons in decided if reasons == ["audit"]]
    assert len(audited) > 40
    # Reviewers' audit answers contradict the auto-labels: the kill-switch closes the gate.
    wrong = [{"client_id": c, "label": "B" if s == "A" else "A", "source": "audit"} for c, s in audited[:40]]
    assert store_reviewer_labels(engine, project_id, wrong).created == 40
    with Session(engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
    closed = kill_switch.check_drift(engine, project)  # type: ignore[arg-type]
    assert closed is not None and closed.trigger == "drift"

    logged = {e.kind: e for e in events(engine)}
    refit, opened, killed = logged["refit"], logged["gate_opened"], logged["kill_switch"]
    assert refit.payload == opened.payload and opened.payload["open"] and not opened.payload["was_open"]
    assert opened.payload["guaranteed_agreement"] >= 0.85 and opened.payload["reason"]
    assert killed.payload["version_id"] == closed.id and "kill-switch" in killed.payload["reason"]
    assert "gate_closed" not in logged  # a kill-switch is its own kind
    assert verified(engine).ok
