"""DPO JSON lines: ``{prompt, chosen, rejected, ...metadata}`` per pair with a preference.

A pair becomes a DPO pair only when its final label prefers a side; ties, pairs a human called
both bad and safety incidents never do (the manifest counts each reason).

A project with aspects (issue 23) chooses what "preferred" means with the export's ``dpo_by``:
the final label (``"overall"``, the default), the aspects' final labels combined with their
declared weights (``"weighted"``; a pair missing an aspect of positive weight is no DPO pair)
or one aspect's final label (its name). Every record then carries each aspect's final label.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from api.export.manifest import Counts
from api.export.rows import DatasetDescription, ExportRow, RowHashes, canonical, read_json_lines
from judge.aspects import combine_weighted
from judge.verdicts import INVALID, side

FILE = "data.jsonl"
NO_FINAL_LABEL = "no_final_label"
OVERALL = DatasetDescription(name="")  # the default: preferred by the final label


def preferred(row: ExportRow, about: DatasetDescription = OVERALL) -> tuple[str | None, str | None]:
    """(label, side) a DPO pair is chosen by under ``about.dpo_by`` (see the module docstring)."""
    if about.dpo_by == "overall" or row.aspects is None:
        return row.final.label, row.final.side
    if about.dpo_by == "weighted":
        labels = {name: final["label"] or INVALID for name, final in row.aspects.items()}
        combined = combine_weighted(labels, {a.name: a.weight for a in about.aspects})
        return (None, None) if combined == INVALID else (combined, side(combined))
    final = row.aspects.get(about.dpo_by) or {}
    return final.get("label"), final.get("side")


def exclusion(row: ExportRow, about: DatasetDescription = OVERALL) -> str | None:
    """Why a row is not a DPO pair (None: it is one)."""
    label, chosen = preferred(row, about)
    if label is None:
        return NO_FINAL_LABEL
    if row.safety_incident:
        return "safety_incident"
    if row.both_bad:
        return "both_bad"
    if chosen not in ("A", "B"):
        return "tie"
    return None


def record(row: ExportRow, about: DatasetDescription = OVERALL) -> dict[str, Any]:
    """The DPO record of a row that is a DPO pair."""
    label, chosen = preferred(row, about)
    a_wins = chosen == "A"
    aspects = {}
    if row.aspects is not None:
        aspects = {"preferred_by": about.dpo_by, "aspects": {n: f["label"] for n, f in row.aspects.items()}}
    return {
        "prompt": row.prompt,
        "chosen": row.response_a if a_wins else row.response_b,
        "rejected": row.response_b if a_wins else row.response_a,
        "pair_id": row.pair_id,
        "client_id": row.client_id,
        "split": row.split,
        "label": label,
        "strength": "strong" if ">>" in (label or "") else "weak",
        "label_source": row.final.source,
        "provenance": row.final.provenance(),
        "metadata": row.metadata,
        **aspects,  # none without aspects: the record of before
    }


def write(
    rows: Iterable[ExportRow], directory: Path, hashes: RowHashes, counts: Counts, about: DatasetDescription
) -> list[str]:
    """Write ``data.jsonl`` under ``directory``; returns the data files written."""
    with (directory / FILE).open("wb") as out:
        for row in rows:
            reason = exclusion(row, about)
            if reason is not None:
                counts.exclude(row, reason)
                continue
            line = canonical(record(row, about))
            out.write(line + b"\n")
            hashes.add(row.pair_id, line)
            counts.add(row)
    return [FILE]


def final_labels(directory: Path) -> Iterator[tuple[int, str | None]]:
    """(pair id, final label) of every row this format wrote to ``directory``."""
    yield from read_json_lines(directory / FILE, lambda r: (r["pair_id"], r["label"]))
