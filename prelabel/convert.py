"""Importers: rows from the places datasets live, into the pairs and labels the API reads.

Pure functions (no HTTP): the client posts what they return, and you can look first.

* :func:`rows` — a list of dicts, a pandas ``DataFrame`` or a ``datasets.Dataset`` as plain dicts.
* :func:`read_file` — JSONL / JSON / parquet from disk.
* :func:`to_pairs` — rows to pairs under a column mapping (``{"prompt": "question", ...}``).
* :func:`dpo_to_pairs` — DPO-style ``prompt, chosen, rejected`` (or HH-RLHF transcripts) to pairs,
  the chosen reply put on side A or B at random per pair (seeded by the pair's id, so the same
  file always gives the same pairs) and recorded as ``metadata["dpo_chosen"]``.
* :func:`to_labels` / :func:`dpo_labels` — human labels (gold, annotations) to the labels API.

A mapping names, for each API field, the column holding it; fields not named are read from the
column of their own name. ``client_id`` falls back to an ``id`` column, then to a hash of the
texts (so posting the same file twice is recognised as the same pairs).

>>> pairs = to_pairs([{"q": "2+2?", "a1": "4", "a2": "5"}],
...                  columns={"prompt": "q", "response_a": "a1", "response_b": "a2"})
>>> pairs[0]["prompt"], pairs[0]["response_b"], len(pairs[0]["client_id"])
('2+2?', '5', 24)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from judge.content import content_hash

FORMATS = ("jsonl", "json", "parquet")
HH_ASSISTANT = "\n\nAssistant:"  # HH-RLHF: a transcript's turns are "\n\nHuman: ..." / "\n\nAssistant: ..."
# Optional LabelIn fields copied from a row when it has them (under their own name or mapped).
_LABEL_EXTRAS = ("both_bad", "safety_flag", "rationale", "annotator", "idempotency_key", "honeypot")


def rows(data: Any) -> list[dict[str, Any]]:
    """``data`` as a list of plain dicts: a list/iterable of mappings, a pandas ``DataFrame`` or a
    ``datasets.Dataset``. Missing values (NaN, None) become None; numpy scalars plain Python.

    >>> rows([{"a": 1, "b": float("nan")}])
    [{'a': 1, 'b': None}]
    """
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        records: Iterable[Any] = data.to_dict("records")
    else:  # a list, a datasets.Dataset (iterates as dicts), a generator
        records = data
    out = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"row {i} is {type(record).__name__}, not a mapping of column to value")
        out.append({str(k): _plain(v) for k, v in record.items()})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and type(value).__module__ == "numpy":  # np.int64, np.float32 ...
        return _plain(value.item())
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # arrays from parquet lists
        return [_plain(v) for v in value.tolist()]
    return value


def read_file(path: str | Path, format: str | None = None) -> list[dict[str, Any]]:
    """The rows of a JSONL, JSON (a list, or an object holding one list) or parquet file;
    ``format`` defaults to the file's extension (``.ndjson`` reads as JSONL)."""
    path = Path(path)
    format = format or {".ndjson": "jsonl", ".jsonl": "jsonl", ".json": "json"}.get(
        path.suffix, path.suffix[1:]
    )
    if format == "parquet":
        import pandas as pd  # only for parquet files

        return rows(pd.read_parquet(path))
    if format == "jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            return rows(json.loads(line) for line in lines if line.strip())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON Lines ({exc})") from None
    if format == "json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # {"pairs": [...]}, {"labels": [...]}: the one list inside
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise ValueError(f"{path}: a JSON object must hold exactly one list of rows")
            data = lists[0]
        return rows(data)
    raise ValueError(f"{path}: unknown format {format!r} (known: {', '.join(FORMATS)})")


def _column(row: Mapping[str, Any], i: int, columns: Mapping[str, str], name: str) -> Any:
    column = columns.get(name, name)
    if column not in row:
        raise ValueError(f"row {i} has no column {column!r} for {name} (columns: {sorted(row)})")
    return row[column]


