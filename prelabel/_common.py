"""What both clients share besides the requests: connection defaults, turning input into pairs,
chunking, and how ``wait`` decides a job stopped moving."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel import convert
from prelabel.errors import JobStalled
from prelabel.types import JobStatus

DEFAULT_URL = "http://127.0.0.1:8000"
CHUNK_SIZE = 10_000  # pairs per request in post_many: well under the API's 50,000 and 256 MiB


def base_url(url: str | None) -> str:
    """``url``, else ``PRELABEL_URL`` (or the review app's ``PRELABEL_API_URL``), else localhost."""
    return (
        url or os.environ.get("PRELABEL_URL") or os.environ.get("PRELABEL_API_URL") or DEFAULT_URL
    ).rstrip("/")


def headers(token: str | None) -> dict[str, str]:
    token = token if token is not None else os.environ.get("PRELABEL_TOKEN")
    return {"authorization": f"Bearer {token}"} if token else {}


def pairs_from(
    data: Any,
    columns: Mapping[str, str] | None,
    *,
    dpo: bool,
    seed: int,
    metadata_columns: Sequence[str],
    split: str | None,
) -> list[dict[str, Any]]:
    if dpo:
        return convert.dpo_to_pairs(data, columns, seed=seed)
    return convert.to_pairs(data, columns, metadata_columns=metadata_columns, split=split)


def chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    if size < 1:
        raise ValueError("chunk_size must be at least 1")
    if not items:  # one empty request: the API says what is wrong with it
        yield []
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Progress:
    """A job's progress as ``wait`` watches it: the deadline moves whenever the job moves, so a
    big job may take as long as it needs and a stuck one fails after ``stall_s`` of stillness."""

    job_id: int
    stall_s: float
    now: float
    seen: tuple[int, int, int] = (-1, -1, -1)
    deadline: float = 0.0

    def update(self, status: JobStatus, now: float) -> bool:
        """True when the job is judged; raises :class:`JobStalled` when it stopped moving."""
        if status.complete:
            return True
        moved = (status.done, status.judge_calls, status.judge_errors)
        if moved != self.seen:
            self.seen, self.deadline = moved, now + self.stall_s
        elif now >= self.deadline:
            raise JobStalled(self.job_id, self.stall_s, status.done, status.pairs)
        return False


def unzip(archive: Path, folder: Path) -> Path:
    """Extract ``archive`` into ``folder`` (created; zipfile drops absolute and ``..`` parts)."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(folder)
    return folder
