"""The calibration gate as a service: labels in, versions out, pairs re-routed.

The math lives in ``calibration/`` (pure); this module only moves data between the
database and those functions:

* :func:`refit` reads the project's judgments and its *usable* human labels (sources in
  ``CALIBRATION_SOURCES``: a random gold sample and the audit stream — review labels are
  left out because reviewers see the uncertain pairs, a selected sample), fits the gate,
  stores a new :class:`CalibrationVersion` and re-routes every judged pair under it.
* :func:`api.calibrate.kill_switch.check_drift` runs the kill-switch test on the audit labels
  since the gate opened and closes the gate at once when audited agreement is below target
  with confidence.
* :func:`check_shift` runs the label-free shift detector (:mod:`calibration.shift`) over the
  pairs decided since the gate opened and closes the gate as soon as their judgments stop
  looking like the calibration sample's, without waiting for audits.
* :func:`maintain` is what workers call every few seconds: refit after ``refit_every`` new
  usable labels, then the drift and shift checks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api import audit
from api.calibrate.aspect_fits import aspect_lines
from api.calibrate.gate_labels import usable_label_set
from api.calibrate.gate_labels import usable_labels as usable_labels  # re-exported: callers import it here
from api.calibrate.kill_switch import check_drift, closing_version
from api.calibrate.versions import (
    gate_model,
    kill_switch_since,
    latest_version,
    latest_version_to_follow,
    version_name,
)
from api.db import chunks
from api.judging.claims import judgment_views
from api.models import CalibrationVersion, Decision, Judgment, Label, Pair, Project
from api.routing.decisions import requeue, reroute
from api.routing.route import (
    FittedGate,
    JudgmentView,
    hard_reasons,
    more_judges_may_clear,
    summarize,
    views_frame,
)
from api.schemas import RoutingSettings
from api.vocab import CALIBRATION_SOURCES, LabelSource
from calibration.cascade import CascadeModel, fit_cascade
from calibration.features import build_features
from calibration.gate import fit_gate
from calibration.settings import GateSettings
from calibration.shift import ShiftDetector, pair_statistics, text_statistics

log = logging.getLogger("prelabel.calibrate")


def never_accept_flags(
    session: Session,
    project: Project,
    views: dict[int, list[JudgmentView]],
    stages: list[list[str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per pair and stage: does routing hard-flag it on the verdicts of stages <= k, and is
    that flag final (no later stage can clear it: routing.more_judges_may_clear)?

    One column (stage 0) without a cascade. A flagged pair can't be auto-accepted by any
    threshold; the gate is fitted with exactly these flags, so its guarantee covers what
    routing accepts.
    """
    routing, aspects = project.routing_settings(), project.aspect_settings()
    pair_ids = list(views)
    precheck: dict[int, tuple[bool, Sequence[str]]] = {}  # pair -> (safety pre-check, injection findings)
    query = select(Pair.id, Pair.safety_flag, Pair.injection_reasons)
    for part in chunks(pair_ids):
        rows = session.exec(query.where(col(Pair.id).in_(part)))
        precheck.update((pid, (safety, injection)) for pid, safety, injection in rows)
    prefixes = [None] if not stages else [{j for s in stages[: k + 1] for j in s} for k in range(len(stages))]
    flags: dict[int, list[bool]] = {}
    final: dict[int, list[bool]] = {}
    for pid in pair_ids:
        row, row_final = [], []
        for judges in prefixes:
            summary = summarize([v for v in views[pid] if judges is None or v.judge in judges], aspects)
            hard = hard_reasons(
                summary,
                precheck_safety=bool(precheck.get(pid, (False, []))[0]),
                precheck_injection=bool(precheck.get(pid, (False, []))[1]),
                order_sensitive_judges=routing.order_sensitive_judges,
            )
            flagged = bool(hard) or summary.both_bad
            row.append(flagged)
            clearable = more_judges_may_clear(summary, hard, routing.order_sensitive_judges)
            row_final.append(flagged and not clearable)
        flags[pid], final[pid] = row, row_final
    columns = list(range(len(prefixes)))
    return (
        pd.DataFrame.from_dict(flags, orient="index", columns=columns, dtype=bool),
        pd.DataFrame.from_dict(final, orient="index", columns=columns, dtype=bool),
    )


