"""The re-judge check: a defence against injections that needs no rule to recognise them.

The rules of ``judge.injection`` know the phrasings and languages they were written for. A
judge that obeys an injection, though, gives it away another way: take the text that may be
addressed to it out of the response (``judge.injection.neutralize``, a loose, high-recall
detector) and its verdict moves. So a pair whose responses hold such text, and that the rules
did not flag already, is judged once more without it by each judge that gave a readable verdict
(one call each, in the order it was first asked); if a verdict changes side, the pair gets the
hard ``injection_suspected`` flag. A fair judge loses nothing a reader needs (hidden markup,
notes to an evaluator), so its verdict holds and the pair is routed as before. Only the pairs
the loose detector picks pay the extra calls (the README gives the share on the shared data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from judge.injection import neutralize
from judge.verdicts import side

__all__ = ["RECHECK_PREFIX", "Recheck", "moved_reasons", "recheck_for"]

# Marks the reasons this check stores in Pair.injection_reasons (a pair judged again keeps them).
RECHECK_PREFIX = "re-judged without"


@dataclass(frozen=True)
class Recheck:
    """What a pair is judged on again: both responses with the suspicious spans removed."""

    responses: tuple[str, str]
    removed: tuple[tuple[str, ...], tuple[str, ...]]  # per response, what was taken out

    def describe(self) -> str:
        parts = [
            f"{where}: {'; '.join(r[:2])}"
            for where, r in zip(("response_a", "response_b"), self.removed, strict=True)
            if r
        ]
        return " | ".join(parts)[:240]


def recheck_for(prompt: str, response_a: str, response_b: str) -> Recheck | None:
    """The neutralised pair, or None when neither response holds anything to take out."""
    a, b = neutralize(response_a, prompt), neutralize(response_b, prompt)
    if not (a.changed or b.changed):
        return None
    return Recheck((a.text, b.text), (tuple(a.removed), tuple(b.removed)))


def moved_reasons(
    recheck: Recheck, before: Sequence[tuple[str, str]], after: Sequence[str | None]
) -> list[str]:
    """Reasons for the flag: each judge whose verdict (``before``: judge, verdict) changed side
    once the spans were removed, or could not be asked again (a failed or unreadable call: the
    suspicion stands, so a human looks)."""
    reasons = []
    for (judge, old), new in zip(before, after, strict=True):
        new_side = side(new) if new is not None else None
        if new_side is None:
            reasons.append(
                f"{RECHECK_PREFIX} the suspicious text: {judge} could not be asked again "
                f"({recheck.describe()})"
            )
        elif new_side != side(old):
            reasons.append(
                f"{RECHECK_PREFIX} the suspicious text: {judge} moved {old} -> {new} ({recheck.describe()})"
            )
    return reasons
