"""``prelabel project | job | labels | report``: the API from the command line, over HTTP.

Built on the Python client (``prelabel.Client``); registered on the ``prelabel`` group by
api/tools/cli.py. Every command takes ``--url`` (``PRELABEL_URL``) and ``--token``
(``PRELABEL_TOKEN``, else ``PRELABEL_ADMIN_TOKEN``); the client never imports this module.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # the client loads when a command runs: `prelabel --help` stays fast
    from prelabel import Client
    from prelabel.types import JobStatus

FILE_FORMATS = ["jsonl", "json", "parquet", "dpo"]


def connection(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--url`` and ``--token`` on a command, handed to it as a ready ``client``."""

    @click.option(
        "--url",
        envvar=["PRELABEL_URL", "PRELABEL_API_URL"],
        default="http://127.0.0.1:8000",
        help="The API's base URL (env PRELABEL_URL).",
    )
    @click.option(
        "--token",
        envvar=["PRELABEL_TOKEN", "PRELABEL_ADMIN_TOKEN"],
        default=None,
        help="Admin token or project API key (env PRELABEL_TOKEN, else PRELABEL_ADMIN_TOKEN).",
    )
    @functools.wraps(command)
    def wrapper(url: str, token: str | None, **kwargs: Any) -> Any:
        with _client(url, token) as client:
            return command(client, **kwargs)

    return wrapper


@contextmanager
def _client(url: str, token: str | None) -> Iterator[Client]:
    """A client whose refusals end the command with the API's message (exit code 1)."""
    from prelabel import Client, PrelabelError

    try:
        with Client(url, token) as client:
            yield client
    except PrelabelError as exc:
        lines = [str(exc), *(json.dumps(e) for e in exc.errors[:20])]
        raise click.ClickException("\n".join(lines)) from None
    except ValueError as exc:  # an input file the importers cannot read
        raise click.ClickException(str(exc)) from None


def _columns(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in pairs:
        field, sep, column = item.partition("=")
        if not sep or not field or not column:
            raise click.BadParameter(
                f"{item!r}: write FIELD=COLUMN, e.g. prompt=question", param_hint="--column"
            )
        mapping[field] = column
    return mapping


column_option = click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Read an API field from another column, e.g. --column prompt=question (repeatable).",
)
format_option = click.option(
    "--format",
    "file_format",
    type=click.Choice(FILE_FORMATS),
    default=None,
    help="How to read FILE (default: its extension); dpo: prompt, chosen, rejected rows.",
)
project_option = click.option("--project", required=True, help="Project name or id.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines of text.")


def _read(path: Path, file_format: str | None) -> list[dict[str, Any]]:
    from prelabel import convert

    return convert.read_file(path, None if file_format == "dpo" else file_format)


def _print_model(value: Any) -> None:
    click.echo(value.model_dump_json(indent=2))


# --- project ----------------------------------------------------------------------------------


@click.group()
def project() -> None:
    """Create, list and show projects over the API (creating needs the admin token)."""


@project.command("create")
@click.argument("name")
@click.option("--judge", "judges", multiple=True, help="A judge model (repeatable); default PRELABEL_JUDGES.")
@click.option("--routing", default=None, help="Routing settings as JSON, e.g. '{\"n_min\": 50}'.")
@json_option
@connection
def project_create(
    client: Client, name: str, judges: tuple[str, ...], routing: str | None, as_json: bool
) -> None:
    """Create a project judged by a panel of judges.

    \b
    Example:
      prelabel project create faq --judge gpt-4o --judge anthropic/claude-sonnet-4-5
    """
    settings = json.loads(routing) if routing else None
    created = client.projects.create(name, list(judges), settings)
    if as_json:
        _print_model(created)
    else:
        click.echo(
            f"project {created.id} {created.name!r}: judges {', '.join(j.model for j in created.judges)}"
        )


@project.command("list")
@json_option
@connection
def project_list(client: Client, as_json: bool) -> None:
    """List the projects this token may read."""
    projects = client.projects.list()
    if as_json:
        click.echo(json.dumps([json.loads(p.model_dump_json()) for p in projects], indent=2))
    for item in [] if as_json else projects:
        click.echo(f"{item.id}\t{item.name}\t{', '.join(j.model for j in item.judges)}")


