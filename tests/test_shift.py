"""Shifts built from the shared data: calibrate on one part, stream another, see the gate close.

By source (LLMBar-Natural, then FairEval), by judge (gpt-4 replaced by a judge that always
picks the response shown first) and by injected bad judges (every verdict flipped, or every
judge saying "A"), against an unshifted stream of held-out pairs from the same file. Each
calibration is at target 0.8 on the four judges every pair has, as in issue 9.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.calibrate import refits
from api.main import create_app
from api.settings import Settings
from api.tools.bench_replay import bench_shift
from judge.recorded import load_recorded
from tests.helpers import ADMIN, LLMBAR, fast_settings, post_labels, post_recorded_pairs, run_worker

pytestmark = pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")
JUDGES = [
    "gpt-4/vanilla_norules",
    "gpt-3.5-turbo/vanilla_norules",
    "palm-2/vanilla_norules",
    "llama-2-70b-chat/vanilla_norules",
]
SETTINGS: dict[str, Any] = {
    "judges": JUDGES,
    "target_agreement": 0.8,
    "n_min": 50,
    "order_sensitive_judges": ["gpt-4/vanilla_norules"],
}
Row = dict[str, Any]


def rows(sources: set[str] | None = None) -> list[Row]:
    return [
        r
        for r in map(json.loads, LLMBAR.read_text(encoding="utf-8").splitlines())
        if sources is None or r["source"] in sources
    ]


def write(path: Path, items: list[Row]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return str(path)


def halves() -> tuple[list[Row], list[Row]]:
    """A random half of the file to calibrate on, the other half to stream (held out)."""
    items = rows()
    random.Random(0).shuffle(items)
    return items[: len(items) // 2], items[len(items) // 2 :]


def flip_all(r: Row) -> Row:
    """Every judge confidently wrong: each verdict names the other response."""
    other = {"A": "B", "B": "A"}
    return {
        **r,
        "judgments": [{**j, "verdict": other.get(j["verdict"], j["verdict"])} for j in r["judgments"]],
    }


def one_side(r: Row) -> Row:
    """Every judge unanimously says A, in both orders."""
    return {**r, "judgments": [{**j, "verdict": "A"} for j in r["judgments"]]}


def first_shown(r: Row) -> Row:
    """gpt-4 replaced by a weak judge that always picks the response shown first."""
    return {
        **r,
        "judgments": [
            {**j, "verdict": "A" if j["order"] == "ab" else "B"} if j["judge"] == JUDGES[0] else j
            for j in r["judgments"]
        ],
    }


def test_kill_switch_closes_the_gate_when_the_stream_gets_harder(tmp_path: Path) -> None:
    # The audits' kill-switch alone (shift detector off). LLMBar-Natural: the judges agree with
    # humans on ~93% of pairs; LLMEval2 and FairEval: ~77% and ~71% for gpt-4.
    easy = write(tmp_path / "natural.jsonl", rows({"LLMBar/Natural"}))
    hard = write(tmp_path / "harder.jsonl", rows({"LLMBar/LLMEval2", "LLMBar/FairEval"}))
    shift = bench_shift(
        easy,
        hard,
        judges=JUDGES,
        n_min=50,
        audit_rate=0.5,
        order_sensitive_judges=["gpt-4/vanilla_norules"],
        shift_check=False,
        false_alarm_runs=0,
    )
    assert shift["gate_opened"], shift
    assert shift["closed_by"] == "drift" and shift["gate_closed_after_items"] <= shift["items"], shift
    assert shift["drift"]["bound"] < 0.9  # the shift is real: audited agreement below target


def test_a_new_source_closes_the_gate_before_audits_could(tmp_path: Path) -> None:
    natural = write(tmp_path / "natural.jsonl", rows({"LLMBar/Natural"}))
    fair_eval = write(tmp_path / "faireval.jsonl", rows({"LLMBar/FairEval"}))
    shift = bench_shift(natural, fair_eval, **SETTINGS, false_alarm_runs=0)
    print("by source, Natural -> FairEval:", shift)
    assert shift["gate_opened"], shift
    assert shift["closed_by"] == "shift" and shift["gate_closed_after_items"] <= 50, shift


@pytest.mark.parametrize("inject", [one_side, first_shown], ids=["one-side", "first-shown-judge"])
def test_the_gate_closes_within_50_items_of_judges_turning_bad(
    tmp_path: Path, inject: Callable[[Row], Row]
) -> None:
    calibration, held_out = halves()
    shift = bench_shift(
        write(tmp_path / "calibration.jsonl", calibration),
        write(tmp_path / "stream.jsonl", [inject(r) for r in held_out[:80]]),
        **SETTINGS,
        false_alarm_runs=0,
    )
    print(f"{inject.__name__}:", shift)
    assert shift["gate_opened"], shift
    assert shift["closed_by"] == "shift", shift
    assert shift["shift_alarm_at_item"] <= 50 and shift["gate_closed_after_items"] <= 50, shift


def test_an_unshifted_stream_keeps_the_gate_open_with_denser_audits_first(tmp_path: Path) -> None:
    calibration, held_out = halves()
    shift = bench_shift(
        write(tmp_path / "calibration.jsonl", calibration),
        write(tmp_path / "stream.jsonl", held_out),
        **SETTINGS,
        false_alarm_runs=50,
    )
    print("unshifted held-out half:", shift)
    assert shift["gate_opened"] and shift["closed_by"] is None, shift
    assert shift["shift_evidence"] < shift["shift_threshold"]
    # Random halves of the calibration sample as reference and stream: rarely an alarm (delta 0.05).
    assert shift["shift_false_alarm_rate"]["rate"] <= 0.1, shift
    # The first 200 pairs are audited at 25% instead of 5%: about 5x the audits.
    assert shift["audits"] >= 20, shift


def test_flipped_judges_close_the_gate_and_the_report_shows_the_evidence(
    any_engine: Engine, tmp_path: Path
) -> None:
    """Through the worker and the maintenance pass, as in production (SQLite and PostgreSQL)."""
    settings = fast_settings(str(any_engine.url))
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        closed_after, state, html = _stream_flipped_verdicts(client, any_engine, settings, tmp_path)
    print("flip_all:", closed_after, state["gate"]["reason"])
    assert closed_after is not None and closed_after <= 50, state["gate"]
    assert state["gate"]["state"] == "closed" and state["versions"][-1]["trigger"] == "shift"
    assert "'position'" in state["gate"]["reason"]  # flipped verdicts reverse the judges' position bias
    shown = state["report"]["shift"]
    assert shown["alarm"] and shown["alarm_at"] < closed_after and len(shown["history"]) > 5
    at_alarm = [evidence for n, evidence, _ in shown["history"] if n == shown["alarm_at"] + 1]
    assert at_alarm and at_alarm[0] >= shown["threshold"]
    assert 'id="shift"' in html and "FIRED at pair" in html


def _stream_flipped_verdicts(
    client: TestClient, engine: Engine, settings: Settings, tmp_path: Path
) -> tuple[int | None, dict[str, Any], str]:
    """Calibrate on half the file, stream 80 held-out pairs with flipped verdicts in jobs of 10,
    a maintenance pass after each; (pairs streamed when the gate closed, state, report page)."""
    calibration, held_out = halves()
    stream = [flip_all(r) for r in held_out[:80]]
    recorded = write(tmp_path / "recorded.jsonl", calibration + stream)
    spec = [{"model": f"replay/{j}", "api_base": recorded} for j in JUDGES]
    routing = {
        "target_agreement": 0.8,
        "n_min": 50,
        "order_sensitive_judges": [f"replay/{JUDGES[0]}"],
        "calibration_sample_rate": 0.0,
    }
    body = {"name": "shift", "judges": spec, "allow_empty_responses": True, "routing": routing}
    project = client.post("/v1/projects", json=body).json()["id"]
    pairs = {p.id: p for p in load_recorded(recorded)}
    post_recorded_pairs(client, project, [pairs[r["id"]] for r in calibration])
    run_worker(engine, settings)
    post_labels(client, project, [(r["id"], r["gold"]) for r in calibration], "gold")
    assert client.post(f"/v1/projects/{project}/calibration/refit").json()["state"] == "open"
    closed_after = None
    for start in range(0, len(stream), 10):
        post_recorded_pairs(client, project, [pairs[r["id"]] for r in stream[start : start + 10]])
        run_worker(engine, settings)
        if any("shift detector closed the gate" in action for action in refits.maintain(engine)):
            closed_after = start + 10
            break
    state = client.get(f"/v1/projects/{project}/calibration").json()
    return closed_after, state, client.get(f"/v1/projects/{project}/calibration/report.html").text
