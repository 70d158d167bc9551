"""The OpenAPI spec types every edge: each operation's success answer and each request body.

A route that answers hand-built JSON without a response model shows clients ``{}`` (anything);
a body the route parses itself shows ``pairs: array`` with no item. These tests fail on either.
Whether the answers really match their schemas is tests/test_schemathesis.py's job (it
validates every response body against the spec).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.schemas import JobStatus, ReviewerPublic


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op) for path, ops in spec["paths"].items() for method, op in ops.items()
    ]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    return _resolve(spec, spec["components"]["schemas"][name])


def _untyped_arrays(spec: dict[str, Any], schema: Any, where: str, seen: set[str]) -> list[str]:
    """Arrays without an item schema anywhere in ``schema`` (following references once each)."""
    if isinstance(schema, list):
        return [
            bad for i, item in enumerate(schema) for bad in _untyped_arrays(spec, item, f"{where}[{i}]", seen)
        ]
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return []
        seen.add(ref)
        return _untyped_arrays(spec, _resolve(spec, schema), ref, seen)
    found = [where] if schema.get("type") == "array" and not schema.get("items") else []
    for key, value in schema.items():
        found += _untyped_arrays(spec, value, f"{where}.{key}", seen)
    return found


def test_every_operation_documents_a_typed_success(spec: dict[str, Any]) -> None:
    untyped = []
    for name, op in _operations(spec):
        successes = {code: answer for code, answer in op["responses"].items() if code.startswith("2")}
        schemas = [
            media.get("schema")
            for answer in successes.values()
            for media in answer.get("content", {}).values()
        ]
        if not schemas or any(not schema or schema == {} for schema in schemas):
            untyped.append(f"{name}: {successes}")
            continue
        for schema in schemas:
            resolved = _resolve(spec, schema)
            # JSON answers name their fields (or their items'); streams and files say their type.
            if not (resolved.get("properties") or resolved.get("items") or resolved.get("type") == "string"):
                untyped.append(f"{name}: {resolved}")
    assert len(_operations(spec)) >= 44
    assert not untyped, "operations without a typed 2xx schema:\n" + "\n".join(untyped)


def test_json_answers_name_their_fields_down_to_every_array_item(spec: dict[str, Any]) -> None:
    bad = []
    for name, op in _operations(spec):
        for code, answer in op["responses"].items():
            if code.startswith("2") and "application/json" in answer.get("content", {}):
                bad += [
                    f"{name} {code}: {where}"
                    for where in _untyped_arrays(
                        spec, answer["content"]["application/json"]["schema"], "schema", set()
                    )
                ]
    assert not bad, "\n".join(bad)


def test_every_request_body_has_item_schemas(spec: dict[str, Any]) -> None:
    bodies = {name: op["requestBody"] for name, op in _operations(spec) if "requestBody" in op}
    assert (
        "POST /v1/projects/{project_id}/jobs" in bodies and "POST /v1/projects/{project_id}/labels" in bodies
    )
    bad = []
    for name, body in bodies.items():
        json_body = body["content"].get("application/json", {}).get("schema")
        if not json_body:
            bad.append(f"{name}: no JSON schema")
            continue
        bad += [f"{name}: {where}" for where in _untyped_arrays(spec, json_body, "schema", set())]
    assert not bad, "\n".join(bad)
    # The batches the routes parse themselves show their items' fields, JSON and NDJSON alike.
    for path, key, field in (("jobs", "pairs", "response_a"), ("labels", "labels", "label")):
        content = bodies[f"POST /v1/projects/{{project_id}}/{path}"]["content"]
        wrapped, bare = content["application/json"]["schema"]["anyOf"]
        assert field in wrapped["properties"][key]["items"]["properties"]
        assert bare["items"] == wrapped["properties"][key]["items"]
        assert "application/x-ndjson" in content


def test_a_key_the_model_does_not_declare_is_an_error_not_a_silent_drop() -> None:
    """Response models forbid undeclared keys: a field a view adds without its model fails the
    route tests (a 500 there) instead of vanishing from every response."""
    view = {"id": 1, "name": "r", "active": True, "senior": False, "created_at": "2026-01-01T00:00:00Z"}
    assert ReviewerPublic.model_validate({**view, "projects": [1]}).projects == [1]
    with pytest.raises(ValidationError, match="extra"):
        ReviewerPublic.model_validate({**view, "projects": [1], "token": "rvw_x"})
    assert JobStatus.model_json_schema()["additionalProperties"] is False
