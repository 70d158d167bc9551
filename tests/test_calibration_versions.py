"""Calibration versions: one number each, and "the latest" means the same row to every reader,
however many refits and kill-switches run at once."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.calibrate import refits, versions
from api.calibrate.versions import latest_version_names
from api.db import alembic_config, upgrade
from api.models import CalibrationVersion, Decision, Pair
from api.routing import decisions
from tests import fakes
from tests.helpers import fast_settings, run_worker, seed
from tests.waiting import wait_for_progress


def test_concurrent_refits_take_one_number_each_and_the_last_routes_every_pair(any_engine: Engine) -> None:
    fakes.install()
    project = seed(any_engine, 60, ["fake/ok"])
    run_worker(any_engine, fast_settings(str(any_engine.url)))
    start = threading.Barrier(4)
    stored: list[CalibrationVersion] = []
    errors: list[BaseException] = []

    def refit() -> None:
        start.wait()
        try:
            stored.append(refits.refit(any_engine, project))
        except BaseException as error:  # a thread's exception is otherwise only printed
            errors.append(error)

    threads = [threading.Thread(target=refit) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for_progress(
        lambda: not any(thread.is_alive() for thread in threads),
        lambda: len(stored),
        "the refits (one hung?)",
    )
    assert errors == []
    assert sorted(v.version for v in stored) == [1, 2, 3, 4]
    with Session(any_engine) as session:
        assert latest_version_names(session, {project.id}) == {project.id: "cal-4"}  # type: ignore[dict-item]
    assert versions.GateCache(any_engine).get(project.id)[1] == "cal-4"  # type: ignore[arg-type]
    # Older versions' re-routing stopped once a newer one landed: no pair is left on one.
    assert current_decision_versions(any_engine) == ["cal-4"] * 60
    # Re-routing under a superseded version writes nothing.
    first = min(stored, key=lambda v: v.version)
    assert decisions.reroute(any_engine, project, first) == 0
    assert current_decision_versions(any_engine) == ["cal-4"] * 60


def current_decision_versions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Decision.version).join(Pair, Pair.decision_id == Decision.id)  # type: ignore[arg-type]
            )
        )


def test_the_migration_renumbers_duplicate_versions_then_refuses_them(any_engine: Engine) -> None:
    """Databases written before the unique constraint may hold duplicates from racing refits."""
    project = seed(any_engine, 1, ["fake/ok"])
    command.downgrade(alembic_config(any_engine), "0004")
    row = (
        "INSERT INTO calibrationversion (project_id, version, created_at, trigger, open, reason, n_labels, "
        "label_sources, report) VALUES (:p, :v, CURRENT_TIMESTAMP, 'auto', false, 'r', 0, '{}', '{}')"
    )
    with any_engine.begin() as connection:
        for number in (1, 2, 2, 1, 3):  # as two racing pairs of refits could have left them
            connection.execute(text(row), {"p": project.id, "v": number})
    upgrade(any_engine)
    with Session(any_engine) as session:
        numbers = session.exec(select(CalibrationVersion.version).order_by(CalibrationVersion.id)).all()
    assert numbers == [1, 2, 3, 4, 5]
    with pytest.raises(IntegrityError), any_engine.begin() as connection:
        connection.execute(text(row), {"p": project.id, "v": 5})
