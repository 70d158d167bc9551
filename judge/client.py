"""Calling one judge on one pair in one order: litellm.acompletion, retries, timeout, parse.

Retries (tenacity) cover what a later attempt can fix: rate limits, 5xx, timeouts and
connection errors. Anything else (bad request, unknown model, a replay record that is not
there) fails at once. A call that still fails comes back as a JudgeCallResult with
``error`` set; the caller routes the pair to review, it never raises.

The first attempt runs without tenacity: building its retry loop for every call was most of a
judge call's own overhead (with the garbage collection its allocations cause; figures in the
README's measurements), and almost every call succeeds at once. Only a
failed first attempt builds the loop, which replays that failure as its attempt 1, so tenacity
itself decides whether to retry, how long to wait and when to stop, as if it had run from the start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import

import litellm  # noqa: E402
from tenacity import (  # noqa: E402
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from judge.parse import confidence_from_logprobs, parse_verdict  # noqa: E402
from judge.prompt import render_messages  # noqa: E402
from judge.providers import register_providers  # noqa: E402
from judge.verdicts import to_original  # noqa: E402

litellm.suppress_debug_info = True
# litellm logs every call at INFO; thousands of calls a minute would drown everything else.
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
    logging.getLogger(_name).setLevel(logging.WARNING)
litellm.drop_params = True  # a judge that does not take logprobs still gets called
register_providers()

RETRYABLE: tuple[type[BaseException], ...] = (
    litellm.RateLimitError,
    litellm.InternalServerError,
    litellm.ServiceUnavailableError,
    litellm.BadGatewayError,
    litellm.Timeout,
    litellm.APIConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_s: float = 1.0
    max_s: float = 30.0
    timeout_s: float = 60.0


@dataclass
class JudgeCallResult:
    judge: str
    order: str
    verdict: str | None  # five-point, ORIGINAL A/B terms, "invalid", or None when the call failed
    both_bad: bool = False
    safety_flag: bool = False
    confidence: float | None = None
    raw: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float = 0.0
    attempts: int = 0
    error: str | None = None


def _cost(response: Any, model: str) -> float:
    cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    if cost is not None:
        return float(cost)
    if model in litellm.model_cost:  # completion_cost raises (slowly) for unknown models
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - pricing is best effort, never fails a call
            return 0.0
    return 0.0


def completion_kwargs(
    timeout_s: float, api_base: str | None = None, logprobs: bool = False
) -> dict[str, Any]:
    """The litellm.acompletion arguments of every judge call, besides model and messages.

    litellm's own retries are off: tenacity retries here. The throughput benchmark makes its bare
    litellm baseline calls with these same arguments.
    """
    kwargs: dict[str, Any] = {"timeout": timeout_s, "max_retries": 0, "temperature": 0}
    if api_base:
        kwargs["api_base"] = api_base
    if logprobs:
        kwargs.update(logprobs=True, top_logprobs=5)
    return kwargs


def _retrying(policy: RetryPolicy) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(RETRYABLE),
        # multiplier= (tenacity >= 9.2) is the first wait, as initial= was; initial= now warns.
        wait=wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_s),
        stop=stop_after_attempt(policy.max_attempts),
        reraise=True,
    )


async def _retry_after(
    first_error: Exception,
    model: str,
    messages: list[dict[str, str]],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    result: JudgeCallResult,
) -> Any:
    """Attempts 2.. under tenacity. Attempt 1 already ran (and failed with ``first_error``):
    tenacity sees that failure as its own attempt 1, so it applies the one retry policy to it
    (retryable or not, backoff, attempts left) and re-raises the last error when it gives up."""
    response = None
    async for attempt in _retrying(policy):
        with attempt:
            result.attempts = attempt.retry_state.attempt_number
            if result.attempts == 1:
                raise first_error
            async with asyncio.timeout(policy.timeout_s):
                response = await litellm.acompletion(model=model, messages=messages, **kwargs)
    return response


async def call_judge(
    model: str,
    prompt: str,
    response_a: str,
    response_b: str,
    order: str,
    *,
    api_base: str | None = None,
    logprobs: bool = False,
    rubric: str | None = None,
    policy: RetryPolicy = RetryPolicy(),
) -> JudgeCallResult:
    """Show the pair in ``order`` ("ab" or "ba"), parse the answer, map it back to A/B."""
    first, second = (response_a, response_b) if order == "ab" else (response_b, response_a)
    messages = render_messages(prompt, first, second, rubric)
    kwargs = completion_kwargs(policy.timeout_s, api_base, logprobs)
    result = JudgeCallResult(judge=model, order=order, verdict=None, attempts=1)
    started = time.perf_counter()
    failed: Exception | None = None
    try:  # attempt 1, the one nearly every call needs: no retry machinery
        async with asyncio.timeout(policy.timeout_s):
            response = await litellm.acompletion(model=model, messages=messages, **kwargs)
    except Exception as exc:  # noqa: BLE001 - tenacity decides below, as it would have here
        failed = exc
    if failed is not None:
        try:
            response = await _retry_after(failed, model, messages, kwargs, policy, result)
        except (Exception, RetryError) as exc:  # noqa: BLE001 - every failure is recorded, none raised
            result.latency_ms = (time.perf_counter() - started) * 1000
            result.error = f"{type(exc).__name__}: {exc}"[:2000] or type(exc).__name__
            return result
        finally:
            del failed  # the exception's traceback holds this frame: break the cycle
    result.latency_ms = (time.perf_counter() - started) * 1000
    choice = response.choices[0]
    text = choice.message.content or ""
    parsed = parse_verdict(text)
    result.raw = text
    result.verdict = to_original(parsed.verdict, order)
    result.both_bad = parsed.both_bad
    result.safety_flag = parsed.safety_flag
    from_logprobs = confidence_from_logprobs(getattr(choice, "logprobs", None), parsed.verdict)
    result.confidence = from_logprobs if from_logprobs is not None else parsed.confidence
    usage = getattr(response, "usage", None)
    if usage is not None:
        result.prompt_tokens = getattr(usage, "prompt_tokens", None)
        result.completion_tokens = getattr(usage, "completion_tokens", None)
    result.cost = _cost(response, model)
    return result
