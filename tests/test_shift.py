"""A real shift from the shared data: calibrate where judges are good, stream where they are worse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.tools.bench_replay import bench_replay
from tests.helpers import LLMBAR

pytestmark = pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")
JUDGES = [
    "gpt-4/vanilla_norules",
    "gpt-3.5-turbo/vanilla_norules",
    "palm-2/vanilla_norules",
    "llama-2-70b-chat/vanilla_norules",
]


def subset(path: Path, sources: set[str]) -> str:
    rows = [
        line
        for line in LLMBAR.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["source"] in sources
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def test_kill_switch_closes_the_gate_when_the_stream_gets_harder(tmp_path: Path) -> None:
    # LLMBar-Natural: the judges agree with humans on ~93% of pairs. LLMEval2 and FairEval:
    # ~77% and ~71% for gpt-4. Audits of the shifted stream must trip the kill-switch.
    easy = subset(tmp_path / "natural.jsonl", {"LLMBar/Natural"})
    hard = subset(tmp_path / "harder.jsonl", {"LLMBar/LLMEval2", "LLMBar/FairEval"})
    result = bench_replay(
        easy,
        judges=JUDGES,
        splits=1,
        n_min=50,
        shift_to=hard,
        audit_rate=0.5,
        order_sensitive_judges=["gpt-4/vanilla_norules"],
    )
    shift = result["shift"]
    assert shift["gate_opened"], shift
    assert shift["auto_accepted_agreement"] < 0.9  # the shift is real: below target
    assert shift["gate_closed_after_items"] is not None, shift
    assert shift["gate_closed_after_items"] <= shift["items"]
