"""The typed results the client returns: the API's own response models (``api.schemas``, pydantic
only: importing them loads no web framework, database or judge).

One definition per idea: a field the API adds to a response is a field of these results.
"""

from __future__ import annotations

from api.schemas.calibration import CalibrationState, GateState
from api.schemas.exports import ExportPublic
from api.schemas.jobs import JobCancelled, JobCreated, JobResultsPage, JobRetried, JobStatus, PairResult
from api.schemas.labels import LabelsStored, StoredLabel
from api.schemas.projects import ApiKeyCreated, JudgeSpec, ProjectPublic, RoutingSettings
from api.schemas.queue import Assigned, Assignments, QueueFilter, QueuePage, Unassigned
from api.schemas.review import ControlCharts, ReviewStats

__all__ = [
    "ApiKeyCreated",
    "Assigned",
    "Assignments",
    "CalibrationState",
    "ControlCharts",
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
    "QueueFilter",
    "QueuePage",
    "ReviewStats",
    "RoutingSettings",
    "StoredLabel",
    "Unassigned",
]
