"""Per-aspect guarantee lines of a refit (issue 23): each aspect's fit on its human labels.

For every aspect of the project: the human answer per pair *on that aspect*
(:func:`api.review.human_labels.aspect_labels` through the same aggregation as the overall
label: adjudication, gold, Dawid--Skene, one label), on the pairs whose labels calibrate
(the overall gate's usable set), against the judges' verdicts on the aspect; the fit and the
line are :mod:`calibration.aspects`' (the gate's own guarantee). Routing's per-aspect rule
(:func:`api.routing.route.aspect_outcome`) is the fit's ``never_accept``, and the line says
how often humans agree with the panel where the rule lets a pair through.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
from sqlmodel import Session

from api.judging.claims import judgment_views
from api.models import Project
from api.review.human_labels import aspect_alpha, aspect_labels, counting_labels, human_sides
from api.routing.route import aspect_outcome, views_frame
from calibration.aspects import AspectLine, aspect_line, fit_aspect
from calibration.settings import GateSettings

__all__ = ["aspect_lines"]


def aspect_lines(
    session: Session, project: Project, usable: Collection[int], settings: GateSettings
) -> list[AspectLine]:
    """One guarantee line per aspect of the project (none without aspects)."""
    aspects = project.aspect_settings()
    if not aspects.aspects:
        return []
    labels = counting_labels(session, project.id)
    judges = [spec.model for spec in project.judge_specs()]
    usable = set(usable)
    lines: list[AspectLine] = []
    for aspect in aspects.aspects:
        answers = aspect_labels(labels, aspect.name)
        sides = human_sides(answers)  # type: ignore[arg-type]  # AspectLabel has every Label field it reads
        sides = sides[sides.index.isin(list(usable))]
        views = judgment_views(session, [int(pid) for pid in sides.index])
        outcomes = {pid: aspect_outcome(v, aspect.name) for pid, v in views.items() if v}
        clear = [pid for pid, o in outcomes.items() if o.unclear is None]
        agreed = sum(outcomes[pid].chosen == sides[pid] for pid in clear)
        gate = None
        if outcomes:
            frame = views_frame({pid: [j.on_aspect(aspect.name) for j in views[pid]] for pid in outcomes})
            blocked = pd.Series({pid: o.unclear is not None for pid, o in outcomes.items()})
            gate = fit_aspect(frame, sides.loc[list(outcomes)], settings, blocked, judges)
        lines.append(
            aspect_line(
                aspect.name,
                gate,
                required=aspect.required,
                clear=(len(clear), agreed / len(clear) if clear else None),
                alpha=aspect_alpha(answers),
                target_agreement=1 - settings.alpha,
            )
        )
    return lines
