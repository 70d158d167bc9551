"""Redacted exports: rows with personal data and secrets replaced by typed tokens.

The same redactor reviewers read through (:mod:`api.review.redaction`), applied to the prompt,
both responses and every string in the pair's metadata, with tokens shared across them (the
prompt's ``<EMAIL_1>`` is the response's ``<EMAIL_1>``). The token -> original mapping is
not exported. Identifiers the dataset needs to join back (``pair_id``, ``client_id``) and the
reviewers' account names on human labels stay as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from api.export.rows import ExportRow
from api.review.redaction import redact_many


def redact_rows(rows: Iterable[ExportRow]) -> Iterator[ExportRow]:
    """Each row with its texts and metadata strings redacted."""
    for row in rows:
        metadata = row.metadata
        strings: list[str] = []
        _collect(metadata, strings)
        texts, _ = redact_many([row.prompt, row.response_a, row.response_b, *strings])
        it = iter(texts[3:])
        yield dataclasses.replace(
            row,
            prompt=texts[0],
            response_a=texts[1],
            response_b=texts[2],
            stored_metadata=_rebuild(metadata, it) if strings else row.stored_metadata,
        )


def _collect(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            _collect(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect(item, out)


def _rebuild(value: Any, texts: Iterator[str]) -> Any:
    """``value`` with its strings (keys too: a key can be an address) taken from ``texts`` in
    the order :func:`_collect` visited them."""
    if isinstance(value, str):
        return next(texts)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for _key, item in value.items():
            new_key = next(texts)
            out[new_key] = _rebuild(item, texts)
        return out
    if isinstance(value, list):
        return [_rebuild(item, texts) for item in value]
    return value