def gate_settings(routing: RoutingSettings, random_state: int = 0) -> GateSettings:
    """The fit settings of a project's gate: its guarantee (target agreement, delta, n_min)
    from the routing settings; everything else at the calibration defaults.

    The one place the service turns routing settings into fit settings. The order-sensitive
    judges are not a fit setting here: routing flags them itself (:func:`never_accept_flags`)
    and the fit receives those flags.
    """
    return GateSettings(
        alpha=1 - routing.target_agreement,
        delta=routing.delta,
        n_min=routing.n_min,
        random_state=random_state,
    )


def _complete_pairs(frame: pd.DataFrame, judges: list[str]) -> list[int]:
    """Pairs of the long table with a verdict row from every judge of the panel (in the orders
    each is asked in: the worker calls a judge's orders together)."""
    panel = frame[frame["judge"].isin(judges)]
    counts = panel.drop_duplicates(["pair_id", "judge"]).groupby("pair_id").size()
    return [int(pid) for pid in counts.index[counts.to_numpy() == len(set(judges))]]


def _fit_on_labels(
    frame: pd.DataFrame,
    gold: pd.Series,
    judges: list[str],
    stages: list[list[str]] | None,
    blocked: pd.DataFrame,
    final: pd.DataFrame,
    settings: GateSettings,
) -> tuple[FittedGate, int, str]:
    """The gate fitted on the labelled pairs' judgments (a cascade when ``stages`` are set), how
    many labels it used, and why it is open or closed. ``blocked`` and ``final``: routing's
    hard flags per pair (per stage), so the guarantee covers what is accepted."""
    if not stages:
        model = fit_gate(build_features(frame, judges=judges), gold, settings, never_accept=blocked[0])
        return model, len(gold), model.reason
    # A cascade is fitted on labelled pairs that carry every stage's verdicts; the others are
    # being judged by the missing stages (requeue_for_backfill) and count next time.
    complete = _complete_pairs(frame, judges)
    cascade = fit_cascade(
        frame[frame["pair_id"].isin(complete)],
        gold.loc[complete],
        stages,
        settings,
        never_accept=blocked.loc[complete],
        final_flags=final.loc[complete],
    )
    waiting = len(gold) - len(complete)
    reason = cascade.reason + (f"; {waiting} labelled pairs wait for their missing judges" if waiting else "")
    return cascade, len(complete), reason


def refit(
    engine: Engine, project: Project, trigger: str = "manual", random_state: int = 0
) -> CalibrationVersion:
    """Fit the gate on the usable labels, store a new version, re-route the project's pairs."""
    routing = project.routing_settings()
    settings = gate_settings(routing, random_state)
    with Session(engine, expire_on_commit=False) as session:
        # Read before the labels: a kill-switch stored after this read is one the labels may
        # predate, and the version written below must not undo it.
        latest_when_read = latest_version(session, project.id)
        found = usable_label_set(session, project.id)
        gold, sources = found.sides, found.sources
        labelled = [int(i) for i in gold.index]
        views = judgment_views(session, labelled)
        frame = views_frame(views)
        stages = project.cascade_stages()
        blocked, final = never_accept_flags(session, project, views, stages)
        aspects = aspect_lines(session, project, labelled, settings)
    judges = [spec.model for spec in project.judge_specs()]
    model: FittedGate | None = None
    n_used = len(gold)
    if len(frame):
        model, n_used, reason = _fit_on_labels(frame, gold, judges, stages, blocked, final, settings)
    elif len(gold):
        reason = f"{len(gold)} usable labels, but none of their pairs has been judged yet"
    else:
        reason = f"no usable labels yet (need {routing.n_min} from sources {', '.join(CALIBRATION_SOURCES)})"
    if not (model and model.open):
        # Name everything that keeps the gate closed, not only the fit's last word.
        reason = "; ".join([reason, *found.why_closed(routing)])
    warnings = found.warnings()
    reason = "; ".join([reason, *(f"warning: {w}" for w in warnings)])
    with Session(engine, expire_on_commit=False) as session:
        previous = latest_version_to_follow(session, project.id)
        is_open = bool(model and model.open)
        kill_switch = kill_switch_since(session, project.id, latest_when_read) if is_open else None
        if kill_switch is not None:
            # Its labels were read before the kill-switch fired: a fit on them must not undo it.
            # The next refit, on the labels that arrive after, may open the gate again.
            is_open = False
            reason = f"kept closed: {version_name(kill_switch)} closed the gate while this fit ran; {reason}"
        version = CalibrationVersion(
            project_id=project.id,
            version=(previous.version + 1) if previous else 1,
            trigger=trigger,
            open=is_open,
            reason=reason,
            threshold=model.threshold if model else None,
            guaranteed_agreement=model.guaranteed_agreement if model else None,
            expected_coverage=model.expected_coverage if model else 0.0,
            n_labels=int(n_used),
            label_sources=sources,
            model=model.to_dict() if model else None,
            report={
                **({"warnings": warnings} if warnings else {}),
                **({"aspects": aspects} if aspects else {}),
            },
        )
        session.add(version)
        audit.record_version(session, version, was_open=bool(previous and previous.open))
        session.commit()
    reroute(engine, project, version)
    log.info(
        "project %s: %s %s (%s)",
        project.id,
        version_name(version),
        "open" if version.open else "closed",
        reason,
    )
    return version


