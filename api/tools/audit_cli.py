"""``prelabel audit``: read and verify the tamper-evident audit log (api/audit.py)."""

from __future__ import annotations

import json
from typing import Any

import click

database_option = click.option(
    "--database-url", default=None, help="Database to read (default: PRELABEL_DATABASE_URL)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines of text.")


@click.group()
def audit() -> None:
    """Read and verify the tamper-evident audit log.

    \b
    Every label written, decision batch, refit, gate change, kill-switch, export and token
    created or revoked is an event holding the hash of the event before it.
    """


def _session(database_url: str | None) -> Any:
    from sqlalchemy import inspect
    from sqlmodel import Session

    from api.db import make_engine
    from api.settings import get_settings

    engine = make_engine(database_url or get_settings().database_url)
    if not inspect(engine).has_table("audit_event"):
        raise click.ClickException("this database has no audit log yet: run `prelabel db` first")
    return Session(engine)


@audit.command()
@database_option
@json_option
def verify(database_url: str | None, as_json: bool) -> int:
    """Recompute the hash chain and name the first broken event; exit code 1 if it is broken.

    \b
    Example:
      prelabel audit verify --database-url postgresql+psycopg://user@host/prelabel
    """
    from api.audit import verify as verify_chain

    with _session(database_url) as session:
        report = verify_chain(session)
    if as_json:
        print(json.dumps(report.as_dict()))
    elif report.broken is None:
        print(
            f"audit log intact: {report.events} events, last seq {report.last_seq}, hash {report.last_hash}"
        )
    else:
        print(f"audit log BROKEN at seq {report.broken.seq}: {report.broken.message}")
    return 0 if report.ok else 1


@audit.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, help="Events to show.")
@click.option("--project", "project_id", type=int, default=None, help="Only this project's events (id).")
@database_option
@json_option
def tail(limit: int, project_id: int | None, database_url: str | None, as_json: bool) -> int:
    """Show the latest events, oldest first.

    \b
    Example:
      prelabel audit tail --limit 50 --project 1 --json
    """
    from api.audit import event_view, recent_events

    with _session(database_url) as session:
        events = [event_view(e) for e in recent_events(session, limit=limit, project_id=project_id)]
    for event in events:
        if as_json:
            print(json.dumps(event))
            continue
        project = "-" if event["project_id"] is None else event["project_id"]
        when, kind, subject = event["created_at"], event["kind"], event["subject"]
        print(f"{event['seq']:>8} {when} {kind:<16} project {project} {subject}")
    return 0
