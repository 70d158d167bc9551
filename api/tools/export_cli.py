"""``prelabel export`` (and ``prelabel bench export``): the dataset out, from the command line.

Registered on the ``prelabel`` group by api/tools/cli.py. Only click is imported here; the
export code loads inside the commands, so ``prelabel --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from api.export import FORMATS  # the format list only: no writer loads here


def _engine(database_url: str | None) -> Any:
    from api.db import make_engine, upgrade
    from api.settings import get_settings

    engine = make_engine(database_url or get_settings().database_url)
    upgrade(engine)
    return engine


def _project(engine: Any, name_or_id: str) -> Any:
    from sqlmodel import Session, select

    from api.models import Project

    with Session(engine, expire_on_commit=False) as session:
        query = select(Project).where(Project.name == name_or_id)
        project = session.exec(query).first()
        if project is None and name_or_id.isdigit():
            project = session.get(Project, int(name_or_id))
    if project is None:
        raise click.ClickException(f"no project {name_or_id!r}")
    return project


@click.group(invoke_without_command=True)
@click.option("--project", default=None, help="Project name (or id) to export.")
@click.option("--format", "export_format", type=click.Choice(FORMATS), default=None, help="Export format.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to create for the export (must not exist).",
)
@click.option(
    "--split",
    type=click.Choice(["train", "frozen_eval", "all"]),
    default="train",
    help="Pairs of this split (all: every split, kept apart).",
)
@click.option(
    "--min-source",
    type=click.Choice(["human", "auto"]),
    default=None,
    help="Only pairs whose final label is human (human) or any final label (auto); default every pair.",
)
@click.option("--force", is_flag=True, help="Export past the promotion gate's refusals (needs --reason).")
@click.option("--reason", default=None, help="Why --force: recorded in the manifest and the audit log.")
@click.option(
    "--redact/--no-redact",
    default=None,
    help="Replace personal data and secrets by typed tokens (default: the project's routing.redact_exports).",
)
@click.option("--database-url", default=None, help="Database to read (default: PRELABEL_DATABASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print the export (with its manifest) as JSON.")
@click.option(
    "--push-to-hub",
    "hub_repo",
    metavar="REPO",
    default=None,
    help="hf format only: then upload it to this Hugging Face Hub dataset repo (token from HF_TOKEN).",
)
@click.option("--private", is_flag=True, help="With --push-to-hub: create the Hub repo private.")
@click.pass_context
def export(
    ctx: click.Context,
    project: str | None,
    export_format: str | None,
    out: Path | None,
    split: str,
    min_source: str | None,
    force: bool,
    reason: str | None,
    redact: bool | None,
    database_url: str | None,
    as_json: bool,
    hub_repo: str | None,
    private: bool,
) -> int:
    """Export a project's dataset (dpo, hf, label-studio, argilla) with a manifest.

    Each export is an immutable, numbered snapshot: data files, manifest.json (counts,
    calibration in force, audited agreement, hashes), README.md (dataset card) and
    rows.sha256. A train export is refused while the promotion gate says no, unless
    --force --reason "...". Texts are exported as posted unless --redact (personal data
    and secrets become typed tokens); the manifest's "redacted" says which.
    `prelabel export diff A B` compares two snapshots.

    \b
    Examples:
      prelabel export --project demo-replay --format dpo --out ./dpo-v1
      prelabel export --project demo-replay --format hf --split all --out ./hf-v1
      prelabel export --project NAME --format dpo --out ./forced --force --reason "pilot run"
      prelabel export --project NAME --format label-studio --out ./shareable --redact
      prelabel export --project NAME --format hf --out ./hf-v1 --push-to-hub me/prefs --private
      prelabel export diff 1 2 --project demo-replay
    """
    if ctx.invoked_subcommand is not None:
        return 0
    _check_arguments(project, export_format, out, force, reason, hub_repo, private)
    assert project is not None and export_format is not None and out is not None  # checked above
    from api.export.snapshots import ExportRefused, ExportRequest, create_export, export_view
    from api.settings import get_settings

    engine = _engine(database_url)
    chosen = _project(engine, project)
    request = ExportRequest(
        format=export_format,
        split=split,
        min_source=min_source,
        force=force,
        reason=reason,
        redact=redact if redact is not None else chosen.routing_settings().redact_exports,
    )
    try:
        made = create_export(engine, chosen, request, export_dir=Path(get_settings().export_dir), out=out)
    except ExportRefused as exc:
        lines = "\n".join(f"  - {r['code']}: {r['message']}" for r in exc.reasons)
        raise click.ClickException(
            f"export refused by the promotion gate:\n{lines}\n(--force --reason to override)"
        ) from None
    except (FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        print(json.dumps({**export_view(made), "path": made.path}, default=str))
    else:
        counts = made.manifest["counts"]
        print(
            f"export {made.number} of project {chosen.name!r} ({made.format}): "
            f"{made.rows} rows in {made.path}"
        )
        print(f"  by source {counts['by_source']}; left out {counts['excluded'] or 'none'}")
        print(f"  held back (frozen-eval duplicates): {made.manifest['held_back']['total']}")
        redacted = "yes" if made.manifest["redacted"] else "no (raw texts: may hold personal data)"
        print(f"  redacted: {redacted}")
    if hub_repo is not None:
        from api.export.hf import push_to_hub

        url = push_to_hub(Path(made.path), hub_repo, token=os.environ["HF_TOKEN"], private=private)
        print(f"  pushed to {url}" + (" (private)" if private else ""), file=sys.stderr if as_json else None)
    return 0


def _check_arguments(
    project: str | None,
    export_format: str | None,
    out: Path | None,
    force: bool,
    reason: str | None,
    hub_repo: str | None,
    private: bool,
) -> None:
    """Usage errors, raised before any export work starts."""
    if project is None or export_format is None or out is None:
        given = {"--project": project, "--format": export_format, "--out": out}
        missing = [name for name, value in given.items() if value is None]
        raise click.UsageError(f"missing {', '.join(missing)} (or a subcommand: diff)")
    if force and not (reason or "").strip():
        raise click.UsageError("--force needs --reason: it is recorded in the manifest and the audit log")
    if private and hub_repo is None:
        raise click.UsageError("--private goes with --push-to-hub REPO")
    if hub_repo is not None:
        if export_format != "hf":
            raise click.UsageError(f"--push-to-hub uploads an hf export, not {export_format}")
        if not os.environ.get("HF_TOKEN"):
            raise click.UsageError("--push-to-hub needs a Hugging Face token in HF_TOKEN")


@export.command()
@click.argument("a")
@click.argument("b")
@click.option("--project", default=None, help="Project name (or id) when A and B are export numbers.")
@click.option("--database-url", default=None, help="Database to read (default: PRELABEL_DATABASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print every pair id as JSON, not just the counts.")
def diff(a: str, b: str, project: str | None, database_url: str | None, as_json: bool) -> int:
    """Compare two exports: pairs added, removed and relabelled from A to B.

    A and B are export directories, or export numbers of --project.

    \b
    Examples:
      prelabel export diff ./dpo-v1 ./dpo-v2
      prelabel export diff 1 3 --project demo-replay --json
    """
    from api.export.snapshots import diff_snapshots, get_export

    def directory(ref: str) -> Path:
        if not ref.isdigit():
            path = Path(ref)
            if not (path / "manifest.json").is_file():
                raise click.ClickException(f"{ref}: not an export directory (no manifest.json)")
            return path
        if project is None:
            raise click.UsageError(f"{ref} is an export number: name its project with --project")
        from sqlmodel import Session

        engine = _engine(database_url)
        chosen = _project(engine, project)
        with Session(engine) as session:
            found = get_export(session, chosen.id, int(ref))
        if found is None:
            raise click.ClickException(f"project {chosen.name!r} has no export {ref}")
        return Path(found.path)

    result = diff_snapshots(directory(a), directory(b))
    if as_json:
        print(json.dumps(result))
    else:
        counts = result["counts"]
        print(
            f"{a} -> {b}: {counts['added']} added, {counts['removed']} removed, "
            f"{counts['relabelled']} relabelled"
        )
        for change in result["relabelled"][:20]:
            print(f"  pair {change['pair_id']}: {change['from']} -> {change['to']}")
        if counts["relabelled"] > 20:
            print(f"  ... {counts['relabelled'] - 20} more (--json for all)")
    return 0


@click.command("export")
@click.option(
    "--pairs", type=click.IntRange(1, 10_000_000), default=100_000, help="Judged pairs in the project."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of aligned key: value lines."
)
def bench_export_command(pairs: int, as_json: bool) -> int:
    """Export every format from a project of --pairs judged pairs: seconds, memory, rows/s.

    The project is inserted in bulk (mock-judge decisions, some human labels) on a temporary
    SQLite file; the hf export is reloaded with `datasets`.

    \b
    Example:
      prelabel bench export --pairs 100000 --json
    """
    from api.tools.bench_export import bench_export

    result = bench_export(pairs)
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return 0
