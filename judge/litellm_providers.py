"""The replay and mock judges as litellm custom providers (``replay/<judge>``, ``mock/<name>``).

Their answers come from :mod:`judge.providers`; this module only speaks litellm's provider
interface, so importing it imports litellm. :func:`register_providers` makes them callable
through ``litellm.acompletion`` like any live model.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.types.utils import ModelResponse, Usage

from judge.prompt import asked_aspects, extract_shown
from judge.providers import (
    MOCK_PROVIDER,
    REPLAY_PROVIDER,
    MockOptions,
    ReplayError,
    approx_tokens,
    mock_answer,
    mock_options,
    replay_answer,
)


def _respond(
    model_response: ModelResponse, model: str, messages: list[dict[str, Any]], content: str
) -> ModelResponse:
    model_response.choices[0].message.content = content
    model_response.choices[0].finish_reason = "stop"
    model_response.model = model
    # Rough token counts (~4 characters a token) so usage accounting has something plausible.
    prompt_tokens = sum(approx_tokens(m["content"]) for m in messages if isinstance(m.get("content"), str))
    completion_tokens = approx_tokens(content)
    model_response.usage = Usage(  # type: ignore[attr-defined]  # litellm sets usage at run time
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    model_response._hidden_params["response_cost"] = 0.0  # nothing was spent
    return model_response


def _litellm_error(exc: ReplayError, model: str) -> Exception:
    cls = litellm.NotFoundError if exc.not_found else litellm.BadRequestError
    return cls(message=str(exc), model=model, llm_provider=REPLAY_PROVIDER)


class ReplayJudge(CustomLLM):
    """``replay/<judge>``: the recorded judgment for the shown texts, judge and display order."""

    # litellm passes every argument by keyword; only these matter here.
    def completion(  # type: ignore[override]  # CustomLLM's wider signature: litellm passes keywords
        self,
        model: str,
        messages: list[dict[str, Any]],
        api_base: str,
        model_response: ModelResponse,
        **kwargs: Any,
    ) -> ModelResponse:
        metadata = (kwargs.get("litellm_params") or {}).get("metadata")
        hints = metadata if isinstance(metadata, dict) else {}
        try:
            content = replay_answer(model, messages, api_base, hints)
        except ReplayError as exc:
            raise _litellm_error(exc, model) from exc
        return _respond(model_response, model, messages, content)

    async def acompletion(  # type: ignore[override]  # CustomLLM's wider signature: litellm passes keywords
        self,
        model: str,
        messages: list[dict[str, Any]],
        api_base: str,
        model_response: ModelResponse,
        **kwargs: Any,
    ) -> ModelResponse:
        return self.completion(model, messages, api_base, model_response, **kwargs)


class MockJudge(CustomLLM):
    """``mock/<name>``: deterministic synthetic verdicts after ``latency_ms``."""

    def _answer(
        self, model: str, messages: list[dict[str, Any]], api_base: str | None
    ) -> tuple[str, MockOptions]:
        try:
            options = mock_options(api_base)
        except ValueError as exc:
            message = f"mock/{model}: {exc}"
            raise litellm.BadRequestError(message=message, model=model, llm_provider=MOCK_PROVIDER) from exc
        if options.error_rate and random.random() < options.error_rate:
            raise litellm.RateLimitError(
                message=f"mock/{model}: simulated rate limit", model=model, llm_provider=MOCK_PROVIDER
            )
        try:
            shown = extract_shown(messages)
        except ValueError:
            # Benchmarks may send arbitrary messages: still answer, deterministically.
            shown = (json.dumps(messages, sort_keys=True, default=str), "", "")
        return mock_answer(model, *shown, options, asked_aspects(messages)), options

    def completion(  # type: ignore[override]  # CustomLLM's wider signature: litellm passes keywords
        self,
        model: str,
        messages: list[dict[str, Any]],
        api_base: str,
        model_response: ModelResponse,
        **kwargs: Any,
    ) -> ModelResponse:
        content, options = self._answer(model, messages, api_base)
        if options.latency_ms > 0:
            time.sleep(options.latency_ms / 1000)
        return _respond(model_response, model, messages, content)

    async def acompletion(  # type: ignore[override]  # CustomLLM's wider signature: litellm passes keywords
        self,
        model: str,
        messages: list[dict[str, Any]],
        api_base: str,
        model_response: ModelResponse,
        **kwargs: Any,
    ) -> ModelResponse:
        content, options = self._answer(model, messages, api_base)
        if options.latency_ms > 0:
            await asyncio.sleep(options.latency_ms / 1000)
        return _respond(model_response, model, messages, content)


# --- registration --------------------------------------------------------------------------------

_REPLAY_JUDGE = ReplayJudge()
_MOCK_JUDGE = MockJudge()
_REGISTER_LOCK = threading.Lock()


def register_providers() -> None:
    """Register ``replay`` and ``mock`` in ``litellm.custom_provider_map``; safe to call repeatedly."""
    ours = {REPLAY_PROVIDER: _REPLAY_JUDGE, MOCK_PROVIDER: _MOCK_JUDGE}
    with _REGISTER_LOCK:
        registry = litellm.custom_provider_map
        if all(any(e.get("custom_handler") is h for e in registry) for h in ours.values()):
            return
        # Edit in place (others may hold the list) and drop stale handlers under our provider names.
        registry[:] = [e for e in registry if e.get("provider") not in ours]
        registry.extend({"provider": name, "custom_handler": handler} for name, handler in ours.items())
