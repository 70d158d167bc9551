"""An Argilla (v2) preference dataset: settings and records, in ``Dataset.to_disk``'s layout.

``.argilla/settings.json`` declares the fields prompt / response_a / response_b, one rating
question (1 = A much better ... 5 = B much better) and the metadata; ``.argilla/dataset.json``
the dataset; ``records.json`` a JSON list of records, with the judges' label as a suggestion
and the human labels as responses. ``rg.Dataset.from_disk`` imports the directory.

An Argilla response belongs to a user of the server it is logged to, by id. Reviewers here are
account names, so each gets a stable id (a UUID5 of the name: the same reviewer has the same id
in every export) and ``users.json`` lists them: ``[{"annotator", "username", "id"}]``. Create those
users with those ids before importing (``rg.User(username=u["username"], id=u["id"],
role="annotator", password=...).create()``; the SDK creates a user with the id it is given), or
the server refuses the responses. ``username`` is the account name where Argilla accepts it
(letters, digits, ``-``, ``_``), else a cleaned name with the id's first 8 digits.
tests/test_export_tools.py reads the export with the SDK's own classes, records and responses
validated against the dataset's settings, no part of the SDK replaced.

A project with aspects (issue 23) adds one rating question per aspect (``aspect_<name>``, same
1-5 scale, its rubric as the description; not required: a gold set may label some aspects only),
with the panel's aspect labels as suggestions and each human's as their responses.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from api.export.manifest import Counts, write_json_list
from api.export.rows import DatasetDescription, ExportRow, RowHashes, read_json_lines
from api.schemas import Aspect

SETTINGS = ".argilla/settings.json"
DATASET = ".argilla/dataset.json"
RECORDS = "records.json"
USERS = "users.json"
QUESTION = "preference"
RATING: dict[str, int] = {"A>>B": 1, "A>B": 2, "tie": 3, "B>A": 4, "B>>A": 5}
# Annotators are names here; Argilla responses need a user id: a stable UUID per name.
_ANNOTATORS = uuid.UUID("6f0b6f2c-6b8e-4c55-9a55-70726c61626c")


def user_id(annotator: str) -> str:
    """The Argilla user id of a reviewer account name (stable across exports)."""
    return str(uuid.uuid5(_ANNOTATORS, annotator))


def username(annotator: str) -> str:
    """An Argilla username for a reviewer account name (see the module docstring)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", annotator).lstrip("-_")
    if cleaned == annotator:
        return annotator
    return f"{cleaned or 'user'}-{user_id(annotator)[:8]}"


def users(annotators: Iterable[str]) -> list[dict[str, str]]:
    """``users.json``: every reviewer behind a response, sorted by account name."""
    return [{"annotator": a, "username": username(a), "id": user_id(a)} for a in sorted(set(annotators))]


def _text_field(name: str, title: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "required": True,
        "description": None,
        "settings": {"type": "text", "use_markdown": True},
        "type": "text",
    }


def _terms(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "visible_for_annotators": True,
        "settings": {"type": "terms", "values": None, "visible_for_annotators": True},
    }


def _aspect_question(aspect: Aspect) -> dict[str, Any]:
    return {
        "name": f"aspect_{aspect.name}",
        "title": f"{aspect.name}: which response is better?",
        "description": (aspect.description or aspect.name) + " (1 = A much better ... 5 = B much better)",
        "required": False,
        "settings": {"type": "rating", "options": [{"value": v} for v in range(1, 6)]},
        "type": "rating",
    }


def settings(guidelines: str | None, aspects: tuple[Aspect, ...] = ()) -> dict[str, Any]:
    """The dataset settings as ``rg.Settings.to_json`` writes them."""
    return {
        "guidelines": guidelines or "Rate which response answers the prompt better.",
        "fields": [
            _text_field("prompt", "Prompt"),
            _text_field("response_a", "Response A"),
            _text_field("response_b", "Response B"),
        ],
        "questions": [
            {
                "name": QUESTION,
                "title": "Which response is better?",
                "description": "1 = A much better, 2 = A better, 3 = tie, 4 = B better, 5 = B much better",
                "required": True,
                "settings": {"type": "rating", "options": [{"value": v} for v in range(1, 6)]},
                "type": "rating",
            },
            *(_aspect_question(a) for a in aspects),
        ],
        "vectors": [],
        "metadata": [_terms("split"), _terms("route"), _terms("label_source")],
        "allow_extra_metadata": True,
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "mapping": None,
    }


def dataset(name: str, guidelines: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "guidelines": guidelines,
        "allow_extra_metadata": True,
        "status": "ready",
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "metadata": None,
    }


def record(row: ExportRow) -> dict[str, Any]:
    suggestions: dict[str, Any] = {}
    agent = f"prelabel judges ({row.decision_version or 'routing-v0'})"
    if row.judge_label in RATING:
        suggestions[QUESTION] = {
            "value": RATING[row.judge_label],
            "score": row.judge_confidence,
            "agent": agent,
        }
    for name, label in (row.judge_aspects or {}).items():
        if label in RATING:
            suggestions[f"aspect_{name}"] = {"value": RATING[label], "score": None, "agent": agent}
    responses = [
        {
            "value": RATING[h.label],
            "user_id": user_id(h.annotator),
            "status": "submitted",
        }
        for h in row.humans
        if h.label in RATING
    ]
    by_question: dict[str, Any] = {QUESTION: responses} if responses else {}
    for h in row.humans if responses else ():
        for name, label in (h.aspects or {}).items():
            if label in RATING and h.label in RATING:
                answer = {"value": RATING[label], "user_id": user_id(h.annotator), "status": "submitted"}
                by_question.setdefault(f"aspect_{name}", []).append(answer)
    return {
        "id": str(row.pair_id),
        "fields": {"prompt": row.prompt, "response_a": row.response_a, "response_b": row.response_b},
        "metadata": {
            "split": row.split,
            "route": row.route or "undecided",
            "label_source": row.final.source or "none",
            "client_id": row.client_id,
            "final_label": row.final.label,
            "provenance": row.final.provenance(),
            **(
                {"aspects": {n: f["label"] for n, f in row.aspects.items()}}
                if row.aspects is not None
                else {}
            ),
        },
        "suggestions": suggestions,
        "responses": by_question,
        "vectors": {},
        "status": "completed" if responses else "pending",
    }


def write(
    rows: Iterable[ExportRow],
    directory: Path,
    hashes: RowHashes,
    counts: Counts,
    about: DatasetDescription,
) -> list[str]:
    """Write the settings, the dataset, ``records.json`` (streamed) and ``users.json`` under
    ``directory``."""
    (directory / ".argilla").mkdir()
    (directory / SETTINGS).write_text(
        json.dumps(settings(about.guidelines, about.aspects), indent=1), encoding="utf-8"
    )
    (directory / DATASET).write_text(
        json.dumps(dataset(about.name, about.guidelines), indent=1), encoding="utf-8"
    )
    annotators: set[str] = set()

    def noting_annotators(row: ExportRow) -> dict[str, Any]:
        annotators.update(h.annotator for h in row.humans if h.label in RATING)
        return record(row)

    write_json_list(directory / RECORDS, rows, noting_annotators, hashes, counts)
    (directory / USERS).write_text(json.dumps(users(annotators), indent=1), encoding="utf-8")
    return [SETTINGS, DATASET, RECORDS, USERS]


def final_labels(directory: Path) -> Iterator[tuple[int, str | None]]:
    """(pair id, final label) of every record this format wrote to ``directory``."""
    yield from read_json_lines(directory / RECORDS, lambda r: (int(r["id"]), r["metadata"]["final_label"]))