@project.command("show")
@click.argument("name_or_id")
@connection
def project_show(client: Client, name_or_id: str) -> None:
    """Print one project (judges, routing settings) as JSON."""
    _print_model(client.projects.get(int(name_or_id) if name_or_id.isdigit() else name_or_id))


@project.command("export")
@click.argument("name_or_id")
@click.option("--format", "export_format", required=True, help="dpo, hf, label-studio or argilla.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the files."
)
@click.option(
    "--split",
    type=click.Choice(["train", "frozen_eval", "all"]),
    default="train",
    help="Pairs of this split.",
)
@click.option(
    "--min-source", type=click.Choice(["human", "auto"]), default=None, help="Least final-label source."
)
@click.option("--force", is_flag=True, help="Export past the promotion gate (needs --reason).")
@click.option("--reason", default=None, help="Why --force: recorded in the manifest and the audit log.")
@connection
def project_export(
    client: Client,
    name_or_id: str,
    export_format: str,
    out: Path,
    split: str,
    min_source: str | None,
    force: bool,
    reason: str | None,
) -> None:
    """Make a numbered export on the server and download its files into --out.

    \b
    Example:
      prelabel project export faq --format dpo --out ./faq-dpo
    """
    options = {"split": split, "min_source": min_source, "force": force or None, "reason": reason}
    made = client.exports.create(name_or_id, export_format, **options)
    client.exports.download(made.project_id, made.number, out)
    click.echo(f"export {made.number} ({made.format}, {made.rows} rows) downloaded to {out}")


# --- job --------------------------------------------------------------------------------------


@click.group()
def job() -> None:
    """Post pairs, follow a job, read its results, retry or cancel it."""


def _status_line(status: JobStatus) -> str:
    routes = ", ".join(f"{route} {n}" for route, n in sorted(status.by_route.items()) if n)
    return (
        f"job {status.id}: {status.done}/{status.pairs} judged"
        + (f" ({routes})" if routes else "")
        + f", {status.judge_calls} judge calls, {status.judge_errors} errors, cost ${status.cost:.4f}"
    )


@job.command("post")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@project_option
@format_option
@column_option
@click.option("--labels", is_flag=True, help="With --format dpo: also import the chosen side as gold labels.")
@click.option("--chunk-size", type=int, default=10_000, help="Pairs per request (one job each).")
@click.option("--wait", is_flag=True, help="Wait until every pair is judged, printing progress.")
@click.option(
    "--stall-s", type=float, default=300.0, help="With --wait: give up after this long without progress."
)
@connection
def job_post(
    client: Client,
    file: Path,
    project: str,
    file_format: str | None,
    columns: tuple[str, ...],
    labels: bool,
    chunk_size: int,
    wait: bool,
    stall_s: float,
) -> None:
    """Post a file of pairs (JSONL, JSON, parquet; or DPO rows) as one job per chunk.

    Rows need prompt, response_a, response_b (or --column FIELD=COLUMN) and a client_id or id
    (else a hash of the texts). Posting the same file again returns the same job.

    \b
    Examples:
      prelabel job post pairs.jsonl --project faq --wait
      prelabel job post qa.parquet --project faq --column prompt=question \
          --column response_a=answer_1 --column response_b=answer_2
      prelabel job post dpo.jsonl --project faq --format dpo --labels
    """
    rows = _read(file, file_format)
    posted = client.jobs.post_many(
        project,
        rows,
        columns=_columns(columns),
        dpo=file_format == "dpo",
        labels=labels,
        chunk_size=chunk_size,
    )
    for created in posted:
        again = " (resubmitted: the same pairs as before)" if created.resubmitted else ""
        stored = f"{created.pairs_created} pairs stored, {created.pairs_existing} already there"
        click.echo(f"job {created.job_id}: {stored}{again}")
    for created in posted if wait else []:
        click.echo(_status_line(client.jobs.wait(created.job_id, stall_s=stall_s)))


@job.command("status")
@click.argument("job_id", type=int)
@json_option
@connection
def job_status(client: Client, job_id: int, as_json: bool) -> None:
    """Print a job's progress: pairs judged, routes, judge calls, errors, cost."""
    status = client.jobs.status(job_id)
    if as_json:
        _print_model(status)
    else:
        click.echo(_status_line(status))


