"""judge.client.call_judge: retry semantics, timeouts and result fields, against a scripted provider.

call_judge runs the first attempt without tenacity and builds the retry loop only after a failure;
these tests pin down that the retry behaviour is the one tenacity's policy defines: which errors are
retried, how many attempts, the backoff between them, and that every failure is recorded.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import litellm
import pytest
from litellm import CustomLLM

from judge.client import RetryPolicy, call_judge, retryable_errors
from judge.prompt import extract_shown

FAST = RetryPolicy(max_attempts=4, initial_s=0.001, max_s=0.002, timeout_s=5.0)


class ScriptedJudge(CustomLLM):
    """``clienttest/<name>``: fails with the queued errors (one per call), then answers "A>B"."""

    def __init__(self) -> None:
        super().__init__()
        self.script: list[BaseException | float] = []  # an error to raise, or seconds to stall
        self.calls = 0
        self.seen: list[tuple[str, str, str]] = []
        self.kwargs: list[dict[str, Any]] = []

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any):  # type: ignore[override]
        self.calls += 1
        self.seen.append(extract_shown(messages))
        self.kwargs.append(kwargs.get("optional_params") or {})
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
            await asyncio.sleep(step)
        text = json.dumps({"reasoning": "r", "verdict": "A>B", "both_bad": False, "safety_flag": True})
        return litellm.ModelResponse(
            choices=[{"message": {"role": "assistant", "content": text}}],
            model=model,
            usage={"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        )


@pytest.fixture
def judge() -> ScriptedJudge:
    handler = ScriptedJudge()
    registry = litellm.custom_provider_map
    registry[:] = [e for e in registry if e.get("provider") != "clienttest"]
    registry.append({"provider": "clienttest", "custom_handler": handler})
    yield handler
    registry[:] = [e for e in registry if e.get("custom_handler") is not handler]


def _rate_limit() -> Exception:
    return litellm.RateLimitError(message="slow down", llm_provider="clienttest", model="j")


def _bad_request() -> Exception:
    return litellm.BadRequestError(message="no such thing", llm_provider="clienttest", model="j")


def _call(order: str = "ab", policy: RetryPolicy = FAST, **kwargs: Any):  # type: ignore[no-untyped-def]
    return asyncio.run(call_judge("clienttest/j", "P", "first-a", "second-b", order, policy=policy, **kwargs))


def test_success_takes_one_attempt_and_fills_the_result(judge: ScriptedJudge) -> None:
    result = _call("ba")
    assert judge.calls == 1 and result.attempts == 1 and result.error is None
    assert judge.seen == [("P", "second-b", "first-a")]  # "ba" shows response B first
    assert result.verdict == "B>A"  # positional A>B about (B, A), mapped back to original terms
    assert result.safety_flag is True and result.both_bad is False
    assert (result.prompt_tokens, result.completion_tokens) == (11, 7)
    assert result.cost == 0.0 and result.latency_ms is not None and result.latency_ms >= 0
    assert judge.kwargs[0].get("temperature") == 0


def test_transient_error_then_success_takes_two_attempts(judge: ScriptedJudge) -> None:
    judge.script = [_rate_limit()]
    result = _call()
    assert judge.calls == 2 and result.attempts == 2
    assert result.error is None and result.verdict == "A>B"


@pytest.mark.parametrize("error", [litellm.InternalServerError, litellm.APIConnectionError])
def test_every_retryable_kind_is_retried(judge: ScriptedJudge, error: type[Exception]) -> None:
    assert issubclass(error, retryable_errors())
    judge.script = [error(message="flaky", llm_provider="clienttest", model="j"), _rate_limit()]
    result = _call()
    assert judge.calls == 3 and result.attempts == 3 and result.error is None


def test_non_retryable_error_fails_at_once_and_is_recorded(judge: ScriptedJudge) -> None:
    judge.script = [_bad_request()]
    result = _call()
    assert judge.calls == 1 and result.attempts == 1
    assert result.verdict is None and result.error is not None
    assert result.error.startswith("BadRequestError") and "no such thing" in result.error


def test_non_retryable_error_after_a_retry_stops_there(judge: ScriptedJudge) -> None:
    judge.script = [_rate_limit(), _bad_request()]
    result = _call()
    assert judge.calls == 2 and result.attempts == 2
    assert result.error is not None and result.error.startswith("BadRequestError")


def test_retries_stop_after_max_attempts_with_the_last_error(judge: ScriptedJudge) -> None:
    judge.script = [_rate_limit() for _ in range(10)]
    result = _call(policy=RetryPolicy(max_attempts=3, initial_s=0.001, max_s=0.002))
    assert judge.calls == 3 and result.attempts == 3
    assert result.verdict is None and result.error is not None and result.error.startswith("RateLimitError")


def test_a_single_attempt_policy_never_retries(judge: ScriptedJudge) -> None:
    judge.script = [_rate_limit()]
    result = _call(policy=RetryPolicy(max_attempts=1, initial_s=0.001, max_s=0.002))
    assert judge.calls == 1 and result.attempts == 1 and result.error.startswith("RateLimitError")  # type: ignore[union-attr]


def test_retries_back_off_between_attempts(judge: ScriptedJudge) -> None:
    judge.script = [_rate_limit(), _rate_limit()]
    result = _call(policy=RetryPolicy(max_attempts=3, initial_s=0.05, max_s=0.06))
    # Two waits of initial_s * 2**(n-1) + jitter, capped at max_s: at least 0.05 s each.
    assert result.attempts == 3 and result.error is None
    assert result.latency_ms is not None and result.latency_ms >= 100


def test_a_timeout_is_retried_then_recorded(judge: ScriptedJudge) -> None:
    judge.script = [10.0, 10.0, 10.0]
    result = _call(policy=RetryPolicy(max_attempts=2, initial_s=0.001, max_s=0.002, timeout_s=0.05))
    assert judge.calls == 2 and result.attempts == 2
    assert result.error is not None and "Timeout" in result.error


def test_a_timeout_then_success(judge: ScriptedJudge) -> None:
    judge.script = [10.0]
    result = _call(policy=RetryPolicy(max_attempts=2, initial_s=0.001, max_s=0.002, timeout_s=0.05))
    assert judge.calls == 2 and result.attempts == 2 and result.error is None and result.verdict == "A>B"


def test_cancellation_propagates(judge: ScriptedJudge) -> None:
    async def main() -> None:
        judge.script = [10.0]
        task = asyncio.create_task(call_judge("clienttest/j", "P", "a", "b", "ab", policy=FAST))
        while judge.calls == 0:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert judge.calls == 1
