"""The Alembic migrations build exactly the tables the SQLModel classes describe."""

from __future__ import annotations

import doctest
import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import api.models  # noqa: F401  (every table is here, the one module env.py imports)


def test_migrations_match_the_models(any_engine: Engine) -> None:
    with any_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_schemas": False})
        diffs = compare_metadata(context, SQLModel.metadata)
    assert diffs == [], f"write a migration for: {diffs}"


# Modules whose docstrings carry runnable examples (crowd-kit style): they must stay true.
DOCTESTED = [
    "api.routing.route",
    "api.vocab",
    "calibration.cascade",
    "calibration.features",
    "calibration.gate",
    "calibration.threshold",
    "calibration.calibrator",
    "calibration.drift",
    "calibration.sequential",
    "api.review.quality",
    "calibration.priority",
    "calibration.lab.simulate",
    "calibration.settings",
    "api.review.redaction",
    "api.review.embeddings",
    "judge.costs",
    "api.fields",
    "api.export.final_labels",
    "api.schemas.queue",
    "review_app.queue_filters",
    "review_app.api_client",
]


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
