"""`prelabel bench export` runs end to end on a small project and reports what it promises."""

from __future__ import annotations

import json

import pytest

from api.tools.cli import main


def test_bench_export_reports_seconds_memory_and_rows_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "export", "--pairs", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["pairs"] == 500
    assert set(result["seconds_per_format"]) == {"dpo", "hf", "hf_reload", "label-studio", "argilla"}
    assert all(seconds > 0 for seconds in result["seconds_per_format"].values())
    assert result["peak_rss_mb"] > 0 and result["rows_per_s"] > 0
    rows = result["rows_per_format"]
    # Every pair but those held back as frozen-eval duplicates, in each full format; DPO: fewer.
    assert rows["hf"] == rows["label-studio"] == rows["argilla"] == 500 - result["held_back"]
    assert 0 < rows["dpo"] < rows["hf"]
