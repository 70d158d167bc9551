"""Load and validate files in the recorded-judgments format (JSON lines).

One object per line: {"id", "source"?, "prompt", "response_a", "response_b", "gold"?,
"annotations"?: [{"annotator"?, "label": "A"|"B"|"tie"}] (or a plain list of labels, see
:func:`_annotations`), "judgments":
[{"judge", "order": "ab"|"ba", "verdict": "A"|"B"|"tie"|"invalid", "confidence"?, "raw"?,
"aspects"?: {"<aspect name>": "A"|"B"|"tie"|"invalid"}}]}. ``aspects`` (optional, issue 23): the
judge's verdict on each aspect, same terms as ``verdict``; a replay judge asked an aspect its
file does not hold answers it unreadably (``invalid``), and a file without any replays as before.
Human labels come as one ``gold`` or as several ``annotations`` (each person's label; whoever
aggregates them decides how: the service takes the majority and calls a split a tie).
Verdicts are about the ORIGINAL response_a / response_b whatever order they were shown in.
Unknown top-level keys are kept in ``extra``; unknown judgment keys are ignored. A JSON scalar where
a text belongs (PandaLM has ``true`` for the answer "True") becomes its Python ``str``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from judge.verdicts import INVALID, ORDERS, to_five_point, to_side

RECORDED_VERDICTS = ("A", "B", "tie", INVALID)
GOLD_LABELS = ("A", "B", "tie")
_PAIR_KEYS = {"id", "source", "prompt", "response_a", "response_b", "gold", "annotations", "judgments"}


class RecordedFormatError(ValueError):
    """A recorded-judgments file has bad lines; ``errors`` lists every one ("path:line: problem")."""

    def __init__(self, path: str | Path, errors: list[str]) -> None:
        self.path = str(path)
        self.errors = errors
        shown = "\n  ".join(errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} problem(s) in recorded-judgments file {path}:\n  {shown}{more}")


@dataclass
class RecordedJudgment:
    judge: str
    order: str  # "ab" | "ba": display order
    verdict: str  # "A" | "B" | "tie" | "invalid", about the original response_a / response_b
    confidence: float | None = None
    raw: str | None = None
    aspects: dict[str, str] | None = None  # aspect name -> "A" | "B" | "tie" | "invalid"


@dataclass
class RecordedPair:
    id: str
    source: str
    prompt: str
    response_a: str
    response_b: str
    gold: str | None
    judgments: list[RecordedJudgment]
    extra: dict[str, object] = field(default_factory=dict)
    annotations: list[tuple[str, str]] = field(default_factory=list)  # (annotator, label)

    def human_labels(self) -> list[tuple[str, str]]:
        """(annotator, label) of every human label: the annotations, else the gold label."""
        if self.annotations:
            return self.annotations
        return [("gold", self.gold)] if self.gold is not None else []


def recorded_to_five_point(verdict: str) -> str:
    """A recorded three-way verdict ("A", "B", "tie", "invalid") as a five-point verdict.

    :func:`judge.verdicts.to_five_point`, strict: a recorded file holds only these four words.
    """
    if verdict not in RECORDED_VERDICTS:
        raise ValueError(f"not a recorded verdict: {verdict!r}")
    return to_five_point(verdict)


def judges_in(pairs: Iterable[RecordedPair]) -> list[str]:
    """Every judge name that appears, sorted."""
    return sorted({j.judge for p in pairs for j in p.judgments})


def _judgment(raw: object, where: str, problems: list[str]) -> RecordedJudgment | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: judgment must be an object")
        return None
    before = len(problems)
    judge, order, verdict = raw.get("judge"), raw.get("order"), raw.get("verdict")
    confidence, text = raw.get("confidence"), raw.get("raw")
    if not isinstance(judge, str) or not judge:
        problems.append(f"{where}: 'judge' must be a non-empty string, got {judge!r}")
    if order not in ORDERS:
        problems.append(f"{where}: 'order' must be one of {ORDERS}, got {order!r}")
    if verdict not in RECORDED_VERDICTS:
        problems.append(f"{where}: 'verdict' must be one of {RECORDED_VERDICTS}, got {verdict!r}")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0)
    ):
        problems.append(f"{where}: 'confidence' must be a number in [0, 1] or absent, got {confidence!r}")
    if text is not None and not isinstance(text, str):
        problems.append(f"{where}: 'raw' must be a string or absent")
    aspects = raw.get("aspects")
    if aspects is not None and not (
        isinstance(aspects, dict)
        and all(isinstance(k, str) and k and v in RECORDED_VERDICTS for k, v in aspects.items())
    ):
        problems.append(
            f"{where}: 'aspects' must be an object of aspect name -> one of {RECORDED_VERDICTS}, or absent"
        )
    if len(problems) > before:
        return None
    conf = float(confidence) if isinstance(confidence, int | float) else None
    raw_text = text if isinstance(text, str) else None
    kept = {str(k): str(v) for k, v in aspects.items()} if isinstance(aspects, dict) else None
    return RecordedJudgment(str(judge), str(order), str(verdict), conf, raw_text, kept)


def _pair(obj: object, where: str, problems: list[str]) -> RecordedPair | None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected a JSON object")
        return None
    before = len(problems)
    pair_id = obj.get("id")
    if isinstance(pair_id, int) and not isinstance(pair_id, bool):
        pair_id = str(pair_id)
    if not isinstance(pair_id, str) or not pair_id:
        problems.append(f"{where}: 'id' must be a non-empty string, got {pair_id!r}")
    texts: list[str] = []
    coerced: list[str] = []
    for key in ("prompt", "response_a", "response_b"):
        value = obj.get(key)
        if isinstance(value, bool | int | float):
            # Real files have JSON true where the text was "True" (PandaLM); keep them usable.
            value = str(value)
            coerced.append(key)
        if isinstance(value, str):
            texts.append(value)
        else:
            problems.append(f"{where}: '{key}' must be a string" + ("" if key in obj else " (missing)"))
    source = obj.get("source", "")
    if not isinstance(source, str):
        problems.append(f"{where}: 'source' must be a string or absent")
    gold = obj.get("gold")
    if gold is not None and gold not in GOLD_LABELS:
        problems.append(f"{where}: 'gold' must be one of {GOLD_LABELS} or absent, got {gold!r}")
    annotations = _annotations(obj.get("annotations"), where, problems)
    raw_judgments = obj.get("judgments")
    if not isinstance(raw_judgments, list):
        problems.append(f"{where}: 'judgments' must be a list" + ("" if "judgments" in obj else " (missing)"))
        raw_judgments = []
    judgments: list[RecordedJudgment] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(raw_judgments):
        judgment = _judgment(raw, f"{where}: judgments[{i}]", problems)
        if judgment is None:
            continue
        if (judgment.judge, judgment.order) in seen:
            # Replay must have one answer per (pair, judge, order).
            dup = f"duplicate judge {judgment.judge!r} in order {judgment.order!r}"
            problems.append(f"{where}: judgments[{i}]: {dup}")
        seen.add((judgment.judge, judgment.order))
        judgments.append(judgment)
    if len(problems) > before:
        return None
    extra = {k: v for k, v in obj.items() if k not in _PAIR_KEYS}
    if coerced:
        extra["coerced_to_text"] = coerced  # JSON scalars turned into text, e.g. true -> "True"
    prompt, response_a, response_b = texts
    return RecordedPair(
        str(pair_id), str(source), prompt, response_a, response_b, gold, judgments, extra, annotations
    )


# PandaLM's integer labels (its raw test set, and files converted from it): 0 = tie, 1 = the
# first response, 2 = the second. The one integer convention read: a 0/1 "index of the winner"
# file would read differently, so any other integer is refused rather than guessed.
INTEGER_LABELS: dict[int, str] = {0: "tie", 1: "A", 2: "B"}


def _annotations(raw: object, where: str, problems: list[str]) -> list[tuple[str, str]]:
    """(annotator, side) of each annotation. Three shapes load: objects
    ``{"annotator"?, "label"}``, a plain list of labels (``["A", "B>>A", "tie"]``: "A"/"B"/"tie"
    or five-point) and a plain list of PandaLM integers (``[1, 2, 0]``, see ``INTEGER_LABELS``);
    a plain list's items get the ids annotator1, annotator2, ... A list mixing these shapes is
    refused (which convention its items follow cannot be told)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{where}: 'annotations' must be a list or absent, got {type(raw).__name__}")
        return []
    kinds = {_annotation_kind(item) for item in raw}
    if len(kinds) > 1:
        problems.append(
            f"{where}: 'annotations' mixes {', '.join(sorted(kinds))}: use one shape per list "
            "(objects {'annotator', 'label'}, label strings, or PandaLM integers 0/1/2)"
        )
        return []
    out: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        annotator, label = _annotation(item, i)
        if label is None or not isinstance(annotator, str) or not annotator:
            problems.append(f"{where}: annotations[{i}]: {_ANNOTATION_SHAPES}, got {item!r}")
            continue
        if annotator in {a for a, _ in out}:
            problems.append(f"{where}: annotations[{i}]: duplicate annotator {annotator!r}")
            continue
        out.append((annotator, label))
    return out


