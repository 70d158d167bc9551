"""The words prelabel stores and shows: routes, reasons, label sources, export formats.

One definition of each, as StrEnums (a member *is* its string, so stored rows, JSON and
comparisons with plain strings keep working), plus the reviewer-facing text of every reason
and the one deterministic uniform draw that audits, samples and pre-label display use.

>>> Route.REVIEW == "review", Reason.AUDIT in ["audit"]
(True, True)
>>> 0 <= unit_draw("audit|1|cal-1") < 1
True
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal


class _Word(StrEnum):
    def __repr__(self) -> str:  # read like the string it is (doctests, logs, reports)
        return repr(self.value)


class Route(_Word):
    """Where a pair goes after routing."""

    AUTO_ACCEPT = "auto_accept"
    REVIEW = "review"
    INCIDENT = "incident"


class PairState(_Word):
    """Where a pair is in judging: waiting, leased by a worker, routed, or cancelled.

    ``cancelled`` (POST /v1/jobs/{id}/cancel) is terminal for the worker: nothing claims it,
    and a worker's late result on it is not stored (the writes check the state). A retry of
    the job resumes it (back to ``pending``).
    """

    PENDING = "pending"
    JUDGING = "judging"
    DONE = "done"
    CANCELLED = "cancelled"


class Reason(_Word):
    """Why a pair was routed where it was (a decision stores every reason that applies)."""

    JUDGE_FAILED = "judge_failed"
    ORDER_SENSITIVE = "order_sensitive"
    JUDGES_DISAGREE = "judges_disagree"
    LOW_CONFIDENCE = "low_confidence"
    SAFETY_FLAG = "safety_flag"
    INJECTION_SUSPECTED = "injection_suspected"
    BOTH_BAD = "both_bad"
    GATE_CLOSED = "gate_closed"
    # A required aspect (issue 23) does not clear: which one, and why, is in Decision.aspects.
    ASPECT_UNCLEAR = "aspect_unclear"
    AUDIT = "audit"
    CALIBRATION_SAMPLE = "calibration_sample"
    # Set by the review queue, not by routing: a reviewer escalated the pair.
    REVIEWER_SAFETY_FLAG = "reviewer_safety_flag"
    # Set by the adjudication queue: reviewers disagreed in a batch with low agreement.
    DISPUTED = "disputed"


# Why a pair is in front of a reviewer, in words.
REASON_TEXT: dict[str, str] = {
    Reason.JUDGE_FAILED: "A judge call failed, so the panel's view is incomplete.",
    Reason.ORDER_SENSITIVE: "A judge changed its verdict when the two responses were swapped.",
    Reason.JUDGES_DISAGREE: "The judges on the panel disagree with each other.",
    Reason.LOW_CONFIDENCE: "The panel's majority is weak.",
    Reason.SAFETY_FLAG: "Possible safety issue, flagged by a judge or by the safety pre-check.",
    Reason.INJECTION_SUSPECTED: (
        "A response seems to address the judge (instructions, a verdict, fake prompt markers or "
        "hidden text): the judges' verdict may be what the text told them. Judge it yourself."
    ),
    Reason.BOTH_BAD: "The judges think both responses may be bad.",
    Reason.GATE_CLOSED: "Automatic acceptance is off until enough human labels calibrate it.",
    Reason.ASPECT_UNCLEAR: (
        "On an aspect the project requires, the judges disagree, changed their answer when the "
        "responses were swapped, or gave no readable verdict."
    ),
    # Deliberately says nothing about the judge's confidence: that would invite a rubber stamp.
    Reason.AUDIT: "Random quality-check sample (audits keep the automation honest).",
    Reason.CALIBRATION_SAMPLE: (
        "Picked at random: labels on a random sample are what calibrate the automation."
    ),
    Reason.REVIEWER_SAFETY_FLAG: "Another reviewer flagged this pair for a safety issue.",
    Reason.DISPUTED: (
        "Reviewers disagreed on this pair, in a batch where they agree too little to trust: "
        "your answer settles it."
    ),
}


class LabelSource(_Word):
    """Where a human label came from."""

    IMPORT = "import"
    REVIEW = "review"
    AUDIT = "audit"
    GOLD = "gold"
    CALIBRATION = "calibration"
    # A senior reviewer's resolution of a disputed pair (api/review/adjudication.py); it beats
    # every other human label on the pair (api/review/human_labels.py).
    ADJUDICATED = "adjudicated"
    # A reviewer's answer on a honeypot (a pair with a known gold answer, api/review/quality.py):
    # graded against that answer to check the reviewer, never a label of the pair itself.
    HONEYPOT = "honeypot"


# Who may give which source. A project's API key (or the admin) imports only these: labels
# made outside prelabel. Every other source (review, audit, calibration, adjudicated,
# honeypot) is written by the review flow itself, with the reviewer as the authenticated
# caller, so a label under a reviewer's name is one that reviewer gave (it is in their
# history, they may revise it, audit labels feed the kill-switch).
IMPORT_SOURCES: tuple[str, ...] = (LabelSource.GOLD, LabelSource.IMPORT)

# Sources whose selection calibration can account for: a random gold sample the user
# declares as such, reviewers' labels on the random calibration sample, and the audit
# stream (a random share of would-be auto-accepts).
# Review labels come from uncertain pairs, so they are kept out of the guarantee.
CALIBRATION_SOURCES: tuple[str, ...] = (LabelSource.GOLD, LabelSource.AUDIT, LabelSource.CALIBRATION)

SOURCE_WHY: dict[str, str] = {
    LabelSource.GOLD: "used: a random calibration sample, declared as such by the importer",
    LabelSource.AUDIT: "used: a random share of would-be auto-accepts (unbiased for auto-accept agreement)",
    LabelSource.CALIBRATION: "used: reviewers' labels on the random calibration sample of all pairs",
    LabelSource.REVIEW: "not used: reviewers see pairs routed for uncertainty, a selected (biased) sample",
    LabelSource.IMPORT: (
        "not used: how these pairs were chosen is unknown; import them as source=gold if random"
    ),
    LabelSource.ADJUDICATED: (
        "decides its pair's answer, but only calibrates a pair that also has a random-sample label: "
        "disputed pairs are a selected sample"
    ),
    LabelSource.HONEYPOT: "not used: reviewers' answers on honeypots only grade the reviewers",
}


def label_source(reasons: list[str] | None) -> LabelSource:
    """Where a reviewer's label goes: the random samples calibrate, the rest is review."""
    if reasons and Reason.AUDIT in reasons:
        return LabelSource.AUDIT
    if reasons and Reason.CALIBRATION_SAMPLE in reasons:
        return LabelSource.CALIBRATION
    return LabelSource.REVIEW


def unit_draw(key: str) -> float:
    """A reproducible uniform draw in [0, 1) from a string: the same key, the same draw.

    Audits, the calibration sample and pre-label display are drawn this way, so a pair
    re-routed (or a lease re-served) gets the same draw, in any process.
    """
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


ExportFormat = Literal["dpo", "hf", "label-studio", "argilla"]
"""The export formats: the one list the API schema, the CLI and the snapshots read. Each is the
module of its name under ``api/export/`` (``label-studio``: :mod:`api.export.label_studio`)."""
