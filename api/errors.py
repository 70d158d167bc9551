"""Client errors over HTTP: one documented body for every 4xx, and the edge checks every router shares.

* :class:`ErrorBody` and :func:`errors` declare the 4xx answers a route gives in its OpenAPI
  responses (``responses=errors(404, 422)``), so the spec lists every status code the API
  returns (tests/test_schemathesis.py checks that it does).
* :func:`validation_error_handler` answers a request pydantic refused with 422 naming the
  field, without echoing the input back: FastAPI's default handler echoes it, and an input
  JSON cannot encode (NaN, a lone surrogate) turned a 422 into a 500.
* :func:`bounded_path_ids`, a router dependency: a path id beyond what an id column holds is a
  422 before any query (SQLite raised OverflowError: a 500), once the token is known (401 first).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import CallerDep
from api.fields import MAX_ID, printable
from api.media_types import BODY_METHODS
from api.ratelimit import WRITE_METHODS

__all__ = ["ErrorBody", "errors", "json_errors", "validation_error_handler", "bounded_path_ids"]


class ErrorBody(BaseModel):
    """A 4xx answer. ``detail`` says what was refused and names the field: a sentence, or
    pydantic's list of ``{loc, msg, type}``, or ``{code, message}`` (a paused reviewer's 423);
    batch bodies add per-line ``errors``."""

    detail: str | list[dict[str, Any]] | dict[str, str]
    errors: list[dict[str, Any]] | None = None


_WHY = {
    400: "The body is not readable JSON",
    401: "No bearer token, or an unknown one",
    403: "The token's role may not do this",
    404: "No such resource (or not one this token may see)",
    409: "Conflicts with what is stored; nothing was stored",
    413: "The request body is too large",
    415: "The body is not JSON (or NDJSON where the route takes it): Content-Type says what it is",
    422: "Invalid input, the field named; nothing was stored",
    423: "The reviewer is paused on this project (detail.code reviewer_paused); an admin resumes them",
    429: "Too many requests from this token: wait the Retry-After seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these 4xx codes, each with :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": _WHY[code]} for code in codes}


def json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """:func:`errors` for a route whose success is not JSON (an HTML page): FastAPI would
    document a ``model`` under the route's own media type, but errors are JSON."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}  # registered by every other route's errors()
    return {
        code: {"description": _WHY[code], "content": {"application/json": {"schema": ref}}} for code in codes
    }


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with pydantic's ``{loc, msg, type}`` per problem, minus the input it would echo."""
    detail = [
        {
            "loc": [printable(str(p)) if isinstance(p, str) else p for p in err.get("loc", ())],
            "msg": printable(str(err.get("msg", "")), 500),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    return JSONResponse(status_code=422, content=jsonable_encoder({"detail": detail}))


def bounded_path_ids(request: Request, _caller: CallerDep) -> None:
    """Refuse a path ``*_id`` that no row can have (beyond an id column's range) with 422.

    After the caller is known (``_caller``; FastAPI resolves it once per request, so the
    route's own role check reuses it): a request without a valid token gets 401, not a
    remark on its path."""
    for name, raw in request.path_params.items():
        if not name.endswith("_id"):
            continue
        digits = str(raw).strip().lstrip("+-")
        if digits.isascii() and digits.isdigit() and (len(digits) > 10 or not 1 <= int(raw) <= MAX_ID):
            raise HTTPException(422, f"{name}: must be an id from 1 to {MAX_ID}")


def document_edge_answers(app: FastAPI) -> None:
    """The 415 and 429 the middlewares answer (api/media_types.py, api/ratelimit.py), in the
    OpenAPI responses of every ``/v1/`` operation they apply to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for method, operation in operations.items():
                codes = [415] if method.upper() in BODY_METHODS else []
                codes += [429] if method.upper() in WRITE_METHODS else []
                for code, answer in json_errors(*codes).items():
                    operation["responses"].setdefault(str(code), answer)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
