"""The typed results the client returns: the API's own response models (``api.schemas``, pydantic
only: importing them loads no web framework, database or judge), plus the answers of the
recovery routes.

One definition per idea: a field the API adds to a response is a field of these results.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.calibration import CalibrationState, GateState
from api.schemas.exports import ExportPublic
from api.schemas.jobs import JobCreated, JobResultsPage, JobStatus, PairResult
from api.schemas.labels import LabelsStored, StoredLabel
from api.schemas.projects import ApiKeyCreated, JudgeSpec, ProjectPublic, RoutingSettings
from api.schemas.review import ReviewStats


class JobRetried(JobStatus):
    """``POST /v1/jobs/{id}/retry``: the job's status and how many judgments went back to judging."""

    model_config = ConfigDict(extra="ignore")  # the recovery routes may say more than this

    requeued: int = Field(description="failed/invalid judgments sent back to be judged again")


class JobCancelled(JobStatus):
    """``POST /v1/jobs/{id}/cancel``: the job's status and how many pending pairs were cancelled."""

    model_config = ConfigDict(extra="ignore")

    cancelled: int = Field(description="pairs that were still waiting and will not be judged")


__all__ = [
    "ApiKeyCreated",
    "CalibrationState",
    "ExportPublic",
    "GateState",
    "JobCancelled",
    "JobCreated",
    "JobResultsPage",
    "JobRetried",
    "JobStatus",
    "JudgeSpec",
    "LabelsStored",
    "PairResult",
    "ProjectPublic",
    "ReviewStats",
    "RoutingSettings",
    "StoredLabel",
]
