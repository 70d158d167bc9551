"""Request bodies must say they are JSON: 415 for a body sent as text/plain, a form, or untyped.

The jobs and labels routes read their body themselves and took anything that was not NDJSON
for JSON; the others got pydantic's "Input should be a valid dictionary" for a JSON body sent
as ``text/plain``. One check here, before routing, gives every route the same answer and a
hint. JSON is ``application/json`` or ``application/*+json``; NDJSON (jobs and labels) is any
of the spellings ``api/ingest/store.py`` reads as one record per line.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

from pydantic import BaseModel
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
NDJSON = "application/x-ndjson"
JSON_SUBTYPES = frozenset(
    {"json", "x-ndjson", "ndjson", "jsonl", "x-jsonl", "jsonlines", "x-jsonlines", "json-seq"}
)


def is_json(content_type: str) -> bool:
    """JSON or NDJSON, whatever its parameters.

    >>> is_json("application/json; charset=utf-8"), is_json("application/x-ndjson")
    (True, True)
    >>> is_json("application/merge-patch+json"), is_json("text/plain"), is_json("")
    (True, False, False)
    """
    message = Message()
    message["content-type"] = content_type
    if not content_type or message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype in JSON_SUBTYPES or subtype.endswith("+json")


def batch_request_body(key: str, item: type[BaseModel], description: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads its batch itself (jobs, labels): JSON
    ``{key: [item, ...]}`` or a bare array, or NDJSON with one item per line. For the route's
    ``openapi_extra``: the route parses the bytes (api/ingest/store.py), so FastAPI never
    sees a body parameter to document."""
    schema = _inlined(item.model_json_schema())
    array = {"type": "array", "items": schema}
    batch = {"type": "object", "properties": {key: array}, "required": [key]}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": {"anyOf": [batch, array]}},
                NDJSON: {"schema": {"type": "string", "description": f"one {item.__name__} (JSON) per line"}},
            },
        }
    }


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``#/$defs/...`` references replaced by the definitions: inside an
    OpenAPI document they would resolve against the document, not the schema."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"0", b"")
    return b"transfer-encoding" in headers  # chunked: a body of unknown length


class JsonBodyMiddleware:
    """415 for a POST, PUT or PATCH under ``/v1/`` whose body is not typed as JSON or NDJSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in BODY_METHODS and scope["path"].startswith("/v1/"):
            headers = dict(scope.get("headers", ()))
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if _has_body(headers) and not is_json(content_type):
                sent = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
                response = JSONResponse(
                    {
                        "detail": f"the body was sent with {sent}: send it as JSON with "
                        "'Content-Type: application/json' (jobs and labels also take NDJSON, "
                        "'Content-Type: application/x-ndjson')"
                    },
                    status_code=415,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
