"""DPO JSON lines: ``{prompt, chosen, rejected, ...metadata}`` per pair with a preference.

A pair becomes a DPO pair only when its final label prefers a side; ties, pairs a human called
both bad and safety incidents never do (the manifest counts each reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from api.export.manifest import Counts
from api.export.rows import DatasetDescription, ExportRow, RowHashes, canonical, read_json_lines

FILE = "data.jsonl"
NO_FINAL_LABEL = "no_final_label"


def exclusion(row: ExportRow) -> str | None:
    """Why a row is not a DPO pair (None: it is one)."""
    if row.final.label is None:
        return NO_FINAL_LABEL
    if row.safety_incident:
        return "safety_incident"
    if row.both_bad:
        return "both_bad"
    if row.final.side not in ("A", "B"):
        return "tie"
    return None


def record(row: ExportRow) -> dict[str, Any]:
    """The DPO record of a row that is a DPO pair."""
    a_wins = row.final.side == "A"
    return {
        "prompt": row.prompt,
        "chosen": row.response_a if a_wins else row.response_b,
        "rejected": row.response_b if a_wins else row.response_a,
        "pair_id": row.pair_id,
        "client_id": row.client_id,
        "split": row.split,
        "label": row.final.label,
        "strength": "strong" if ">>" in (row.final.label or "") else "weak",
        "label_source": row.final.source,
        "provenance": row.final.provenance(),
        "metadata": row.metadata,
    }


def write(
    rows: Iterable[ExportRow], directory: Path, hashes: RowHashes, counts: Counts, about: DatasetDescription
) -> list[str]:
    """Write ``data.jsonl`` under ``directory``; returns the data files written."""
    with (directory / FILE).open("wb") as out:
        for row in rows:
            reason = exclusion(row)
            if reason is not None:
                counts.exclude(row, reason)
                continue
            line = canonical(record(row))
            out.write(line + b"\n")
            hashes.add(row.pair_id, line)
            counts.add(row)
    return [FILE]


def final_labels(directory: Path) -> Iterator[tuple[int, str | None]]:
    """(pair id, final label) of every row this format wrote to ``directory``."""
    yield from read_json_lines(directory / FILE, lambda r: (r["pair_id"], r["label"]))
