"""Eight reviewers pulling and submitting at once: no item twice, no label lost, and late
submits on expired leases never give an item more labels than it needs.

Runs on SQLite and, with PRELABEL_TEST_DATABASE_URL, on PostgreSQL (``any_engine``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import Label, Project, Reviewer, ReviewItem, ReviewLease, utcnow
from api.review import queue, submit
from api.review.reviewers import assign_projects, create_reviewer
from api.schemas import ReviewSubmit
from tests.helpers import seed_review_queue
from tests.waiting import wait_for_progress

REVIEWERS = 8


def _run_reviewers(engine: Engine, project: Project, reviewers: list[Reviewer]) -> dict[str, Any]:
    served: list[tuple[str, int]] = []  # (reviewer, pair) for every item handed out
    labelled: list[tuple[str, int]] = []
    holding: dict[int, str] = {}  # pair -> reviewer holding it right now
    # Items served and not yet submitted or skipped. A reviewer stops only when the queue is
    # empty and nobody holds an item: a skipped item comes back for the others (stopping on
    # the first empty answer left it unlabelled when the skip landed after everyone stopped).
    outstanding = 0
    clashes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(reviewers))

    def work(reviewer: Reviewer, index: int) -> None:
        nonlocal outstanding
        held = False
        try:
            start.wait()
            n = 0
            while True:
                item = queue.next_item(engine, project, reviewer, "review")
                if item is None:
                    with lock:
                        if outstanding == 0:
                            return
                    time.sleep(0.01)
                    continue
                pair = item["pair_id"]
                with lock:
                    outstanding += 1
                    held = True
                    served.append((reviewer.name, pair))
                    if pair in holding:
                        clashes.append(f"{reviewer.name} got pair {pair} held by {holding[pair]}")
                    holding[pair] = reviewer.name
                n += 1
                if index == 0 and n % 5 == 0:
                    # One reviewer skips now and then: the item must still reach someone.
                    with lock:
                        holding.pop(pair, None)
                    submit.skip_item(engine, item["lease_id"], reviewer, "unsure")
                    with lock:
                        outstanding -= 1
                        held = False
                    continue
                with lock:
                    holding.pop(pair, None)
                submit.submit_label(
                    engine, item["lease_id"], reviewer, ReviewSubmit(label="A>B", time_on_task_s=0.1)
                )
                with lock:
                    labelled.append((reviewer.name, pair))
                    outstanding -= 1
                    held = False
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            if held:  # the others must not wait for an item this reviewer will never return
                with lock:
                    outstanding -= 1

    threads = [threading.Thread(target=work, args=(r, i)) for i, r in enumerate(reviewers)]
    for t in threads:
        t.start()
    wait_for_progress(
        lambda: not any(t.is_alive() for t in threads),
        lambda: (len(served), len(labelled)),
        "the reviewer threads to finish (one hung?)",
    )
    return {"served": served, "labelled": labelled, "clashes": clashes, "errors": errors}


def test_eight_reviewers_never_share_an_item_and_lose_no_label(any_engine: Engine) -> None:
    pending = 120
    project_id = seed_review_queue(any_engine, pending)
    with Session(any_engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
        reviewers = [create_reviewer(session, f"r{i}")[0] for i in range(REVIEWERS)]
        for reviewer in reviewers:  # a submit re-checks the assignment
            assign_projects(session, reviewer, [project_id])
        n_review = len(session.exec(select(ReviewItem).where(ReviewItem.queue == "review")).all())
    assert project is not None and n_review > 100

    result = _run_reviewers(any_engine, project, reviewers)

    assert not result["errors"], result["errors"][:3]
    assert not result["clashes"], result["clashes"][:5]
    labelled_pairs = Counter(pair for _, pair in result["labelled"])
    assert len(labelled_pairs) == n_review and set(labelled_pairs.values()) == {1}
    # Every item served was labelled, except the skipped ones, which someone else labelled.
    assert {pair for _, pair in result["served"]} == set(labelled_pairs)
    with Session(any_engine) as session:
        labels = session.exec(select(Label)).all()
        items = session.exec(select(ReviewItem).where(ReviewItem.queue == "review")).all()
    assert len(labels) == len(result["labelled"]) == n_review
    assert {(lab.annotator, lab.pair_id) for lab in labels} == set(result["labelled"])
    assert all((i.state, i.labels_done, i.leases_active) == ("done", 1, 0) for i in items)
    # They really worked side by side. (Not "all eight": SQLite's lock is not fair, and with
    # zero think time one thread can lose every race for the lock; humans pause for seconds.)
    assert len({name for name, _ in result["labelled"]}) >= REVIEWERS // 2


def test_late_submits_racing_fresh_claims_never_give_an_item_two_labels(any_engine: Engine) -> None:
    # One reviewer walked away from every item (all leases expired); the others now claim
    # and label those items while the first one comes back and submits all its old leases.
    # Each item has one slot: exactly one of the two labels may be stored, never both.
    project_id = seed_review_queue(any_engine, 40)
    with Session(any_engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
        late, *others = [create_reviewer(session, f"r{i}")[0] for i in range(REVIEWERS)]
        for reviewer in (late, *others):  # a submit re-checks the assignment
            assign_projects(session, reviewer, [project_id])
        review_items = session.exec(select(ReviewItem).where(ReviewItem.queue == "review")).all()
    assert project is not None and len(review_items) > 30
    stale_leases: dict[int, int] = {}  # lease -> pair
    while (item := queue.next_item(any_engine, project, late, "review")) is not None:
        stale_leases[item["lease_id"]] = item["pair_id"]
        with Session(any_engine) as session:  # the lease lapses before it is submitted
            queue.expire_leases(session, utcnow() + timedelta(hours=1))
            session.commit()
    assert len(stale_leases) == len(review_items)
    # Whatever the race does, this slot is surely reassigned before the late submit arrives.
    held = queue.next_item(any_engine, project, others[0], "review")
    assert held is not None

    accepted: list[int] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def come_back() -> None:
        try:
            start.wait()
            # Lowest priority first: the others start at the top, so the two meet midway.
            for lease_id in reversed(list(stale_leases)):
                try:
                    submit.submit_label(any_engine, lease_id, late, ReviewSubmit(label="B>A"))
                    accepted.append(lease_id)
                except queue.Conflict as exc:
                    refused.append(exc.detail)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    returning = threading.Thread(target=come_back)
    returning.start()
    start.wait()
    result = _run_reviewers(any_engine, project, others)  # type: ignore[arg-type]
    wait_for_progress(
        lambda: not returning.is_alive(), lambda: (len(accepted), len(refused)), "the late reviewer (hung?)"
    )

    assert not errors and not result["errors"], (errors + result["errors"])[:3]
    assert not result["clashes"], result["clashes"][:5]
    assert all("expired" in detail and "reassigned" in detail for detail in refused)
    assert held["pair_id"] not in {stale_leases[lease_id] for lease_id in accepted}
    assert len(accepted) + len(refused) == len(stale_leases)
    with Session(any_engine) as session:
        labels = session.exec(select(Label)).all()
        items = session.exec(select(ReviewItem).where(ReviewItem.queue == "review")).all()
        leases = {lease.id: lease for lease in session.exec(select(ReviewLease))}
    per_pair = Counter(lab.pair_id for lab in labels)
    assert set(per_pair) == {i.pair_id for i in items} and set(per_pair.values()) == {1}
    assert all((i.state, i.labels_done, i.leases_active) == ("done", 1, 0) for i in items)
    assert sum(lab.annotator == late.name for lab in labels) == len(accepted)
    assert len(labels) == len(accepted) + len(result["labelled"])
    # A refused late submit leaves its lease expired and stores nothing.
    for lease_id in stale_leases:
        lease = leases[lease_id]
        expected = ("submitted", True) if lease_id in accepted else ("expired", False)
        assert (lease.state, lease.label_id is not None) == expected
