"""The settings of one gate fit: what :func:`~calibration.gate.fit_gate` and
:func:`~calibration.cascade.fit_cascade` read besides the data.

One frozen object instead of a long keyword list, validated when it is built so a bad value
fails before any fitting. The service builds it from a project's routing settings in one place
(``api.calibrate.refits.gate_settings``); benchmarks and tests build their own.

Example
-------
>>> settings = GateSettings(alpha=0.1, delta=0.1, n_min=50)
>>> settings.target_agreement, settings.mode, settings.method
(0.9, 'crossfit', 'side')
>>> GateSettings(alpha=1.5)
Traceback (most recent call last):
...
ValueError: alpha must be in (0, 1), got 1.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["GateSettings", "MODES", "METHODS"]

MODES = ("crossfit", "split")
METHODS = ("side", "two_stage", "vote")


@dataclass(frozen=True)
class GateSettings:
    """Parameters of a gate (or cascade) fit.

    Guarantee:

    * ``alpha``: allowed disagreement with humans (target agreement ``1 - alpha``).
    * ``delta``: allowed probability that the guarantee fails.
    * ``n_min``: fewer usable labels than this keep the gate closed.

    How the labels are used (module docstring of :mod:`calibration.gate`):

    * ``mode``: "crossfit" (threshold on out-of-fold scores, model refitted on all labels) or
      "split" (``split_fraction`` of the labels fit the calibrator, the rest the threshold);
      the cascade supports "crossfit" only.
    * ``method``: the calibrator's score, "side", "two_stage" or "vote".
    * ``random_state``: seeds the folds and the split.

    Hard rule: ``hard_rule`` never accepts an order-sensitive pair; ``hard_rule_judges`` adds
    judges whose own order flip also counts.

    Threshold search (:func:`calibration.threshold.select_threshold`): ``min_accept`` (None:
    the start is chosen by power from the out-of-fold confidences), ``starts``, ``grid``.

    Calibrator (:class:`calibration.calibrator.PairCalibrator`): ``C``, ``C_side``,
    ``n_splits`` (cross-fitting folds), ``monotone`` (a verdict for A never lowers P(A)).

    Cascade only: ``review_below`` sends a pair whose confidence at a non-final stage is below
    it to review without calling further judges.
    """

    alpha: float = 0.1
    delta: float = 0.1
    n_min: int = 50
    random_state: int | None = 0
    mode: Literal["crossfit", "split"] = "crossfit"
    method: Literal["side", "two_stage", "vote"] = "side"
    hard_rule: bool = False
    hard_rule_judges: tuple[str, ...] | None = None
    split_fraction: float = 0.5
    min_accept: int | None = None
    starts: int = 1
    grid: int | None = None
    C: float = 1.0
    C_side: float = 1.0
    n_splits: int = 5
    monotone: bool = True
    review_below: float | None = None

    def __post_init__(self) -> None:
        for name in ("alpha", "delta", "split_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}: one of {', '.join(MODES)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: one of {', '.join(METHODS)}")
        if self.n_min < 0:
            raise ValueError(f"n_min must be >= 0, got {self.n_min}")
        if self.starts < 1 or (self.grid is not None and self.grid < 1):
            raise ValueError("starts and grid must be >= 1")
        if self.min_accept is not None and self.min_accept < 1:
            raise ValueError(f"min_accept must be >= 1, got {self.min_accept}")
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be >= 2, got {self.n_splits}")
        if self.C <= 0 or self.C_side <= 0:
            raise ValueError("C and C_side must be > 0")
        if self.review_below is not None and not 0.0 <= self.review_below <= 1.0:
            raise ValueError(f"review_below must be in [0, 1], got {self.review_below}")
        if self.hard_rule_judges is not None:
            # A list passed by a caller becomes a tuple of names: the settings stay hashable.
            object.__setattr__(self, "hard_rule_judges", _names(self.hard_rule_judges))

    @property
    def target_agreement(self) -> float:
        return 1.0 - self.alpha


def _names(judges: Sequence[str]) -> tuple[str, ...]:
    if isinstance(judges, str):
        raise ValueError("hard_rule_judges must be a list of judge names, not one string")
    return tuple(str(j) for j in judges)
