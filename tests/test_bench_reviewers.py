"""`prelabel bench reviewers` on a slice of PandaLM: the promised keys, and a spammer paused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.tools.cli import prelabel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pandalm" / "testset_3annotators.jsonl"


@pytest.mark.skipif(not DATA.exists(), reason="needs the shared PandaLM file")
def test_bench_reviewers_reports_agreement_and_pauses_a_spammer() -> None:
    result = CliRunner().invoke(
        prelabel,
        [
            "bench",
            "reviewers",
            "--data",
            str(DATA),
            "--limit",
            "60",
            "--spammers",
            "1",
            "--lazy",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) >= {
        "cohen_kappa",
        "fleiss_kappa",
        "krippendorff_alpha_ordinal",
        "krippendorff_alpha_nominal",
        "ds_accuracy",
        "mv_accuracy",
        "simulated",
        "real_paused",
    }
    assert set(out["cohen_kappa"]) == {
        "annotator1|annotator2",
        "annotator1|annotator3",
        "annotator2|annotator3",
    }
    assert all(0.0 < k <= 1.0 for k in out["cohen_kappa"].values())
    assert 0.0 < out["krippendorff_alpha_nominal"] <= 1.0 and 0.0 < out["ds_accuracy"] <= 1.0
    spammer, lazy = out["simulated"]
    assert spammer["kind"] == "spammer" and lazy["kind"] == "lazy"
    assert spammer["labels_until_paused"] is not None and spammer["labels_until_paused"] <= 40
    assert out["real_paused"] == 0


@pytest.mark.skipif(not DATA.exists(), reason="needs the shared PandaLM file")
def test_bench_reviewers_refuses_more_reviewers_than_an_item_can_have() -> None:
    result = CliRunner().invoke(
        prelabel,
        ["bench", "reviewers", "--data", str(DATA), "--limit", "5", "--spammers", "7", "--lazy", "1"],
    )
    assert result.exit_code != 0 and "at most 10 reviewers" in result.output