# --- the label-free shift detector --------------------------------------------------------

# Label sources that are random samples of ALL pairs: the shift detector's reference. Audits
# are drawn from would-be auto-accepts only (more confident than the stream as a whole).
RANDOM_SAMPLE_SOURCES: tuple[str, ...] = (LabelSource.GOLD, LabelSource.CALIBRATION)
SHIFT_MIN_REFERENCE = 30  # fewer reference pairs than this: no shift test for the version
SHIFT_BATCH = 2000  # stream pairs one maintenance pass reads at most (the rest: next pass)


def shift_statistics(
    session: Session, project: Project, gate: FittedGate, pair_ids: list[int]
) -> pd.DataFrame:
    """Label-free statistics of judged pairs under ``gate``, one row per pair in ``pair_ids``
    order (pairs without judgments are left out).

    The panel's verdicts (:func:`calibration.shift.pair_statistics`), the gate's calibrated
    score and whether routing would accept the pair (score over the threshold, no hard flag;
    audits and the calibration sample aside), and the texts' lengths. A cascade is read at its
    first stage, the one every pair has.
    """
    views = {pid: v for pid, v in judgment_views(session, pair_ids).items() if v}
    if not views:
        return pd.DataFrame()
    frame = views_frame(views)
    if isinstance(gate, CascadeModel):
        judges = gate.stage_judges(0)
        features = build_features(frame, judges=judges)
        confidence = gate.confidence(0, features.X)
        flags, _ = never_accept_flags(session, project, views, gate.stages)
    else:
        judges = gate.judges
        features = build_features(frame, judges=judges)
        confidence = gate.confidence(features)
        flags, _ = never_accept_flags(session, project, views)
    score = pd.Series(confidence, index=features.pair_ids, dtype=float)
    hard = flags[0].reindex(score.index).fillna(True).astype(bool)
    accepted = score.map(gate.accepts).astype(bool) & ~hard
    lengths: list[Any] = []
    for part in chunks(list(views)):
        lengths.extend(
            session.exec(
                select(
                    Pair.id,
                    func.length(Pair.prompt),
                    func.length(Pair.response_a) + func.length(Pair.response_b),
                ).where(col(Pair.id).in_(part))
            ).all()
        )
    ids, prompt_chars, response_chars = zip(*lengths, strict=True)
    stats = pair_statistics(frame, judges, score, accepted).join(
        text_statistics(ids, prompt_chars, response_chars)
    )
    return stats.loc[[pid for pid in pair_ids if pid in views]]


def shift_reference(session: Session, project_id: int, version: CalibrationVersion) -> list[int]:
    """The calibration sample the stream is compared with: judged pairs with a random-sample
    label (gold, calibration sample) given before ``version`` was stored."""
    return list(
        session.exec(
            select(Label.pair_id)
            .join(Pair, col(Pair.id) == col(Label.pair_id))
            .where(
                Label.project_id == project_id,
                col(Label.source).in_(RANDOM_SAMPLE_SOURCES),
                col(Label.created_at) <= version.created_at,
                col(Pair.judged_at).is_not(None),
            )
            .distinct()
            .order_by(col(Label.pair_id))
        )
    )


