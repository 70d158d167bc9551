"""Field types for request bodies: what no column can hold is refused at the edge, naming the field.

Pydantic only (``api/schemas/`` builds its bodies from these). A request that fails here is
a 422 that names the field and stores nothing; without these checks the database refused the
same values half-way through a request, as a 500: PostgreSQL text cannot hold NUL, UTF-8
cannot encode a lone surrogate (JSON's ``"\\ud800"``), JSON has no NaN or infinity, and
SQLite's integers stop at 2^63.

>>> plain_text("fine")
'fine'
>>> plain_text("a\\x00b")
Traceback (most recent call last):
...
ValueError: must not contain a NUL character (\\u0000)
>>> check_metadata({"source": "x", "scores": [1, 2.5, None], "n": 10**30})
Traceback (most recent call last):
...
ValueError: metadata.n: integer out of range (JSON numbers here must be finite, integers within ±2^63)
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

__all__ = ["MAX_ID", "Text", "ModelName", "plain_text", "printable", "check_metadata"]

# Largest id a path or cursor may name: ids are PostgreSQL INTEGER columns.
MAX_ID = 2**31 - 1
# Metadata bounds: how deep, how many values, how long a key.
MAX_METADATA_DEPTH = 16
MAX_METADATA_VALUES = 10_000
MAX_METADATA_KEY = 200
_INT_LIMIT = 2**63


def plain_text(value: str) -> str:
    """``value`` unless it holds a NUL or a lone surrogate (ValueError saying which)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "must not contain a lone surrogate (an unpaired \\ud800-\\udfff escape): not valid Unicode"
            ) from None
    return value


def printable(value: str, limit: int = 200) -> str:
    """``value`` made safe to echo in an error: lone surrogates escaped, cut to ``limit``.

    >>> printable("x\\ud800y")
    'x\\\\ud800y'
    """
    value = value[:limit] + ("..." if len(value) > limit else "")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


Text = Annotated[str, AfterValidator(plain_text)]
# A litellm model string as a project names a judge: "gpt-4o", "replay/<judge>", "mock/<name>".
ModelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), AfterValidator(plain_text)
]


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """A pair's metadata, unless it holds what JSON columns and clients cannot: non-finite
    numbers (NaN, 1e400), integers beyond ±2^63, NUL or lone surrogates in keys or strings,
    nesting deeper than 16 or more than 10,000 values. The error names the path."""
    count = 0

    def walk(node: Any, where: str, depth: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_METADATA_VALUES:
            raise ValueError(f"metadata: more than {MAX_METADATA_VALUES} values")
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"{where}: nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(node, bool) or node is None:
            return
        if isinstance(node, int):
            if not -_INT_LIMIT < node < _INT_LIMIT:
                raise ValueError(f"{where}: integer out of range {_NUMBERS}")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError(f"{where}: {node!r} is not a finite number {_NUMBERS}")
        elif isinstance(node, str):
            _text_at(node, where)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]", depth + 1)
        elif isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"{where}: keys must be strings")
                _text_at(key, f"{where} key {key[:40]!r}")
                if len(key) > MAX_METADATA_KEY:
                    raise ValueError(f"{where}: key longer than {MAX_METADATA_KEY} characters")
                walk(item, f"{where}.{key[:40]}", depth + 1)
        else:
            raise ValueError(f"{where}: {type(node).__name__} is not a JSON value")

    walk(value, "metadata", 0)
    return value


_NUMBERS = "(JSON numbers here must be finite, integers within ±2^63)"


def _text_at(value: str, where: str) -> None:
    try:
        plain_text(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