def _client_id(row: Mapping[str, Any], columns: Mapping[str, str], texts: Sequence[str]) -> str:
    column = columns.get("client_id") or next((c for c in ("client_id", "id") if c in row), None)
    if column is not None and row.get(column) is not None:
        return str(row[column])
    return content_hash(*texts)[:24]


def _metadata(row: Mapping[str, Any], columns: Mapping[str, str], extra: Sequence[str]) -> dict[str, Any]:
    value = row.get(columns.get("metadata", "metadata"))
    if isinstance(value, str):  # a metadata column written as a JSON string (some HF datasets)
        value = json.loads(value)
    metadata = dict(value) if isinstance(value, Mapping) else {}
    metadata.update({name: row.get(name) for name in extra})
    return metadata


def to_pairs(
    data: Any,
    columns: Mapping[str, str] | None = None,
    *,
    metadata_columns: Sequence[str] = (),
    split: str | None = None,
) -> list[dict[str, Any]]:
    """Pairs for ``POST .../jobs`` from rows (anything :func:`rows` reads).

    ``columns`` maps API fields (client_id, prompt, response_a, response_b, metadata, split) to
    column names; ``metadata_columns`` are copied into each pair's metadata; ``split`` sets the
    split of every pair (else a ``split`` column, else the API's default, train).
    Other columns are not sent (a ``gold`` column stays on your side).
    """
    columns = dict(columns or {})
    pairs = []
    for i, row in enumerate(rows(data)):
        texts = [_column(row, i, columns, name) for name in ("prompt", "response_a", "response_b")]
        pair: dict[str, Any] = {"client_id": _client_id(row, columns, texts)}
        pair.update(zip(("prompt", "response_a", "response_b"), texts, strict=True))
        if metadata := _metadata(row, columns, metadata_columns):
            pair["metadata"] = metadata
        if (value := split or row.get(columns.get("split", "split"))) is not None:
            pair["split"] = value
        pairs.append(pair)
    return pairs


