"""`prelabel bench replay` through the CLI: the promised JSON, the cascade's savings, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.tools.bench_replay import bench_replay, human_gold, judge_orders
from api.tools.cli import main
from judge.recorded import load_recorded
from tests.waiting import run_process

SAMPLE = Path(__file__).resolve().parents[1] / "api" / "sample_data" / "llmbar_sample.jsonl"
KEYS = {
    "data", "target_agreement", "delta", "splits", "coverage_mean", "agreement_mean",
    "guarantee_held_fraction", "gold_labels_used_mean", "judge_calls_per_pair_mean", "shift", "per_split",
}  # fmt: skip


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    return run_process(
        [sys.executable, "-m", "api.tools.cli", "bench", "replay", *args],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_cascade_benchmark_prints_the_promised_json_and_saves_calls() -> None:
    # A real process: its exit status includes the interpreter's shutdown, not only the command's.
    out = bench("--data", str(SAMPLE), "--splits", "2", "--target-agreement", "0.8", "--n-min", "50",
                "--judges", "gpt-4/vanilla_norules,gpt-3.5-turbo/vanilla_norules", "--cascade",
                "--order-sensitive-judges", "gpt-4/vanilla_norules", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert KEYS <= set(result) and result["shift"] is None and len(result["per_split"]) == 2
    assert result["cascade_stages"] == [["gpt-3.5-turbo/vanilla_norules"], ["gpt-4/vanilla_norules"]]
    opened = [s for s in result["per_split"] if s["gate"] == "open"]
    assert opened, result["per_split"]
    for split in opened:  # the cheap judge settles some pairs alone
        assert split["judge_calls_per_pair"] < 4 and split["auto_accepted"] > 0
    assert result["judge_calls_per_pair_mean"] < result["full_panel_calls_per_pair"] == 4


def test_a_file_without_gold_is_refused_with_a_message(tmp_path: Path) -> None:
    row = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    row.pop("gold")
    path = tmp_path / "nogold.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    # In-process (a subprocess spends ~10 s of CPU importing the service to fail at once): the
    # command raises SystemExit with the message, which the interpreter prints to stderr before
    # exiting with status 1 -- the same refusal a shell sees.
    with pytest.raises(SystemExit) as exited:
        main(["bench", "replay", "--data", str(path), "--splits", "1", "--json"])
    assert exited.value.code not in (0, None) and "no pair carries a human label" in str(exited.value.code)


def test_a_single_order_file_with_annotators_replays_and_its_orders_are_inferred(tmp_path: Path) -> None:
    """One order per judge and several annotators instead of gold: the bench asks each judge in
    the order the file recorded (no call fails for want of the other) and aggregates the
    annotators as the service does (majority; a split is a tie)."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    names = ("ann1", "ann2", "ann3")
    for i, row in enumerate(rows):
        gold = row.pop("gold")
        other = "B" if gold == "A" else "A"
        # Every tenth pair a three-way split, a few 2-1 votes, the rest unanimous: annotators who
        # agree enough (Krippendorff's alpha about 0.72) for their batch to calibrate.
        labels = (gold, other, "tie") if i % 10 == 0 else (gold, gold, other) if i % 13 == 0 else (gold,) * 3
        row["annotations"] = [{"annotator": a, "label": lab} for a, lab in zip(names, labels, strict=True)]
        row["judgments"] = [j for j in row["judgments"] if j["order"] == "ab"]
    path = tmp_path / "single_order.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    pairs = load_recorded(path)
    judges = ["gpt-4/vanilla_norules", "gpt-3.5-turbo/vanilla_norules"]
    assert judge_orders(pairs, judges) == {j: "ab" for j in judges}
    gold = human_gold(pairs)
    assert sum(label == "tie" for label in gold.values()) == sum(1 for i in range(len(rows)) if i % 10 == 0)
    result = bench_replay(str(path), judges=judges, target_agreement=0.7, splits=1, n_min=30)
    assert result["judge_orders"] == {j: "ab" for j in judges}
    assert result["full_panel_calls_per_pair"] == 2 and result["judge_calls_per_pair_mean"] == 2
    (split,) = result["per_split"]
    assert split["gold_labels_used"] == len(rows) // 2  # every calibration pair, splits included


def test_bootstrap_population_draws_with_replacement_and_reads_the_whole_file(tmp_path: Path) -> None:
    """--population bootstrap: calibration labels drawn with replacement (a pair drawn twice is
    two labels), the whole file routed; the population figure sits beside the out-of-bag one,
    for the service and for the baseline."""
    from calibration.lab.judges import toe_shaped, write_jsonl

    path = write_jsonl(toe_shaped(1).draw(160, seed=1), tmp_path / "toe.jsonl")
    result = bench_replay(str(path), target_agreement=0.8, splits=2, seed=3, n_min=50, baseline="toe",
                          population="bootstrap")  # fmt: skip
    assert result["population"] == "bootstrap"
    assert result["guarantee_held_population_fraction"] in (0.0, 0.5, 1.0)
    assert result["baseline"]["guarantee_held_population_fraction"] in (0.0, 0.5, 1.0)
    for split in result["per_split"]:
        assert split["gold_labels_used"] == 80  # duplicates counted, none merged
        # About e^-1/2 of the file is out of bag; the rest was drawn.
        assert 0.3 * 160 < split["test_pairs"] < 0.8 * 160
        assert "population_agreement" in split and "population_guarantee_held" in split
    with pytest.raises(SystemExit, match="--population must be one of"):
        bench_replay(str(path), splits=1, population="jackknife")


def test_a_judge_recorded_in_a_random_order_per_pair_is_asked_the_order_it_has(tmp_path: Path) -> None:
    """A judge shown one order per pair, not always the same one (Trust-or-Escalate style files):
    the bench sets it to "recorded", every call finds its recording (none fails for want of the
    other order), and the gate can open. Asked in both orders, every pair had a failed call,
    a hard flag, and the gate never opened."""
    from calibration.lab.judges import toe_shaped, write_jsonl

    path = write_jsonl(toe_shaped(1).draw(240, seed=1), tmp_path / "toe_random.jsonl")
    pairs = load_recorded(path)
    orders = judge_orders(pairs, ["j1", "j2", "j3"])
    assert orders == {"j1": "ab", "j2": "ba", "j3": "recorded"}
    assert {j.order for p in pairs for j in p.judgments if j.judge == "j3"} == {"ab", "ba"}
    result = bench_replay(str(path), target_agreement=0.8, splits=1, seed=3, n_min=50)
    (split,) = result["per_split"]
    assert split["judge_calls_per_pair"] == 3.0  # one call per judge: the recorded order
    assert split["gate"] == "open" and split["coverage"] > 0.2, split["reason"]


def test_recorded_orders_are_for_replay_judges_only() -> None:
    from api.schemas import JudgeSpec
    from judge.verdicts import orders_to_ask

    assert orders_to_ask("recorded", "replay/x", "h", ("ba",)) == ("ba",)
    assert orders_to_ask("recorded", "replay/x", "h", ("ab", "ba")) == ("ab", "ba")
    assert orders_to_ask("recorded", "replay/x", "h", ()) == ("ab",)  # nothing recorded: fails as missing
    with pytest.raises(ValueError, match="recorded"):
        JudgeSpec(model="gpt-4o", orders="recorded")
