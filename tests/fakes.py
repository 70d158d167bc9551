"""A scripted litellm provider for tests: ``fake/<script>`` counts calls and misbehaves on cue.

Scripts (the part after ``fake/``):
  ok               always answers A>B (positional: the first shown wins)
  ratelimit-then-ok   the first call per content raises RateLimitError, later calls answer
  always-500       raises InternalServerError every time
  slow             sleeps 10 s (longer than the test timeout)
  garbage          answers text no parser can read
  both-bad         says both responses are bad
  flaky            fails (InternalServerError) on a prompt holding a marker of ``FAKE.broken``
                   mapped to "error", answers garbage on one mapped to "garbage", else as ok:
                   a test empties ``broken`` to mend the provider
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import litellm
from litellm import CustomLLM

from judge.content import content_hash
from judge.prompt import extract_shown


class FakeJudge(CustomLLM):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.broken: dict[str, str] = {}  # prompt marker -> "error" | "garbage" (script "flaky")

    async def acompletion(
        self, model: str, messages: list, api_base: str | None = None, *args: Any, **kwargs: Any
    ):  # type: ignore[override]
        prompt, first, second = extract_shown(messages)
        key = (model, content_hash(prompt, first, second))
        self.calls[key] += 1
        if model == "ratelimit-then-ok" and self.calls[key] == 1:
            raise litellm.RateLimitError(message="slow down", llm_provider="fake", model=model)
        fault = next((kind for marker, kind in self.broken.items() if marker in prompt), None)
        if model == "flaky" and fault == "error":
            raise litellm.InternalServerError(message="flaky upstream", llm_provider="fake", model=model)
        if model == "always-500":
            raise litellm.InternalServerError(message="upstream broke", llm_provider="fake", model=model)
        if model == "slow":
            await asyncio.sleep(10)
        if model == "garbage" or (model == "flaky" and fault == "garbage"):
            text = "I am not sure; both have merits and flaws."
        else:
            text = json.dumps(
                {"reasoning": "fake", "verdict": "A>B", "both_bad": model == "both-bad", "safety_flag": False}
            )
        return litellm.ModelResponse(
            choices=[{"message": {"role": "assistant", "content": text}}],
            model=model,
            usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        )

    def total(self) -> int:
        return sum(self.calls.values())


FAKE = FakeJudge()


def install() -> FakeJudge:
    registry = litellm.custom_provider_map
    if not any(entry.get("custom_handler") is FAKE for entry in registry):
        registry.append({"provider": "fake", "custom_handler": FAKE})
    FAKE.calls.clear()
    FAKE.broken.clear()
    return FAKE
