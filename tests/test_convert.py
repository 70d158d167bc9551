"""The client's importers (prelabel/convert.py): pure functions, on made-up rows and on the
shared real files (HH-RLHF, PandaLM, LLMBar recorded format)."""

from __future__ import annotations

import doctest
import json
from collections import Counter
from pathlib import Path

import datasets
import pandas as pd
import pytest

from api.schemas import LabelIn, PairIn
from prelabel import _calls as calls
from prelabel import aclient, client, convert, errors
from tests.helpers import SHARED_DATA

HH = SHARED_DATA / "hh-rlhf" / "harmless_base_test.jsonl"
PANDALM = SHARED_DATA / "pandalm" / "testset_3annotators.jsonl"
SAMPLE = Path(__file__).resolve().parents[1] / "api" / "sample_data" / "llmbar_sample.jsonl"


def _head(path: Path, n: int) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(next(lines)) for _ in range(n)]


def test_the_docstring_examples_hold() -> None:
    """Runnable examples run; those that need a server are marked +SKIP (kept correct by review)."""
    for module in (convert, calls, client, aclient, errors):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_the_same_rows_from_a_list_a_dataframe_a_dataset_and_files(tmp_path: Path) -> None:
    rows = [{"id": i, "q": f"q{i}", "a": f"a{i}", "b": f"b{i}", "score": 0.5 * i} for i in range(4)]
    mapping = {"prompt": "q", "response_a": "a", "response_b": "b"}
    expected = convert.to_pairs(rows, mapping, metadata_columns=["score"])
    assert [p["client_id"] for p in expected] == ["0", "1", "2", "3"]
    assert expected[1]["metadata"] == {"score": 0.5} and "split" not in expected[1]
    pd.DataFrame(rows).to_parquet(tmp_path / "rows.parquet")
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "rows.json").write_text(json.dumps({"pairs": rows}))
    sources = [
        pd.DataFrame(rows),
        datasets.Dataset.from_list(rows),
        *(convert.read_file(tmp_path / f"rows.{ext}") for ext in ("parquet", "jsonl", "json")),
    ]
    for source in sources:
        assert convert.to_pairs(source, mapping, metadata_columns=["score"]) == expected
    for pair in expected:  # what the API reads
        PairIn.model_validate(pair)


def test_pairs_without_an_id_get_a_stable_hash_and_missing_values_are_none() -> None:
    frame = pd.DataFrame([{"prompt": "p", "response_a": "x", "response_b": "y", "extra": float("nan")}])
    first, again = convert.to_pairs(frame), convert.to_pairs(frame.copy())
    assert first == again and len(first[0]["client_id"]) == 24
    assert convert.rows(frame) == [{"prompt": "p", "response_a": "x", "response_b": "y", "extra": None}]
    with_meta = convert.to_pairs(
        [{"prompt": "p", "response_a": "x", "response_b": "y", "metadata": '{"k": 1}'}]
    )
    assert with_meta[0]["metadata"] == {"k": 1}  # a metadata column written as a JSON string


def test_bad_input_names_the_row_and_the_column(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"row 1 has no column 'answer' for response_a"):
        rows = [{"prompt": "p", "answer": "a", "response_b": "b"}, {"prompt": "p", "response_b": "b"}]
        convert.to_pairs(rows, {"response_a": "answer"})
    with pytest.raises(ValueError, match="row 0 is str"):
        convert.rows(["not a row"])
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match="not JSON Lines"):
        convert.read_file(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        convert.read_file(tmp_path / "rows.csv")


def test_dpo_rows_put_the_chosen_reply_on_a_random_recorded_side() -> None:
    rows = [
        {"id": f"d{i}", "prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(400)
    ]
    pairs = convert.dpo_to_pairs(rows)
    assert pairs == convert.dpo_to_pairs(list(reversed(rows)))[::-1]  # per pair, not per position
    sides = Counter(p["metadata"]["dpo_chosen"] for p in pairs)
    assert 160 <= sides["A"] <= 240  # about half each (a binomial(400, 0.5) is within ±40 w.p. > 0.999)
    for pair in pairs:
        chosen = pair["response_a"] if pair["metadata"]["dpo_chosen"] == "A" else pair["response_b"]
        assert chosen.startswith("good")
    reseeded = convert.dpo_to_pairs(rows, seed=1)
    assert [p["metadata"] for p in reseeded] != [p["metadata"] for p in pairs]
    labels = convert.dpo_labels(pairs)
    assert [label["label"] for label in labels] == [p["metadata"]["dpo_chosen"] for p in pairs]
    for label in labels[:5]:
        LabelIn.model_validate(label)


def test_the_shared_hh_rlhf_file_and_its_transcript_convention() -> None:
    rows = _head(HH, 200)
    pairs = convert.dpo_to_pairs(rows)
    assert [p["client_id"] for p in pairs] == [r["id"] for r in rows]
    assert all(PairIn.model_validate(p) for p in pairs)
    # The original HH-RLHF rows: chosen and rejected are whole transcripts, no prompt column.
    transcripts = [
        {side: f"\n\n{r['prompt']}\n\nAssistant: {r[side]}" for side in ("chosen", "rejected")} for r in rows
    ]
    split = convert.dpo_to_pairs(transcripts)
    for ours, theirs in zip(split, pairs, strict=True):
        assert ours["prompt"] == theirs["prompt"].strip()
        assert {ours["response_a"], ours["response_b"]} == {
            theirs["response_a"].strip(),
            theirs["response_b"].strip(),
        }
    with pytest.raises(ValueError, match="not HH-RLHF transcripts"):
        convert.dpo_to_pairs([{"chosen": "Human: a\n\nAssistant: b", "rejected": "Human: c\n\nAssistant: d"}])


def test_labels_from_gold_columns_and_annotator_lists() -> None:
    recorded = convert.to_labels(_head(SAMPLE, 20))  # the recorded-judgments format: id + gold
    assert [(x["client_id"], x["label"], x["source"]) for x in recorded[:1]] == [
        (_head(SAMPLE, 1)[0]["id"], _head(SAMPLE, 1)[0]["gold"], "gold")
    ]
    panda = convert.to_labels(_head(PANDALM, 10), source="import")  # annotations: [{annotator, label}]
    assert len(panda) == 30 and {x["annotator"] for x in panda} == {"annotator1", "annotator2", "annotator3"}
    plain = convert.to_labels([{"client_id": "c", "annotations": ["A", "tie", "B"]}])
    assert [(x["annotator"], x["label"]) for x in plain] == [
        ("annotator1", "A"),
        ("annotator2", "tie"),
        ("annotator3", "B"),
    ]
    for label in [*recorded, *panda, *plain]:
        LabelIn.model_validate(label)
    named = convert.to_labels([{"pid": "c", "verdict": "A>B", "rationale": "clearer"}],
                              {"client_id": "pid", "label": "verdict"}, annotator="ana")  # fmt: skip
    assert named == [
        {"client_id": "c", "label": "A>B", "source": "gold", "rationale": "clearer", "annotator": "ana"}
    ]
    with pytest.raises(ValueError, match="no column 'id' for client_id"):
        convert.to_labels([{"label": "A"}])
