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
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.fields import Text
from judge.aspects import AspectQuestion, Scale
from judge.verdicts import to_five_point

MAX_ASPECTS = 10
# A slug: it names a JSON key in judge answers, an export column and a Label Studio control.
ASPECT_NAME = r"^[a-z][a-z0-9_]{0,39}$"
OverallMode = Literal["question", "weighted"]
AspectName = Annotated[str, StringConstraints(pattern=ASPECT_NAME)]
# A human's per-aspect labels: aspect name -> a five-point label or a side ("A", "B", "tie").
AspectLabels = Annotated[
    dict[AspectName, Literal["A>>B", "A>B", "tie", "B>A", "B>>A", "A", "B"]], Field(max_length=MAX_ASPECTS)
]


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


def label_aspects_problem(
    given: Mapping[str, str] | None, settings: AspectSettings, *, complete: bool
) -> str | None:
    """What is wrong with a human label's aspects on a project (None: nothing): aspects on a
    project without any, an aspect the project does not have, or -- when the label must be
    ``complete`` (a reviewer's answer) -- a required aspect without a label.

    Imports are not held to ``complete``: a gold set labels what it labels (HH-RLHF's
    preference is about harmlessness only, LLMBar's about following the instruction), and
    each aspect calibrates on the labels it has.
    """
    if given and not settings.aspects:
        return "aspects: this project has no aspects"
    if unknown := sorted(set(given or ()) - set(settings.names)):
        return f"aspects: {unknown[0]!r} is not an aspect of this project ({', '.join(settings.names)})"
    if complete and (missing := [n for n in settings.required if n not in (given or {})]):
        return (
            f"aspects: required aspect {missing[0]!r} has no label (required: {', '.join(settings.required)})"
        )
    return None


def stored_aspect_labels(given: Mapping[str, str] | None) -> dict[str, str] | None:
    """Per-aspect labels as stored: five-point, in the project's aspect order is not needed
    (a JSON object); None when none were given."""
    return {name: to_five_point(label) for name, label in given.items()} if given else None