_ANNOTATION_SHAPES = (
    f"expected {{'annotator': name, 'label': label}}, a label ({', '.join(GOLD_LABELS)} or a "
    f"five-point verdict) or a PandaLM integer ({', '.join(map(str, INTEGER_LABELS))})"
)


def _annotation_kind(item: object) -> str:
    if isinstance(item, dict):
        return "objects"
    if isinstance(item, bool):  # a JSON true is no label, and no integer either
        return "booleans"
    if isinstance(item, int):
        return "integers"
    if isinstance(item, str):
        return "strings"
    return f"{type(item).__name__} values"


def _annotation(item: object, i: int) -> tuple[object, str | None]:
    """(annotator, side) of one annotation; side None when it is no label."""
    default = f"annotator{i + 1}"
    if isinstance(item, dict):
        return item.get("annotator", default), _label_side(item.get("label"))
    if isinstance(item, int) and not isinstance(item, bool):
        return default, INTEGER_LABELS.get(item)
    return default, _label_side(item)


def _label_side(label: object) -> str | None:
    """The side ("A", "B" or "tie") of a three-way or five-point label; None for anything else."""
    if not isinstance(label, str) or label == INVALID:
        return None
    try:
        return to_side(label)
    except ValueError:
        return None


def parse_recorded_lines(lines: Iterable[str], path: str | Path = "<lines>") -> list[RecordedPair]:
    """Validate every line; raise :class:`RecordedFormatError` listing all bad lines at once."""
    pairs: list[RecordedPair] = []
    problems: list[str] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines (e.g. a trailing newline) are allowed
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        pair = _pair(obj, where, problems)
        if pair is None:
            continue
        if pair.id in first_line_of:
            problems.append(f"{where}: duplicate id {pair.id!r} (first on line {first_line_of[pair.id]})")
            continue
        first_line_of[pair.id] = number
        pairs.append(pair)
    if problems:
        raise RecordedFormatError(path, problems)
    return pairs


def load_recorded(path: str | Path) -> list[RecordedPair]:
    """Load a recorded-judgments JSONL file (UTF-8)."""
    with open(path, encoding="utf-8") as handle:
        return parse_recorded_lines(handle, path)
