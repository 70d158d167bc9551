"""``prelabel bench live`` against a fake OpenAI-compatible endpoint with good, unreadable and
failing answers: the counts it prints are the ones the server served."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from api.tools.bench_live import failure_kind, judge_entry, read_pairs
from api.tools.cli import main
from judge.client import RetryPolicy, call_judge
from tests.fault_server import FaultServer
from tests.waiting import slowdown

MODEL = "openai/fault-judge"
# A pair whose prompt holds a marker gets that kind of answer on every call (both orders).
STICKY = {
    "zz-unreadable": "garbage_text",
    "zz-no-choices": "empty_choices",
    "zz-down": "server_error",
    "zz-hang": "hang",
}
PAIRS = {"valid": 3, "zz-unreadable": 2, "zz-no-choices": 1, "zz-down": 1, "zz-hang": 1}


def _write_pairs(path: Path) -> None:
    rows = []
    for marker, count in PAIRS.items():
        for i in range(count):
            # the longer response wins in both orders (tests.fault_server.longer_wins)
            rows.append(
                {
                    "prompt": f"Question {marker} {i}?",
                    "response_a": "Plants turn light into sugar. " * (i + 2),
                    "response_b": "Light.",
                }
            )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


def test_bench_live_counts_valid_invalid_and_failed_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "pairs.jsonl"
    _write_pairs(data)
    # Long enough for a valid answer on a busy machine; a hang lasts far longer (until shutdown).
    timeout_s = min(3.0 * slowdown(), 15.0)
    with FaultServer({"valid": 1.0}, sticky=STICKY, hang_s=120) as server:
        monkeypatch.setenv("PRELABEL_JUDGE_API_BASES", server.base_url)
        # litellm's first call sets up the provider (seconds): not a timeout to count.
        warm = call_judge(
            MODEL,
            "warm-up",
            "longer",
            "short",
            "ab",
            api_base=server.base_url,
            policy=RetryPolicy(max_attempts=1, timeout_s=60),
        )
        assert asyncio.run(warm).verdict == "A>B"
        server.reset()
        code = main(["bench", "live", "--model", MODEL, "--api-base", server.base_url, "--custom",
                     "--pairs", "100", "--data", str(data), "--timeout-s", f"{timeout_s:g}",
                     "--concurrency", "4", "--json"])  # fmt: skip
        served = dict(server.counts)
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["pairs"] == 8 and out["calls"] == 16  # both display orders
    assert served == {"valid": 6, "garbage_text": 4, "empty_choices": 2, "server_error": 2, "hang": 2}
    assert (out["valid"], out["invalid"], out["failed"]) == (6, 6, 4)
    assert out["failure_kinds"] == {"server_error": 2, "timeout": 2}
    assert "Timeout" in out["failure_examples"]["timeout"]
    assert out["latency_ms"]["n"] == 16 and out["latency_ms"]["p50"] <= out["latency_ms"]["max"]
    assert out["latency_ms"]["max"] >= timeout_s * 1000 * 0.9  # a hang waited out its timeout
    # Three samples of invalid answers: the unreadable text as the model wrote it, or what was
    # malformed about an answer that had none.
    assert len(out["invalid_samples"]) == 3
    assert all("I would rather not say." in s or "MalformedAnswer" in s for s in out["invalid_samples"])
    # The fault server answers with token logprobs when asked (bench live asks by default): every
    # valid verdict carries a confidence read from them.
    assert out["with_confidence"] == out["valid"] == 6
    # a pair with no readable verdict in either order is a human's
    assert sum(out["routes"].values()) == 8 and out["routes"].get("auto_accept", 0) <= 3


def test_bench_live_says_why_the_api_refused_the_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "pairs.jsonl"
    _write_pairs(data)
    # Not in litellm's price table and not marked --custom: refused at project creation.
    code = main(["bench", "live", "--model", "openai/no-such-model-xyz", "--api-base", "http://127.0.0.1:9/v1",
                 "--pairs", "2", "--data", str(data)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "refused the project (422)" in err and "custom" in err


def test_read_pairs_takes_the_first_n_and_names_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"prompt": "p", "response_a": "a", "response_b": "b"}\n\n{"prompt": "q"}\n', encoding="utf-8"
    )
    assert read_pairs(path, 1) == [
        {"client_id": "live-1", "prompt": "p", "response_a": "a", "response_b": "b"}
    ]
    with pytest.raises(ValueError, match=r"p.jsonl:3: not a pair"):
        read_pairs(path, 5)


def test_failure_kinds_and_per_judge_options() -> None:
    assert (
        failure_kind("ContextWindowExceededError: litellm.ContextWindowExceededError: too long")
        == "context_window"
    )
    assert failure_kind("TimeoutError: ") == "timeout"
    assert failure_kind("APIConnectionError: litellm.APIConnectionError: refused") == "connection"
    assert failure_kind("WeirdError: x") == "WeirdError"
    entry = judge_entry("openai/m", "http://h/v1", custom=True, logprobs=False,
                        options={"max_tokens": 64, "timeout_s": None, "max_concurrency": 1})  # fmt: skip
    assert entry["model"] == "openai/m" and entry["custom"] is True and "timeout_s" not in entry
    assert entry["max_tokens"] == 64 and entry["max_concurrency"] == 1
    with pytest.raises(ValueError, match="temperature"):
        judge_entry("openai/m", "http://h/v1", custom=True, logprobs=False, options={"temperature": 9})
