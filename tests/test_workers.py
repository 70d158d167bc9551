"""Leases: two workers never judge the same pair; an expired lease is reclaimed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.calibrate import refits, versions
from api.ingest import store
from api.judging import claims
from api.judging.worker import Worker
from api.models import Decision, Judgment, Pair, Project
from api.routing import decisions
from api.schemas import PairIn
from judge.litellm_loader import load_litellm
from tests import fakes
from tests.helpers import fast_settings, seed
from tests.waiting import Clock


def test_two_workers_never_judge_the_same_pair(any_engine: Engine) -> None:
    fake = fakes.install()
    n = 120
    seed(any_engine, n, ["fake/ok"])
    settings = fast_settings(str(any_engine.url), worker_pairs_in_flight=8, judge_concurrency=8)

    async def both() -> tuple[int, int]:
        first = Worker(any_engine, settings, "worker-1")
        second = Worker(any_engine, settings, "worker-2")
        return tuple(await asyncio.gather(first.run(until_idle=True), second.run(until_idle=True)))  # type: ignore[return-value]

    done_1, done_2 = asyncio.run(both())
    assert done_1 + done_2 == n
    assert done_1 > 0 and done_2 > 0, "both workers should have taken a share"
    assert len(fake.calls) == 2 * n and set(fake.calls.values()) == {1}
    with Session(any_engine) as session:
        pairs = session.exec(select(Pair)).all()
        assert all(p.state == "done" and p.decision_id is not None and p.attempts == 1 for p in pairs)
        assert len(session.exec(select(Decision)).all()) == n


def test_claims_are_disjoint_under_concurrency(any_engine: Engine) -> None:
    seed(any_engine, 200, ["fake/ok"])

    async def claim_many() -> list[list[Pair]]:
        return await asyncio.gather(
            *(asyncio.to_thread(claims.claim_pairs, any_engine, f"w{i}", 25, 60) for i in range(8))
        )

    claimed = asyncio.run(claim_many())
    ids = [p.id for batch in claimed for p in batch]
    assert len(ids) == len(set(ids)) == 200


def test_expired_lease_is_reclaimed_and_the_late_writer_is_ignored(engine: Engine, clock: Clock) -> None:
    seed(engine, 3, ["fake/ok"])
    stale = claims.claim_pairs(engine, "crashed-worker", 10, lease_seconds=0.05)
    assert len(stale) == 3
    assert claims.claim_pairs(engine, "other", 10, lease_seconds=60) == []  # still leased
    clock.advance(0.1)
    fresh = claims.claim_pairs(engine, "other", 10, lease_seconds=60)
    assert [p.id for p in fresh] == [p.id for p in stale]
    assert all(p.attempts == 2 for p in fresh)
    late = decisions.PairOutcome(
        pair_id=stale[0].id,  # type: ignore[arg-type]
        judgments=[],
        decision={
            "label": None,
            "chosen": None,
            "confidence": None,
            "route": "review",
            "reasons": [],
            "version": "x",
        },
    )
    assert decisions.store_outcomes(engine, "crashed-worker", [late]) == 0


@pytest.mark.postgres
def test_postgres_claim_uses_skip_locked(pg_engine: Engine) -> None:
    seed(pg_engine, 5, ["fake/ok"])
    with pg_engine.connect() as conn:
        # Hold row locks on the first two pairs, as a slow concurrent claimer would.
        trans = conn.begin()
        from sqlalchemy import text

        conn.execute(text("SELECT id FROM pair ORDER BY id LIMIT 2 FOR UPDATE"))
        got = claims.claim_pairs(pg_engine, "w", 10, 60)
        trans.rollback()
    assert len(got) == 3  # the locked rows were skipped, not waited for


def test_a_decision_made_under_a_superseded_gate_sends_the_pair_back(any_engine: Engine) -> None:
    """A refit (or the kill-switch) lands while a pair is being judged: its verdicts are kept,
    and it is routed again under the latest version instead of being stored as decided."""
    from api.calibrate import refits
    from api.routing import decisions

    fake = fakes.install()
    project = seed(any_engine, 3, ["fake/ok"])
    settings = fast_settings(str(any_engine.url))

    class SlowGateWorker(Worker):
        async def _judge_pair(self, pair, *args, **kwargs):  # type: ignore[no-untyped-def]
            outcome = await super()._judge_pair(pair, *args, **kwargs)
            if pair.judged_at is None:  # first pass: a new version lands before the store
                await asyncio.to_thread(refits.refit, any_engine, project)
            return outcome

    worker = SlowGateWorker(any_engine, settings, "w")
    asyncio.run(worker.run(until_idle=True))
    with Session(any_engine) as session:
        pairs = session.exec(select(Pair)).all()
        latest = versions.version_name(versions.latest_version(session, project.id))  # type: ignore[arg-type]
        decisions = {p.id: session.get(Decision, p.decision_id) for p in pairs}
        judgments = session.exec(select(Judgment.pair_id, Judgment.judge, Judgment.order)).all()
    assert latest != "routing-v0"
    assert all(p.state == "done" for p in pairs)
    assert all(d is not None and d.version == latest for d in decisions.values())
    # The first pass's verdicts were kept and read again: each judged once, stored once.
    assert len(fake.calls) == 2 * 3 and len(judgments) == len(set(judgments)) == 2 * 3


def test_an_empty_claim_racing_a_send_back_does_not_end_an_until_idle_run(
    any_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim that read the queue before a store sent pairs back, and returned after it,
    must not count as "nothing left": the worker claims again instead of stopping."""
    import threading

    from api.judging import worker as worker_module

    fake = fakes.install()
    project = seed(any_engine, 3, ["fake/ok"])
    settings = fast_settings(str(any_engine.url))
    stored = threading.Event()
    real_store = worker_module.store_outcomes

    def store_then_signal(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return real_store(*args, **kwargs)
        finally:
            stored.set()

    monkeypatch.setattr(worker_module, "store_outcomes", store_then_signal)

    class RacingWorker(Worker):
        async def _claim(self, limit, semaphore):  # type: ignore[no-untyped-def]
            started = await super()._claim(limit, semaphore)
            if not started and not stored.is_set():  # this empty read returns after the store
                await asyncio.to_thread(stored.wait, 10)
                await asyncio.sleep(0.2)  # ... and after the loop has taken the store's result
            return started

        async def _judge_pair(self, pair, *args, **kwargs):  # type: ignore[no-untyped-def]
            outcome = await super()._judge_pair(pair, *args, **kwargs)
            if pair.judged_at is None:  # a new version lands: the store sends the pair back
                await asyncio.to_thread(refits.refit, any_engine, project)
            return outcome

    asyncio.run(RacingWorker(any_engine, settings, "w").run(until_idle=True))
    with Session(any_engine) as session:
        states = [p.state for p in session.exec(select(Pair)).all()]
    assert stored.is_set()
    assert states == ["done"] * 3
    assert len(fake.calls) == 2 * 3


def test_only_the_lease_holder_can_renew(engine: Engine, clock: Clock) -> None:
    seed(engine, 1, ["fake/ok"])
    (pair,) = claims.claim_pairs(engine, "holder", 10, lease_seconds=0.05)
    assert claims.renew_lease(engine, "holder", pair.id, 60)  # type: ignore[arg-type]
    assert not claims.renew_lease(engine, "someone-else", pair.id, 60)  # type: ignore[arg-type]
    clock.advance(0.1)
    assert claims.claim_pairs(engine, "other", 10, lease_seconds=60) == []  # renewed: still held


def test_renewal_extends_held_leases_and_reports_the_lost_ones(engine: Engine, clock: Clock) -> None:
    seed(engine, 3, ["fake/ok"])
    held = claims.claim_pairs(engine, "w", 10, lease_seconds=0.05)
    clock.advance(0.1)
    (taken,) = claims.claim_pairs(
        engine, "other", 1, lease_seconds=60
    )  # one lease ran out and changed hands
    ids = {p.id for p in held}
    assert claims.renew_leases(engine, "w", ids, 60) == ids - {taken.id}  # type: ignore[arg-type]
    clock.advance(0.1)
    assert claims.claim_pairs(engine, "third", 10, lease_seconds=60) == []  # renewed: still held


def test_heartbeats_keep_leases_shorter_than_the_judging(any_engine: Engine) -> None:
    """Each pair takes longer to judge than a lease lasts: only the heartbeat keeps a second
    worker from claiming pairs the first is still judging."""
    with Session(any_engine, expire_on_commit=False) as session:
        project = Project(
            name="slow", judges=[{"model": "mock/slow", "api_base": "latency_ms=2000"}], routing={}
        )
        session.add(project)
        session.commit()
    store.create_job(
        any_engine,
        project.id,  # type: ignore[arg-type]
        [PairIn(client_id=f"c{i}", prompt=f"p{i}", response_a="a", response_b="b") for i in range(8)],
    )
    settings = fast_settings(str(any_engine.url), lease_seconds=0.6)
    load_litellm()  # its first import (seconds of CPU) would starve the heartbeat of this test

    async def both() -> list[int]:
        first = asyncio.create_task(Worker(any_engine, settings, "w1").run(until_idle=True))
        await asyncio.sleep(1.5)  # past two leases, while the first is still judging
        second = await Worker(any_engine, settings, "w2").run(until_idle=True)
        return [await first, second]

    assert asyncio.run(both()) == [8, 0]
    with Session(any_engine) as session:
        assert [p.attempts for p in session.exec(select(Pair)).all()] == [1] * 8
        assert len(session.exec(select(Judgment)).all()) == 8 * 2
