"""The review queue over HTTP: accounts, leases, submit/skip, queues, redaction, priority."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import Decision, Job, Label, Pair, Project, Reviewer, ReviewItem, ReviewLease, utcnow
from api.review import prepare, queue, redacted_pairs
from api.review.queue import on_decisions_written
from api.review.reviewers import assign_projects, create_reviewer
from api.review.submit import submit_label
from api.schemas import ReviewSubmit, RoutingSettings
from api.settings import Settings
from tests import fakes
from tests.helpers import ADMIN, NO_AUTH, auth, make_project, new_reviewer, post_question_pairs, run_worker
from tests.waiting import Clock


@pytest.fixture(autouse=True)
def fake() -> fakes.FakeJudge:
    return fakes.install()


def judged_project(
    client: TestClient, engine: Engine, settings: Settings, n: int = 3, routing: dict | None = None, **kw
) -> int:
    project = make_project(client, kw.get("name", "p"), kw.get("judges"), routing)
    post_question_pairs(client, project, n, kw.get("pairs"))
    run_worker(engine, settings)
    return project


def next_item(client: TestClient, project: int, token: str, queue: str = "review") -> dict | None:
    r = client.post(f"/v1/projects/{project}/review/next", json={"queue": queue}, headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()["item"]


def submit(client: TestClient, token: str, lease_id: int, **body):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/review/leases/{lease_id}/submit", json=body, headers=auth(token))


def test_worker_enqueues_and_a_label_lands_in_the_label_table(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = judged_project(client, engine, settings, n=3)
    token = new_reviewer(client, "ana")
    item = next_item(client, project, token)
    assert item is not None and item["queue"] == "review"
    assert {r["code"] for r in item["why"]["reasons"]} >= {"order_sensitive", "gate_closed"}
    assert all(r["text"] for r in item["why"]["reasons"]) and item["why"]["priority_text"]
    assert item["prompt"].startswith("Question") and item["redaction_version"]
    # Asking again while holding a lease returns the same lease, not a second item.
    assert next_item(client, project, token)["lease_id"] == item["lease_id"]  # type: ignore[index]

    r = submit(client, token, item["lease_id"], label="A>B", rationale=" clearer ", time_on_task_s=4.2)
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["duplicate"] is False and stored["source"] == "review" and stored["rationale"] == "clearer"
    with Session(engine) as session:
        (label,) = session.exec(select(Label)).all()
    assert (label.pair_id, label.label, label.annotator, label.source) == (
        item["pair_id"],
        "A>B",
        "ana",
        "review",
    )
    assert label.time_on_task_s == 4.2 and label.redaction_version == item["redaction_version"]
    assert label.prelabel_shown == item["prelabel_shown"]

    # A repeat is a no-op; a different answer for the same lease is refused.
    again = submit(client, token, item["lease_id"], label="A>B", rationale="clearer", time_on_task_s=9)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["label_id"] == stored["label_id"]
    changed = submit(client, token, item["lease_id"], label="B>A")
    assert changed.status_code == 409 and "already labelled" in changed.json()["detail"]

    second = next_item(client, project, token)
    assert second is not None and second["pair_id"] != item["pair_id"]
    progress = client.get(f"/v1/projects/{project}/review/progress", headers=auth(token)).json()
    assert progress["labelled_by_you"] == 1 and progress["remaining"] == 2
    labels = client.get(f"/v1/projects/{project}/review/labels", headers=auth(token)).json()["labels"]
    assert [lab["label_id"] for lab in labels] == [stored["label_id"]]
    # Reviewers read only their own labels (others' would anchor them); the admin reads all.
    other = new_reviewer(client, "bea")
    assert client.get(f"/v1/projects/{project}/review/labels", headers=auth(other)).json()["labels"] == []
    r = client.get(f"/v1/projects/{project}/review/labels", params={"annotator": "ana"}, headers=auth(other))
    assert r.status_code == 403
    assert len(client.get(f"/v1/projects/{project}/review/labels", headers=ADMIN).json()["labels"]) == 1


def test_auth_reviewer_accounts_and_tokens(client: TestClient) -> None:
    project = make_project(client, "p")
    assert client.post(f"/v1/projects/{project}/review/next", headers=NO_AUTH).status_code == 401
    assert client.post("/v1/reviewers", json={"name": "x"}, headers=NO_AUTH).status_code == 401
    token = new_reviewer(client, "bo")
    assert token.startswith("rvw_")
    assert client.post("/v1/reviewers", json={"name": "y"}, headers=auth(token)).status_code == 403
    assert client.post("/v1/reviewers", json={"name": "bo"}, headers=ADMIN).status_code == 409
    assert client.get("/v1/review/me", headers=auth(token)).json()["name"] == "bo"
    (listed,) = client.get("/v1/reviewers", headers=ADMIN).json()
    assert "token" not in listed and "token_hash" not in listed
    rotated = client.post(f"/v1/reviewers/{listed['id']}/token", headers=ADMIN).json()["token"]
    assert client.get("/v1/review/me", headers=auth(token)).status_code == 401
    assert client.get("/v1/review/me", headers=auth(rotated)).status_code == 200
    assert client.get(f"/v1/projects/{project}/review/stats", headers=ADMIN).status_code == 200


def test_validation_errors_are_clear(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = judged_project(client, engine, settings, n=1)
    token = new_reviewer(client, "cy")
    lease = next_item(client, project, token)["lease_id"]  # type: ignore[index]

    def detail(r) -> str:  # type: ignore[no-untyped-def]
        assert r.status_code == 422, r.text
        return str(r.json()["detail"])

    assert "both_bad needs a rationale" in detail(submit(client, token, lease, both_bad=True))
    assert "give a label" in detail(submit(client, token, lease))
    assert "A>>B" in detail(submit(client, token, lease, label="A>>>B"))
    assert "extra" in detail(submit(client, token, lease, label="A>B", colour="red")).lower()
    assert "time_on_task_s" in detail(submit(client, token, lease, label="A>B", time_on_task_s=-1))
    shown = next_item(client, project, token)["prelabel_shown"]  # type: ignore[index]
    assert "prelabel_shown" in detail(submit(client, token, lease, label="A>B", prelabel_shown=not shown))
    r = client.post(f"/v1/review/leases/{lease}/skip", json={"reason": " "}, headers=auth(token))
    assert r.status_code == 422
    assert submit(client, token, 999, label="A>B").status_code == 404
    other = new_reviewer(client, "dee")
    assert submit(client, other, lease, label="A>B").status_code == 403
    r = client.post(f"/v1/projects/{project}/review/next", json={"queue": "nope"}, headers=auth(token))
    assert r.status_code == 422
    # Both bad with a rationale (no preference) is stored as a tie with the flag.
    ok = submit(client, token, lease, both_bad=True, rationale="both wrong", prelabel_shown=shown)
    assert ok.status_code == 201 and ok.json()["label"] == "tie" and ok.json()["both_bad"] is True


def test_abandoned_lease_comes_back_and_a_late_label_is_refused_once_reassigned(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    project = judged_project(client, engine, settings, n=1)
    first, second = new_reviewer(client, "eve"), new_reviewer(client, "fay")
    monkeypatch.setattr(settings, "review_lease_seconds", 0.2)
    item = next_item(client, project, first)
    assert next_item(client, project, second) is None  # held by eve
    clock.advance(0.3)
    retaken = next_item(client, project, second)
    assert retaken is not None and retaken["pair_id"] == item["pair_id"]  # type: ignore[index]
    # Eve's lease expired and fay holds the only slot: eve's late label would be one too many.
    late = submit(client, first, item["lease_id"], label="A>B")  # type: ignore[index]
    assert late.status_code == 409, late.text
    assert "expired" in late.json()["detail"] and "reassigned" in late.json()["detail"]
    assert submit(client, second, retaken["lease_id"], label="B>A").status_code == 201
    # Still refused once the item is done; nothing of eve's was stored.
    assert submit(client, first, item["lease_id"], label="A>B").status_code == 409  # type: ignore[index]
    with Session(engine) as session:
        assert [lab.annotator for lab in session.exec(select(Label)).all()] == ["fay"]
        (row,) = session.exec(select(ReviewItem)).all()
        assert (row.state, row.labels_done, row.leases_active) == ("done", 1, 0)


def test_a_late_label_counts_when_nobody_took_the_slot(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    project = judged_project(client, engine, settings, n=1)
    first, second = new_reviewer(client, "gia"), new_reviewer(client, "hugo")
    monkeypatch.setattr(settings, "review_lease_seconds", 0.2)
    item = next_item(client, project, first)
    clock.advance(0.3)
    # The background pass expires the lease: the slot is free, but nobody has taken it yet.
    assert client.post("/v1/admin/review/prepare", headers=ADMIN).json()["expired"] == 1
    late = submit(client, first, item["lease_id"], label="A>B")  # type: ignore[index]
    assert late.status_code == 201, late.text
    again = submit(client, first, item["lease_id"], label="A>B")  # type: ignore[index]
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert next_item(client, project, second) is None  # the late label filled the item
    with Session(engine) as session:
        (row,) = session.exec(select(ReviewItem)).all()
        assert (row.state, row.labels_done, row.leases_active) == ("done", 1, 0)


def test_skip_with_reason_hands_the_item_to_someone_else(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = judged_project(client, engine, settings, n=2)
    first, second = new_reviewer(client, "gil"), new_reviewer(client, "hal")
    item = next_item(client, project, first)
    r = client.post(
        f"/v1/review/leases/{item['lease_id']}/skip", json={"reason": "needs a lawyer"}, headers=auth(first)
    )  # type: ignore[index]
    assert r.status_code == 200 and r.json()["state"] == "skipped"
    nxt = next_item(client, project, first)
    assert nxt is not None and nxt["pair_id"] != item["pair_id"]  # type: ignore[index]
    assert next_item(client, project, second)["pair_id"] == item["pair_id"]  # type: ignore[index]
    assert submit(client, first, item["lease_id"], label="A>B").status_code == 409  # type: ignore[index]
    stats = client.get(f"/v1/projects/{project}/review/stats", headers=auth(first)).json()
    assert stats["skips_by_reason"] == {"needs a lawyer": 1}


def test_review_overlap_serves_an_item_to_that_many_reviewers(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = judged_project(client, engine, settings, n=1, routing={"review_overlap": 2})
    a, b, c = (new_reviewer(client, n) for n in ("ida", "jon", "kai"))
    first, second = next_item(client, project, a), next_item(client, project, b)
    assert first["pair_id"] == second["pair_id"] and first["lease_id"] != second["lease_id"]  # type: ignore[index]
    assert next_item(client, project, c) is None
    assert submit(client, a, first["lease_id"], label="A>B").status_code == 201  # type: ignore[index]
    assert next_item(client, project, c) is None  # one label and one lease fill both slots


def test_incident_queue_holds_both_bad_and_safety_items(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = judged_project(client, engine, settings, n=2, judges=["fake/both-bad"])
    other = judged_project(client, engine, settings, n=1, name="q")
    token = new_reviewer(client, "lea")
    assert next_item(client, project, token, "review") is None
    item = next_item(client, project, token, "incident")
    assert item is not None and "both_bad" in {r["code"] for r in item["why"]["reasons"]}

    routine = next_item(client, other, token)
    r = submit(client, token, routine["lease_id"], label="tie", safety_flag=True)  # type: ignore[index]
    assert r.status_code == 201 and r.json()["safety_flag"] is True
    escalated = next_item(client, other, new_reviewer(client, "max"), "incident")
    assert escalated is not None and escalated["pair_id"] == routine["pair_id"]  # type: ignore[index]
    assert escalated["why"]["reasons"][0]["code"] == "reviewer_safety_flag"


def test_reviewers_see_redacted_text_and_only_admins_read_the_mapping(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    pairs = [
        {
            "client_id": "pii",
            "prompt": "Email jane.doe@example.com about the refund.",
            "response_a": "I wrote to jane.doe@example.com.",
            "response_b": "Call (415) 555-0132 instead.",
        }
    ]
    project = judged_project(client, engine, settings, pairs=pairs)
    token = new_reviewer(client, "ned")
    item = next_item(client, project, token)
    text = item["prompt"] + item["response_a"] + item["response_b"]  # type: ignore[index]
    assert "jane.doe" not in text and "555-0132" not in text
    assert "<EMAIL_1>" in item["prompt"] and "<EMAIL_1>" in item["response_a"]  # type: ignore[index]
    path = f"/v1/admin/pairs/{item['pair_id']}/redaction"  # type: ignore[index]
    assert client.get(path, headers=auth(token)).status_code == 403
    mapping = client.get(path, headers=ADMIN).json()["mapping"]
    assert mapping["<EMAIL_1>"] == "jane.doe@example.com"
    label = submit(client, token, item["lease_id"], label="A>B").json()  # type: ignore[index]
    assert label["redaction_version"] == item["redaction_version"]  # type: ignore[index]


def _decide(engine: Engine, pair_id: int, route: str, reasons: list[str], confidence: float | None) -> None:
    """Write a new current decision for a pair (as recalibration does) and call the hook."""
    with Session(engine) as session:
        decision = Decision(
            pair_id=pair_id,
            label="A>B",
            chosen="A",
            confidence=confidence,
            route=route,
            reasons=reasons,
            version="t",
        )
        session.add(decision)
        session.flush()
        pair = session.get(Pair, pair_id)
        pair.decision_id = decision.id  # type: ignore[union-attr]
        session.add(pair)
        session.flush()
        on_decisions_written(session, [pair_id])
        session.commit()


def test_audit_labels_are_audit_source_and_never_primed(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = judged_project(client, engine, settings, n=2, routing={"show_prelabel_rate": 1.0})
    with Session(engine) as session:
        ids = session.exec(select(Pair.id).order_by(Pair.id)).all()
    _decide(engine, ids[0], "review", ["audit"], 0.97)
    token = new_reviewer(client, "oli")
    seen = {}
    for _ in range(2):
        item = next_item(client, project, token)
        seen[item["pair_id"]] = item  # type: ignore[index]
        assert submit(client, token, item["lease_id"], label="A>B").status_code == 201  # type: ignore[index]
    assert seen[ids[0]]["prelabel_shown"] is False and seen[ids[0]]["why"]["selected_by"] == "audit"
    assert seen[ids[1]]["prelabel_shown"] is True and seen[ids[1]]["prelabel"]["label"]
    with Session(engine) as session:
        sources = dict(session.exec(select(Label.pair_id, Label.source)).all())
    assert sources == {ids[0]: "audit", ids[1]: "review"}


def test_rerouted_pairs_leave_the_queue_and_come_back(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = judged_project(client, engine, settings, n=1)
    with Session(engine) as session:
        (pair_id,) = session.exec(select(Pair.id)).all()
    _decide(engine, pair_id, "auto_accept", [], 0.99)
    token = new_reviewer(client, "pia")
    assert next_item(client, project, token) is None
    _decide(engine, pair_id, "review", ["below_threshold"], 0.6)
    item = next_item(client, project, token)
    assert item is not None and [r["code"] for r in item["why"]["reasons"]] == ["below_threshold"]
    assert item["why"]["uncertainty"] == pytest.approx(0.4)


def test_prelabel_rate_and_override_rates(client: TestClient, engine: Engine, settings: Settings) -> None:
    project = judged_project(client, engine, settings, n=40, routing={"show_prelabel_rate": 0.5})
    token = new_reviewer(client, "quinn")
    shown = 0
    for _ in range(40):
        item = next_item(client, project, token)
        shown += item["prelabel_shown"]  # type: ignore[index]
        # The human agrees with the judge when shown its answer, disagrees otherwise.
        answer = item["prelabel"]["label"] if item["prelabel_shown"] else "B>>A"  # type: ignore[index]
        assert submit(client, token, item["lease_id"], label=answer, time_on_task_s=3).status_code == 201  # type: ignore[index]
    assert 8 <= shown <= 32  # a 50 % draw per item
    stats = client.get(f"/v1/projects/{project}/review/stats", headers=auth(token)).json()
    # The fake panel's provisional label is a tie (its two orders split): B>>A overrides it.
    assert stats["override"]["shown"] == {"labels": shown, "overrides": 0, "rate": 0.0}
    assert stats["override"]["hidden"] == {"labels": 40 - shown, "overrides": 40 - shown, "rate": 1.0}
    assert stats["queue_depth"]["review"]["done"] == 40
    assert stats["median_time_on_task_s"] == 3
    (row,) = stats["labels_per_reviewer_per_hour"]
    assert row["annotator"] == "quinn" and row["labels"] == 40


class FakeEmbeddings(SimpleNamespace):
    """The api.embeddings interface with cheap, deterministic vectors."""

    EMBEDDING_MODEL_NAME = "fake-embed"

    @staticmethod
    def pair_text(prompt: str, a: str, b: str) -> str:
        return f"{prompt}\n{a}\n{b}"

    @staticmethod
    def embed_texts(texts: list[str]) -> np.ndarray:
        # Two clusters: texts with an even number in them, and the rest.
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            digits = [int(c) for c in text if c.isdigit()]
            out[i, 0 if digits and digits[0] % 2 == 0 else 1] = 1.0
            out[i, 2] = 0.01 * i
        return out

    @staticmethod
    def to_bytes(v: np.ndarray) -> bytes:
        return np.asarray(v, dtype=np.float32).tobytes()

    @staticmethod
    def from_bytes(b: bytes) -> np.ndarray:
        return np.frombuffer(b, dtype=np.float32)


def test_background_prepare_redacts_embeds_and_reranks(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "_embedding_module", lambda: FakeEmbeddings())
    project = judged_project(client, engine, settings, n=6)
    result = client.post("/v1/admin/review/prepare", headers=ADMIN).json()
    assert result["redacted"] == 6 and result["embedded"] == 6 and result["reprioritized"] == 6
    with Session(engine) as session:
        items = session.exec(select(ReviewItem).order_by(ReviewItem.priority.desc())).all()  # type: ignore[attr-defined]
    assert {i.selected_by for i in items} == {"hybrid"}
    # Equal uncertainty everywhere: diversity decides, so the first two come from both clusters.
    with Session(engine) as session:
        first_two = [session.get(Pair, i.pair_id).client_id for i in items[:2]]  # type: ignore[union-attr]
    assert {int(c[1:]) % 2 for c in first_two} == {0, 1}
    token = new_reviewer(client, "rae")
    assert next_item(client, project, token)["pair_id"] == items[0].pair_id  # type: ignore[index]
    # Nothing changed since: no new work.
    again = client.post("/v1/admin/review/prepare", headers=ADMIN).json()
    assert again["embedded"] == 0 and again["redacted"] == 0


def test_without_embeddings_the_order_is_by_uncertainty(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "_embedding_module", lambda: None)
    project = judged_project(client, engine, settings, n=3)
    with Session(engine) as session:
        ids = session.exec(select(Pair.id).order_by(Pair.id)).all()
    _decide(engine, ids[0], "review", ["below_threshold"], 0.9)
    _decide(engine, ids[2], "review", ["below_threshold"], 0.2)
    token = new_reviewer(client, "sam")
    order = []
    for _ in range(3):
        item = next_item(client, project, token)
        order.append(item["pair_id"])  # type: ignore[index]
        submit(client, token, item["lease_id"], label="tie")  # type: ignore[index]
    # The fake panel splits (a tie, confidence 0): uncertainty 1.0, then 0.8, then 0.1.
    assert order == [ids[1], ids[2], ids[0]]
    with Session(engine) as session:
        assert session.exec(select(ReviewLease.state)).all() == ["submitted"] * 3


def test_a_pair_without_a_judge_label_is_served_and_recorded_without_a_prelabel(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    # Garbage answers leave the pair with no provisional label: nothing can be shown, even
    # when every item should show the pre-label, and the echo of what was served must submit.
    project = judged_project(
        client, engine, settings, n=1, routing={"show_prelabel_rate": 1.0}, judges=["fake/garbage"]
    )
    token = new_reviewer(client, "gus")
    item = next_item(client, project, token)
    assert item is not None and item["prelabel"] is None and item["prelabel_shown"] is False
    r = submit(client, token, item["lease_id"], label="tie", prelabel_shown=item["prelabel_shown"])
    assert r.status_code == 201, r.text


# --- late submits, at the service level, on SQLite and PostgreSQL ---------------------------


def queued_project(engine: Engine, n: int, overlap: int = 1, name: str = "late") -> tuple[Project, list[int]]:
    """A project with ``n`` pairs waiting in the review queue (no API, no worker)."""
    with Session(engine, expire_on_commit=False) as session:
        project = Project(
            name=name,
            judges=[{"model": "fake/ok"}],
            routing=RoutingSettings(review_overlap=overlap).model_dump(),
        )
        session.add(project)
        session.flush()
        job = Job(project_id=project.id, n_pairs=n)  # type: ignore[arg-type]
        session.add(job)
        session.flush()
        pairs = [
            Pair(
                project_id=project.id,  # type: ignore[arg-type]
                job_id=job.id,  # type: ignore[arg-type]
                client_id=f"c{i}",
                prompt=f"Question {i}",
                response_a=f"A {i}",
                response_b=f"B {i}",
                content_hash=f"{i:064x}",
                state="done",
            )
            for i in range(n)
        ]
        session.add_all(pairs)
        session.flush()
        for pair in pairs:
            decision = Decision(
                pair_id=pair.id,  # type: ignore[arg-type]
                label="A>B",
                chosen="A",
                confidence=0.5,
                route="review",
                reasons=["below_threshold"],
                version="t",
            )
            session.add(decision)
            session.flush()
            pair.decision_id = decision.id
        session.flush()
        assert on_decisions_written(session, [p.id for p in pairs]) == n  # type: ignore[misc]
        session.commit()
        return project, [p.id for p in pairs]  # type: ignore[misc]


def reviewers(engine: Engine, *names: str) -> list[Reviewer]:
    """Reviewers assigned to every project there is (a submit re-checks the assignment)."""
    with Session(engine, expire_on_commit=False) as session:
        made = [create_reviewer(session, name)[0] for name in names]
        projects = list(session.exec(select(Project.id)))
        for reviewer in made:
            assign_projects(session, reviewer, projects)  # type: ignore[arg-type]
        return made


def time_passes(engine: Engine, seconds: float = 3600) -> int:
    """Expire every lease that would have lapsed ``seconds`` from now (what the sweep does)."""
    with Session(engine) as session:
        n = queue.expire_leases(session, utcnow() + timedelta(seconds=seconds))
        session.commit()
    return n


def item_counts(engine: Engine, pair_id: int) -> tuple[str, int, int]:
    with Session(engine) as session:
        row = session.exec(select(ReviewItem).where(ReviewItem.pair_id == pair_id)).one()
    return row.state, row.labels_done, row.leases_active


def lease_row(engine: Engine, lease_id: int) -> ReviewLease:
    with Session(engine) as session:
        return session.get(ReviewLease, lease_id)  # type: ignore[return-value]


ANSWER = ReviewSubmit(label="A>B", time_on_task_s=12)


def test_late_submit_with_a_free_slot_is_stored_and_takes_the_slot(any_engine: Engine) -> None:
    project, (pair_id,) = queued_project(any_engine, 1)
    ana, bo = reviewers(any_engine, "ana", "bo")
    item = queue.next_item(any_engine, project, ana)
    assert item is not None and item_counts(any_engine, pair_id) == ("leased", 0, 1)
    assert time_passes(any_engine) == 1
    assert item_counts(any_engine, pair_id) == ("open", 0, 0)  # the slot is free again

    label, created = submit_label(any_engine, item["lease_id"], ana, ANSWER)
    assert created and label["annotator"] == "ana"
    assert item_counts(any_engine, pair_id) == ("done", 1, 0)
    lease = lease_row(any_engine, item["lease_id"])
    assert (lease.state, lease.label_id) == ("submitted", label["label_id"])
    # Idempotent as before: the same answer again is a no-op, a different one is refused.
    again, created = submit_label(any_engine, item["lease_id"], ana, ANSWER)
    assert not created and again["duplicate"] and again["label_id"] == label["label_id"]
    with pytest.raises(queue.Conflict, match="already labelled"):
        submit_label(any_engine, item["lease_id"], ana, ReviewSubmit(label="B>A"))
    # The late label filled the item: nobody else is served it.
    assert queue.next_item(any_engine, project, bo) is None
    assert item_counts(any_engine, pair_id) == ("done", 1, 0)


def test_late_submit_is_refused_once_the_slot_was_reassigned(any_engine: Engine) -> None:
    project, (pair_id,) = queued_project(any_engine, 1)
    ana, bo = reviewers(any_engine, "ana", "bo")
    first = queue.next_item(any_engine, project, ana)
    time_passes(any_engine)
    second = queue.next_item(any_engine, project, bo)
    assert first and second and second["pair_id"] == pair_id

    with pytest.raises(queue.Conflict, match=r"expired .* reassigned") as refused:
        submit_label(any_engine, first["lease_id"], ana, ANSWER)
    assert refused.value.status == 409 and "another reviewer" in refused.value.detail
    # Nothing of ana's was stored, and bo's slot is intact.
    assert item_counts(any_engine, pair_id) == ("leased", 0, 1)
    lease = lease_row(any_engine, first["lease_id"])
    assert (lease.state, lease.label_id) == ("expired", None)
    with Session(any_engine) as session:
        assert session.exec(select(Label)).all() == []

    label, created = submit_label(any_engine, second["lease_id"], bo, ANSWER)
    assert created and item_counts(any_engine, pair_id) == ("done", 1, 0)
    # A retry of the refused submit stays refused (now: the item has its label).
    with pytest.raises(queue.Conflict, match="all the labels it needs"):
        submit_label(any_engine, first["lease_id"], ana, ANSWER)
    with Session(any_engine) as session:
        assert [lab.annotator for lab in session.exec(select(Label)).all()] == ["bo"]


def test_late_submit_is_refused_when_the_pair_left_the_queue(any_engine: Engine) -> None:
    project, (pair_id,) = queued_project(any_engine, 1)
    (ana,) = reviewers(any_engine, "ana")
    item = queue.next_item(any_engine, project, ana)
    time_passes(any_engine)
    _decide(any_engine, pair_id, "auto_accept", [], 0.99)  # recalibration re-routes it
    assert item_counts(any_engine, pair_id) == ("stale", 0, 0)
    with pytest.raises(queue.Conflict, match="re-routed"):
        submit_label(any_engine, item["lease_id"], ana, ANSWER)  # type: ignore[index]
    assert item_counts(any_engine, pair_id) == ("stale", 0, 0)


def test_with_overlap_late_labels_fill_free_slots_only(any_engine: Engine) -> None:
    # Two labels needed; ana and bo both let their leases lapse, then cy takes one slot.
    project, (pair_id,) = queued_project(any_engine, 1, overlap=2)
    ana, bo, cy = reviewers(any_engine, "ana", "bo", "cy")
    leases = [queue.next_item(any_engine, project, r)["lease_id"] for r in (ana, bo)]  # type: ignore[index]
    assert item_counts(any_engine, pair_id) == ("leased", 0, 2)
    assert time_passes(any_engine) == 2
    taken = queue.next_item(any_engine, project, cy)
    assert taken is not None and item_counts(any_engine, pair_id) == ("open", 0, 1)

    assert submit_label(any_engine, leases[0], ana, ANSWER)[1]  # the one free slot
    assert item_counts(any_engine, pair_id) == ("leased", 1, 1)
    with pytest.raises(queue.Conflict, match="expired"):
        submit_label(any_engine, leases[1], bo, ANSWER)  # would be a third label
    assert submit_label(any_engine, taken["lease_id"], cy, ANSWER)[1]
    assert item_counts(any_engine, pair_id) == ("done", 2, 0)
    with Session(any_engine) as session:
        assert sorted(lab.annotator for lab in session.exec(select(Label)).all()) == ["ana", "cy"]


def test_an_unswept_lease_past_its_expiry_still_holds_its_slot(any_engine: Engine) -> None:
    # Nobody can take a slot before the sweep has expired its lease (every claim sweeps
    # first), so a submit that beats the sweep counts as an ordinary one.
    project, (pair_id,) = queued_project(any_engine, 1)
    (ana,) = reviewers(any_engine, "ana")
    item = queue.next_item(any_engine, project, ana, lease_seconds=-1)
    assert item is not None and item_counts(any_engine, pair_id) == ("leased", 0, 1)
    assert submit_label(any_engine, item["lease_id"], ana, ANSWER)[1]
    assert item_counts(any_engine, pair_id) == ("done", 1, 0)
    assert time_passes(any_engine) == 0  # nothing left to expire: the lease is submitted


def test_redactions_of_an_older_version_are_redone(any_engine: Engine) -> None:
    """A redaction stored by an older version may let through PII found since (IBANs came
    with redact-v2): it is redone, text and admin mapping, the next time the pair is served."""
    from api.models import PairRedaction, RedactionMapping
    from api.review.redaction import REDACTION_VERSION

    _, (pid, *_) = queued_project(any_engine, 1, name="stale")
    iban = "GB29 NWBK 6016 1331 9268 19"
    with Session(any_engine, expire_on_commit=False) as session:
        pair = session.get(Pair, pid)
        assert pair is not None
        pair.response_a = f"Pay to {iban} today."
        old = {"prompt": pair.prompt, "response_a": pair.response_a, "response_b": pair.response_b}
        session.add(PairRedaction(pair_id=pid, version="redact-v1", n_tokens=0, **old))
        session.add(RedactionMapping(pair_id=pid, version="redact-v1", mapping={}))
        session.commit()
        redaction = redacted_pairs.ensure_redactions(session, [pair])[pid]
        session.commit()
        assert redaction.version == REDACTION_VERSION and iban not in redaction.response_a
        stored = session.exec(select(PairRedaction).where(PairRedaction.pair_id == pid)).all()
        assert [r.version for r in stored] == [REDACTION_VERSION]
        mapping = session.exec(select(RedactionMapping).where(RedactionMapping.pair_id == pid)).one()
        assert mapping.version == REDACTION_VERSION and iban.replace(" ", "") in str(mapping.mapping).replace(
            " ", ""
        )
