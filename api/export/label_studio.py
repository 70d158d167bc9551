"""Label Studio tasks for a Pairwise template: the judges' label as a prediction, the human
labels as annotations.

``tasks.json`` is a JSON list of tasks (Label Studio's import format: ``data``, ``predictions``,
``annotations``, each with a ``result`` list); ``label_config.xml`` is the labelling config the
tasks fit: a ``Pairwise`` control over the two responses (left = A, right = B), a ``Choices``
control for the strength of the preference (a tie selects no side) and a ``Choices`` control for
a human's flags (both responses bad, safety concern).

Every task's predictions and annotations validate with Label Studio's SDK
(``LabelInterface(config).validate_prediction``; tests/test_export_tools.py checks each one). That
validator wants a region's ``to_name`` to be one of the objects its control names: a ``pairwise``
region names the first response's Text tag (``response_a``, the object the SDK itself picks for a
control over several), not the control's own name (which the SDK refuses).

A project with aspects (issue 23) adds one question per aspect: a header with the aspect's
rubric and a ``Choices`` control ``aspect_<name>`` over its scale; the panel's aspect labels
are part of the prediction and each human's of their annotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from api.export.manifest import Counts, write_json_list
from api.export.rows import DatasetDescription, ExportRow, HumanAnswer, RowHashes, read_json_lines
from api.schemas import Aspect
from judge.verdicts import to_side

TASKS = "tasks.json"
CONFIG = "label_config.xml"
PAIRWISE = "preference"
STRENGTH = "strength"
FLAGS = "flags"
LEFT, RIGHT = "response_a", "response_b"  # the Text tags the Pairwise control compares
STRONG, WEAK, TIE = "much better", "slightly better", "tie"
BOTH_BAD, SAFETY = "both responses bad", "safety concern"

LABEL_CONFIG = f"""<View>
  <Header value="Which response answers the prompt better?"/>
  <Text name="prompt" value="$prompt"/>
  <Pairwise name="{PAIRWISE}" toName="{LEFT},{RIGHT}"/>
  <Text name="{LEFT}" value="${LEFT}"/>
  <Text name="{RIGHT}" value="${RIGHT}"/>
  <Choices name="{STRENGTH}" toName="prompt" choice="single" showInline="true">
    <Choice value="{STRONG}"/>
    <Choice value="{WEAK}"/>
    <Choice value="{TIE}"/>
  </Choices>
  <Choices name="{FLAGS}" toName="prompt" choice="multiple" showInline="true">
    <Choice value="{BOTH_BAD}"/>
    <Choice value="{SAFETY}"/>
  </Choices>