@job.command("results")
@click.argument("job_id", type=int)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write NDJSON here."
)
@connection
def job_results(client: Client, job_id: int, out: Path | None) -> None:
    """Write every pair's result (label, route, reasons, judgments) as NDJSON, page by page."""
    stream = out.open("w", encoding="utf-8") if out else None
    try:
        for result in client.jobs.results(job_id):
            click.echo(result.model_dump_json(), file=stream)
    finally:
        if stream:
            stream.close()


@job.command("retry")
@click.argument("job_id", type=int)
@click.option(
    "--failed-only", is_flag=True, help="Re-judge failed calls only, not unreadable (invalid) answers."
)
@click.option("--judge", "judges", multiple=True, help="Judge with this panel instead (repeatable).")
@connection
def job_retry(client: Client, job_id: int, failed_only: bool, judges: tuple[str, ...]) -> None:
    """Judge a job's failed and invalid judgments again (optionally with another panel)."""
    retried = client.jobs.retry(job_id, include_invalid=not failed_only, judges=list(judges) or None)
    click.echo(f"{retried.requeued} pair(s) requeued; {_status_line(retried)}")


@job.command("cancel")
@click.argument("job_id", type=int)
@connection
def job_cancel(client: Client, job_id: int) -> None:
    """Stop a job's pending work; what is already judged is kept."""
    cancelled = client.jobs.cancel(job_id)
    click.echo(f"{cancelled.cancelled} pending pair(s) cancelled; {_status_line(cancelled)}")


# --- labels and the report --------------------------------------------------------------------


@click.group()
def labels() -> None:
    """Import human labels (gold samples, annotations) over the API."""


@labels.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@project_option
@format_option
@column_option
@click.option(
    "--source", type=click.Choice(["gold", "import"]), default="gold", help="gold: calibrates the gate."
)
@click.option("--annotator", default=None, help="Annotator name for every label (default: the file's).")
@connection
def labels_import(
    client: Client,
    file: Path,
    project: str,
    file_format: str | None,
    columns: tuple[str, ...],
    source: str,
    annotator: str | None,
) -> None:
    """Import labels: client_id (or id) and label (or gold) per row; a list of labels (several
    annotators) gives one label each. --format dpo: the chosen side of DPO rows, as posted by
    `prelabel job post --format dpo`.

    \b
    Examples:
      prelabel labels import gold.jsonl --project faq
      prelabel labels import pandalm.jsonl --project faq --column label=annotations --source import
    """
    from prelabel import convert

    rows = _read(file, file_format)
    if file_format == "dpo":
        pairs = convert.dpo_to_pairs(rows, _columns(columns))
        found = convert.dpo_labels(pairs, source=source, annotator=annotator or "dpo-dataset")
        stored = client.labels.post(project, found, source=source)
    else:
        stored = client.labels.post(
            project, rows, columns=_columns(columns), source=source, annotator=annotator
        )
    click.echo(f"{stored.labels_created} label(s) stored, {stored.labels_existing} already there")


@click.command()
@project_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the HTML report here."
)
@json_option
@connection
def report(client: Client, project: str, out: Path | None, as_json: bool) -> None:
    """Print a project's calibration gate and labels (read only: nothing is refitted).

    `prelabel calibrate --report` refits first; this reads what the server holds.

    \b
    Example:
      prelabel report --project faq --out faq-report.html
    """
    state = client.calibration.state(project)
    gate = state.gate
    if as_json:
        _print_model(state)
    else:
        click.echo(
            f"project {state.project_id}: gate {gate.state} ({gate.version or 'no version'}) — {gate.reason}"
        )
        if gate.open:
            click.echo(
                f"  threshold {gate.threshold:.3f}, guaranteed agreement >= {gate.guaranteed_agreement:.3f}, "
                f"expected coverage {gate.expected_coverage:.1%}"
            )
        for row in gate.label_sources:
            click.echo(f"  {row.source}: {row.n} label(s), {'used' if row.used else 'not used'} — {row.why}")
    if out is not None:
        out.write_text(client.calibration.report_html(state.project_id), encoding="utf-8")
        click.echo(f"report written to {out}")
