"""A judge's own call options: what a project can tune per judge, and how each reaches litellm.

:class:`CallOptions` holds the options that can change a judge's answer (``max_tokens``,
``temperature``, ``response_format``, ``extra_params``); ``judge.client.completion_kwargs``
adds them to the arguments of every call and ``judge.client.judge_key`` to the cache key. The
defaults add nothing, so a judge that sets none makes today's call under today's key. How long
to wait (timeout) and how many calls to keep open (concurrency) change no answer: the worker
applies them (api/judging/worker.py) and they stay out of the key.

``extra_params`` are provider parameters passed through as they are (``top_p``, ``seed``,
``stop``, ``reasoning_effort`` ...). Keys that prelabel sets itself, that decide where a call
goes or with which key, that change the answer's shape or that litellm reads as its own
switches are refused (:data:`RESERVED_PARAMS`, :func:`extra_params_problem`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from judge.parse import VERDICT_SCHEMA

__all__ = [
    "CallOptions",
    "ResponseFormat",
    "RESERVED_PARAMS",
    "MAX_TOKENS_CAP",
    "EXTRA_PARAMS_MAX_BYTES",
    "extra_params_problem",
    "response_format_param",
]

ResponseFormat = Literal["text", "json_object", "json_schema"]

# Far above any judge answer (a verdict and a short reasoning): a guard against typos, not a limit.
MAX_TOKENS_CAP = 131_072
EXTRA_PARAMS_MAX_BYTES = 4096
_MAX_DEPTH = 4

# What extra_params may not set: the call itself (model, messages), where it goes and with which
# key (judge.endpoints guards those), our own retry and timeout, one answer of plain text (no
# streams, several choices or tool calls: judge/parse.py reads one message), options that have
# their own field on a judge, and litellm's own switches (a mock_response would fake answers).
RESERVED_PARAMS = frozenset(
    {
        "model", "messages", "api_key", "api_base", "base_url", "api_version", "organization",
        "custom_llm_provider", "headers", "extra_headers", "timeout", "request_timeout",
        "max_retries", "num_retries", "stream", "stream_options", "n", "logprobs", "top_logprobs",
        "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls",
        "response_format", "max_tokens", "max_completion_tokens", "temperature",
        "mock_response", "fallbacks", "caching", "cache", "callbacks", "metadata", "user",
    }
)  # fmt: skip


def extra_params_problem(params: Mapping[str, Any]) -> str | None:
    """What is wrong with a judge's ``extra_params`` (one sentence naming the key), or None.

    >>> extra_params_problem({"top_p": 0.9, "stop": ["\\n\\n"]}) is None
    True
    >>> extra_params_problem({"api_base": "http://elsewhere"})
    "'api_base' is set by prelabel itself and cannot be overridden"
    """
    for key in params:
        if not isinstance(key, str) or not key.strip():
            return f"{key!r}: keys must be non-empty strings"
        if key.lower() in RESERVED_PARAMS or key.lower().startswith("litellm"):
            return f"{key!r} is set by prelabel itself and cannot be overridden"
    bad = _non_json(params, 0)
    if bad is not None:
        return bad
    size = len(json.dumps(params, sort_keys=True))
    if size > EXTRA_PARAMS_MAX_BYTES:
        return f"{size} bytes as JSON; at most {EXTRA_PARAMS_MAX_BYTES}"
    return None


def _non_json(value: object, depth: int) -> str | None:
    """The first value that is not plain JSON (str, finite number, bool, null, list, object)."""
    if depth > _MAX_DEPTH:
        return f"nested deeper than {_MAX_DEPTH} levels"
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else f"{value!r} is not a finite number"
    if isinstance(value, list | tuple):
        return next((p for v in value if (p := _non_json(v, depth + 1)) is not None), None)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{key!r}: keys must be strings"
            if (problem := _non_json(item, depth + 1)) is not None:
                return f"{key!r}: {problem}"
        return None
    return f"{type(value).__name__} is not a JSON value"


def response_format_param(kind: ResponseFormat, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """litellm's ``response_format`` for a judge's setting (None for "text": nothing sent).
    ``schema``: the JSON schema of the verdict object (judge.parse.VERDICT_SCHEMA)."""
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": dict(schema)}}
    return None


@dataclass(frozen=True)
class CallOptions:
    """A judge's answer-changing call options; the defaults send nothing beyond today's call."""

    max_tokens: int | None = None
    temperature: float = 0
    response_format: ResponseFormat = "text"
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    # The verdict object a "json_schema" judge must answer: VERDICT_SCHEMA unless the project
    # asks aspects (judge.aspects.verdict_schema).
    schema: Mapping[str, Any] | None = None
    # The litellm arguments these add, built once here: a judge call only merges them.
    params: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        params: dict[str, Any] = dict(self.extra_params)
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.temperature:  # 0 is already every call's temperature (and must keep today's key)
            params["temperature"] = float(self.temperature)
        format_param = response_format_param(self.response_format, self.schema or VERDICT_SCHEMA)
        if format_param is not None:
            params["response_format"] = format_param
        object.__setattr__(self, "params", params)
