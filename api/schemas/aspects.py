"""Aspects of a project (issue 23): separate preference questions asked about every pair.

A project with aspects asks its judges every aspect in the same call as the overall verdict
(:mod:`judge.aspects`), takes human labels per aspect, reports a guarantee line per aspect and
auto-accepts a pair only when each ``required`` aspect clears (:mod:`api.routing.route`).
``overall`` says what the overall preference is: its own question (``"question"``, the
default, the prompt of before plus the aspects) or the aspects' declared weighted combination
(``"weighted"``: the judge is not asked an overall verdict). No aspects: everything as before.

>>> s = AspectSettings(aspects=[{"name": "helpfulness", "weight": 0.5, "required": True},
...                             {"name": "harmlessness", "weight": 0.3}], overall="weighted")
>>> s.names, s.required, s.weights()["harmlessness"]
(['helpfulness', 'harmlessness'], ['helpfulness'], 0.3)
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.fields import Text
from judge.aspects import AspectQuestion, Scale

MAX_ASPECTS = 10
# A slug: it names a JSON key in judge answers, an export column and a Label Studio control.
ASPECT_NAME = r"^[a-z][a-z0-9_]{0,39}$"
OverallMode = Literal["question", "weighted"]


class Aspect(BaseModel):
    """One aspect: a slug name, what it means (shown to judges and reviewers), its weight in a
    weighted overall, its scale, and whether a pair is auto-accepted only when it clears."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=ASPECT_NAME, description="slug: a-z, 0-9, _ (at most 40)")
    description: Text = Field("", max_length=2000, description="the rubric of this aspect")
    weight: float = Field(1.0, ge=0.0, le=1e6)
    scale: Scale = "five_point"
    required: bool = False

    def question(self) -> AspectQuestion:
        return AspectQuestion(self.name, self.description, self.scale)


def aspects_problem(aspects: list[Aspect], overall: str) -> str | None:
    """What is wrong with a list of aspects as a whole (None: nothing): a name given twice,
    weights that sum to 0, a weighted overall with nothing to weigh."""
    names = [a.name for a in aspects]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        return f"aspect name {twice[0]!r} is given twice"
    total = sum(a.weight for a in aspects)
    if aspects and not (math.isfinite(total) and total > 0):
        return "aspect weights must sum to a finite number more than 0"
    if overall == "weighted" and not aspects:
        return 'overall "weighted" needs aspects to weigh'
    return None


class AspectSettings(BaseModel):
    """A project's aspects and how its overall preference is made; stored on the project."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    aspects: list[Aspect] = Field(default_factory=list, max_length=MAX_ASPECTS)
    overall: OverallMode = "question"

    @model_validator(mode="after")
    def _usable(self) -> AspectSettings:
        if (problem := aspects_problem(self.aspects, self.overall)) is not None:
            raise ValueError(problem)
        return self

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.aspects]

    @property
    def required(self) -> list[str]:
        return [a.name for a in self.aspects if a.required]

    def weights(self) -> dict[str, float]:
        return {a.name: a.weight for a in self.aspects}

    def questions(self) -> tuple[AspectQuestion, ...]:
        return tuple(a.question() for a in self.aspects)

    def combine_weights(self) -> dict[str, float] | None:
        """The weights the overall verdict is combined with; None when it is its own question."""
        return self.weights() if self.overall == "weighted" else None

    def stored(self) -> dict[str, object] | None:
        """What the project row keeps: None for no aspects (the row of before)."""
        return self.model_dump() if self.aspects else None
