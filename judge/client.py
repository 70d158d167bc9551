"""Calling one judge on one pair in one order: the model call, retries, timeout, parse.

Retries (tenacity) cover what a later attempt can fix: rate limits, 5xx, timeouts and
connection errors. Anything else (bad request, unknown model, a replay record that is not
there) fails at once. A call that still fails comes back as a JudgeCallResult with
``error`` set; the caller routes the pair to review, it never raises.

Waits between attempts double from ``initial_s`` with up to 1 s of jitter, capped at ``max_s``,
but are never shorter than the wait a provider asks for in its ``Retry-After`` (or
``retry-after-ms``) header, itself capped at ``retry_after_max_s``: retrying a 429 sooner only
earns another 429.

A provider answer without a readable message (no choices, no message, content None or not
text) is not an error to retry but an answer no parser can read: the judgment is ``invalid``,
as for unparseable text, with ``error`` saying what was malformed.

The first attempt runs without tenacity: building its retry loop for every call was most of a
judge call's own overhead (with the garbage collection its allocations cause; figures in the
README's measurements), and almost every call succeeds at once. Only a
failed first attempt builds the loop, which replays that failure as its attempt 1, so tenacity
itself decides whether to retry, how long to wait and when to stop, as if it had run from the start.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import functools
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from judge.aspects import AspectQuestion, combine_weighted, parse_aspects, to_original_aspects
from judge.endpoints import NO_KEY, EndpointRefused, check_api_base, parse_allowed
from judge.litellm_loader import load_litellm
from judge.options import CallOptions
from judge.parse import confidence_from_logprobs, parse_verdict
from judge.prompt import render_messages
from judge.providers import REPLAY_PROVIDER, ReplayError, approx_tokens, replay_answer
from judge.verdicts import INVALID, to_original


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
    # The longest a provider's Retry-After may make us wait. 60 s is what litellm's and the
    # OpenAI SDK's own retries honour; a provider asking for more (a quota window of hours) is
    # not worth holding a pair's lease for: the last attempt fails and the pair goes to review.
    retry_after_max_s: float = 60.0


@dataclass
class JudgeCallResult:
    judge: str
    order: str
    # five-point, ORIGINAL A/B terms; "invalid" for an answer no parser can read (also a malformed
    # one, with ``error`` set); None when the call failed
    verdict: str | None
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
    # Per-aspect five-point verdicts, ORIGINAL A/B terms, when the project asks aspects
    # (judge/aspects.py); None without aspects and for a failed call.
    aspects: dict[str, str] | None = None


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
    timeout_s: float, api_base: str | None = None, logprobs: bool = False, options: CallOptions | None = None
) -> dict[str, Any]:
    """The litellm.acompletion arguments of every judge call, besides model and messages.

    litellm's own retries are off: tenacity retries here. ``options``: the judge's own
    (judge.options; their parameters never replace the ones set here). The throughput
    benchmark makes its bare litellm baseline calls with these same arguments.
    """
    kwargs: dict[str, Any] = {"timeout": timeout_s, "max_retries": 0, "temperature": 0}
    if options is not None:
        kwargs.update(options.params)
    if api_base:
        kwargs["api_base"] = api_base
    if logprobs:
        kwargs.update(logprobs=True, top_logprobs=5)
    return kwargs


@dataclass(frozen=True)
class _Reply:
    text: str | None  # None when the answer is malformed
    logprobs: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float = 0.0
    malformed: str | None = None  # what is wrong with an answer that has no readable text


def _field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: litellm's objects are both, a proxy's JSON only the second."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _read_answer(response: Any) -> tuple[str | None, Any, str | None]:
    """(text, logprobs, problem) of the first choice. Providers and gateways do return 200s
    without an answer: no choices (content filters, some proxies), a choice without a message,
    content None (a refusal, or every token spent on reasoning) or content that is not text."""
    choices = _field(response, "choices")
    if not isinstance(choices, list | tuple):
        return None, None, f"response has no choices list (got {type(choices).__name__})"
    if not choices:
        return None, None, "response.choices is empty"
    choice = choices[0]
    message = _field(choice, "message")
    if message is None:
        return None, None, "choices[0] has no message"
    content = _field(message, "content")
    if content is None:
        finish = _field(choice, "finish_reason")
        return None, None, f"choices[0].message.content is None (finish_reason={finish!r})"
    if not isinstance(content, str):
        return None, None, f"choices[0].message.content is {type(content).__name__}, not text"
    return content, _field(choice, "logprobs"), None


async def _complete(model: str, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> _Reply:
    """One attempt. Replay judges answer in-process (:func:`judge.providers.replay_answer`: the
    same answer as through litellm, minus litellm's per-call logging and pricing, which cost
    more than the answer itself); every other model goes through litellm."""
    if model.startswith(f"{REPLAY_PROVIDER}/"):
        judge = model.removeprefix(f"{REPLAY_PROVIDER}/")
        answer = replay_answer(judge, messages, kwargs.get("api_base"))
        prompt_tokens = sum(approx_tokens(m["content"]) for m in messages)
        return _Reply(answer, prompt_tokens=prompt_tokens, completion_tokens=approx_tokens(answer))
    response = await load_litellm().acompletion(model=model, messages=messages, **kwargs)
    text, logprobs, malformed = _read_answer(response)
    usage = _field(response, "usage")
    prompt_tokens, completion_tokens = _field(usage, "prompt_tokens"), _field(usage, "completion_tokens")
    return _Reply(
        text=text,
        logprobs=logprobs,
        prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
        completion_tokens=completion_tokens if isinstance(completion_tokens, int) else None,
        cost=_cost(response, model),  # a malformed answer is billed all the same
        malformed=malformed,
    )


def judge_key(
    model: str,
    *,
    api_base: str | None,
    logprobs: bool,
    rubric: str | None,
    prompt_version: str,
    options: CallOptions | None = None,
    aspects: Sequence[AspectQuestion] = (),
    weights: Mapping[str, float] | None = None,
) -> str:
    """A digest of everything but the pair and the display order that can change a judge's
    answer: model, endpoint (a replay judge's file), prompt template with its rubric, prompt
    version and call parameters (with the judge's own options: a judge that sets none keeps
    the key it had before they existed). The judgment cache serves a verdict only under the
    same key."""
    params = completion_kwargs(0, api_base, logprobs, options)
    del params["timeout"]  # how long we wait does not change the answer
    described = {
        "model": model,
        "prompt_version": prompt_version,
        # the template, rubric and aspects as sent (no aspects: the messages of before)
        "messages": render_messages("", "", "", rubric, aspects, weights is None),
        "params": params,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode("utf-8")).hexdigest()


def _error_headers(exc: BaseException) -> list[Any]:
    """The response headers an error carries, most specific first. litellm keeps the provider's
    on ``response.headers`` (and, for some mapped errors, ``litellm_response_headers``);
    ``headers`` are ones attached explicitly (e.g. by a litellm proxy)."""
    found = []
    getters: tuple[Callable[[], object], ...] = (
        lambda: getattr(exc, "litellm_response_headers", None),
        lambda: getattr(exc, "headers", None),
        lambda: getattr(getattr(exc, "response", None), "headers", None),
    )
    for get in getters:
        try:  # openai's errors build some attributes lazily; a broken one is no header
            headers = get()
        except Exception:  # noqa: BLE001
            continue
        if headers:
            found.append(headers)
    return found


def _header(headers: Any, name: str) -> str | None:
    if not hasattr(headers, "items"):
        return None
    return next((str(v) for k, v in headers.items() if str(k).lower() == name), None)


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait before the next attempt, or None: ``retry-after-ms``
    (OpenAI, Azure), else ``retry-after`` as seconds or an HTTP-date (RFC 9110)."""
    for headers in _error_headers(exc):
        if (ms := _header(headers, "retry-after-ms")) is not None:
            try:
                seconds = float(ms) / 1000
            except ValueError:
                seconds = math.nan
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
        value = _header(headers, "retry-after")
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            if when.tzinfo is None:  # "-0000": UTC with no zone said, not local time
                when = when.replace(tzinfo=datetime.UTC)
            seconds = max(0.0, when.timestamp() - time.time())  # a date in the past: no wait
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


class _WaitRetryAfter(wait_base):
    """Exponential backoff with jitter, but at least the provider's Retry-After (plus up to
    1 s of jitter, so a panel's calls do not all return in the same instant), capped at
    ``policy.retry_after_max_s``."""

    def __init__(self, policy: RetryPolicy) -> None:
        # multiplier= (tenacity >= 9.2) is the first wait, as initial= was; initial= now warns.
        self.backoff = wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_s)
        self.cap = policy.retry_after_max_s

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self.backoff(retry_state)
        outcome = retry_state.outcome
        if outcome is not None and (error := outcome.exception()) is not None:
            asked = retry_after_s(error)
            if asked is not None:
                wait = max(wait, min(asked + random.uniform(0, 1), self.cap))
        return wait


