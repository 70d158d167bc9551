"""A Hugging Face ``datasets.DatasetDict`` (one split per pair split) saved to disk, and parquet.

Rows are written in batches of ``BATCH`` (memory stays flat) to one parquet file per split and
to the arrow files of ``DatasetDict.save_to_disk``'s layout (written by ``datasets``' own
ArrowWriter, with the two small JSON files save_to_disk adds): the export loads with
``datasets.load_from_disk(<export>/dataset)``. Columns are declared in :func:`features`.

``metadata`` is a struct whose fields are the union of every row's metadata keys
(:class:`MetadataSchema`): a row without a key has null there; a key whose values are all
booleans, integers, numbers or strings gets that type; a key whose values are lists or objects,
or differ in type from row to row, holds each value as JSON text. The union is known only once
every row is read, so rows go first to an uncompressed arrow spool per split (metadata as JSON
text) and are converted batch by batch into the final files. With no metadata key at all the
column is null (parquet cannot store a struct without fields).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
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
    "metadata": "struct",  # the pair's metadata: the union of its keys, see MetadataSchema
}
SPOOL_DIR = ".spool"  # removed once the final files are written
_INT64 = range(-(2**63), 2**63)


class MetadataSchema:
    """The union of the metadata keys seen so far, with the kinds of value each key held."""

    def __init__(self) -> None:
        self.kinds: dict[str, set[str]] = {}

    def add(self, metadata: dict[str, Any]) -> None:
        for key, value in metadata.items():
            kinds = self.kinds.setdefault(key, set())  # a key only ever null is still a field
            if value is not None:
                kinds.add(_kind(value))

    def types(self) -> dict[str, str]:
        """Key -> ``datasets`` value type ("json": JSON text in a string), keys sorted."""
        out = {}
        for key in sorted(self.kinds):
            kinds = self.kinds[key] or {"string"}
            if kinds <= {"int64", "float64"}:
                out[key] = "float64" if "float64" in kinds else "int64"
            elif len(kinds) == 1 and kinds != {"json"}:
                (out[key],) = kinds
            else:
                out[key] = "json"
        return out

    def conform(self, metadata: dict[str, Any] | None, json_keys: frozenset[str]) -> dict[str, Any] | None:
        """One row's metadata as the struct holds it (the JSON keys as text)."""
        if not metadata or not json_keys:
            return metadata
        return {
            k: (json.dumps(v, ensure_ascii=False) if k in json_keys and v is not None else v)
            for k, v in metadata.items()
        }


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64" if value in _INT64 else "json"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "json"


def aspect_columns(names: Sequence[str]) -> dict[str, str]:
    """A project's aspect columns (issue 23): each aspect's final label and its source."""
    return {column: "string" for name in names for column in (f"aspect_{name}", f"aspect_{name}_source")}


def features(metadata: dict[str, str] | None = None, aspects: Sequence[str] = ()) -> Any:
    """The declared ``datasets.Features`` of every split, ``metadata`` being the types of the
    metadata struct's fields (:meth:`MetadataSchema.types`; no key: a null column); ``aspects``
    adds a column pair per aspect, before the metadata (none: the features of before)."""
    from datasets import Features, Sequence, Value

    def feature(kind: str) -> Any:
        if kind.startswith("list<"):
            return Sequence(Value(kind[5:-1]))
        if kind == "struct":
            if not metadata:
                return Value("null")
            return {k: Value("string" if t == "json" else t) for k, t in metadata.items()}
        return Value(kind)

    columns = {k: v for k, v in COLUMNS.items() if k != "metadata"}
    columns.update(aspect_columns(aspects), metadata=COLUMNS["metadata"])
    return Features({name: feature(kind) for name, kind in columns.items()})


def record(row: ExportRow, about: DatasetDescription | None = None) -> dict[str, Any]:
    about = about or DatasetDescription(name="")
    reason = exclusion(row, about)
    dpo = dpo_record(row, about) if reason is None else {"chosen": None, "rejected": None}
    aspects: dict[str, Any] = {}
    for name, on_aspect in (row.aspects or {}).items():
        aspects[f"aspect_{name}"], aspects[f"aspect_{name}_source"] = on_aspect["label"], on_aspect["source"]
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
        **aspects,
        "metadata": row.metadata,
    }


class _Spool:
    """First pass: one split's rows, metadata as JSON text, to an uncompressed arrow file."""

    def __init__(self, path: Path, schema: Any) -> None:
        import pyarrow as pa

        self.path, self.schema = path, schema
        self.writer = pa.ipc.new_file(str(path), schema)
        self.buffer: list[dict[str, Any]] = []

    def add(self, rec: dict[str, Any]) -> None:
        self.buffer.append(rec)
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.buffer:
            self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
            self.buffer = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


