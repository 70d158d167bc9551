"""judge.client.call_judge: retry semantics, timeouts and result fields, against a scripted provider.

call_judge runs the first attempt without tenacity and builds the retry loop only after a failure;
these tests pin down that the retry behaviour is the one tenacity's policy defines: which errors are
retried, how many attempts, the backoff between them (at least a provider's Retry-After), that every
failure is recorded, and that a malformed answer is an invalid judgment, never a crash.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
from types import SimpleNamespace
from typing import Any

import httpx
import litellm
import pytest
from litellm import CustomLLM

from judge import client
from judge.client import RetryPolicy, call_judge, retry_after_s, retryable_errors
from judge.prompt import extract_shown

FAST = RetryPolicy(max_attempts=4, initial_s=0.001, max_s=0.002, timeout_s=5.0)


class ScriptedJudge(CustomLLM):
    """``clienttest/<name>``: fails with the queued errors (one per call), then answers "A>B"."""

    def __init__(self) -> None:
        super().__init__()
        # an error to raise, seconds to stall, or a response to answer with instead of "A>B"
        self.script: list[BaseException | float | litellm.ModelResponse] = []
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
            if isinstance(step, litellm.ModelResponse):
                return step
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


# Far below the scripted 10 s hang, and far above what a plain answer may take on a busy
# machine (at 0.05 s the answer after a timeout could time out too).
TIMEOUT_S = 1.0


def test_a_timeout_is_retried_then_recorded(judge: ScriptedJudge) -> None:
    judge.script = [10.0, 10.0, 10.0]
    result = _call(policy=RetryPolicy(max_attempts=2, initial_s=0.001, max_s=0.002, timeout_s=TIMEOUT_S))
    assert judge.calls == 2 and result.attempts == 2
    assert result.error is not None and "Timeout" in result.error


def test_a_timeout_then_success(judge: ScriptedJudge) -> None:
    judge.script = [10.0]
    result = _call(policy=RetryPolicy(max_attempts=2, initial_s=0.001, max_s=0.002, timeout_s=TIMEOUT_S))
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


# --- Retry-After -------------------------------------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits tenacity asks for between attempts, recorded instead of slept."""
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(client, "_sleep", fake_sleep)
    return waits


def _limited(headers: dict[str, str], error: type[Exception] = litellm.RateLimitError) -> Exception:
    """A provider's 429 (or 503) as litellm raises it: the provider's headers on ``response``."""
    status = 503 if error is litellm.ServiceUnavailableError else 429
    response = httpx.Response(
        status, headers=headers, request=httpx.Request("POST", "https://provider.test/v1")
    )
    return error(message="slow down", llm_provider="clienttest", model="j", response=response)


def _in(seconds: float) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return email.utils.format_datetime(when, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"Retry-After": "7"}, 7.0, 8.0),  # seconds, plus up to 1 s of jitter
        ({"retry-after": "2.5"}, 2.5, 3.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5, 2.5),  # the finer one wins
        ({"Retry-After": "<in 20 s>"}, 18.5, 21.0),  # an HTTP-date (whole seconds)
        ({"Retry-After": "3600"}, 60.0, 60.0),  # capped at retry_after_max_s
        ({"Retry-After": "soon"}, 0.0, 0.002),  # unreadable: the policy's own backoff
        ({}, 0.0, 0.002),
    ],
)
def test_retry_waits_at_least_the_providers_retry_after(
    judge: ScriptedJudge, sleeps: list[float], headers: dict[str, str], low: float, high: float
) -> None:
    headers = {k: _in(20) if v == "<in 20 s>" else v for k, v in headers.items()}
    judge.script = [_limited(headers)]
    result = _call()  # FAST: its own backoff is at most 0.002 s
    assert judge.calls == 2 and result.attempts == 2 and result.error is None
    assert len(sleeps) == 1 and low <= sleeps[0] <= high, sleeps


def test_retry_after_on_a_503_and_on_every_retry(judge: ScriptedJudge, sleeps: list[float]) -> None:
    judge.script = [
        _limited({"Retry-After": "3"}, litellm.ServiceUnavailableError),
        _limited({"Retry-After": "5"}),
    ]
    result = _call()
    assert result.attempts == 3 and result.error is None
    assert 3 <= sleeps[0] <= 4 and 5 <= sleeps[1] <= 6


def test_retry_after_cap_is_the_policys(judge: ScriptedJudge, sleeps: list[float]) -> None:
    judge.script = [_limited({"Retry-After": "30"})]
    _call(policy=RetryPolicy(max_attempts=2, initial_s=0.001, max_s=0.002, retry_after_max_s=10.0))
    assert sleeps == [10.0]