def _stream_query(project_id: int, version: CalibrationVersion) -> Any:
    """(decision id, pair id) of the pairs judged after ``version`` landed whose current
    decision was made under it: the stream it is tested on. Pairs re-routed when it landed
    (its calibration sample among them) are not."""
    return (
        select(Decision.id, Decision.pair_id)
        .join(Pair, col(Pair.decision_id) == col(Decision.id))
        .where(
            Pair.project_id == project_id,
            Decision.version == version_name(version),
            col(Pair.judged_at) >= version.created_at,
        )
    )


def decided_under(session: Session, project_id: int, version: CalibrationVersion) -> int:
    """How many pairs of its stream (:func:`check_shift`) ``version`` has decided so far."""
    stream = _stream_query(project_id, version).subquery()
    return int(session.exec(select(func.count()).select_from(stream)).one())


def check_shift(engine: Engine, project: Project) -> CalibrationVersion | None:
    """Feed the pairs decided since the last pass to the shift detector; close the gate (a new
    version, trigger "shift") when it fires.

    The detector (:class:`calibration.shift.ShiftDetector`) compares the judgments of the pairs
    decided under the open version, in decision order, with those of its calibration sample
    (:func:`shift_reference`) and fires when they are distinguishable: on a stream
    exchangeable with the calibration sample it fires with probability at most
    ``routing.shift_delta``, however long the stream. Its state lives in the version's
    ``shift`` column with a cursor (the last decision read); of two passes that read the same
    state only the first to write keeps its result, so no pair counts twice. A decision that
    commits after a later one was read is skipped: that depends on timing, not on the pair, so
    the test stays valid.
    """
    routing = project.routing_settings()
    if not routing.shift_check:
        return None
    with Session(engine, expire_on_commit=False) as session:
        current = latest_version(session, project.id)
        if current is None or not current.open or current.model is None:
            return None
        gate = gate_model(current)
        assert gate is not None
        state = current.shift
        if state is not None and ("skipped" in state or state["detector"].get("alarm_at") is not None):
            return None
        if state is None:
            reference = shift_statistics(
                session,
                project,
                gate,
                shift_reference(session, project.id, current),
            )
            if len(reference) < SHIFT_MIN_REFERENCE:
                skipped = {
                    "skipped": f"{len(reference)} judged pairs with gold or calibration-sample labels before "
                    f"{version_name(current)}; the shift test needs {SHIFT_MIN_REFERENCE}"
                }
                _store_shift(engine, project, current, state, skipped)
                return None
            detector = ShiftDetector(delta=routing.shift_delta, seed=current.version).fit(reference)
            cursor = 0
        else:
            detector = ShiftDetector.from_dict(state["detector"])
            cursor = int(state["cursor"])
        rows = session.exec(
            _stream_query(project.id, current)
            .where(col(Decision.id) > cursor)
            .order_by(Decision.id)
            .limit(SHIFT_BATCH)
        ).all()
        if not rows and state is not None:
            return None
        # In ingest order within a pass (the order pairs were decided in depends on timing): any
        # order that does not look at the judgments keeps the test valid, and this one repeats.
        items = shift_statistics(session, project, gate, sorted(pid for _, pid in rows))
    if len(items):
        detector.update_many(items)
    new_state = {"cursor": int(rows[-1][0]) if rows else cursor, "detector": detector.to_dict()}
    closed = _shift_closure(project, current, detector) if detector.alarm else None
    if not _store_shift(engine, project, current, state, new_state, closed):
        return None
    if closed is not None:
        reroute(engine, project, closed)
        log.warning("project %s: gate closed by the shift detector: %s", project.id, closed.reason)
    return closed


def _shift_closure(
    project: Project, current: CalibrationVersion, detector: ShiftDetector
) -> CalibrationVersion:
    """The closed version a fired detector stores: reason in words, the evidence over time."""
    at = detector.alarm_at or 0
    evidence = next((e for n, e, _ in detector.history_ if n == at + 1), detector.evidence_)
    return closing_version(
        current,
        "shift",
        f"shift detector: the judgments of the pairs decided under {version_name(current)} are unlike "
        f"those of its {detector.n_reference_} calibration pairs: '{detector.alarm_statistic}' reached "
        f"evidence {math.exp(min(evidence, 700.0)):.0f} >= "
        f"{len(detector.statistics_)}/{detector.delta:g} "
        f"at pair {at + 1} of the stream (an unshifted stream closes the gate with probability "
        f"<= {detector.delta:g})",
        {"shift": detector.summary()},
    )