class _SplitWriter:
    """Second pass: one split's spooled batches, metadata as a struct, to its parquet file and
    to its ``datasets`` arrow file."""

    def __init__(self, directory: Path, split: str, feats: Any) -> None:
        import pyarrow.parquet as pq
        from datasets.arrow_writer import ArrowWriter

        self.schema = feats.arrow_schema
        self.parquet = pq.ParquetWriter(directory / PARQUET_DIR / f"{split}.parquet", self.schema)
        (directory / DATASET_DIR / split).mkdir(parents=True)
        self.arrow = ArrowWriter(features=feats, path=str(directory / DATASET_DIR / split / ARROW_FILE))

    def convert(self, spool: Path, schema: MetadataSchema, json_keys: frozenset[str]) -> None:
        import orjson
        import pyarrow as pa

        at = self.schema.get_field_index("metadata")
        kind = self.schema.field(at).type
        with pa.memory_map(str(spool)) as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                texts = batch.column(at).to_pylist()
                if pa.types.is_null(kind):
                    metadata = pa.nulls(len(texts))
                else:
                    rows = [schema.conform(orjson.loads(t) or {}, json_keys) for t in texts]
                    metadata = pa.array(rows, type=kind)
                columns = [metadata if c == at else batch.column(c) for c in range(batch.num_columns)]
                table = pa.Table.from_arrays(columns, schema=self.schema)
                self.parquet.write_table(table)
                self.arrow.write_table(table)

    def close(self) -> None:
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
    under ``directory``: the rows are spooled first, while the metadata schema is gathered."""
    import pyarrow as pa

    names = [a.name for a in about.aspects]
    spool_schema = features({"": "string"}, names).arrow_schema
    at = spool_schema.get_field_index("metadata")
    spool_schema = spool_schema.set(
        at, pa.field("metadata", pa.string())
    )  # JSON text until the union is known
    (directory / SPOOL_DIR).mkdir()
    metadata = MetadataSchema()
    spools: dict[str, _Spool] = {}
    try:
        for row in rows:
            rec = record(row, about)
            metadata.add(rec["metadata"])
            hashes.add(row.pair_id, canonical(rec))
            counts.add(row)
            rec["metadata"] = row.metadata_json
            if row.split not in spools:
                spools[row.split] = _Spool(directory / SPOOL_DIR / f"{len(spools)}.arrow", spool_schema)
            spools[row.split].add(rec)
        if not spools:  # an empty export still loads: one empty split
            spools["train"] = _Spool(directory / SPOOL_DIR / "0.arrow", spool_schema)
    finally:
        for spool in spools.values():
            spool.close()
    types = metadata.types()
    feats = features(types, names)
    (directory / PARQUET_DIR).mkdir()
    (directory / DATASET_DIR).mkdir()
    json_keys = frozenset(k for k, t in types.items() if t == "json")
    for split, spool in spools.items():
        writer = _SplitWriter(directory, split, feats)
        try:
            writer.convert(spool.path, metadata, json_keys)
        finally:
            writer.close()
        _save_to_disk_files(directory / DATASET_DIR / split, split, feats, uuid.uuid4().hex[:16])
    shutil.rmtree(directory / SPOOL_DIR)
    (directory / DATASET_DIR / "dataset_dict.json").write_text(
        json.dumps({"splits": sorted(spools)}), encoding="utf-8"
    )
    return [PARQUET_DIR, DATASET_DIR]


def final_labels(directory: Path) -> Iterator[tuple[int, str | None]]:
    """(pair id, final label) of every row this format wrote to ``directory``."""
    import pyarrow.parquet as pq

    for path in sorted((directory / PARQUET_DIR).glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(columns=["pair_id", "label"]):
            pair_ids, labels = batch.column("pair_id").to_pylist(), batch.column("label").to_pylist()
            yield from zip(pair_ids, labels, strict=True)


def push_to_hub(directory: Path, repo_id: str, *, token: str, private: bool = False) -> str:
    """Upload an hf export (its ``dataset/`` DatasetDict, every split) to the Hugging Face Hub
    with ``datasets``' own ``push_to_hub``; returns the dataset's URL. The Hub writes its own
    README (with the features); the export's dataset card stays in the export directory."""
    from datasets import load_from_disk

    dataset = load_from_disk(str(directory / DATASET_DIR))
    dataset.push_to_hub(repo_id, private=private, token=token)
    return f"https://huggingface.co/datasets/{repo_id}"
