"""Service settings, read from the environment (prefix ``PRELABEL_``) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRELABEL_", extra="ignore")

    # SQLite file under the working directory by default; PostgreSQL for many workers.
    database_url: str = "sqlite:///./prelabel.db"
    # Default judge panel as litellm model strings (comma-separated in the environment).
    # Empty means: projects must name their own panel.
    judges: Annotated[list[str], NoDecode] = []
    # Where replay judges may read recorded-judgments files (comma-separated); empty means
    # ./data. The packaged demo sample is always allowed. Paths outside are refused (422).
    replay_dirs: Annotated[list[str], NoDecode] = []
    # Extra endpoints a live judge's api_base may name (comma-separated): "URL" (called
    # without any provider key) or "provider=URL" (that provider's key goes there, e.g. an
    # Azure resource). The providers' own HTTPS hosts are always allowed (judge/endpoints.py).
    judge_api_bases: Annotated[list[str], NoDecode] = []
    judge_timeout_s: float = 60.0
    judge_max_attempts: int = 4
    judge_retry_initial_s: float = 1.0
    judge_retry_max_s: float = 30.0
    judge_concurrency: int = 128
    # Pairs a worker holds at once; each pair is 2 x panel-size judge calls.
    worker_pairs_in_flight: int = 256
    # A claimed pair returns to the queue this long after its worker stops renewing the lease
    # (a live worker's heartbeat renews it every third of this).
    lease_seconds: float = 30.0
    poll_interval_s: float = 0.5
    # Ingest limits: a request over these is refused whole.
    max_field_chars: int = 200_000
    max_pairs_per_request: int = 50_000
    max_request_bytes: int = 256 * 1024 * 1024
    run_worker_in_api: bool = True
    # Processes that parse and store posted jobs beside the API process; 0: in the API
    # process's threads. Unset: 1 on SQLite, where a post's writes run inside the writing
    # process (in the API's they took the CPU its other requests needed), 0 on PostgreSQL,
    # where the database server does that work and concurrent posts store in parallel.
    ingest_processes: int | None = Field(default=None, ge=0, le=16)
    # Processes that run a worker's per-pair screens (safety, prompt injection, the re-judge
    # check: api/judging/screens.py) beside its judging process; 0: in its own threads. The
    # judging process is CPU-bound on one core (litellm's per-call work), and the screens
    # were about a third of its own CPU besides litellm's.
    screen_processes: int = Field(default=0, ge=0, le=8)
    # The admin's bearer token. No default: without one nothing can act as admin, and
    # `prelabel serve` refuses to start unless `--dev` (which makes up a token and prints it).
    admin_token: str | None = None
    # Review: how long a reviewer holds an item, and whether the API process runs the review
    # queue's background preparation (redaction, embeddings, priority): "auto" = where it
    # also judges (``prelabel serve``, the demo), or "1" / "0" to force it on or off.
    review_lease_seconds: float = 600.0
    review_prepare: Literal["auto", "1", "0"] = "auto"
    # Where dataset exports are written (POST /v1/projects/{id}/exports): one directory per
    # export under <export_dir>/project-<id>/. Relative paths are under the working directory.
    export_dir: str = "./exports"
    # Rate limits per caller (bearer token) and API process (api/ratelimit.py): a token bucket
    # of ``*_burst`` requests refilled at ``*_per_s``; 429 with Retry-After when empty, 0 turns
    # a limit off. Writes: every POST/PUT/PATCH/DELETE under /v1/; next: review/next and
    # adjudication/next. Far above what `prelabel bench load` and the test suite send.
    rate_limit_writes_per_s: float = Field(default=100.0, ge=0.0)
    rate_limit_writes_burst: int = Field(default=1000, ge=1)
    rate_limit_next_per_s: float = Field(default=50.0, ge=0.0)
    rate_limit_next_burst: int = Field(default=500, ge=1)

    @field_validator("judges", "replay_dirs", "judge_api_bases", mode="before")
    @classmethod
    def _split_judges(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres(cls, value: str) -> str:
        # Accept the libpq spelling; SQLAlchemy needs the driver named for psycopg 3.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
