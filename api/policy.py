"""Who may call what: the access class of every route, in one table beside ``api/deps.py``.

Each route names its role by a dependency of ``api/deps.py`` (``AdminDep``, ``ClientProjectDep``
...); this module says which class each route belongs to and which dependencies enforce each
class. ``tests/test_authz.py`` walks the table both ways: every route of the OpenAPI spec has
an entry and uses the dependencies of its class, and every role gets what its class allows
(and nothing more) from the running API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.deps import (
    get_caller,
    job_for_client,
    project_for_client,
    project_for_member,
    project_for_reviewer,
    require_admin,
    require_lead,
    require_reader,
    require_reviewer,
    require_senior,
)


@dataclass(frozen=True)
class Access:
    """An access class: who it lets in, and the dependencies a route of the class must use."""

    who: str
    enforced_by: tuple[Callable[..., Any], ...] = ()


ACCESS: dict[str, Access] = {
    "public": Access("anyone, no token"),
    "admin": Access("the admin token", (require_admin,)),
    "any_token": Access("any valid token; the answer covers what that token may see", (get_caller,)),
    "client": Access("the project's API key, or the admin", (project_for_client,)),
    # A job id outside one's project is answered as if it did not exist (404, not 403).
    "client_job": Access("the API key of the job's project, or the admin", (job_for_client,)),
    "member": Access("the project's API key, its reviewers, or the admin", (project_for_member,)),
    "review_reader": Access(
        "reviewers assigned to the project, or the admin (dashboards)", (project_for_reviewer, require_reader)
    ),
    "review_worker": Access(
        "reviewers assigned to the project (the queue itself)", (project_for_reviewer, require_reviewer)
    ),
    "senior_worker": Access(
        "senior reviewers assigned to the project (adjudication)", (project_for_reviewer, require_senior)
    ),
    "review_lead": Access(
        "senior reviewers assigned to the project, or the admin (who steer the queue: assignments)",
        (project_for_reviewer, require_lead),
    ),
    # The lease's or label's owner is checked by the queue (api/review/submit.py).
    "any_reviewer": Access("any reviewer (their own account, leases and labels)", (require_reviewer,)),
}

POLICY: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public",
    ("GET", "/metrics"): "public",
    ("POST", "/v1/projects"): "admin",
    ("GET", "/v1/projects"): "any_token",
    ("GET", "/v1/projects/{project_id}"): "member",
    ("PATCH", "/v1/projects/{project_id}"): "admin",
    ("PUT", "/v1/projects/{project_id}/guidelines"): "admin",
    ("POST", "/v1/projects/{project_id}/keys"): "admin",
    ("GET", "/v1/projects/{project_id}/keys"): "admin",
    ("DELETE", "/v1/projects/{project_id}/keys/{key_id}"): "admin",
    ("POST", "/v1/projects/{project_id}/jobs"): "client",
    ("GET", "/v1/projects/{project_id}/jobs"): "member",
    ("GET", "/v1/jobs/{job_id}"): "client_job",
    ("GET", "/v1/jobs/{job_id}/results"): "client_job",
    # Recovery, like posting the job (a retry's new panel takes the admin: checked in the route).
    ("POST", "/v1/jobs/{job_id}/retry"): "client_job",
    ("POST", "/v1/jobs/{job_id}/cancel"): "client_job",
    ("POST", "/v1/projects/{project_id}/labels"): "client",
    ("GET", "/v1/projects/{project_id}/labels"): "client",
    ("POST", "/v1/projects/{project_id}/calibration/refit"): "client",
    ("GET", "/v1/projects/{project_id}/calibration"): "member",
    ("GET", "/v1/projects/{project_id}/calibration/report.html"): "member",
    ("POST", "/v1/reviewers"): "admin",
    ("GET", "/v1/reviewers"): "admin",
    ("POST", "/v1/reviewers/{reviewer_id}/token"): "admin",
    ("PUT", "/v1/reviewers/{reviewer_id}/projects"): "admin",
    ("GET", "/v1/review/me"): "any_reviewer",
    ("POST", "/v1/projects/{project_id}/review/next"): "review_worker",
    ("POST", "/v1/review/leases/{lease_id}/submit"): "any_reviewer",
    ("POST", "/v1/review/leases/{lease_id}/skip"): "any_reviewer",
    ("POST", "/v1/review/labels/{label_id}/revise"): "any_reviewer",
    ("GET", "/v1/projects/{project_id}/review/history"): "review_worker",
    ("GET", "/v1/projects/{project_id}/review/quality"): "review_reader",
    ("GET", "/v1/projects/{project_id}/review/control-charts"): "review_reader",
    ("POST", "/v1/reviewers/{reviewer_id}/resume"): "admin",
    ("GET", "/v1/projects/{project_id}/review/progress"): "review_worker",
    ("GET", "/v1/projects/{project_id}/review/stats"): "review_reader",
    ("GET", "/v1/projects/{project_id}/review/labels"): "review_reader",
    ("GET", "/v1/projects/{project_id}/agreement"): "review_reader",
    ("POST", "/v1/projects/{project_id}/adjudication/next"): "senior_worker",
    # The queue steered: reviewers list and search what waits; leads assign it.
    ("GET", "/v1/projects/{project_id}/review/queue"): "review_reader",
    ("GET", "/v1/projects/{project_id}/review/assignments"): "review_lead",
    ("POST", "/v1/projects/{project_id}/review/assignments"): "review_lead",
    ("POST", "/v1/projects/{project_id}/review/assignments/release"): "review_lead",
    ("GET", "/v1/admin/pairs/{pair_id}/redaction"): "admin",
    ("GET", "/v1/admin/pairs/{pair_id}/judgments"): "admin",
    ("POST", "/v1/admin/review/prepare"): "admin",
    ("GET", "/v1/audit/events"): "admin",
    ("GET", "/v1/audit/verify"): "admin",
    # The dataset out: final-label results and exports, like job results (the key or the admin).
    ("GET", "/v1/projects/{project_id}/results"): "client",
    ("POST", "/v1/projects/{project_id}/exports"): "client",
    ("GET", "/v1/projects/{project_id}/exports"): "client",
    ("GET", "/v1/projects/{project_id}/exports/{number}"): "client",
    ("GET", "/v1/projects/{project_id}/exports/{number}/download"): "client",
}
