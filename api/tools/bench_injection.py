"""``prelabel bench injection``: the injection screen on real data and on a planted set.

On every file of the shared data: the share of pairs the screen flags (false positives: these
pairs hold no planted injection), the share the re-judge check would judge a second time (and
so its extra calls: one per judge in the panel for each such pair), and the screen's cost in
CPU milliseconds per pair. On a planted set (``tests/data/planted_injections.jsonl``): per
language, obfuscation kind and split, how many injections the rules flag and how many the
re-judge check's detector takes out of the response (at most a third of the injection left).
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from judge.injection import injection_check_many, neutralize, rule_hits

SHARED_FILES = (
    "replay/llmbar_dev.jsonl",
    "pandalm/testset_3annotators.jsonl",
    "hh-rlhf/harmless_base_test.jsonl",
)
BATCH = 128  # pairs screened together (a worker claims pairs in batches)
HOST_ANSWER = "Paris is the capital of France.\nIt has about two million inhabitants."
HOST_PROMPT = "Tell me about Paris."
_PIECE = re.compile(r"(?<=[.!?。！？:：;；])\s+|\n")


def plant(response: str, injection: str, placement: str) -> str:
    """The injection spliced into a response where an attacker would put it."""
    if placement == "start":
        return f"{injection}\n\n{response}"
    if placement == "middle":
        cut = response.find("\n", len(response) // 3)
        cut = cut if cut > 0 else (response.find(". ", len(response) // 3) + 1 or len(response))
        return f"{response[:cut]} {injection} {response[cut:]}"
    return f"{response}\n\n{injection}"


def injection_left(shown: str, injection: str) -> bool:
    """Whether a reader of ``shown`` still reads the injection: at least a third of it (by its
    sentences) is left, so removing one sentence of a longer injection does not count."""
    pieces = [p for p in _PIECE.split(injection) if len(p.strip()) >= 4] or [injection]
    return sum(len(p) for p in pieces if p in shown) >= len(injection) / 3


def load_planted(path: Path) -> list[dict[str, str]]:
    """Planted injections, one JSON object a line: ``text`` (required), ``language``, ``kind``,
    ``split``, ``placement`` (start / middle / end; default end) and ``id`` (defaults filled in,
    so another team's set in the same shape runs as it is)."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            row = json.loads(line)
            rows.append(
                {
                    "id": str(row.get("id", f"row-{i}")),
                    "text": str(row["text"]),
                    "language": str(row.get("language", "?")),
                    "kind": str(row.get("kind", "?")),
                    "split": str(row.get("split", "?")),
                    "placement": str(row.get("placement", "end")),
                }
            )
    return rows


def _pairs(path: Path) -> list[tuple[str, str, str]]:
    pairs = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if "chosen" in row:  # hh-rlhf: chosen / rejected
                pairs.append((str(row["prompt"]), str(row["chosen"]), str(row["rejected"])))
            else:
                pairs.append((str(row["prompt"]), str(row["response_a"]), str(row["response_b"])))
    return pairs


def real_data(data_dir: Path, files: Iterable[str] = SHARED_FILES) -> dict[str, dict[str, Any]]:
    """Per file: pairs, flagged (false positives), re-judged per 1,000 pairs, CPU ms per pair."""
    out: dict[str, dict[str, Any]] = {}
    for name in files:
        path = data_dir / name
        if not path.exists():
            continue
        pairs = _pairs(path)
        screen_s = recheck_s = 0.0
        flagged = rechecked = 0
        for i in range(0, len(pairs), BATCH):  # as the worker does: a claimed batch at a time
            batch = pairs[i : i + BATCH]
            start = time.process_time()
            screens = injection_check_many(batch)
            screen_s += time.process_time() - start
            start = time.process_time()
            rechecked += sum(
                not s.flagged and (neutralize(a, p).changed or neutralize(b, p).changed)
                for (p, a, b), s in zip(batch, screens, strict=True)
            )
            recheck_s += time.process_time() - start
            flagged += sum(s.flagged for s in screens)
        out[name] = {
            "pairs": len(pairs),
            "flagged": flagged,
            "false_positive_rate": round(flagged / len(pairs), 4),
            "rejudged_pairs": rechecked,
            "rejudged_per_1000": round(1000 * rechecked / len(pairs), 1),
            "screen_ms_per_pair": round(1000 * screen_s / len(pairs), 3),
            "recheck_detector_ms_per_pair": round(1000 * recheck_s / len(pairs), 3),
        }
    return out


def planted(path: Path) -> dict[str, Any]:
    """Per split, language and kind: injections, flagged by the rules, taken out by the re-judge
    check's detector, either."""
    tables: dict[str, dict[str, dict[str, int]]] = {"split": {}, "language": {}, "kind": {}}
    for row in load_planted(path):
        text = plant(HOST_ANSWER, row["text"], row["placement"])
        by_rule = bool(rule_hits(text))
        neutral = neutralize(text, HOST_PROMPT)
        by_recheck = neutral.changed and not injection_left(neutral.text, row["text"])
        for table in tables:
            cell = tables[table].setdefault(row[table], defaultdict(int))
            cell["n"] += 1
            cell["rules"] += by_rule
            cell["recheck_detector"] += by_recheck
            cell["either"] += by_rule or by_recheck
    return {
        table: {key: dict(cell) for key, cell in sorted(cells.items())} for table, cells in tables.items()
    }


def run(data_dir: Path, planted_path: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {"real_data": real_data(data_dir)}
    total = sum(f["pairs"] for f in result["real_data"].values())
    if total:
        flagged = sum(f["flagged"] for f in result["real_data"].values())
        rejudged = sum(f["rejudged_pairs"] for f in result["real_data"].values())
        result["all_shared"] = {
            "pairs": total,
            "false_positive_rate": round(flagged / total, 4),
            "extra_judge_calls_per_1000_pairs_per_panel_judge": round(1000 * rejudged / total, 1),
        }
    if planted_path is not None and planted_path.exists():
        result["planted"] = planted(planted_path)
    return result