def _store_shift(
    engine: Engine,
    project: Project,
    current: CalibrationVersion,
    read: dict[str, Any] | None,
    state: dict[str, Any],
    closed: CalibrationVersion | None = None,
) -> bool:
    """Store the detector's state on ``current`` (and the closing version) if nothing changed
    since it was read: ``current`` still the latest version, its state still the one read."""
    with Session(engine, expire_on_commit=False) as session:
        latest = latest_version_to_follow(session, project.id)
        if latest is None or latest.version != current.version or latest.shift != read:
            return False  # a newer version, or another pass stored first
        latest.shift = state
        session.add(latest)
        if closed is not None:
            session.add(closed)
            audit.record_version(session, closed, was_open=True, kill_switch=True)
        session.commit()
    return True


def new_usable_labels(session: Session, project_id: int, since: Any) -> int:
    query = (
        select(func.count())
        .select_from(Label)
        .where(
            Label.project_id == project_id,
            col(Label.source).in_(CALIBRATION_SOURCES),
        )
    )
    if since is not None:
        query = query.where(col(Label.created_at) > since)
    return session.exec(query).one()


def requeue_for_backfill(engine: Engine, project: Project) -> tuple[int, int]:
    """Cascade projects: labelled pairs missing some judge's verdicts go back to judging.

    Fitting a cascade needs every stage's verdicts on the calibration labels, but a pair that
    was accepted at a cheap stage (and later audited, or labelled as gold) has only those.
    The worker judges a pair with a usable label by the whole panel. Returns (pairs sent
    back now, labelled pairs still missing verdicts, in whatever state).
    """
    if project.cascade_stages() is None:
        return 0, 0
    # A judge's orders are called together, so a judge with any verdict on a pair has all of them.
    panel = {spec.model for spec in project.judge_specs()}
    with Session(engine) as session:
        labelled = dict(
            session.exec(
                select(Label.pair_id, Pair.state)
                .join(Pair, col(Pair.id) == col(Label.pair_id))
                .where(
                    Label.project_id == project.id,
                    col(Label.source).in_(CALIBRATION_SOURCES),
                )
                .distinct()
            ).all()
        )
        have: dict[int, set[str]] = {pid: set() for pid in labelled}
        for part in chunks(list(labelled)):
            for pid, judge in session.exec(
                select(Judgment.pair_id, Judgment.judge).where(
                    col(Judgment.pair_id).in_(part), Judgment.is_current()
                )
            ):
                have[pid].add(judge)
        missing = [pid for pid, got in have.items() if not panel <= got]
        n = requeue(session, [pid for pid in missing if labelled[pid] == "done"]) if missing else 0
        session.commit()
    return n, len(missing)


def maintain(engine: Engine) -> list[str]:
    """Refit projects with ``refit_every`` new usable labels; run the drift check. Returns actions."""
    actions = []
    with Session(engine, expire_on_commit=False) as session:
        projects = list(session.exec(select(Project)))
    for project in projects:
        routing = project.routing_settings()
        with Session(engine) as session:
            current = latest_version(session, project.id)
            fresh = new_usable_labels(session, project.id, current.created_at if current else None)
        due = (
            fresh >= routing.refit_every
            if current is not None
            else fresh >= min(routing.n_min, routing.refit_every)
        )
        backfill, waiting = requeue_for_backfill(engine, project)
        if backfill:
            actions.append(f"project {project.id}: {backfill} labelled pairs sent to the missing judges")
        if due and not waiting:
            version = refit(engine, project, trigger="auto")
            actions.append(f"project {project.id}: refit -> {version_name(version)}")
            continue
        if due:
            # Fitting now would leave out exactly the pairs the previous version settled early
            # (a non-random subset of the labels); the refit runs once their verdicts are in.
            actions.append(f"project {project.id}: refit waits for {waiting} labelled pairs' missing judges")
        if check_drift(engine, project) is not None:
            actions.append(f"project {project.id}: kill-switch closed the gate")
            continue
        try:
            if check_shift(engine, project) is not None:
                actions.append(f"project {project.id}: shift detector closed the gate")
        except Exception:  # a failed shift check must not stop the other projects' refits
            log.exception("project %s: shift check failed", project.id)
    return actions
