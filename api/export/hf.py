"""A Hugging Face ``datasets.DatasetDict`` (one split per pair split) saved to disk, and parquet.

Rows are written in batches of ``BATCH`` (memory stays flat) to one parquet file per split and
to the arrow files of ``DatasetDict.save_to_disk``'s layout (written by ``datasets``' own
ArrowWriter, with the two small JSON files save_to_disk adds): the export loads with
``datasets.load_from_disk(<export>/dataset)``. Columns are declared in :func:`features`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from api.export.dpo import exclusion
from api.export.dpo import record as dpo_record
from api.export.manifest import Counts
from api.export.rows import DatasetDescription, ExportRow, RowHashes, canonical

DATASET_DIR = "dataset"
PARQUET_DIR = "parquet"
ARROW_FILE = "data-00000-of-00001.arrow"
BATCH = 2000

# Column -> datasets feature type name; nullable strings are None where they do not apply.
COLUMNS: dict[str, str] = {
    "pair_id": "int64",
    "client_id": "string",
    "split": "string",
    "prompt": "string",
    "response_a": "string",
    "response_b": "string",
    "label": "string",
    "side": "string",
    "label_source": "string",
    "label_method": "string",
    "human_label_ids": "list<int64>",
    "human_sources": "list<string>",
    "chosen": "string",  # the DPO view: None when the row is no DPO pair
    "rejected": "string",
    "dpo_excluded": "string",  # why not (tie, both_bad, safety_incident, no_final_label)
    "judge_label": "string",
    "judge_confidence": "float64",
    "route": "string",
    "calibration_version": "string",
    "guaranteed_agreement": "float64",
    "judges": "list<string>",
    "prompt_version": "string",
    "both_bad": "bool",
    "safety_incident": "bool",
    "metadata": "string",  # the pair's metadata as JSON text (free-form)
}


def features() -> Any:
    """The declared ``datasets.Features`` of every split."""
    from datasets import Features, Sequence, Value

    def feature(kind: str) -> Any:
        if kind.startswith("list<"):
            return Sequence(Value(kind[5:-1]))
        return Value(kind)

    return Features({name: feature(kind) for name, kind in COLUMNS.items()})


def record(row: ExportRow) -> dict[str, Any]:
    reason = exclusion(row)
    dpo = dpo_record(row) if reason is None else {"chosen": None, "rejected": None}
    final = row.final
    return {
        "pair_id": row.pair_id,
        "client_id": row.client_id,
        "split": row.split,
        "prompt": row.prompt,
        "response_a": row.response_a,
        "response_b": row.response_b,
        "label": final.label,
        "side": final.side,
        "label_source": final.source,
        "label_method": final.method,
        "human_label_ids": list(final.label_ids),
        "human_sources": list(final.human_sources),
        "chosen": dpo["chosen"],
        "rejected": dpo["rejected"],
        "dpo_excluded": reason,
        "judge_label": row.judge_label,
        "judge_confidence": row.judge_confidence,
        "route": row.route,
        "calibration_version": final.calibration_version,
        "guaranteed_agreement": final.guaranteed_agreement,
        "judges": list(final.judges),
        "prompt_version": final.prompt_version,
        "both_bad": row.both_bad,
        "safety_incident": row.safety_incident,
        "metadata": row.metadata_json,
    }


class _SplitWriter:
    """One split's rows, in batches, to its parquet file and to its ``datasets`` arrow file."""

    def __init__(self, directory: Path, split: str, feats: Any) -> None:
        import pyarrow.parquet as pq
        from datasets.arrow_writer import ArrowWriter

        self.split = split
        self.schema = feats.arrow_schema
        self.parquet = pq.ParquetWriter(directory / PARQUET_DIR / f"{split}.parquet", self.schema)
        (directory / DATASET_DIR / split).mkdir(parents=True)
        self.arrow = ArrowWriter(features=feats, path=str(directory / DATASET_DIR / split / ARROW_FILE))
        self.buffer: list[dict[str, Any]] = []
        self.rows = 0

    def add(self, rec: dict[str, Any]) -> None:
        self.buffer.append(rec)
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.buffer:
            table = pa.Table.from_pylist(self.buffer, schema=self.schema)
            self.parquet.write_table(table)
            self.arrow.write_table(table)
            self.rows += len(self.buffer)
            self.buffer = []

    def close(self) -> None:
        self.flush()
        self.parquet.close()
        self.arrow.finalize()
        self.arrow.close()


def _save_to_disk_files(directory: Path, split: str, feats: Any, fingerprint: str) -> None:
    """The two JSON files ``Dataset.save_to_disk`` writes next to a split's arrow file (the
    arrow file itself is written in batches, never loaded whole)."""
    from datasets import DatasetInfo

    state: dict[str, Any] = {
        "_data_files": [{"filename": ARROW_FILE}],
        "_fingerprint": fingerprint,
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": split,
    }
    (directory / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    info = asdict(DatasetInfo(features=feats))
    (directory / "dataset_info.json").write_text(
        json.dumps({key: info[key] for key in sorted(info)}, indent=2), encoding="utf-8"
    )


def write(
    rows: Iterable[ExportRow], directory: Path, hashes: RowHashes, counts: Counts, about: DatasetDescription
) -> list[str]:
    """Write ``parquet/<split>.parquet`` and ``dataset/`` (``datasets``' save_to_disk layout)
    under ``directory``."""
    feats = features()
    (directory / PARQUET_DIR).mkdir()
    (directory / DATASET_DIR).mkdir()
    writers: dict[str, _SplitWriter] = {}
    try:
        for row in rows:
            rec = record(row)
            if row.split not in writers:
                writers[row.split] = _SplitWriter(directory, row.split, feats)
            writers[row.split].add(rec)
            hashes.add(row.pair_id, canonical(rec))
            counts.add(row)
        if not writers:  # an empty export still loads: one empty split
            writers["train"] = _SplitWriter(directory, "train", feats)
    finally:
        for writer in writers.values():
            writer.close()
    for split in writers:
        _save_to_disk_files(directory / DATASET_DIR / split, split, feats, uuid.uuid4().hex[:16])
    (directory / DATASET_DIR / "dataset_dict.json").write_text(
        json.dumps({"splits": sorted(writers)}), encoding="utf-8"
    )
    return [PARQUET_DIR, DATASET_DIR]


def final_labels(directory: Path) -> Iterator[tuple[int, str | None]]:
    """(pair id, final label) of every row this format wrote to ``directory``."""
    import pyarrow.parquet as pq

    for path in sorted((directory / PARQUET_DIR).glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(columns=["pair_id", "label"]):
            pair_ids, labels = batch.column("pair_id").to_pylist(), batch.column("label").to_pylist()
            yield from zip(pair_ids, labels, strict=True)