def chosen_side(client_id: str, seed: int = 0) -> str:
    """The side ("A" or "B") a DPO pair's chosen reply is shown on: a hash of the pair's id and
    ``seed``, so it is random across pairs and the same every time for one pair.

    >>> chosen_side("pair-1"), chosen_side("pair-1")
    ('B', 'B')
    """
    return "AB"[hashlib.sha256(f"{seed}\x00{client_id}".encode()).digest()[0] & 1]


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH-RLHF's convention, full transcripts that differ only in the last Assistant turn, as
    ``(prompt, chosen reply, rejected reply)``.

    >>> split_transcripts("\\n\\nHuman: hi\\n\\nAssistant: hello", "\\n\\nHuman: hi\\n\\nAssistant: go away")
    ('Human: hi', 'hello', 'go away')
    """
    cut = chosen.rfind(HH_ASSISTANT)
    if cut < 0 or not rejected.startswith(chosen[: cut + len(HH_ASSISTANT)]):
        raise ValueError(
            "no prompt column, and chosen/rejected are not HH-RLHF transcripts sharing all but the "
            "last '\\n\\nAssistant:' turn: map the prompt column with columns={'prompt': ...}"
        )
    prefix = chosen[: cut + len(HH_ASSISTANT)]
    return chosen[:cut].strip(), chosen[len(prefix) :].strip(), rejected[len(prefix) :].strip()


def dpo_to_pairs(
    data: Any, columns: Mapping[str, str] | None = None, *, seed: int = 0
) -> list[dict[str, Any]]:
    """Pairs from DPO-style rows (``prompt``, ``chosen``, ``rejected``; mapped by ``columns``).

    Each pair shows the chosen reply as A or B at random (:func:`chosen_side`) and records the
    side as ``metadata["dpo_chosen"]``, so the dataset's own preference can be compared with the
    judges' or imported as gold (:func:`dpo_labels`). Without a prompt column, ``chosen`` and
    ``rejected`` are read as HH-RLHF transcripts (:func:`split_transcripts`).

    >>> [p["metadata"]["dpo_chosen"] for p in dpo_to_pairs(
    ...     [{"id": i, "prompt": "p", "chosen": "good", "rejected": "bad"} for i in range(6)])]
    ['A', 'A', 'A', 'B', 'A', 'A']
    """
    columns = dict(columns or {})
    pairs = []
    for i, row in enumerate(rows(data)):
        chosen, rejected = (_column(row, i, columns, name) for name in ("chosen", "rejected"))
        if columns.get("prompt", "prompt") in row:
            prompt = _column(row, i, columns, "prompt")
        else:
            prompt, chosen, rejected = split_transcripts(str(chosen), str(rejected))
        client_id = _client_id(row, columns, [prompt, chosen, rejected])
        side = chosen_side(client_id, seed)
        a, b = (chosen, rejected) if side == "A" else (rejected, chosen)
        metadata = {**_metadata(row, columns, ()), "dpo_chosen": side}
        pairs.append(
            {"client_id": client_id, "prompt": prompt, "response_a": a, "response_b": b, "metadata": metadata}
        )
    return pairs


def dpo_labels(
    pairs: Iterable[Mapping[str, Any]], *, source: str = "gold", annotator: str = "dpo-dataset"
) -> list[dict[str, Any]]:
    """The dataset's own preference of :func:`dpo_to_pairs` pairs as labels (the chosen side).

    >>> dpo_labels([{"client_id": "c1", "metadata": {"dpo_chosen": "B"}}])
    [{'client_id': 'c1', 'label': 'B', 'source': 'gold', 'annotator': 'dpo-dataset'}]
    """
    return [
        {
            "client_id": p["client_id"],
            "label": p["metadata"]["dpo_chosen"],
            "source": source,
            "annotator": annotator,
        }
        for p in pairs
        if "dpo_chosen" in (p.get("metadata") or {})
    ]


def to_labels(
    data: Any, columns: Mapping[str, str] | None = None, *, source: str = "gold", annotator: str | None = None
) -> list[dict[str, Any]]:
    """Labels for ``POST .../labels`` from rows: ``client_id`` (or ``id``) and ``label`` (or
    ``gold``, or ``annotations``), mapped by ``columns``; both_bad, safety_flag, rationale, annotator,
    idempotency_key and honeypot are copied when present. A label column holding a list
    (several annotators: ``["A", "tie"]`` or ``[{"annotator": "x", "label": "A"}, ...]``) gives
    one label per entry. Rows whose label is empty are skipped (unlabelled pairs).

    >>> [(x["client_id"], x["label"]) for x in to_labels([{"id": 7, "gold": "A"}, {"id": 8, "gold": None}])]
    [('7', 'A')]
    >>> to_labels([{"id": 9, "annotations": ["A", "tie"]}], {"label": "annotations"}, source="import")[-1]
    {'client_id': '9', 'label': 'tie', 'source': 'import', 'annotator': 'annotator2'}
    """
    columns = dict(columns or {})
    labels: list[dict[str, Any]] = []
    for i, row in enumerate(rows(data)):
        column = columns.get("label") or next(
            (c for c in ("label", "gold", "annotations") if c in row), "label"
        )
        value = _column(row, i, {"label": column}, "label")
        if value is None or value == "" or value == []:
            continue
        id_column = columns.get("client_id") or ("client_id" if "client_id" in row else "id")
        client_id = str(_column(row, i, {"client_id": id_column}, "client_id"))
        extras = {f: row[columns.get(f, f)] for f in _LABEL_EXTRAS if row.get(columns.get(f, f)) is not None}
        if annotator is not None:
            extras["annotator"] = annotator
        entries = value if isinstance(value, list) else [value]
        for n, entry in enumerate(entries):
            label = {"client_id": client_id, "label": entry, "source": source, **extras}
            if isinstance(entry, Mapping):  # {"annotator": ..., "label": ...}
                label.update({k: v for k, v in entry.items() if k in ("label", "annotator")})
            elif isinstance(value, list):  # a plain list of labels: one annotator each
                label.setdefault("annotator", f"annotator{n + 1}")
            labels.append(label)
    return labels
