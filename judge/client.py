"""Calling one judge on one pair in one order: the model call, retries, timeout, parse.

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
import functools
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from judge.parse import confidence_from_logprobs, parse_verdict
from judge.prompt import render_messages
from judge.providers import REPLAY_PROVIDER, ReplayError, approx_tokens, replay_answer
from judge.verdicts import to_original


@functools.cache
def load_litellm() -> ModuleType:
    """litellm, imported and set up on first use. Importing it takes seconds of CPU, and a
    process that only replays recorded judgments (benchmarks, the demo, tests) never needs it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    import litellm

    from judge.litellm_providers import register_providers

    litellm.suppress_debug_info = True
    # litellm logs every call at INFO; thousands of calls a minute would drown everything else.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.WARNING)
    litellm.drop_params = True  # a judge that does not take logprobs still gets called
    register_providers()
    return litellm


@functools.cache
def retryable_errors() -> tuple[type[BaseException], ...]:
    """What a later attempt can fix: rate limits, 5xx, timeouts, connection errors."""
    litellm = load_litellm()
    return (
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
    litellm = load_litellm()
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


@dataclass(frozen=True)
class _Reply:
    text: str
    logprobs: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float = 0.0


async def _complete(model: str, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> _Reply:
    """One attempt. Replay judges answer in-process (:func:`judge.providers.replay_answer`: the
    same answer as through litellm, minus litellm's per-call logging and pricing, which cost
    more than the answer itself); every other model goes through litellm."""
    if model.startswith(f"{REPLAY_PROVIDER}/"):
        judge = model.removeprefix(f"{REPLAY_PROVIDER}/")
        text = replay_answer(judge, messages, kwargs.get("api_base"))
        prompt_tokens = sum(approx_tokens(m["content"]) for m in messages)
        return _Reply(text, prompt_tokens=prompt_tokens, completion_tokens=approx_tokens(text))
    response = await load_litellm().acompletion(model=model, messages=messages, **kwargs)
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    return _Reply(
        text=choice.message.content or "",
        logprobs=getattr(choice, "logprobs", None),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        cost=_cost(response, model),
    )


def judge_key(
    model: str, *, api_base: str | None, logprobs: bool, rubric: str | None, prompt_version: str
) -> str:
    """A digest of everything but the pair and the display order that can change a judge's
    answer: model, endpoint (a replay judge's file), prompt template with its rubric, prompt
    version and call parameters. The judgment cache serves a verdict only under the same key."""
    params = completion_kwargs(0, api_base, logprobs)
    del params["timeout"]  # how long we wait does not change the answer
    described = {
        "model": model,
        "prompt_version": prompt_version,
        "messages": render_messages("", "", "", rubric),  # the template and rubric as sent
        "params": params,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode("utf-8")).hexdigest()


def _retrying(policy: RetryPolicy) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(retryable_errors()),
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
) -> _Reply | None:
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
                response = await _complete(model, messages, kwargs)
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
            response = await _complete(model, messages, kwargs)
    except Exception as exc:  # noqa: BLE001 - tenacity decides below, as it would have here
        failed = exc
    if isinstance(failed, ReplayError):  # nothing recorded answers: no attempt can change that
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.error = f"{type(failed).__name__}: {failed}"[:2000]
        return result
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
    assert response is not None  # tenacity re-raises when it gives up
    parsed = parse_verdict(response.text)
    result.raw = response.text
    result.verdict = to_original(parsed.verdict, order)
    result.both_bad = parsed.both_bad
    result.safety_flag = parsed.safety_flag
    from_logprobs = confidence_from_logprobs(response.logprobs, parsed.verdict)
    result.confidence = from_logprobs if from_logprobs is not None else parsed.confidence
    result.prompt_tokens, result.completion_tokens = response.prompt_tokens, response.completion_tokens
    result.cost = response.cost
    return result
