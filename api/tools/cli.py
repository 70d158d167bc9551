"""The one command line, ``prelabel``: serve, worker, review, demo, bench, calibrate, db, export, audit,
and the API over HTTP: project, job, labels, report.

Heavy imports stay inside the commands so that ``prelabel --help`` starts fast; nothing on the
serving path imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import click

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
    "show_default": True,
}


@click.group(context_settings=CONTEXT_SETTINGS)
def prelabel() -> None:
    """Pre-label pairwise preference data with LLM judges; send only what needs a human to review.

    \b
    A typical session:
      prelabel db        # create or upgrade the database schema
      prelabel serve     # the API on :8000, with an in-process worker
      prelabel review    # the review app on :8501
      prelabel demo      # all of the above on a bundled sample, offline

    Settings (database, judges, tokens) come from PRELABEL_* environment variables.
    Run `prelabel COMMAND --help` for a command's options.
    """


@prelabel.command()
@click.option("--host", default="127.0.0.1", help="Interface to listen on.")
@click.option("--port", type=int, default=8000, help="Port to listen on.")
@click.option("--no-worker", is_flag=True, help="API only; run `prelabel worker` elsewhere.")
@click.option("--log-level", default="info", help="uvicorn log level (debug, info, warning, ...).")
@click.option(
    "--dev", is_flag=True, help="Allow starting without PRELABEL_ADMIN_TOKEN (a made-up one is printed)."
)
def serve(host: str, port: int, no_worker: bool, log_level: str, dev: bool) -> int:
    """Run the HTTP API, with an in-process worker.

    The worker judges submitted pairs; with --no-worker, run `prelabel worker` processes instead.
    Needs PRELABEL_ADMIN_TOKEN; with --dev and no token it makes one up and prints it.

    \b
    Examples:
      PRELABEL_ADMIN_TOKEN=... prelabel serve     # http://127.0.0.1:8000/docs
      prelabel serve --dev --no-worker --port 9000
    """
    import secrets
    import shutil
    import tempfile

    # The API judges in a child process (api.background.BackgroundProcess). prometheus_client's
    # multiprocess mode sums that process's judge counters into /metrics; it must be chosen
    # before prometheus_client is first imported, i.e. here.
    metrics_dir = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prelabel-metrics-")

    from api.settings import get_settings

    settings = get_settings()  # checked before the app's imports (seconds of CPU) are paid
    if not settings.admin_token:
        if not dev:
            raise click.UsageError(
                "PRELABEL_ADMIN_TOKEN is not set: nobody could create projects, keys or reviewers. "
                "Set it (a long random string), or pass --dev to run with a made-up token printed here."
            )
        settings = settings.model_copy(update={"admin_token": "adm_" + secrets.token_urlsafe(24)})
        click.echo(
            f"dev mode: admin token {settings.admin_token} (set PRELABEL_ADMIN_TOKEN to choose one)", err=True
        )
    import uvicorn

    from api.background import tune_gc_for_serving
    from api.main import create_app

    app = create_app(settings, run_worker=not no_worker)
    tune_gc_for_serving()
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


@prelabel.command()
@click.option("--until-idle", is_flag=True, help="Exit when nothing is left to judge.")
def worker(until_idle: bool) -> int:
    """Run a standalone worker against the same database as the API.

    Besides judging, it redacts, embeds and ranks pairs for the review queue, unless
    PRELABEL_REVIEW_PREPARE=0 (then another process does that). Start several to judge
    faster; with --until-idle it exits once the queue is empty and prints how many pairs it
    judged.
    """
    from api.background import run_background, tune_gc_for_serving
    from api.db import make_engine, upgrade
    from api.judging.worker import Worker
    from api.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    judge_worker = Worker(engine, settings)
    tune_gc_for_serving()  # as the API's own background process does
    logging.getLogger("prelabel").info("worker %s on %s", judge_worker.worker_id, engine.dialect.name)
    # "auto" and "1" prepare here (a worker judges); "0" leaves it to another process.
    prepare = settings.review_prepare != "0"
    done = asyncio.run(
        run_background(engine, asyncio.Event(), worker=judge_worker, prepare=prepare, until_idle=until_idle)
    )
    print(f"worker {judge_worker.worker_id}: {done} pairs judged")
    return 0


@prelabel.command()
@click.option("--port", type=int, default=8501, help="Port of the review app.")
@click.option(
    "--api-url",
    envvar="PRELABEL_API_URL",
    show_envvar=True,
    default="http://127.0.0.1:8000",
    help="The API the review app talks to.",
)
def review(port: int, api_url: str) -> int:
    """Start the Streamlit review app, where humans label pairs.

    Reviewers see the pairs the judges could not settle, plus audit and calibration samples.

    \b
    Example:
      prelabel review --api-url http://127.0.0.1:8000
    """
    from review_app.launch import run_streamlit

    return run_streamlit(port=port, api_url=api_url, headless=True).wait()


@prelabel.command()
@click.option("--api-port", type=int, default=8000, help="Port of the API (0: any free port).")
@click.option("--review-port", type=int, default=8501, help="Port of the review app (0: any free port).")
@click.option("--no-wait", is_flag=True, help="Stop everything after the summary.")
def demo(api_port: int, review_port: int, no_wait: bool) -> int:
    """Run API + worker + review app on a bundled sample, offline.

    Judges the sample with replay judges serving recorded GPT-4 and GPT-3.5 verdicts (or with
    live judges when PRELABEL_JUDGES and provider keys are set), prints routes, order
    sensitivity and the calibration gate before and after gold labels, then keeps the
    servers up until Ctrl-C.
    """
    from api.tools.demo import run_demo

    return run_demo(api_port=api_port, review_port=review_port, wait=not no_wait)


@prelabel.command()
@click.option("--project", default=None, help="Project id or name (default: every project).")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the HTML calibration report here (needs --project).",
)
def calibrate(project: str | None, report: str | None) -> int:
    """Refit projects' calibration gates now and print their state.

    For an open gate it prints the threshold, the guaranteed agreement and the expected
    coverage; --report writes the HTML report (reliability diagram, coverage curve).

    \b
    Example:
      prelabel calibrate --project NAME --report out.html
    """
    from pathlib import Path

    from sqlmodel import Session, col, select

    from api.calibrate.refits import refit
    from api.calibrate.reports import calibration_state
    from api.calibrate.reports_html import render_report_html
    from api.calibrate.versions import version_name
    from api.db import make_engine, upgrade
    from api.models import Project
    from api.settings import get_settings

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        projects = list(session.exec(select(Project).order_by(col(Project.id))))
    if project is not None:
        projects = [p for p in projects if str(p.id) == project or p.name == project]
        if not projects:
            raise SystemExit(f"no project {project!r}")
    if report and len(projects) != 1:
        raise SystemExit("--report needs exactly one project: name it with --project")
    for item in projects:
        version = refit(engine, item, trigger="manual")
        state = "OPEN" if version.open else "closed"
        print(f"project {item.id} {item.name!r}: {version_name(version)} gate {state} — {version.reason}")
        if version.open:
            print(
                f"  threshold {version.threshold:.3f}, "
                f"guaranteed agreement >= {version.guaranteed_agreement:.3f}, "
                f"expected coverage {version.expected_coverage:.1%}, {version.n_labels} labels"
            )
        if report:
            Path(report).write_text(
                render_report_html(calibration_state(engine, item)["report"]), encoding="utf-8"
            )
            print(f"  report written to {report}")
    return 0


@prelabel.command()
def db() -> int:
    """Upgrade the database schema to the latest migration.

    Creates the tables on a new database. The database is PRELABEL_DATABASE_URL (default:
    sqlite:///./prelabel.db).
    """
    from api.db import make_engine, upgrade
    from api.settings import get_settings

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    print(f"database {engine.url.render_as_string(hide_password=True)} is at the latest schema")
    return 0


# The tamper-evident log: `prelabel audit verify | tail` (api/tools/audit_cli.py).
from api.tools.audit_cli import audit as audit_group  # noqa: E402

# The benchmarks: `prelabel bench ...` (api/tools/bench_cli.py).
from api.tools.bench_cli import bench  # noqa: E402

# The API over HTTP, on the Python client: `prelabel project | job | labels | report`
# (api/tools/client_cli.py).
from api.tools.client_cli import job, labels, project, report  # noqa: E402

# The dataset out: `prelabel export [diff]` and `prelabel bench export` (api/tools/export_cli.py).
from api.tools.export_cli import bench_export_command, export  # noqa: E402

prelabel.add_command(export)
for command in (project, job, labels, report):
    prelabel.add_command(command)
prelabel.add_command(audit_group)
prelabel.add_command(bench)
bench.add_command(bench_export_command)


def main(argv: list[str] | None = None) -> int:
    """Run ``prelabel`` on ``argv`` (default: the process arguments) and return the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("prelabel").setLevel(logging.INFO)
    try:
        # Not standalone: return the command's exit code instead of exiting, so callers such as
        # tests get an int; --help still comes back as 0 (click's Exit is handled inside).
        code = prelabel.main(args=argv, prog_name="prelabel", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