def test_retry_after_is_read_wherever_the_error_carries_headers() -> None:
    class Fake(Exception):
        pass

    on_response = Fake()
    on_response.response = SimpleNamespace(headers={"Retry-After": "4"})  # type: ignore[attr-defined]
    mapped = Fake()
    mapped.litellm_response_headers = httpx.Headers({"retry-after-ms": "250"})  # type: ignore[attr-defined]
    explicit = litellm.RateLimitError(message="m", llm_provider="p", model="j", headers={"retry-after": "6"})
    past = Fake()
    past.headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}  # type: ignore[attr-defined]
    assert retry_after_s(on_response) == 4.0
    assert retry_after_s(mapped) == 0.25
    assert retry_after_s(explicit) == 6.0
    assert retry_after_s(past) == 0.0  # a date gone by: retry now
    assert retry_after_s(Fake()) is None and retry_after_s(_rate_limit()) is None


# --- malformed answers -------------------------------------------------------------------------


def _response(**fields: Any) -> litellm.ModelResponse:
    usage = {"prompt_tokens": 11, "completion_tokens": 0, "total_tokens": 11}
    return litellm.ModelResponse(model="j", usage=usage, **fields)


def test_an_empty_choices_list_is_an_invalid_judgment(judge: ScriptedJudge) -> None:
    empty = _response()
    empty.choices = []
    judge.script = [empty]
    result = _call()
    assert judge.calls == 1 and result.attempts == 1  # not retried: an answer, not an outage
    assert result.verdict == "invalid" and result.raw is None
    assert result.error == "MalformedAnswer: response.choices is empty"
    assert result.prompt_tokens == 11  # billed all the same


def test_content_none_is_an_invalid_judgment(judge: ScriptedJudge) -> None:
    judge.script = [
        _response(
            choices=[{"message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}]
        )
    ]
    result = _call()
    assert result.verdict == "invalid" and result.error is not None
    assert (
        result.error == "MalformedAnswer: choices[0].message.content is None (finish_reason='content_filter')"
    )


class _FakeLitellm:
    """Stands in for litellm to hand call_judge answers litellm itself would not build."""

    model_cost: dict[str, Any] = {}

    def __init__(self, response: Any) -> None:
        self.response = response

    async def acompletion(self, **kwargs: Any) -> Any:
        return self.response


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (None, "response has no choices list (got NoneType)"),
        (SimpleNamespace(), "response has no choices list (got NoneType)"),
        (SimpleNamespace(choices="A>B"), "response has no choices list (got str)"),
        (SimpleNamespace(choices=[]), "response.choices is empty"),
        (SimpleNamespace(choices=[SimpleNamespace(message=None)]), "choices[0] has no message"),
        ({"choices": [{"finish_reason": "stop"}]}, "choices[0] has no message"),
        (
            {"choices": [{"message": {"role": "assistant"}}]},
            "choices[0].message.content is None (finish_reason=None)",
        ),
        (
            {"choices": [{"message": {"content": [{"type": "text", "text": "A>B"}]}}]},
            "content is list, not text",
        ),
        ({"choices": [{"message": {"content": 1}}]}, "choices[0].message.content is int, not text"),
        ({"choices": [{"message": {"content": b"A>B"}}]}, "choices[0].message.content is bytes, not text"),
    ],
    ids=[
        "none",
        "no-choices",
        "choices-not-a-list",
        "empty",
        "message-none",
        "no-message",
        "no-content",
        "content-list",
        "content-int",
        "content-bytes",
    ],
)
def test_every_malformed_shape_is_an_invalid_judgment(
    monkeypatch: pytest.MonkeyPatch, response: Any, problem: str
) -> None:
    monkeypatch.setattr(client, "load_litellm", lambda: _FakeLitellm(response))
    result = asyncio.run(call_judge("fake/j", "P", "a", "b", "ab", policy=FAST))
    assert result.verdict == "invalid" and result.raw is None and result.attempts == 1
    assert (
        result.error is not None and result.error.startswith("MalformedAnswer: ") and problem in result.error
    )


def test_a_dict_shaped_answer_still_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway's plain JSON (mappings, not litellm objects) is read like litellm's objects."""
    answer = {"choices": [{"message": {"content": '{"verdict": "A>B"}'}}], "usage": {"prompt_tokens": 3}}
    monkeypatch.setattr(client, "load_litellm", lambda: _FakeLitellm(answer))
    result = asyncio.run(call_judge("fake/j", "P", "a", "b", "ba", policy=FAST))
    assert result.error is None and result.verdict == "B>A" and result.prompt_tokens == 3
