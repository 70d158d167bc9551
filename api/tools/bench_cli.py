"""``prelabel bench ...``: the benchmarks, each printing figures measured in one run."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import click


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


@click.group()
def bench() -> None:
    """Benchmarks: ratios measured in one run on this machine.

    \b
    Examples:
      prelabel bench throughput --pairs 2000 --judges 2 --json
      prelabel bench replay --data ../shared/data/replay/llmbar_dev.jsonl --splits 20 --json
      prelabel bench simulate ../shared/data/replay/llmbar_dev.jsonl --splits 20
      prelabel bench queue --pending 100000 --json
      prelabel bench reviewers --spammers 1 --lazy 1 --json
      prelabel bench load --clients 20 --pairs-per-job 1000 --json
      prelabel bench injection --json
      prelabel bench live --model openai/my-model --api-base http://127.0.0.1:8080/v1 --pairs 40 --custom
    """


@bench.command()
@click.option("--pairs", type=int, default=2000, help="Pairs to judge.")
@click.option("--judges", type=int, default=2, help="Mock judges per pair.")
@click.option("--latency-ms", type=float, default=0.0, help="Simulated latency of each judge call.")
@click.option(
    "--concurrency", type=int, default=None, help="Judge calls in flight (default: from the settings)."
)
@click.option(
    "--screen-processes",
    type=click.IntRange(0, 8),
    default=0,
    show_default=True,
    help="Processes that run the per-pair screens beside the judging process "
    "(PRELABEL_SCREEN_PROCESSES; 0, the service's default: in it).",
)
@database_url_option
@json_option
def throughput(
    pairs: int,
    judges: int,
    latency_ms: float,
    concurrency: int | None,
    screen_processes: int,
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
        bench_throughput(
            pairs,
            judges,
            latency_ms,
            concurrency=concurrency,
            database_url=database_url,
            screen_processes=screen_processes,
        )
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
@click.option(
    "--population",
    type=click.Choice(["split", "bootstrap"]),
    default="split",
    show_default=True,
    help="split: calibration/test halves without replacement. bootstrap: calibration labels drawn "
    "with replacement, the whole file routed, guarantee_held_population_fraction reported (the "
    "accepted region's agreement over the file: an unbiased validity figure).",
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
    population: str,
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
      prelabel bench replay --data FILE --population bootstrap --baseline toe --json
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
        population=population,
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
    mode: Literal["crossfit", "split"],  # click.Choice checks them
    method: Literal["side", "two_stage", "vote"],
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
    from calibration.lab.simulate import load_recorded
    from calibration.lab.simulate import simulate as run_simulation
    from calibration.settings import GateSettings

    recorded, gold = load_recorded(path)
    hard_rule_judges_names = _names(hard_rule_judges)
    try:
        # The bench's own fit settings, from its options (the service builds its own from the
        # project's routing settings: api.calibrate.refits.gate_settings).
        settings = GateSettings(
            alpha=1.0 - target,
            delta=delta,
            mode=mode,
            method=method,
            hard_rule=hard_rule,
            hard_rule_judges=tuple(hard_rule_judges_names) if hard_rule_judges_names else None,
            min_accept=min_accept,
        )
        result = run_simulation(
            recorded,
            gold,
            settings,
            cal_fraction=cal_fraction,
            splits=splits,
            seed=seed,
            judges=_names(judges),
            cascade=[stage.split(",") for stage in cascade] or None,
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
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    default="../shared/data/pandalm/testset_3annotators.jsonl",
    help="PandaLM test set with three human annotators per pair (JSONL).",
)
@click.option(
    "--spammers", type=click.IntRange(0, 7), default=0, help="Simulated reviewers answering at random."
)
@click.option(
    "--lazy", type=click.IntRange(0, 7), default=0, help='Simulated reviewers always answering "A".'
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Replay only the first LIMIT pairs.")
@click.option("--seed", type=int, default=0, help="Seed of the honeypot sample and the spammers' answers.")
@json_option
def reviewers(data: str, spammers: int, lazy: int, limit: int | None, seed: int, as_json: bool) -> int:
    """Reviewer quality on real annotators: agreement, aggregation, the auto-pause.

    Replays PandaLM's three annotators through the review API (every reviewer labels every
    pair; ~6 % of the pairs are honeypots), with simulated spammers and lazy reviewers added.
    Prints Cohen's kappa per annotator pair, Fleiss' kappa, Krippendorff's alpha (ordinal,
    nominal), Dawid-Skene and majority-vote accuracy (leave one annotator out), the labels each
    simulated reviewer gave before being paused, and how many real annotators were paused.

    \b
    Example:
      prelabel bench reviewers --data ../shared/data/pandalm/testset_3annotators.jsonl \\
          --spammers 1 --lazy 1 --json
    """
    from api.tools.bench_reviewers import bench_reviewers

    try:
        result = bench_reviewers(data, spammers=spammers, lazy=lazy, limit=limit, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(result, as_json)
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


@bench.command()
@click.option(
    "--data-dir",
    default="../shared/data",
    show_default=True,
    help="Folder with replay/llmbar_dev.jsonl, pandalm/testset_3annotators.jsonl and "
    "hh-rlhf/harmless_base_test.jsonl.",
)
@click.option(
    "--planted",
    default="tests/data/planted_injections.jsonl",
    show_default=True,
    help="Planted injections (JSONL: text, language, kind, split, placement); skipped if missing.",
)
@json_option
def injection(data_dir: str, planted: str, as_json: bool) -> int:
    """The prompt-injection screen: false positives and re-judge share on real data, catches on a planted set.

    Per shared file: pairs flagged (none holds a planted injection, so all are false positives),
    pairs the re-judge check would judge again (one extra call per panel judge each), CPU ms per
    pair. Per language, obfuscation kind and split of the planted set: flagged by the rules,
    taken out by the re-judge check's detector, either.

    \b
    Examples:
      prelabel bench injection --json
      prelabel bench injection --data-dir ../shared/data --planted tests/data/planted_injections.jsonl
    """
    from pathlib import Path

    from api.tools.bench_injection import run

    result = run(Path(data_dir), Path(planted))
    _print(result, as_json)
    return 0


@bench.command()
@click.option(
    "--model",
    required=True,
    help="The judge as a litellm model string (openai/NAME for an OpenAI-compatible server).",
)
@click.option("--api-base", required=True, help="The endpoint (e.g. http://127.0.0.1:8080/v1).")
@click.option(
    "--pairs",
    type=click.IntRange(1),
    default=40,
    show_default=True,
    help="Pairs to judge (two calls each: both display orders).",
)
@click.option(
    "--custom",
    is_flag=True,
    help="The model is not in litellm's price table (self-hosted, fine-tuned): accept it anyway.",
)
@click.option("--max-tokens", type=click.IntRange(1), default=None, help="Longest answer asked for.")
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds a call may take.",
)
@click.option(
    "--concurrency", type=click.IntRange(1), default=4, show_default=True, help="Calls in flight at once."
)
@click.option(
    "--attempts",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Attempts per call (retries on timeouts, 429s, 5xx and connection errors).",
)
@click.option(
    "--temperature", type=click.FloatRange(0, 2), default=None, help="Sampling temperature (default 0)."
)
@click.option(
    "--response-format",
    type=click.Choice(["text", "json_object", "json_schema"]),
    default=None,
    help="Ask for JSON output where the server supports it (default text).",
)
@click.option(
    "--logprobs/--no-logprobs",
    default=True,
    show_default=True,
    help="Ask for token logprobs (a verdict's confidence, where the server returns them).",
)
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSONL pairs (prompt, response_a, response_b); default: ../shared/data LLMBar dev, "
    "else the bundled LLMBar sample.",
)
@json_option
def live(
    model: str,
    api_base: str,
    pairs: int,
    custom: bool,
    max_tokens: int | None,
    timeout_s: float,
    concurrency: int,
    attempts: int,
    temperature: float | None,
    response_format: str | None,
    logprobs: bool,
    data: str | None,
    as_json: bool,
) -> int:
    """Your own endpoint as a judge, through the real pipeline: does it give verdicts?

    Posts --pairs pairs to a temporary project (SQLite, in-process API and worker) judged by
    --model at --api-base, in both display orders, and prints valid / invalid / failed call
    counts, the failures by kind (timeout, context_window, connection...), latency p50/p95/max,
    how many verdicts carry a confidence, tokens and cost, the routes, and the start of a few
    invalid answers. Exits 1 when no call gave a valid verdict.

    \b
    Example (llama-cpp-python's server; any OpenAI-compatible one works):
      prelabel bench live --model openai/gemma-3-270m --api-base http://127.0.0.1:8080/v1 \\
          --pairs 40 --custom --max-tokens 200 --timeout-s 120 --concurrency 1
    """
    from api.tools.bench_live import run

    try:
        result = run(
            model=model,
            api_base=api_base,
            pairs=pairs,
            custom=custom,
            logprobs=logprobs,
            max_tokens=max_tokens,
            timeout_s=timeout_s,
            concurrency=concurrency,
            attempts=attempts,
            temperature=temperature,
            response_format=response_format,
            data=data,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(result, as_json)
    return 0 if result["valid"] else 1
