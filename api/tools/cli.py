"""The one command line: ``prelabel serve | worker | review | demo | bench | calibrate | db``.

Heavy imports stay inside the commands so that ``prelabel --help`` starts fast; nothing on the
serving path imports this module.
"""

from __future__ import annotations

import asyncio
import json
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


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


def _names(values: tuple[str, ...]) -> list[str] | None:
    """Judge names given by repeating an option and/or joining names with commas; None if absent."""
    names = [name for value in values for name in value.split(",") if name]
    return names or None


# Applied to several commands: each application creates its own click.Option.
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of aligned key: value lines."
)
database_url_option = click.option(
    "--database-url",
    default=None,
    help="Database to benchmark on (default: a temporary SQLite file).",
)


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

    # The API judges in a child process (api.main.BackgroundProcess). prometheus_client's
    # multiprocess mode sums that process's judge counters into /metrics; it must be chosen
    # before prometheus_client is first imported, i.e. here.
    metrics_dir = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prelabel-metrics-")

    import uvicorn

    from api.main import create_app
    from api.settings import get_settings

    settings = get_settings()
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
    app = create_app(settings, run_worker=not no_worker)
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

    Besides judging, it redacts, embeds and ranks pairs for the review queue. Start several
    to judge faster; with --until-idle it exits once the queue is empty and prints how many
    pairs it judged.
    """
    from api.db import make_engine, upgrade
    from api.main import run_background
    from api.pipeline.worker import Worker
    from api.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    judge_worker = Worker(engine, settings)
    logging.getLogger("prelabel").info("worker %s on %s", judge_worker.worker_id, engine.dialect.name)
    done = asyncio.run(
        run_background(engine, asyncio.Event(), worker=judge_worker, prepare=True, until_idle=until_idle)
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


@prelabel.group()
def bench() -> None:
    """Benchmarks: ratios measured in one run on this machine.

    \b
    Examples:
      prelabel bench throughput --pairs 2000 --judges 2 --json
      prelabel bench replay --data ../shared/data/replay/llmbar_dev.jsonl --splits 20 --json
      prelabel bench simulate ../shared/data/replay/llmbar_dev.jsonl --splits 20
      prelabel bench queue --pending 100000 --json
      prelabel bench load --clients 20 --pairs-per-job 1000 --json
    """


@bench.command()
@click.option("--pairs", type=int, default=2000, help="Pairs to judge.")
@click.option("--judges", type=int, default=2, help="Mock judges per pair.")
@click.option("--latency-ms", type=float, default=0.0, help="Simulated latency of each judge call.")
@click.option(
    "--concurrency", type=int, default=None, help="Judge calls in flight (default: from the settings)."
)
@database_url_option
@json_option
def throughput(
    pairs: int,
    judges: int,
    latency_ms: float,
    concurrency: int | None,
    database_url: str | None,
    as_json: bool,
) -> int:
    """Pipeline throughput vs bare litellm calls, on a mock judge.

    \b
    Example:
      prelabel bench throughput --pairs 2000 --judges 2 --latency-ms 0 --json
    """
    from api.tools.bench_throughput import bench_throughput

    result = asyncio.run(
        bench_throughput(pairs, judges, latency_ms, concurrency=concurrency, database_url=database_url)
    )
    _print(result, as_json)
    return 0


@bench.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file in the recorded-judgments format (JSONL with gold labels).",
)
@click.option("--judges", default=None, help="Comma-separated judge names (default: all in the file).")
@click.option("--target-agreement", type=float, default=0.9, help="Agreement with humans the gate promises.")
@click.option("--delta", type=float, default=0.1, help="Allowed probability that the promise fails.")
@click.option(
    "--calibration-fraction",
    type=float,
    default=0.5,
    help="Share of the gold-labelled pairs used to calibrate; the rest is the test set.",
)
@click.option("--splits", type=int, default=20, help="Random calibration/test splits.")
@click.option("--seed", type=int, default=0, help="Seed of the splits.")
@click.option(
    "--shift-to",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Stream this file after calibrating, with audits on: when the drift kill-switch or the "
    "shift detector closes the gate, and what was accepted before.",
)
@click.option("--audit-rate", type=float, default=0.05, help="Share of pairs drawn for a human audit.")
@click.option("--n-min", type=int, default=100, help="Fewer usable gold labels keep the gate closed.")
@click.option(
    "--order-sensitive-judges",
    default=None,
    help="Judges (comma-separated) whose own AB/BA flip is also a hard flag (default: panel reversal only).",
)
@click.option(
    "--cascade",
    is_flag=True,
    help="Judge cheapest first (litellm prices) and call costlier judges only when needed.",
)
@click.option(
    "--baseline",
    type=click.Choice(["toe"]),
    default=None,
    help="Also score a baseline on the same splits: toe = Trust or Escalate's cascaded selective "
    "rule (valid and as-published variants), in-process on the recorded file.",
)
@json_option
def replay(
    data: str,
    judges: str | None,
    target_agreement: float,
    delta: float,
    calibration_fraction: float,
    splits: int,
    seed: int,
    shift_to: str | None,
    audit_rate: float,
    n_min: int,
    order_sensitive_judges: str | None,
    cascade: bool,
    baseline: str | None,
    as_json: bool,
) -> int:
    """Calibration gate on recorded judgments, through the service.

    Pairs go in through the jobs API, replay judges serve the recorded verdicts, gold labels
    of the calibration part go in through the labels API; the test part measures coverage
    (share auto-accepted) and agreement of the auto-accepted labels with gold.

    \b
    Examples:
      prelabel bench replay --data ../shared/data/replay/llmbar_dev.jsonl --splits 20 --json
      prelabel bench replay --data FILE --target-agreement 0.8 --cascade \\
          --order-sensitive-judges gpt-4/vanilla_norules --json
      prelabel bench replay --data FILE --target-agreement 0.85 --baseline toe --json
    """
    from api.tools.bench_replay import bench_replay

    result = bench_replay(
        data=data,
        judges=judges.split(",") if judges else None,
        target_agreement=target_agreement,
        delta=delta,
        calibration_fraction=calibration_fraction,
        splits=splits,
        seed=seed,
        shift_to=shift_to,
        audit_rate=audit_rate,
        order_sensitive_judges=order_sensitive_judges.split(",") if order_sensitive_judges else None,
        n_min=n_min,
        cascade=cascade,
        baseline=baseline,
    )
    _print(result, as_json)
    return 0


@bench.command()
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", type=float, default=0.9, help="Agreement with humans the gate promises.")
@click.option("--delta", type=float, default=0.1, help="Allowed probability that the promise fails.")
@click.option(
    "--cal-fraction", type=float, default=0.5, help="Share of the gold-labelled pairs to calibrate on."
)
@click.option("--splits", type=int, default=20, help="Random calibration/test splits.")
@click.option("--seed", type=int, default=0, help="Seed of the splits.")
@click.option("--hard-rule", is_flag=True, help="Never auto-accept order-sensitive pairs.")
@click.option(
    "--hard-rule-judges",
    multiple=True,
    help="Judges whose own AB/BA flip also counts for --hard-rule (repeat or comma-separate).",
)
@click.option(
    "--mode",
    type=click.Choice(["crossfit", "split"]),
    default="crossfit",
    help="crossfit: threshold on out-of-fold scores of all labels; "
    "split: exact guarantee, but each half of the labels does one job.",
)
@click.option(
    "--method",
    type=click.Choice(["side", "two_stage", "vote"]),
    default="side",
    help="Score of a pair: side model, two-stage model, or the label-free vote score.",
)
@click.option(
    "--min-accept",
    type=int,
    default=None,
    help="Start testing thresholds at the first one accepting this many calibration pairs "
    "(default: derived from --target and --delta).",
)
@click.option(
    "--judges",
    multiple=True,
    help="Panel (repeat or comma-separate; default: every judge in the file).",
)
@click.option(
    "--cascade",
    multiple=True,
    help="A cascade stage, cheapest first: repeat once per stage, judges of a stage joined by commas.",
)
@click.option("--per-split", is_flag=True, help="Print the per-split table before the summary.")
def simulate(
    path: str,
    target: float,
    delta: float,
    cal_fraction: float,
    splits: int,
    seed: int,
    hard_rule: bool,
    hard_rule_judges: tuple[str, ...],
    mode: str,
    method: str,
    min_accept: int | None,
    judges: tuple[str, ...],
    cascade: tuple[str, ...],
    per_split: bool,
) -> int:
    """Calibration gate on recorded judgments, in memory (fast).

    The gate (or cascade) on the same calibration/test splits as `bench replay`, without the
    service: fast enough to compare gate settings. FILE is in the recorded-judgments format
    (JSONL with gold labels). Prints the summary as JSON (coverage, agreement, share of splits
    where the guarantee held, gold labels used, judge calls per pair).

    \b
    Examples:
      prelabel bench simulate ../shared/data/replay/llmbar_dev.jsonl --splits 20
      prelabel bench simulate FILE --hard-rule --hard-rule-judges gpt-4/vanilla_norules
      prelabel bench simulate FILE --cascade llama-2-70b-chat/vanilla_norules \\
          --cascade gpt-4/vanilla_norules,gpt-3.5-turbo/vanilla_norules
    """
    from calibration.simulate import load_recorded
    from calibration.simulate import simulate as run_simulation

    recorded, gold = load_recorded(path)
    try:
        result = run_simulation(
            recorded,
            gold,
            target,
            delta,
            cal_fraction,
            splits,
            seed,
            hard_rule=hard_rule,
            hard_rule_judges=_names(hard_rule_judges),
            judges=_names(judges),
            cascade=[stage.split(",") for stage in cascade] or None,
            mode=mode,
            method=method,
            min_accept=min_accept,
        )
    except ValueError as exc:
        # calibration/ rejects incompatible settings (e.g. --cascade with --mode split) this way:
        # an error message, not a traceback.
        raise click.ClickException(str(exc)) from exc
    if per_split:
        print(result.per_split.to_string())
    print(json.dumps(result.summary, indent=2))
    return 0


@bench.command()
@click.option("--pending", type=int, default=100_000, help="Judged pairs waiting for review.")
@click.option("--samples", type=int, default=500, help="Timed next-item calls.")
@database_url_option
@json_option
def queue(pending: int, samples: int, database_url: str | None, as_json: bool) -> int:
    """Latency of the review queue's next-item call.

    Seeds --pending judged pairs routed to review, then times --samples next-item calls.

    \b
    Example:
      prelabel bench queue --pending 100000 --json
    """
    from api.tools.bench_queue import bench_queue

    _print(bench_queue(pending=pending, database_url=database_url, samples=samples), as_json)
    return 0


@bench.command()
@click.option("--clients", type=int, default=20, help="Concurrent batch clients, one job each.")
@click.option("--pairs-per-job", type=int, default=1000, help="Distinct pairs in each client's job.")
@click.option(
    "--judges", type=int, default=2, help="Mock judges in the panel (each pair: 2 calls per judge)."
)
@click.option("--latency-ms", type=float, default=50.0, help="Simulated latency of each judge call.")
@click.option(
    "--timeout", "timeout_s", type=float, default=1800.0, help="Stop everything after this many seconds."
)
@click.option("--database-url", default=None, help="PostgreSQL: a database is made for the run and dropped.")
@json_option
def load(
    clients: int,
    pairs_per_job: int,
    judges: int,
    latency_ms: float,
    timeout_s: float,
    database_url: str | None,
    as_json: bool,
) -> int:
    """Latency of the real server while it judges, under concurrent clients.

    Starts `prelabel serve` on 127.0.0.1 (a temporary SQLite file unless --database-url) with
    mock judges; --clients threads each post a job, poll it until complete and read its results
    while /healthz is polled every 100 ms. Reports p50/p95/max per kind of request, errors,
    jobs completed and the server's peak RSS. Exits 1 on any error or unfinished job.

    \b
    Examples:
      prelabel bench load --clients 20 --pairs-per-job 1000 --json
      prelabel bench load --database-url postgresql://postgres@127.0.0.1/test --json
    """
    from api.tools.bench_load import bench_load

    result = bench_load(
        clients=clients,
        pairs_per_job=pairs_per_job,
        judges=judges,
        latency_ms=latency_ms,
        database_url=database_url,
        timeout_s=timeout_s,
    )
    _print(result, as_json)
    return 0 if result["errors"] == 0 and result["jobs_failed"] == 0 else 1


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

    from sqlmodel import Session, select

    from api.db import make_engine, upgrade
    from api.models import Project
    from api.pipeline.gate import refit
    from api.pipeline.versions import version_name
    from api.reports import calibration_state
    from api.settings import get_settings
    from calibration.report import render_report_html

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        projects = list(session.exec(select(Project).order_by(Project.id)))  # type: ignore[arg-type]
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
