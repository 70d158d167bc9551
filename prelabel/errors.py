"""What the client raises: the API's refusals, and a job that stopped moving."""

from __future__ import annotations

from typing import Any


class PrelabelError(Exception):
    """The API refused a request (or could not be reached): ``status_code`` (None: no answer) and
    the API's own message (``detail``), plus its per-line ``errors`` where it sent them (a job or
    label import with bad lines: nothing was stored).

    >>> str(PrelabelError(404, "project 7 not found"))
    'HTTP 404: project 7 not found'
    """

    def __init__(self, status_code: int | None, message: str, errors: list[Any] | None = None) -> None:
        self.status_code = status_code
        self.message = message
        self.errors = errors or []
        super().__init__(f"HTTP {status_code}: {message}" if status_code is not None else message)

    @classmethod
    def from_body(cls, status_code: int, body: Any, text: str) -> PrelabelError:
        """The error the API's body says: ``{"detail": "..."}``, pydantic's list of problems, or
        (a proxy's page, say) the text itself."""
        if not isinstance(body, dict):
            return cls(status_code, text.strip()[:2000] or f"HTTP {status_code}")
        detail = body.get("detail")
        errors = body.get("errors")
        if isinstance(detail, list):  # request validation: [{loc, msg, type}, ...]
            errors = errors or detail
            detail = "; ".join(_problem(p) for p in detail)
        return cls(status_code, str(detail or text), errors if isinstance(errors, list) else None)


def _problem(problem: Any) -> str:
    if not isinstance(problem, dict):
        return str(problem)
    where = ".".join(str(p) for p in problem.get("loc", ()))
    return f"{where}: {problem.get('msg', '')}" if where else str(problem.get("msg", ""))


class JobStalled(PrelabelError):
    """``wait`` saw no progress for ``stall_s`` seconds (the job is neither done nor moving: no
    worker running, or every judge call failing slowly)."""

    def __init__(self, job_id: int, stall_s: float, done: int, pairs: int) -> None:
        super().__init__(
            None,
            f"job {job_id}: no progress for {stall_s:g} s ({done} of {pairs} pairs done); "
            "is a worker running?",
        )
        self.job_id = job_id
