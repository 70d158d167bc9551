"""The client's recovery calls against a live API: ``jobs.retry``, ``jobs.cancel`` and
``projects.update`` (``POST /v1/jobs/{id}/retry``, ``POST /v1/jobs/{id}/cancel``,
``PATCH /v1/projects/{id}``), and the CLI's ``job retry`` / ``job cancel``.

The server judges nothing by itself here: the tests run the worker when they want judging
(tests/helpers.run_worker), so what is pending when a job is cancelled is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.tools.cli import prelabel
from prelabel import Client
from tests.client_server import JUDGES, LiveApi, live_server
from tests.helpers import ADMIN_TOKEN, run_worker
from tests.waiting import HTTP_TIMEOUT_S


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[LiveApi]:
    with live_server(tmp_path_factory.mktemp("recovery"), migrated_sqlite, judging=False) as served:
        yield served


@pytest.fixture
def client(api: LiveApi) -> Iterator[Client]:
    with Client(api.url, ADMIN_TOKEN, timeout=HTTP_TIMEOUT_S) as c:
        yield c


def _pairs(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "client_id": f"{tag}-{i}",
            "prompt": f"{tag} question {i}?",
            "response_a": f"yes {i}",
            "response_b": f"no {i}",
        }
        for i in range(n)
    ]


def test_cancel_stops_pending_pairs_and_keeps_what_is_judged(client: Client, api: LiveApi) -> None:
    project = client.projects.create("rec-cancel", JUDGES)
    judged = client.jobs.post(project.id, _pairs(3, "judged"))
    run_worker(api.engine, api.settings)
    pending = client.jobs.post(project.id, _pairs(5, "pending"))

    cancelled = client.jobs.cancel(pending.job_id)
    assert cancelled.id == pending.job_id and cancelled.cancelled == 5
    assert cancelled.by_state.get("pending", 0) == 0
    run_worker(api.engine, api.settings)
    assert client.jobs.status(pending.job_id).judge_calls == 0  # nothing of it was judged after all
    kept = client.jobs.status(judged.job_id)
    assert kept.done == 3 and kept.judge_calls == 3 * len(JUDGES) * 2
    assert client.jobs.cancel(judged.job_id).cancelled == 0  # nothing left to stop


def test_retry_rejudges_failed_judgments_with_another_panel(client: Client, api: LiveApi) -> None:
    broken = {"model": "mock/broken", "api_base": "error_rate=1"}  # every call a 429 until attempts run out
    project = client.projects.create("rec-retry", [broken])
    job = client.jobs.post(project.id, _pairs(4, "retry"))
    run_worker(api.engine, api.settings)
    failed = client.jobs.status(job.job_id)
    assert failed.judge_errors > 0

    retried = client.jobs.retry(job.job_id, judges=["mock/a"])
    assert retried.id == job.job_id and retried.requeued == 4  # every pair: each had a failed call
    run_worker(api.engine, api.settings)
    for result in client.jobs.results(job.job_id):
        fresh = [j for j in result.judgments if j.judge == "mock/a"]
        assert len(fresh) == 2 and all(j.verdict not in (None, "invalid") and j.error is None for j in fresh)


def test_retry_includes_invalid_answers_only_when_asked(client: Client, api: LiveApi) -> None:
    unreadable = {"model": "mock/mumbles", "api_base": "invalid_rate=1"}
    project = client.projects.create("rec-invalid", [unreadable])
    job = client.jobs.post(project.id, _pairs(2, "invalid"))
    run_worker(api.engine, api.settings)
    assert client.jobs.retry(job.job_id, include_invalid=False).requeued == 0
    assert client.jobs.retry(job.job_id, include_invalid=True, judges=["mock/a"]).requeued == 2


def test_update_project_changes_judges_and_routing(client: Client) -> None:
    project = client.projects.create("rec-update", JUDGES, routing={"n_min": 20})
    updated = client.projects.update(project.id, routing={**project.routing.model_dump(), "n_min": 40})
    assert updated.routing.n_min == 40 and client.projects.get(project.id).routing.n_min == 40
    updated = client.projects.update("rec-update", judges=["mock/a"])
    assert [j.model for j in updated.judges] == ["mock/a"]
    with pytest.raises(ValueError, match="nothing to change"):
        client.projects.update(project.id)


def test_the_cli_retries_and_cancels(client: Client, api: LiveApi) -> None:
    runner = CliRunner(env={"PRELABEL_URL": api.url, "PRELABEL_TOKEN": ADMIN_TOKEN})
    project = client.projects.create("rec-cli", [{"model": "mock/broken", "api_base": "error_rate=1"}])
    failing = client.jobs.post(project.id, _pairs(2, "cli-failing"))
    run_worker(api.engine, api.settings)
    retried = runner.invoke(prelabel, ["job", "retry", str(failing.job_id), "--judge", "mock/a"])
    assert retried.exit_code == 0 and retried.output.startswith("2 pair(s) requeued"), retried.output
    waiting = client.jobs.post(project.id, _pairs(3, "cli-waiting"))
    cancelled = runner.invoke(prelabel, ["job", "cancel", str(waiting.job_id)])
    assert cancelled.exit_code == 0 and cancelled.output.startswith("3 pending pair(s) cancelled"), (
        cancelled.output
    )
