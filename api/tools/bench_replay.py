"""``prelabel bench replay``: the calibration gate measured through the real service.

Everything goes through the product's own path, in-process: pairs in through the jobs API,
replay judges through the worker (``judge.client`` serves them in-process), human labels for
the calibration part through the labels API (every annotator's, when a file has several), a
refit through the calibration API, routes read back through the results API. Judgments are
cached by content, so only the first split pays for judging. Each judge is asked in the
orders the file recorded for it (:func:`judge_orders`).

With ``shift_to``, a project calibrated on all gold of ``data`` then receives the pairs of
``shift_to`` in small jobs with audit sampling on; audit items are answered with their gold
label (as a reviewer would), and the drift kill-switch and the label-free shift detector are
checked after every job; :func:`bench_shift` runs that phase alone.

With ``baseline="toe"``, Trust or Escalate's cascaded selective rule (:mod:`calibration.lab.toe`,
both its valid and its as-published variant) is fitted and scored in-process on the recorded
file, on exactly the calibration/test split of each service split, and its numbers sit
beside the service's under ``"baseline"``.

With ``population="bootstrap"`` each split draws its calibration pairs WITH replacement from
the file (a pair drawn twice is posted twice, under new client ids, so it counts as two
labels) and then routes the whole file: the file is the population the calibration sample
was drawn from, so the accepted region's agreement over it is exactly what the guarantee is
about, and ``guarantee_held_population_fraction`` is an unbiased validity figure. The split
figures (``guarantee_held_fraction``) then read the pairs never drawn (out of bag, about 37 %
of the file), the analogue of the test half. Why: the test-half "held" of a split without
replacement is biased low for a valid gate on a finite file -- when the calibration half is
lucky, the test half is the unlucky rest.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.calibrate.kill_switch import check_drift
from api.calibrate.refits import check_shift, shift_reference, shift_statistics
from api.calibrate.versions import gate_model, latest_version
from api.db import make_engine, upgrade
from api.ingest import store
from api.judging.worker import Worker
from api.main import create_app
from api.models import CalibrationVersion, Project
from api.schemas import JudgeSpec, panel_calls
from api.settings import Settings
from api.tools.bench_baseline import (
    BASELINE_KEYS as BASELINE_KEYS,  # re-exported: tests read the baseline's keys here
)
from api.tools.bench_baseline import (
    BASELINES,
    POPULATIONS,
    _agreement,
    _baseline_summary,
    _recorded_table,
    _source_id,
    _toe_split,
    bootstrap_pairs,
    cheapest_first,
)
from api.vocab import LabelSource
from calibration.aggregation import majority_vote
from calibration.lab.toe import VARIANTS
from calibration.shift import ShiftDetector, false_alarm_rate
from judge.recorded import RecordedPair, judges_in, load_recorded
from judge.verdicts import ORDERS

SHIFT_CHUNK = 10  # pairs per streamed job in the shift phase (a check of both kill-switches after each)


def _judge_all(engine: Engine, settings: Settings) -> None:
    asyncio.run(Worker(engine, settings, "bench-replay").run(until_idle=True))


def judge_orders(pairs: list[RecordedPair], judges: list[str]) -> dict[str, str]:
    """Each judge's ``orders`` setting, read from the file: "both" when every pair it judged
    has both orders recorded, "ab" or "ba" when it was only ever shown one order, "recorded"
    (the orders the file holds, pair by pair) for any mix: one order per pair but not always
    the same one, or both on some pairs and one on others."""
    recorded: dict[str, list[set[str]]] = {j: [] for j in judges}
    for pair in pairs:
        seen: dict[str, set[str]] = {}
        for j in pair.judgments:
            seen.setdefault(j.judge, set()).add(j.order)
        for judge, orders in seen.items():
            if judge in recorded:
                recorded[judge].append(orders)
    out: dict[str, str] = {}
    for judge, per_pair in recorded.items():
        union = set().union(*per_pair) if per_pair else set(ORDERS)
        if len(union) == 1:
            out[judge] = union.pop()
        else:
            out[judge] = "both" if all(len(orders) == 2 for orders in per_pair) else "recorded"
    return out


def _project(
    client: TestClient,
    name: str,
    data: str,
    judges: list[str],
    routing: dict[str, Any],
    orders: dict[str, str] | None = None,
) -> int:
    spec = [
        {"model": f"replay/{j}", "api_base": data, "orders": (orders or {}).get(j, "both")} for j in judges
    ]
    response = client.post(
        "/v1/projects", json={"name": name, "judges": spec, "routing": routing, "allow_empty_responses": True}
    )
    response.raise_for_status()
    return response.json()["id"]


def post_pairs(client: TestClient, project_id: int, pairs: list[RecordedPair]) -> int:
    body = "\n".join(
        json.dumps(
            {"client_id": p.id, "prompt": p.prompt, "response_a": p.response_a, "response_b": p.response_b}
        )
        for p in pairs
    )
    response = client.post(
        f"/v1/projects/{project_id}/jobs", content=body, headers={"content-type": "application/x-ndjson"}
    )
    response.raise_for_status()
    return response.json()["job_id"]


def post_labels(
    client: TestClient,
    project_id: int,
    labels: list[tuple[str, str]],
    source: str,
    annotator: str = "bench-gold",
) -> None:
    if not labels:
        return
    body = "\n".join(
        json.dumps({"client_id": cid, "label": gold, "source": source, "annotator": annotator})
        for cid, gold in labels
    )
    response = client.post(
        f"/v1/projects/{project_id}/labels", content=body, headers={"content-type": "application/x-ndjson"}
    )
    response.raise_for_status()


def _results(client: TestClient, job_id: int) -> list[dict[str, Any]]:
    text = client.get(f"/v1/jobs/{job_id}/results", params={"format": "ndjson"}).text
    return [json.loads(line) for line in text.splitlines()]


def _project_results(client: TestClient, project_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for job in client.get(f"/v1/projects/{project_id}/jobs").json():
        rows.extend(_results(client, job["id"]))
    return rows


def _answer_audits(engine: Engine, project: Project, labels: list[tuple[str, str]]) -> None:
    """Reviewers' answers to the audits, stored as the review flow stores them (source audit).
    In-process: the labels route takes gold and import labels only, and this simulation does
    not lease each item to a simulated reviewer."""
    if labels:
        body = "\n".join(
            json.dumps({"client_id": cid, "label": gold, "source": "audit", "annotator": "bench-reviewer"})
            for cid, gold in labels
        )
        audit = (LabelSource.AUDIT,)
        store.store_labels(engine, project, body.encode(), "application/x-ndjson", sources=audit)


def _with_gold(path: str) -> list[RecordedPair]:
    pairs = [p for p in load_recorded(path) if p.human_labels()]
    if not pairs:
        raise SystemExit(f"{path}: no pair carries a human label ('gold' or 'annotations')")
    return pairs


def human_gold(pairs: list[RecordedPair]) -> dict[str, str]:
    """The side humans chose per pair: its gold, or its annotators' majority (a split is a tie),
    the same aggregation the service applies to the labels it is sent."""
    votes = pd.DataFrame(
        [(p.id, annotator, label) for p in pairs for annotator, label in p.human_labels()],
        columns=["item", "annotator", "label"],
    )
    return majority_vote(votes, on_tie="label", tie_label="tie").labels.dropna().to_dict()


def post_human_labels(client: TestClient, project_id: int, pairs: list[RecordedPair], source: str) -> None:
    """Every human label of ``pairs``, one request per annotator (the service aggregates them)."""
    by_annotator: dict[str, list[tuple[str, str]]] = {}
    for p in pairs:
        for annotator, label in p.human_labels():
            by_annotator.setdefault(annotator, []).append((p.id, label))
    for annotator, labels in by_annotator.items():
        post_labels(client, project_id, labels, source, annotator)


def bench_replay(
    data: str,
    judges: list[str] | None = None,
    target_agreement: float = 0.9,
    delta: float = 0.1,
    calibration_fraction: float = 0.5,
    splits: int = 20,
    seed: int = 0,
    shift_to: str | None = None,
    audit_rate: float = 0.05,
    n_min: int = 100,
    order_sensitive_judges: list[str] | None = None,
    cascade: bool = False,
    baseline: str | None = None,
    population: str = "split",
) -> dict[str, Any]:
    if baseline is not None and baseline not in BASELINES:
        raise SystemExit(f"--baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if population not in POPULATIONS:
        raise SystemExit(f"--population must be one of {', '.join(POPULATIONS)}, got {population!r}")
    bootstrap = population == "bootstrap"
    if not 0 < calibration_fraction < 1:
        raise SystemExit("--calibration-fraction must be between 0 and 1")
    if splits < 1:
        raise SystemExit("--splits must be >= 1")
    data = str(Path(data).resolve())
    pairs = _with_gold(data)
    # Default panel: the judges recorded on every pair (a judge missing on a pair would be a
    # judging error there); a file where no judge covers every pair uses all of them.
    panel = _panel(pairs, judges, data)
    gold = human_gold(pairs)
    orders = judge_orders(pairs, panel)
    full_calls = panel_calls(JudgeSpec(model=f"replay/{j}", orders=orders[j]) for j in panel)
    routing: dict[str, Any] = {
        "target_agreement": target_agreement,
        "delta": delta,
        "n_min": n_min,
        "audit_rate": 0.0,
        # Gold arrives through the labels API here: no pair is held back as a calibration sample.
        "calibration_sample_rate": 0.0,
        "cascade": cascade,
    }
    if order_sensitive_judges is not None:
        routing["order_sensitive_judges"] = [f"replay/{j}" for j in order_sensitive_judges]
    rng = np.random.default_rng(seed)
    toe_table = _recorded_table(pairs, panel) if baseline else pd.DataFrame()
    toe_gold, toe_judges = pd.Series(gold, dtype=object), cheapest_first(pairs, panel) if baseline else []
    toe_splits: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, _service(tmp, data) as (client, engine, settings):
        per_split = []
        stages = None
        for split in range(splits):
            project_id = _project(client, f"split-{split}", data, panel, routing, orders)
            n_cal = int(round(calibration_fraction * len(pairs)))
            if bootstrap:
                drawn = rng.integers(0, len(pairs), size=n_cal)
                cal = bootstrap_pairs(pairs, drawn)
                test = list(pairs)  # the population: the whole file
                out_of_bag = {pairs[i].id for i in set(range(len(pairs))) - set(drawn.tolist())}
            else:
                order = rng.permutation(len(pairs))
                cal, test = [pairs[i] for i in order[:n_cal]], [pairs[i] for i in order[n_cal:]]
                out_of_bag = {p.id for p in test}
            if baseline:  # the same split, pure and in-process
                table, split_gold = toe_table, toe_gold
                if bootstrap:  # the drawn copies join the table under their own ids
                    table = pd.concat([toe_table, _recorded_table(cal, panel)], ignore_index=True)
                    split_gold = pd.concat([toe_gold, pd.Series({p.id: gold[_source_id(p.id)] for p in cal})])
                for variant in VARIANTS:
                    toe_splits[variant].append(
                        _toe_split(
                            table,
                            split_gold,
                            [p.id for p in cal],
                            [p.id for p in test],
                            variant,
                            toe_judges,
                            target_agreement,
                            delta,
                            out_of_bag if bootstrap else None,
                        )
                    )
            # The calibration part is judged (by the whole panel: the gate is closed) and
            # labelled first; the test part arrives afterwards, as new pairs do in
            # production, so the worker routes it under the fitted gate (and cascade).
            post_pairs(client, project_id, cal)
            _judge_all(engine, settings)
            post_human_labels(client, project_id, cal, "gold")
            version = client.post(f"/v1/projects/{project_id}/calibration/refit").json()
            job_id = post_pairs(client, project_id, test)
            _judge_all(engine, settings)
            rows = _results(client, job_id)
            accepted = [r for r in rows if r["route"] == "auto_accept"]
            population_agreement = _agreement(accepted, gold)
            if bootstrap:  # the split figures read the out-of-bag pairs (module docstring)
                rows = [r for r in rows if r["client_id"] in out_of_bag]
                accepted = [r for r in accepted if r["client_id"] in out_of_bag]
            agreement = _agreement(accepted, gold)
            # Judgments a test pair's decision read (cache hits included: each stands for
            # a call the pair would have made), so a cascade's savings show here.
            calls = sum(len(r["judgments"]) for r in rows) / max(1, len(rows))
            if cascade:
                state = client.get(f"/v1/projects/{project_id}/calibration").json()
                stages = state["gate"]["cascade"]["stages"]
            per_split.append(
                {
                    "split": split,
                    "gate": version["state"],
                    "reason": version["reason"],
                    "threshold": version["threshold"],
                    "guaranteed_agreement": version["guaranteed_agreement"],
                    "gold_labels_used": version["n_labels"],
                    "test_pairs": len(rows),
                    "auto_accepted": len(accepted),
                    "coverage": len(accepted) / len(rows) if rows else 0.0,
                    "agreement": agreement,
                    # An empty accept set cannot violate the guarantee.
                    "guarantee_held": agreement is None or agreement >= target_agreement,
                    "judge_calls_per_pair": calls,
                    "judge_calls_saved_per_pair": full_calls - calls,
                    **(
                        {
                            "population_agreement": population_agreement,
                            "population_guarantee_held": population_agreement is None
                            or population_agreement >= target_agreement,
                        }
                        if bootstrap
                        else {}
                    ),
                }
            )
        shift = None
        if shift_to:
            merged = _merged(tmp, data, shift_to)
            shift = _shift(
                client, engine, settings, merged, pairs, panel, routing, shift_to, audit_rate, orders
            )
    agreements = [s["agreement"] for s in per_split if s["agreement"] is not None]
    return {
        "data": data,
        "judges": panel,
        "target_agreement": target_agreement,
        "delta": delta,
        "order_sensitive_judges": order_sensitive_judges or "panel reversal only",
        "splits": splits,
        "calibration_fraction": calibration_fraction,
        "coverage_mean": float(np.mean([s["coverage"] for s in per_split])),
        "agreement_mean": float(np.mean(agreements)) if agreements else None,
        "guarantee_held_fraction": float(np.mean([s["guarantee_held"] for s in per_split])),
        "population": population,
        # Bootstrap only: the accepted region's agreement over the whole file (the population).
        "guarantee_held_population_fraction": (
            float(np.mean([s["population_guarantee_held"] for s in per_split])) if bootstrap else None
        ),
        "gate_open_fraction": float(np.mean([s["gate"] == "open" for s in per_split])),
        "gold_labels_used_mean": float(np.mean([s["gold_labels_used"] for s in per_split])),
        "judge_calls_per_pair_mean": float(np.mean([s["judge_calls_per_pair"] for s in per_split])),
        "full_panel_calls_per_pair": full_calls,
        "judge_orders": orders,
        "cascade_stages": [[j.removeprefix("replay/") for j in stage] for stage in stages]
        if stages
        else None,
        "shift": shift,
        "baseline": _baseline_summary(toe_splits, toe_judges) if baseline else None,
        "seconds": round(time.perf_counter() - started, 1),
        "per_split": per_split,
    }


def _panel(pairs: list[RecordedPair], judges: list[str] | None, data: str) -> list[str]:
    """The panel: ``judges``, else the judges recorded on every pair (a judge missing on a pair
    would be a judging error there); a file where no judge covers every pair uses all of them."""
    covering = [j for j in judges_in(pairs) if all(any(x.judge == j for x in p.judgments) for p in pairs)]
    panel = judges or covering or judges_in(pairs)
    unknown = sorted(set(panel) - set(judges_in(pairs)))
    if unknown:
        raise SystemExit(f"judges not in {data}: {', '.join(unknown)}")
    return panel


def _merged(tmp: str, data: str, shift_to: str) -> str:
    """The shift project's replay judges serve both files: one merged recorded file."""
    merged = Path(tmp) / "merged.jsonl"
    merged.write_text(
        Path(data).read_text(encoding="utf-8").rstrip("\n")
        + "\n"
        + Path(shift_to).read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    return str(merged)


def bench_shift(
    data: str,
    shift_to: str,
    judges: list[str] | None = None,
    target_agreement: float = 0.9,
    delta: float = 0.1,
    n_min: int = 100,
    audit_rate: float = 0.05,
    order_sensitive_judges: list[str] | None = None,
    shift_check: bool = True,
    shift_delta: float = 0.05,
    false_alarm_runs: int = 200,
) -> dict[str, Any]:
    """Only the shift phase of :func:`bench_replay`: calibrate on every gold label of ``data``,
    stream ``shift_to`` (see :func:`_shift`). ``shift_check=False`` leaves only the audits'
    kill-switch to notice."""
    data = str(Path(data).resolve())
    pairs = _with_gold(data)
    panel = _panel(pairs, judges, data)
    routing: dict[str, Any] = {
        "target_agreement": target_agreement,
        "delta": delta,
        "n_min": n_min,
        "calibration_sample_rate": 0.0,
        "shift_check": shift_check,
        "shift_delta": shift_delta,
    }
    if order_sensitive_judges is not None:
        routing["order_sensitive_judges"] = [f"replay/{j}" for j in order_sensitive_judges]
    with tempfile.TemporaryDirectory() as tmp, _service(tmp, data) as (client, engine, settings):
        result = _shift(
            client,
            engine,
            settings,
            _merged(tmp, data, shift_to),
            pairs,
            panel,
            routing,
            shift_to,
            audit_rate,
            judge_orders(pairs, panel),
            false_alarm_runs=false_alarm_runs,
        )
    return result


@contextmanager
def _service(tmp: str, data: str) -> Iterator[tuple[TestClient, Engine, Settings]]:
    """The real app on a fresh SQLite file in ``tmp``, its worker driven by the bench; its
    replay judges read ``data`` and files the bench writes in ``tmp``."""
    url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    settings = Settings(
        database_url=url,
        judge_retry_initial_s=0.01,
        judge_max_attempts=2,
        poll_interval_s=0.02,  # short: each judging round ends by finding the queue empty once
        admin_token=secrets.token_urlsafe(24),  # the bench acts as the admin of its own service
        replay_dirs=[tmp, str(Path(data).resolve().parent)],
    )
    settings.ingest_processes = 0  # one process: what is measured is the pipeline, not serving
    engine = make_engine(url)
    upgrade(engine)
    try:
        admin = {"authorization": f"Bearer {settings.admin_token}"}
        with TestClient(create_app(settings, engine, run_worker=False), headers=admin) as client:
            yield client, engine, settings
    finally:
        engine.dispose()


def _shift(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    replay_file: str,
    pairs: list[RecordedPair],
    panel: list[str],
    routing: dict[str, Any],
    shift_to: str,
    audit_rate: float,
    orders: dict[str, str],
    *,
    false_alarm_runs: int = 200,
) -> dict[str, Any]:
    """Calibrate one project on every gold label of ``pairs``, then stream ``shift_to`` in jobs
    of ``SHIFT_CHUNK`` pairs with audits on (the first pairs at the boosted rate). After each
    job the audits are answered with gold, and the drift kill-switch and the shift detector
    run, as a worker's maintenance pass would. Reports when the gate closed and what it
    accepted before; the shift detector's false-alarm rate is measured on the calibration
    sample itself (random halves as reference and stream, ``false_alarm_runs`` times; the gate
    was fitted on all of it, so both halves' scores are in-sample)."""
    shift_to = str(Path(shift_to).resolve())
    stream = _with_gold(shift_to)
    missing = sorted(set(panel) - set(judges_in(stream)))
    if missing:
        raise SystemExit(f"--shift-to file lacks judges of the panel: {', '.join(missing)}")
    project_id = _project(client, "shift", replay_file, panel, {**routing, "audit_rate": audit_rate}, orders)
    post_pairs(client, project_id, pairs)
    _judge_all(engine, settings)
    post_human_labels(client, project_id, pairs, "gold")
    opened = client.post(f"/v1/projects/{project_id}/calibration/refit").json()
    project = _db_project(engine, project_id)
    false_alarms = _false_alarms(engine, project, false_alarm_runs) if opened["state"] == "open" else None
    streamed = accepted = agreed = audits = 0
    closed: CalibrationVersion | None = None
    closed_after: int | None = None
    accepted_before = agreed_before = 0
    gold = human_gold(stream)
    for start in range(0, len(stream), SHIFT_CHUNK):
        chunk = stream[start : start + SHIFT_CHUNK]
        job_id = post_pairs(client, project_id, chunk)
        _judge_all(engine, settings)
        rows = _results(client, job_id)
        streamed += len(chunk)
        for row in rows:
            if row["route"] == "auto_accept":
                accepted += 1
                agreed += row["chosen"] == gold[row["client_id"]]
        audit_labels = [(r["client_id"], gold[r["client_id"]]) for r in rows if "audit" in r["reasons"]]
        audits += len(audit_labels)
        _answer_audits(engine, project, audit_labels)
        if closed is None:
            closed = check_drift(engine, project) or check_shift(engine, project)
            if closed is not None:
                closed_after, accepted_before, agreed_before = streamed, accepted, agreed
    shift = closed.report.get("shift") if closed is not None and closed.trigger == "shift" else None
    if shift is None:
        # Not fired: the open version's detector, where the stream left it.
        with Session(engine) as session:
            stored = session.exec(
                select(CalibrationVersion.shift)
                .where(CalibrationVersion.project_id == project_id)
                .order_by(col(CalibrationVersion.version))
            ).all()
        states = [state for state in stored if state and "detector" in state]
        shift = ShiftDetector.from_dict(states[-1]["detector"]).summary() if states else None
    if closed is None:
        accepted_before, agreed_before = accepted, agreed
    return {
        "data": shift_to,
        "items": streamed,
        "gate_opened": opened["state"] == "open",
        "auto_accepted": accepted,
        "auto_accepted_agreement": agreed / accepted if accepted else None,
        "audits": audits,
        "gate_closed_after_items": closed_after,
        "closed_by": closed.trigger if closed is not None else None,
        # The drift kill-switch's audited agreement and its upper bound, when it closed the gate.
        "drift": closed.report.get("drift") if closed is not None else None,
        "accepted_before_close": accepted_before,
        "accepted_before_close_agreement": agreed_before / accepted_before if accepted_before else None,
        # The detector's own count: the stream pair at which it fired (the gate closes at the
        # next check, here after the job it was in).
        "shift_alarm_at_item": shift["alarm_at"] + 1 if shift and shift["alarm_at"] is not None else None,
        "shift_statistic": shift["alarm_statistic"] if shift else None,
        "shift_evidence": shift["evidence"] if shift else None,
        "shift_threshold": shift["threshold"] if shift else None,
        "shift_false_alarm_rate": false_alarms,
    }


def _false_alarms(engine: Engine, project: Project, runs: int) -> dict[str, Any] | None:
    """The shift detector on random halves of the calibration sample (one half the reference,
    the other the stream): how often it fires on pairs that are exchangeable by construction."""
    if runs <= 0:
        return None
    routing = project.routing_settings()
    with Session(engine, expire_on_commit=False) as session:
        version = latest_version(session, project.id)
        gate = gate_model(version)
        assert version is not None and gate is not None
        stats = shift_statistics(session, project, gate, shift_reference(session, project.id, version))
    rate = false_alarm_rate(stats, delta=routing.shift_delta, runs=runs, seed=0)
    return {"rate": rate, "runs": runs, "pairs": len(stats), "delta": routing.shift_delta}


def _db_project(engine: Engine, project_id: int) -> Project:
    with Session(engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
        assert project is not None
        return project
