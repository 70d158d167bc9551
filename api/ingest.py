"""Reading a job request: JSON or NDJSON in, validated pairs or every error out.

Pure: no database. The route stores nothing unless every line here is valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from api.models import PairIn


@dataclass
class LineError:
    line: int  # 1-based line (NDJSON) or position in the "pairs" array (JSON)
    client_id: str | None
    errors: list[str]


@dataclass
class ParsedRequest:
    pairs: list[PairIn] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def _records_from_body(body: bytes, content_type: str) -> tuple[list[tuple[int, Any]], list[LineError]]:
    """Raw records with their line numbers; JSON syntax errors as LineErrors."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [LineError(0, None, [f"body is not UTF-8: {exc}"])]
    if "ndjson" in content_type or "jsonl" in content_type or "json-seq" in content_type:
        records: list[tuple[int, Any]] = []
        errors: list[LineError] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                errors.append(LineError(number, None, [f"invalid JSON: {exc.msg} at column {exc.colno}"]))
        return records, errors
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [LineError(exc.lineno, None, [f"invalid JSON: {exc.msg} at line {exc.lineno}"])]
    items = document.get("pairs") if isinstance(document, dict) else document
    if not isinstance(items, list):
        return [], [LineError(0, None, ['body must be a JSON array of pairs or {"pairs": [...]}'])]
    return list(enumerate(items, start=1)), []


def _describe(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "record"
        out.append(f"{where}: {err['msg']}")
    return out


def parse_job_request(
    body: bytes,
    content_type: str,
    *,
    max_field_chars: int,
    max_pairs: int,
    allow_empty_responses: bool = False,
) -> ParsedRequest:
    records, errors = _records_from_body(body, content_type)
    result = ParsedRequest(errors=errors)
    if not records and not errors:
        result.errors.append(LineError(0, None, ["request holds no pairs"]))
        return result
    if len(records) > max_pairs:
        result.errors.append(LineError(0, None, [f"{len(records)} pairs exceed the limit of {max_pairs}"]))
        return result
    first_line: dict[str, int] = {}
    for number, record in records:
        client_id = record.get("client_id") if isinstance(record, dict) else None
        client_id = client_id if isinstance(client_id, str) else None
        if not isinstance(record, dict):
            result.errors.append(LineError(number, None, ["each pair must be a JSON object"]))
            continue
        try:
            pair = PairIn.model_validate(record)
        except ValidationError as exc:
            result.errors.append(LineError(number, client_id, _describe(exc)))
            continue
        problems = []
        if not pair.client_id.strip():
            problems.append("client_id: must not be empty")
        elif len(pair.client_id) > 512:
            problems.append("client_id: longer than 512 characters")
        for name in ("prompt", "response_a", "response_b"):
            value: str = getattr(pair, name)
            if not value.strip() and not (allow_empty_responses and name != "prompt"):
                problems.append(f"{name}: must not be empty")
            elif len(value) > max_field_chars:
                problems.append(f"{name}: {len(value)} characters exceed the limit of {max_field_chars}")
        if len(json.dumps(pair.metadata)) > max_field_chars:
            problems.append(f"metadata: larger than {max_field_chars} characters as JSON")
        if pair.client_id in first_line:
            problems.append(f"client_id: duplicate of line {first_line[pair.client_id]} in this request")
        else:
            first_line[pair.client_id] = number
        if problems:
            result.errors.append(LineError(number, pair.client_id, problems))
        else:
            result.pairs.append(pair)
    return result
