"""Recorded-judgments files whose ``annotations`` come in other datasets' shapes: plain lists of
labels (three-way or five-point), PandaLM's integers, and the shapes that are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge.recorded import INTEGER_LABELS, RecordedFormatError, load_recorded

BASE = {"prompt": "p", "response_a": "a", "response_b": "b", "judgments": []}


def write(tmp_path: Path, annotations: list[Any]) -> Path:
    """A hand-written file: one record per annotations value, on lines 1, 2, ..."""
    path = tmp_path / "other.jsonl"
    lines = [json.dumps({"id": str(i), **BASE, "annotations": a}) for i, a in enumerate(annotations)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_plain_label_lists_load_one_annotator_per_item(tmp_path: Path) -> None:
    path = write(tmp_path, [["A>B", "A>>B", "tie"], ["B", "tie"], ["B>>A"], []])
    pairs = load_recorded(path)
    assert [p.annotations for p in pairs] == [
        [("annotator1", "A"), ("annotator2", "A"), ("annotator3", "tie")],
        [("annotator1", "B"), ("annotator2", "tie")],
        [("annotator1", "B")],
        [],
    ]
    assert pairs[1].human_labels() == [("annotator1", "B"), ("annotator2", "tie")]


def test_pandalm_integer_lists_load_by_its_convention(tmp_path: Path) -> None:
    pairs = load_recorded(write(tmp_path, [[1, 2, 1], [0, 0, 2]]))
    assert [label for _, label in pairs[0].annotations] == ["A", "B", "A"]
    assert [label for _, label in pairs[1].annotations] == [INTEGER_LABELS[0], "tie", "B"]
    assert [a for a, _ in pairs[0].annotations] == ["annotator1", "annotator2", "annotator3"]


def test_objects_accept_five_point_labels_too(tmp_path: Path) -> None:
    (pair,) = load_recorded(write(tmp_path, [[{"annotator": "x", "label": "A>>B"}, {"label": "B>A"}]]))
    assert pair.annotations == [("x", "A"), ("annotator2", "B")]


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ([1, "A"], "'annotations' mixes integers, strings"),
        ([{"label": "A"}, "B"], "'annotations' mixes objects, strings"),
        (["A", None], "'annotations' mixes NoneType values, strings"),
        ([3], "annotations[0]: expected"),
        ([True], "annotations[0]: expected"),
        ([1.0], "annotations[0]: expected"),
        (["A", "better"], "annotations[1]: expected"),
        (["invalid"], "annotations[0]: expected"),
        ([[1, 2]], "annotations[0]: expected"),
        ("A>B", "'annotations' must be a list or absent, got str"),
        ({"annotator1": "A"}, "'annotations' must be a list or absent, got dict"),
    ],
)
def test_ambiguous_or_unknown_shapes_are_refused_naming_the_line(
    tmp_path: Path, annotations: Any, message: str
) -> None:
    # A good record first: the error must name line 2, the bad one.
    path = write(tmp_path, [["A"], annotations])
    with pytest.raises(RecordedFormatError) as raised:
        load_recorded(path)
    (error,) = raised.value.errors
    assert error.startswith(f"{path}:2: ") and message in error, error
