"""The Python client (``prelabel.Client``, ``prelabel.AsyncClient``) against a live API.

One server per module (uvicorn on loopback, SQLite, mock judges, a worker judging beside it);
every resource the client wraps, sync and async, and the API's refusals as ``PrelabelError``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import pytest
from click.testing import CliRunner

from api.tools.cli import prelabel
from prelabel import AsyncClient, Client, JobStalled, PrelabelError, convert
from prelabel._common import Progress
from prelabel.types import JobStatus
from tests.client_server import JUDGES, LiveApi, live_server
from tests.helpers import ADMIN_TOKEN
from tests.waiting import HTTP_TIMEOUT_S, POLL_S, STALL_S

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[LiveApi]:
    with live_server(tmp_path_factory.mktemp("client"), migrated_sqlite, judging=True) as served:
        yield served


@pytest.fixture
def client(api: LiveApi) -> Iterator[Client]:
    with Client(api.url, ADMIN_TOKEN, timeout=HTTP_TIMEOUT_S) as c:
        yield c


def _qa(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "qid": f"{tag}-{i}",
            "question": f"{tag}: how do I reverse list number {i} in Python?",
            "answer_1": f"Use xs[::-1] ({i}).",
            "answer_2": f"Loop backwards by hand ({i}).",
        }
        for i in range(n)
    ]


QA_COLUMNS = {"client_id": "qid", "prompt": "question", "response_a": "answer_1", "response_b": "answer_2"}


def test_projects_create_list_get_and_refusals(client: Client, api: LiveApi) -> None:
    made = client.projects.create("client-projects", JUDGES, routing={"n_min": 30}, rubric="Prefer correct.")
    assert (made.name, [j.model for j in made.judges], made.routing.n_min) == ("client-projects", JUDGES, 30)
    assert made.id in [p.id for p in client.projects.list()]
    assert client.projects.get(made.id) == made == client.projects.get("client-projects")

    with pytest.raises(PrelabelError) as taken:
        client.projects.create("client-projects", JUDGES)
    assert taken.value.status_code == 409 and "client-projects" in taken.value.message
    with pytest.raises(PrelabelError) as bad:
        client.projects.create("client-typo", ["mock/"])  # a mock judge needs a name
    assert bad.value.status_code == 422 and "judges" in bad.value.message
    with pytest.raises(PrelabelError) as missing:
        client.projects.get(999_999)
    assert missing.value.status_code == 404
    with pytest.raises(PrelabelError) as unknown:
        client.projects.get("no-such-project")
    assert unknown.value.status_code == 404 and "no-such-project" in unknown.value.message
    with (
        Client(api.url, "not-a-token", timeout=HTTP_TIMEOUT_S) as stranger,
        pytest.raises(PrelabelError) as denied,
    ):
        stranger.projects.list()
    assert denied.value.status_code == 401


def test_a_project_key_sees_only_its_project(client: Client, api: LiveApi) -> None:
    mine = client.projects.create("client-keyed", JUDGES)
    client.projects.create("client-other", JUDGES)
    key = client.projects.create_key(mine.id, "batch").key
    with Client(api.url, key, timeout=HTTP_TIMEOUT_S) as keyed:
        assert [p.name for p in keyed.projects.list()] == ["client-keyed"]
        job = keyed.jobs.post("client-keyed", _qa(2, "keyed"), columns=QA_COLUMNS)
        assert job.project_id == mine.id and job.pairs_created == 2
        with pytest.raises(PrelabelError) as denied:
            keyed.projects.create("client-not-admin", JUDGES)
        assert denied.value.status_code == 403


def test_jobs_from_a_dataframe_wait_and_stream_results_page_by_page(client: Client) -> None:
    project = client.projects.create("client-jobs", JUDGES)
    frame = pd.DataFrame(_qa(7, "df"))
    job = client.jobs.post(project.id, frame, columns=QA_COLUMNS)
    assert (job.pairs_created, job.resubmitted) == (7, False)

    status = client.jobs.wait(job.job_id, poll_s=POLL_S, stall_s=STALL_S)
    assert status.complete and status.done == status.pairs == 7
    assert status.judge_calls == 7 * len(JUDGES) * 2  # both orders
    results = list(client.jobs.results(job.job_id, page_size=3))  # three pages: 3 + 3 + 1
    assert sorted(r.client_id for r in results) == sorted(f"df-{i}" for i in range(7))
    assert all(r.state == "done" and r.route and len(r.judgments) == 4 for r in results)
    assert [j.id for j in client.jobs.list(project.id)] == [job.job_id]
    assert client.jobs.status(job.job_id) == status

    again = client.jobs.post("client-jobs", frame, columns=QA_COLUMNS)  # by name; the same pairs
    assert (again.job_id, again.resubmitted, again.pairs_created) == (job.job_id, True, 0)


def test_jobs_from_a_hugging_face_dataset_in_chunks(client: Client) -> None:
    project = client.projects.create("client-chunks", JUDGES)
    rows = _qa(5, "hf")
    dataset = datasets.Dataset.from_list(rows)
    jobs = client.jobs.post_many(project.id, dataset, columns=QA_COLUMNS, chunk_size=2, split="frozen_eval")
    assert [j.pairs_created for j in jobs] == [2, 2, 1] and len({j.job_id for j in jobs}) == 3
    for job in jobs:
        client.jobs.wait(job.job_id, poll_s=POLL_S, stall_s=STALL_S)
    results = [r for job in jobs for r in client.jobs.results(job.job_id)]
    assert sorted(r.client_id for r in results) == sorted(r["qid"] for r in rows)
    assert {r.split for r in results} == {"frozen_eval"}


def test_a_bad_line_refuses_the_job_with_the_api_s_per_line_errors(client: Client) -> None:
    project = client.projects.create("client-bad-lines", JUDGES)
    rows = _qa(3, "bad")
    rows[1]["answer_2"] = ""  # empty responses are refused by default
    with pytest.raises(PrelabelError) as refused:
        client.jobs.post(project.id, rows, columns=QA_COLUMNS)
    assert refused.value.status_code == 422 and "nothing was stored" in refused.value.message
    assert len(refused.value.errors) == 1 and refused.value.errors[0]["line"] == 2
    assert client.jobs.list(project.id) == []
    with pytest.raises(ValueError, match="no column 'question'"):
        client.jobs.post(project.id, [{"qid": "x"}], columns=QA_COLUMNS)


def test_dpo_rows_post_randomised_pairs_and_their_gold_labels(client: Client) -> None:
    project = client.projects.create("client-dpo", JUDGES)
    rows = [
        {"id": f"d{i}", "prompt": f"Say hi ({i})", "chosen": f"Hi! ({i})", "rejected": f"No. ({i})"}
        for i in range(8)
    ]
    job = client.jobs.post(project.id, rows, dpo=True, labels=True)
    client.jobs.wait(job.job_id, poll_s=POLL_S, stall_s=STALL_S)
    sides = {p["client_id"]: p["metadata"]["dpo_chosen"] for p in convert.dpo_to_pairs(rows)}
    assert set(sides.values()) == {"A", "B"}  # randomised: both sides occur over 8 pairs (seeded: always)
    labels = {label.client_id: label for label in client.labels.list(project.id)}
    assert set(labels) == set(sides) and {label.source for label in labels.values()} == {"gold"}
    results = {r.client_id: r for r in client.jobs.results(job.job_id)}
    for cid, side in sides.items():  # the dataset's side is the stored label and the pair's final label
        expected = {"A": "A>B", "B": "B>A"}[side]
        assert (labels[cid].label, results[cid].final.source, results[cid].label) == (
            expected,
            "human",
            expected,
        )


def test_labels_calibration_review_and_exports(client: Client, tmp_path: Path) -> None:
    project = client.projects.create("client-walk", JUDGES, routing={"n_min": 5})
    job = client.jobs.post(project.id, _qa(6, "walk"), columns=QA_COLUMNS)
    client.jobs.wait(job.job_id, poll_s=POLL_S, stall_s=STALL_S)
    gold = [{"qid": f"walk-{i}", "gold": "A" if i % 3 else "B"} for i in range(6)]
    stored = client.labels.post(project.id, gold, columns={"client_id": "qid"})
    assert (stored.labels_created, stored.labels_existing) == (6, 0)
    assert client.labels.post(project.id, gold, columns={"client_id": "qid"}).labels_existing == 6
    listed = [label.label for label in client.labels.list(project.id, source="gold", page_size=4)]
    assert listed == [{"A": "A>B", "B": "B>A"}[g["gold"]] for g in gold]  # two pages of 4 and 2

    state = client.calibration.state(project.id)
    assert state.project_id == project.id and state.gate.state in ("open", "closed")
    assert {row.source: row.n for row in state.gate.label_sources}.get("gold") == 6
    assert "<html" in client.calibration.report_html("client-walk").lower()
    stats = client.review.stats(project.id)
    assert stats.project_id == project.id and stats.hours == 24
    charts = client.review.control_charts(project.id, window=10)
    assert charts.project_id == project.id and charts.window == 10 and charts.reviewers == []

    made = client.exports.create(
        project.id, "dpo", split="train", min_source="human", force=True, reason="test"
    )
    assert made.rows == 6 and made.format == "dpo"
    assert client.exports.get(project.id, made.number) == made
    assert [e.number for e in client.exports.list(project.id)] == [made.number]
    folder = client.exports.download(project.id, made.number, tmp_path / "export")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == made.manifest
    with pytest.raises(PrelabelError) as gone:
        client.exports.download(project.id, made.number + 1, tmp_path / "none")
    assert gone.value.status_code == 404 and "no export" in gone.value.message


def test_the_async_client_wraps_every_resource(api: LiveApi, tmp_path: Path) -> None:
    async def walk() -> None:
        async with AsyncClient(api.url, ADMIN_TOKEN, timeout=HTTP_TIMEOUT_S) as client:
            made = await client.projects.create("client-async", JUDGES)
            assert (await client.projects.get("client-async")).id == made.id
            assert made.id in [p.id for p in await client.projects.list()]
            key = await client.projects.create_key(made.id, "async")
            assert key.key.startswith("plk_")
            job = await client.jobs.post(made.id, _qa(4, "async"), columns=QA_COLUMNS)
            status = await client.jobs.wait(job.job_id, poll_s=POLL_S, stall_s=STALL_S)
            assert status.complete and status == await client.jobs.status(job.job_id)
            assert [j.id for j in await client.jobs.list(made.id)] == [job.job_id]
            results = [r async for r in client.jobs.results(job.job_id, page_size=3)]
            assert sorted(r.client_id for r in results) == [f"async-{i}" for i in range(4)]
            chunks = await client.jobs.post_many(made.id, _qa(3, "async2"), columns=QA_COLUMNS, chunk_size=2)
            assert [c.pairs_created for c in chunks] == [2, 1]
            dpo = [{"id": "ad", "prompt": "p", "chosen": "yes", "rejected": "no"}]
            await client.jobs.post(made.id, dpo, dpo=True, labels=True)
            stored = await client.labels.post(made.id, [{"client_id": "async-0", "label": "A>B"}])
            assert stored.labels_created == 1
            assert {label.client_id async for label in client.labels.list(made.id)} == {"async-0", "ad"}
            assert (await client.calibration.state(made.id)).project_id == made.id
            assert "<html" in (await client.calibration.report_html(made.id)).lower()
            assert (await client.review.stats(made.id, hours=2)).hours == 2
            assert (await client.review.control_charts(made.id, sigma=2.5)).sigma == 2.5
            export = await client.exports.create(made.id, "hf", force=True, reason="async test")
            assert (await client.exports.get(made.id, export.number)) == export
            assert [e.number for e in await client.exports.list(made.id)] == [export.number]
            folder = await client.exports.download(made.id, export.number, tmp_path / "hf")
            assert (folder / "manifest.json").is_file()
            with pytest.raises(PrelabelError) as missing:
                await client.jobs.status(999_999)
            assert missing.value.status_code == 404

    asyncio.run(walk())


def test_a_connection_failure_is_a_prelabel_error_without_a_status(api: LiveApi) -> None:
    from tests.helpers import free_port

    with (
        Client(f"http://127.0.0.1:{free_port()}", ADMIN_TOKEN) as nowhere,
        pytest.raises(PrelabelError) as failed,
    ):
        nowhere.projects.list()
    assert failed.value.status_code is None and "GET /v1/projects" in failed.value.message


def _status(done: int, calls: int, pairs: int = 10) -> JobStatus:
    return JobStatus.model_validate(
        {"id": 1, "project_id": 1, "created_at": "2026-01-01T00:00:00", "pairs": pairs,
         "existing_pairs_skipped": 0, "done": done, "progress": done / pairs, "complete": done == pairs,
         "by_state": {}, "by_route": {}, "by_reason": {}, "judge_calls": calls, "judge_calls_saved": 0,
         "judge_errors": 0, "cost": 0.0, "recent_errors": []}
    )  # fmt: skip


def test_wait_s_deadline_follows_progress() -> None:
    """No overall deadline: stillness for stall_s fails, any movement resets the clock."""
    progress = Progress(job_id=1, stall_s=10.0, now=0.0)
    assert not progress.update(_status(0, 0), now=0.0)
    assert not progress.update(_status(0, 4), now=9.0)  # calls moved: the deadline is 19 now
    assert not progress.update(_status(1, 4), now=18.0)  # a pair done: the deadline is 28 now
    assert not progress.update(_status(1, 4), now=27.9)
    with pytest.raises(JobStalled, match=r"job 1: no progress for 10 s \(1 of 10 pairs done\)"):
        progress.update(_status(1, 4), now=28.0)
    assert Progress(job_id=1, stall_s=10.0, now=0.0).update(_status(10, 40), now=1e9)


def test_the_client_loads_no_server_code() -> None:
    """In a fresh interpreter: ``import prelabel`` loads no web framework, database or litellm."""
    probe = (
        "import sys, prelabel, prelabel.convert\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette', 'sqlmodel', "
        "'sqlalchemy', 'litellm', 'uvicorn', 'pandas', 'datasets'})\n"
        "server = sorted(m for m in sys.modules if m.startswith('api.') and not m.startswith("
        "('api.schemas', 'api.fields', 'api.vocab')))\n"
        "print(bad, server)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []", out.stdout + out.stderr


SAMPLE = ROOT / "api" / "sample_data" / "llmbar_sample.jsonl"


def test_the_cli_walks_a_whole_job(api: LiveApi, tmp_path: Path) -> None:
    """project create → job post --wait → labels import → report → export, all over HTTP."""
    data = tmp_path / "pairs.jsonl"  # recorded-format rows: id, prompt, response_a/b, gold (not posted)
    data.write_text(
        "".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:24]), encoding="utf-8"
    )
    runner = CliRunner(env={"PRELABEL_URL": api.url, "PRELABEL_TOKEN": ADMIN_TOKEN})

    def run(*args: str) -> str:
        result = runner.invoke(prelabel, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    made = run(
        "project", "create", "cli-walk", "--judge", "mock/a", "--judge", "mock/b", "--routing", '{"n_min": 8}'
    )
    assert "'cli-walk': judges mock/a, mock/b" in made
    assert (
        "cli-walk" in run("project", "list")
        and json.loads(run("project", "show", "cli-walk"))["routing"]["n_min"] == 8
    )
    posted = run("job", "post", str(data), "--project", "cli-walk", "--wait")
    job_id = posted.split()[1].rstrip(":")
    assert (
        f"job {job_id}: 24 pairs stored, 0 already there" in posted
        and f"job {job_id}: 24/24 judged" in posted
    )
    assert json.loads(run("job", "status", job_id, "--json"))["complete"] is True
    run("job", "results", job_id, "--out", str(tmp_path / "results.ndjson"))
    lines = (tmp_path / "results.ndjson").read_text().splitlines()
    assert len(lines) == 24 and {json.loads(line)["state"] for line in lines} == {"done"}

    assert "24 label(s) stored, 0 already there" in run(
        "labels", "import", str(data), "--project", "cli-walk"
    )
    report = run("report", "--project", "cli-walk", "--out", str(tmp_path / "report.html"))
    assert "gate closed" in report or "gate open" in report
    assert "gold: 24 label(s)" in report and "<html" in (tmp_path / "report.html").read_text().lower()

    exported = run(
        "project", "export", "cli-walk", "--format", "dpo", "--out", str(tmp_path / "dpo"),
        "--min-source", "human", "--force", "--reason", "cli test",
    )  # fmt: skip
    assert "downloaded to" in exported
    manifest = json.loads((tmp_path / "dpo" / "manifest.json").read_text())
    assert manifest["format"] == "dpo"

    missing = runner.invoke(prelabel, ["job", "status", "999999"])
    assert missing.exit_code == 1 and "HTTP 404" in missing.output


def test_the_cli_posts_dpo_rows_and_imports_their_chosen_side(api: LiveApi, tmp_path: Path) -> None:
    rows = [
        {"id": f"cli-dpo-{i}", "prompt": f"Greet me ({i})", "chosen": f"Hello ({i})", "rejected": "Go."}
        for i in range(6)
    ]
    data = tmp_path / "dpo.parquet"
    pd.DataFrame(rows).to_parquet(data)
    runner = CliRunner(env={"PRELABEL_URL": api.url, "PRELABEL_TOKEN": ADMIN_TOKEN})
    with Client(api.url, ADMIN_TOKEN, timeout=HTTP_TIMEOUT_S) as client:
        project = client.projects.create("cli-dpo", JUDGES)
        posted = runner.invoke(
            prelabel, ["job", "post", str(data), "--project", "cli-dpo", "--format", "dpo"]
        )
        assert posted.exit_code == 0 and "6 pairs stored" in posted.output, posted.output
        imported = runner.invoke(
            prelabel, ["labels", "import", str(data), "--project", "cli-dpo", "--format", "dpo"]
        )
        assert imported.exit_code == 0 and "6 label(s) stored" in imported.output, imported.output
        stored = {label.client_id: label.label for label in client.labels.list(project.id)}
    sides = {p["client_id"]: p["metadata"]["dpo_chosen"] for p in convert.dpo_to_pairs(rows)}
    assert stored == {cid: {"A": "A>B", "B": "B>A"}[side] for cid, side in sides.items()}
    bad = runner.invoke(prelabel, ["job", "post", str(data), "--project", "cli-dpo", "--column", "prompt"])
    assert bad.exit_code == 2 and "FIELD=COLUMN" in bad.output