async def _sleep(seconds: float) -> None:
    """tenacity's sleep between attempts; a module attribute so tests can replace it."""
    await asyncio.sleep(seconds)


def _retrying(policy: RetryPolicy) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(retryable_errors()),
        wait=_WaitRetryAfter(policy),
        stop=stop_after_attempt(policy.max_attempts),
        sleep=_sleep,
        reraise=True,
    )


async def _attempts_after_first(
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


def failure_text(exc: BaseException, attempts: int, policy: RetryPolicy, elapsed_s: float) -> str:
    """A failed call's ``error``: its kind, what happened, and how many attempts and seconds it
    took, e.g. ``Timeout: no answer within 60.0 s (attempt 4 of 4, 241.3 s in all)``.
    asyncio's and litellm's timeouts both read "Timeout" (asyncio's has no message at all)."""
    litellm = sys.modules.get("litellm")  # loaded by any call that could time out through it
    if isinstance(exc, TimeoutError) or (litellm is not None and isinstance(exc, litellm.Timeout)):
        what = f"Timeout: no answer within {policy.timeout_s:.1f} s"
    else:
        what = f"{type(exc).__name__}: {str(exc)[:1800]}".rstrip(": ")
    return f"{what} (attempt {attempts} of {policy.max_attempts}, {elapsed_s:.1f} s in all)"


def guard_endpoint(model: str, kwargs: dict[str, Any], allowed_api_bases: tuple[str, ...] | None) -> None:
    """Refuse a live judge's ``api_base`` that is neither its provider's host nor allow-listed
    (:mod:`judge.endpoints`), and keep the provider's key from an allow-listed endpoint that is
    not the provider's own. Replay and in-process providers (mock/, tests' fakes) have no
    network endpoint. Raises :class:`EndpointRefused` before anything is sent."""
    api_base = kwargs.get("api_base")
    if not api_base or model.startswith(f"{REPLAY_PROVIDER}/"):
        return
    in_process = {entry.get("provider") for entry in load_litellm().custom_provider_map}
    if "/" in model and model.split("/", 1)[0] in in_process:
        return
    allowed = parse_allowed(allowed_api_bases)
    if not check_api_base(model, api_base, allowed).send_key:
        kwargs["api_key"] = NO_KEY


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
    allowed_api_bases: tuple[str, ...] | None = None,
    options: CallOptions | None = None,
    aspects: Sequence[AspectQuestion] = (),
    weights: Mapping[str, float] | None = None,
) -> JudgeCallResult:
    """Show the pair in ``order`` ("ab" or "ba"), parse the answer, map it back to A/B.

    ``allowed_api_bases``: the admin's extra endpoints (:mod:`judge.endpoints`); None reads
    ``PRELABEL_JUDGE_API_BASES``. ``options``: the judge's own call options (judge.options).
    ``aspects``: asked in the same call, one verdict each; ``weights``: the overall verdict is
    their weighted combination (:func:`judge.aspects.combine_weighted`), not asked."""
    first, second = (response_a, response_b) if order == "ab" else (response_b, response_a)
    messages = render_messages(prompt, first, second, rubric, aspects, weights is None)
    kwargs = completion_kwargs(policy.timeout_s, api_base, logprobs, options)
    result = JudgeCallResult(judge=model, order=order, verdict=None, attempts=1)
    started = time.perf_counter()
    try:
        guard_endpoint(model, kwargs, allowed_api_bases)
    except EndpointRefused as exc:  # nothing was sent; no attempt can change that
        result.error = f"EndpointRefused: {exc}"[:2000]
        return result
    failed: Exception | None = None
    response: _Reply | None = None
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
            response = await _attempts_after_first(failed, model, messages, kwargs, policy, result)
        except (Exception, RetryError) as exc:  # noqa: BLE001 - every failure is recorded, none raised
            result.latency_ms = (time.perf_counter() - started) * 1000
            result.error = failure_text(exc, result.attempts, policy, result.latency_ms / 1000)
            return result
        finally:
            del failed  # the exception's traceback holds this frame: break the cycle
    result.latency_ms = (time.perf_counter() - started) * 1000
    assert response is not None  # tenacity re-raises when it gives up
    result.prompt_tokens, result.completion_tokens = response.prompt_tokens, response.completion_tokens
    result.cost = response.cost
    if response.text is None:  # a malformed answer: unreadable, like garbage text, and said why
        result.verdict = INVALID
        result.error = f"MalformedAnswer: {response.malformed}"[:2000]
        result.aspects = {q.name: INVALID for q in aspects} or None
        return result
    parsed = parse_verdict(response.text)
    result.raw = response.text
    if aspects:
        positional = parse_aspects(response.text, aspects)
        result.aspects = to_original_aspects(positional, order)
        if weights is not None:  # the overall is the combination; no verdict was asked
            parsed.verdict, parsed.confidence = combine_weighted(positional, weights), None
    result.verdict = to_original(parsed.verdict, order)
    result.both_bad = parsed.both_bad
    result.safety_flag = parsed.safety_flag
    asked = weights is None  # a combined overall was not answered: no token carries it
    from_logprobs = confidence_from_logprobs(response.logprobs, parsed.verdict) if asked else None
    result.confidence = from_logprobs if from_logprobs is not None else parsed.confidence
    return result
