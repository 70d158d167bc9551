"""The one command line: ``prelabel serve | worker | demo | review | bench | db``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app
    from api.settings import get_settings

    app = create_app(get_settings(), run_worker=not args.no_worker)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from api.db import make_engine, upgrade
    from api.main import run_background
    from api.pipeline.worker import Worker
    from api.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    worker = Worker(engine, settings)
    logging.getLogger("prelabel").info("worker %s on %s", worker.worker_id, engine.dialect.name)
    # Beside judging: redaction, embeddings and queue ranking for the review app.
    done = asyncio.run(
        run_background(engine, asyncio.Event(), worker=worker, prepare=True, until_idle=args.until_idle)
    )
    print(f"worker {worker.worker_id}: {done} pairs judged")
    return 0


def _review(args: argparse.Namespace) -> int:
    from review_app.launch import run_streamlit

    return run_streamlit(port=args.port, api_url=args.api_url, headless=True).wait()


def _demo(args: argparse.Namespace) -> int:
    from api.tools.demo import run_demo

    return run_demo(api_port=args.api_port, review_port=args.review_port, wait=not args.no_wait)


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


def _bench(args: argparse.Namespace) -> int:
    if args.bench == "throughput":
        from api.tools.bench_throughput import bench_throughput

        result = asyncio.run(
            bench_throughput(
                args.pairs,
                args.judges,
                args.latency_ms,
                concurrency=args.concurrency,
                database_url=args.database_url,
            )
        )
    elif args.bench == "replay":
        from api.tools.bench_replay import bench_replay

        result = bench_replay(
            data=args.data,
            judges=args.judges.split(",") if args.judges else None,
            target_agreement=args.target_agreement,
            delta=args.delta,
            calibration_fraction=args.calibration_fraction,
            splits=args.splits,
            seed=args.seed,
            shift_to=args.shift_to,
            audit_rate=args.audit_rate,
            order_sensitive_judges=args.order_sensitive_judges.split(",")
            if args.order_sensitive_judges
            else None,
            n_min=args.n_min,
            cascade=args.cascade,
        )
    elif args.bench == "queue":
        from api.tools.bench_queue import bench_queue

        result = bench_queue(pending=args.pending, database_url=args.database_url, samples=args.samples)
    else:
        raise SystemExit(f"unknown benchmark {args.bench!r}")
    _print(result, args.json)
    return 0


def calibrate_cli(project: str | None, report: str | None) -> int:
    """``prelabel calibrate``: refit now, print the gate state, optionally write the HTML report."""
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


def _calibrate(args: argparse.Namespace) -> int:
    return calibrate_cli(project=args.project, report=args.report)


def _db(args: argparse.Namespace) -> int:
    from api.db import make_engine, upgrade
    from api.settings import get_settings

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    print(f"database {engine.url.render_as_string(hide_password=True)} is at the latest schema")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prelabel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (with an in-process worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-worker", action="store_true", help="API only; run `prelabel worker` elsewhere")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run a standalone worker against the same database")
    worker.add_argument("--until-idle", action="store_true", help="exit when nothing is left to judge")
    worker.set_defaults(func=_worker)

    review = sub.add_parser("review", help="start the Streamlit review app")
    review.add_argument("--port", type=int, default=8501)
    review.add_argument("--api-url", default=os.environ.get("PRELABEL_API_URL", "http://127.0.0.1:8000"))
    review.set_defaults(func=_review)

    demo = sub.add_parser("demo", help="API + worker + review app on a bundled sample, offline")
    demo.add_argument("--api-port", type=int, default=8000)
    demo.add_argument("--review-port", type=int, default=8501)
    demo.add_argument("--no-wait", action="store_true", help="stop everything after the summary")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="benchmarks that print ratios measured in one run")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    throughput = bench_sub.add_parser("throughput", help="pipeline vs bare litellm calls on a mock judge")
    throughput.add_argument("--pairs", type=int, default=2000)
    throughput.add_argument("--judges", type=int, default=2)
    throughput.add_argument("--latency-ms", type=float, default=0.0)
    throughput.add_argument(
        "--concurrency", type=int, default=None, help="judge calls in flight (default: settings)"
    )
    throughput.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    throughput.add_argument("--json", action="store_true")
    replay = bench_sub.add_parser(
        "replay", help="calibration gate on a recorded-judgments file, through the service"
    )
    replay.add_argument("--data", required=True, help="a file in the recorded-judgments format")
    replay.add_argument(
        "--judges", default=None, help="comma-separated judge names (default: all in the file)"
    )
    replay.add_argument("--target-agreement", type=float, default=0.9)
    replay.add_argument("--delta", type=float, default=0.1)
    replay.add_argument("--calibration-fraction", type=float, default=0.5)
    replay.add_argument("--splits", type=int, default=20)
    replay.add_argument("--seed", type=int, default=0)
    replay.add_argument("--shift-to", default=None, help="stream this file after calibrating, with audits on")
    replay.add_argument("--audit-rate", type=float, default=0.05)
    replay.add_argument(
        "--n-min", type=int, default=100, help="fewer usable gold labels keep the gate closed"
    )
    replay.add_argument(
        "--order-sensitive-judges",
        default=None,
        help="comma-separated judges whose AB/BA flip is a hard flag (default: any judge)",
    )
    replay.add_argument(
        "--cascade",
        action="store_true",
        help="judge cheapest first (litellm prices) and call costlier judges only when needed",
    )
    replay.add_argument("--json", action="store_true")
    queue = bench_sub.add_parser("queue", help="latency of the review queue's next-item call")
    queue.add_argument("--pending", type=int, default=100_000)
    queue.add_argument("--samples", type=int, default=500)
    queue.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    queue.add_argument("--json", action="store_true")
    bench.set_defaults(func=_bench)

    calibrate = sub.add_parser(
        "calibrate", help="refit a project's calibration gate now; write the HTML report"
    )
    calibrate.add_argument("--project", default=None, help="project id or name (default: every project)")
    calibrate.add_argument("--report", default=None, help="write the HTML calibration report here")
    calibrate.set_defaults(func=_calibrate)

    db = sub.add_parser("db", help="upgrade the database schema to the latest migration")
    db.set_defaults(func=_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("prelabel").setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