</View>
"""


# An aspect's answers: five-point, or a side on a three-way scale.
ASPECT_CHOICES: dict[str, str] = {
    "A>>B": "A much better", "A>B": "A better", "tie": "tie", "B>A": "B better", "B>>A": "B much better",
}  # fmt: skip
THREE_WAY = {"A>>B": "A>B", "B>>A": "B>A"}


def label_config(aspects: tuple[Aspect, ...] = ()) -> str:
    """The labelling config: :data:`LABEL_CONFIG`, plus a question per aspect."""
    if not aspects:
        return LABEL_CONFIG
    questions = []
    for aspect in aspects:
        labels = [v for k, v in ASPECT_CHOICES.items() if aspect.scale == "five_point" or k not in THREE_WAY]
        choices = "".join(f"\n    <Choice value={quoteattr(v)}/>" for v in labels)
        header = f"{aspect.name}: {' '.join(aspect.description.split())}".rstrip(": ")
        questions.append(
            f"  <Header value={quoteattr(header)}/>\n"
            f'  <Choices name="aspect_{aspect.name}" toName="prompt" choice="single" showInline="true">'
            f"{choices}\n  </Choices>\n"
        )
    return LABEL_CONFIG.replace("</View>\n", "".join(questions) + "</View>\n")


def aspect_result(
    labels: Mapping[str, str | None] | None, aspects: tuple[Aspect, ...]
) -> list[dict[str, Any]]:
    """Per-aspect labels as ``choices`` regions, one per aspect answered."""
    out = []
    for aspect in aspects:
        label = (labels or {}).get(aspect.name)
        if label not in ASPECT_CHOICES:
            continue
        if aspect.scale == "three_way":
            label = THREE_WAY.get(label, label)
        value = {"choices": [ASPECT_CHOICES[label]]}
        out.append(
            {"from_name": f"aspect_{aspect.name}", "to_name": "prompt", "type": "choices", "value": value}
        )
    return out


def result(label: str | None) -> list[dict[str, Any]]:
    """A five-point label as a Label Studio ``result`` list (empty for no label)."""
    side = to_side(label, strict=False)
    if side is None:
        return []
    strength = {"A": STRONG if label == "A>>B" else WEAK, "B": STRONG if label == "B>>A" else WEAK}.get(
        side, TIE
    )
    out: list[dict[str, Any]] = []
    if side in ("A", "B"):
        out.append(
            {
                "from_name": PAIRWISE,
                "to_name": LEFT,
                "type": "pairwise",
                "value": {"selected": "left" if side == "A" else "right"},
            }
        )
    out.append(
        {"from_name": STRENGTH, "to_name": "prompt", "type": "choices", "value": {"choices": [strength]}}
    )
    return out


def _flags(human: HumanAnswer) -> list[dict[str, Any]]:
    """The human's flags as a ``flags`` region (none when no flag is set)."""
    chosen = [name for name, on in ((BOTH_BAD, human.both_bad), (SAFETY, human.safety_flag)) if on]
    if not chosen:
        return []
    return [{"from_name": FLAGS, "to_name": "prompt", "type": "choices", "value": {"choices": chosen}}]


def _annotation(human: HumanAnswer, aspects: tuple[Aspect, ...] = ()) -> dict[str, Any]:
    return {
        "result": result(human.label) + _flags(human) + aspect_result(human.aspects, aspects),
        "ground_truth": human.source == "gold",
        "was_cancelled": False,
        "created_at": human.created_at,
        "meta": {
            "label_id": human.label_id,
            "annotator": human.annotator,
            "source": human.source,
            "both_bad": human.both_bad,
            "safety_flag": human.safety_flag,
        },
    }


def task(row: ExportRow, aspects: tuple[Aspect, ...] = ()) -> dict[str, Any]:
    final = row.final
    predictions = []
    if row.judge_label is not None and to_side(row.judge_label, strict=False) is not None:
        predictions.append(
            {
                "model_version": f"{row.decision_version or 'routing-v0'}",
                "score": row.judge_confidence,
                "result": result(row.judge_label) + aspect_result(row.judge_aspects, aspects),
            }
        )
    extra = {"aspects": {n: f["label"] for n, f in row.aspects.items()}} if row.aspects is not None else {}
    return {
        "data": {
            "prompt": row.prompt,
            "response_a": row.response_a,
            "response_b": row.response_b,
            "pair_id": row.pair_id,
            "client_id": row.client_id,
            "split": row.split,
            "route": row.route,
            "both_bad": row.both_bad,
            "safety_incident": row.safety_incident,
            "final_label": final.label,
            "label_source": final.source,
            "provenance": final.provenance(),
            "metadata": row.metadata,
            **extra,  # each aspect's final label; none without aspects
        },
        "predictions": predictions,
        "annotations": [_annotation(h, aspects) for h in row.humans],
    }


def write(
    rows: Iterable[ExportRow], directory: Path, hashes: RowHashes, counts: Counts, about: DatasetDescription
) -> list[str]:
    """Write ``tasks.json`` (streamed, one task per line inside the list) and ``label_config.xml``."""
    (directory / CONFIG).write_text(label_config(about.aspects), encoding="utf-8")
    write_json_list(directory / TASKS, rows, lambda row: task(row, about.aspects), hashes, counts)
    return [TASKS, CONFIG]


def final_labels(directory: Path) -> Iterator[tuple[int, str | None]]:
    """(pair id, final label) of every task this format wrote to ``directory``."""
    yield from read_json_lines(directory / TASKS, lambda r: (r["data"]["pair_id"], r["data"]["final_label"]))
