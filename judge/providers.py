"""The judges that stand in for live ones: their answers, without litellm.

``replay/<judge>`` answers from a recorded-judgments file (``api_base`` = its path) exactly as the
recorded judge answered when it was shown the same texts in the same order. ``mock/<name>``
synthesises cheap deterministic verdicts for tests and benchmarks (``api_base`` = query-string
options, e.g. ``"latency_ms=300&invalid_rate=0.05"``). Both reply with the JSON object the rubric
prompt asks for, so callers use the same code path as for a live model. ``judge.client`` asks
replay judges through :func:`replay_answer` (the same answer, without litellm's per-call
work); mock judges stand in for network models in load benchmarks, so they go through litellm.
``judge/litellm_providers.py`` serves both to litellm as custom providers; this module does not
import litellm (a replay-only process never pays for loading it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from judge.content import content_hash
from judge.prompt import asked_aspects, extract_shown
from judge.recorded import RecordedFormatError, RecordedJudgment, load_recorded, recorded_to_five_point
from judge.verdicts import swap, to_positional

REPLAY_PROVIDER = "replay"
MOCK_PROVIDER = "mock"


def approx_tokens(text: str) -> int:
    """A rough token count (~4 characters a token) for judges that report none."""
    return len(text) // 4 + 1


class ReplayError(LookupError):
    """A replay judge cannot answer: no file, a bad file, or nothing recorded for what it was
    shown. Never worth a retry. ``not_found`` tells a missing recording from a bad request."""

    def __init__(self, message: str, *, not_found: bool) -> None:
        super().__init__(message)
        self.not_found = not_found


def _shown(messages: list[dict[str, Any]], model: str, provider: str) -> tuple[str, str, str]:
    try:
        return extract_shown(messages)
    except ValueError as exc:
        message = f"{provider}/{model}: messages were not rendered by judge.prompt.render_messages ({exc})"
        raise ReplayError(message, not_found=False) from exc


# --- replay ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    pair_id: str
    order: str
    judgment: RecordedJudgment


class _ReplayIndex:
    """Recorded judgments keyed on what the judge was shown: (content hash of shown texts, judge)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.answers: dict[tuple[str, str], list[_Candidate]] = defaultdict(list)
        self.shown_as: dict[str, list[tuple[str, str]]] = defaultdict(list)  # hash -> [(pair id, order)]
        self.recorded: dict[str, list[str]] = {}  # pair id -> ["judge (order)", ...]
        for pair in load_recorded(path):
            by_order = {
                "ab": content_hash(pair.prompt, pair.response_a, pair.response_b),
                "ba": content_hash(pair.prompt, pair.response_b, pair.response_a),
            }
            for order, key in by_order.items():
                self.shown_as[key].append((pair.id, order))
            for j in pair.judgments:
                self.answers[(by_order[j.order], j.judge)].append(_Candidate(pair.id, j.order, j))
            self.recorded[pair.id] = [f"{j.judge} ({j.order})" for j in pair.judgments]


_INDEX_LOCK = threading.Lock()
_INDEXES: dict[str, tuple[tuple[int, int], _ReplayIndex]] = {}


def replay_index(path: str) -> _ReplayIndex:
    """The index for a file, built once per (path, mtime, size); rebuilt when the file changes."""
    path = os.path.abspath(path)
    stat = os.stat(path)
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _INDEX_LOCK:  # concurrent first calls build the index once
        cached = _INDEXES.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, _ReplayIndex(path))
            _INDEXES[path] = cached
        return cached[1]


def recorded_orders(
    judge: str, api_base: str, prompt: str, response_a: str, response_b: str
) -> tuple[str, ...]:
    """The display orders replay judge ``judge``'s file holds for this pair (a judge's
    ``orders: "recorded"``); none when the file is unreadable or lacks the pair."""
    try:
        index = replay_index(api_base)
    except (OSError, RecordedFormatError):
        return ()  # the call itself then fails and says why
    shown = {"ab": (prompt, response_a, response_b), "ba": (prompt, response_b, response_a)}
    return tuple(o for o, texts in shown.items() if index.answers.get((content_hash(*texts), judge)))


def replay_answer(
    judge: str, messages: list[dict[str, Any]], api_base: str | None, hints: dict[str, Any] | None = None
) -> str:
    """The reply text of replay judge ``judge`` (the name after ``replay/``, "/" and all): the
    recorded judgment for the texts shown in ``messages``, in their display order, as the JSON
    object the rubric prompt asks for. ``api_base`` is the recorded-judgments file; ``hints``
    (litellm metadata ``replay_order`` / ``replay_pair_id``) pick among texts recorded twice.
    Raises :class:`ReplayError` when nothing recorded answers.
    """
    hints = hints or {}
    model = judge

    def fail(not_found: bool, message: str) -> Exception:
        return ReplayError(f"replay judge {judge!r}: {message}", not_found=not_found)

    if not api_base:
        raise fail(False, "api_base must be the path of a recorded-judgments file")
    try:
        index = replay_index(api_base)
    except FileNotFoundError as exc:
        raise fail(True, f"recorded-judgments file not found: {api_base}") from exc
    except RecordedFormatError as exc:
        raise fail(False, str(exc)) from exc
    shown = _shown(messages, model, REPLAY_PROVIDER)
    key = content_hash(*shown)
    if key not in index.shown_as:
        raise fail(True, f"no pair in {index.path} matches the shown prompt and responses")
    candidates = index.answers.get((key, judge), [])
    # The same texts can be recorded more than once (a duplicate pair under another id, or stored
    # with A and B swapped). A live judge gives one answer, so the first recording in the file wins,
    # which is also the copy a content-hash dedup keeps. Hints (litellm metadata) pick another.
    if order_hint := hints.get("replay_order"):
        candidates = [c for c in candidates if c.order == order_hint]
    if id_hint := hints.get("replay_pair_id"):
        candidates = [c for c in candidates if c.pair_id == str(id_hint)]
    if not candidates:
        seen = "; ".join(
            f"pair {pid!r} in order {order!r} (recorded: {', '.join(index.recorded[pid]) or 'nothing'})"
            for pid, order in index.shown_as[key]
        )
        raise fail(True, f"no recorded judgment by this judge in the shown order: {seen}")
    chosen = candidates[0]
    body: dict[str, Any] = {
        "reasoning": chosen.judgment.raw or "",
        "verdict": to_positional(recorded_to_five_point(chosen.judgment.verdict), chosen.order),
        "both_bad": False,
        "safety_flag": False,
    }
    if chosen.judgment.confidence is not None:
        body["confidence"] = chosen.judgment.confidence
    if names := asked_aspects(messages):
        # Only the aspects the file holds: one it lacks is unreadable, never made up.
        recorded = chosen.judgment.aspects or {}
        body["aspects"] = {
            n: to_positional(recorded_to_five_point(recorded[n]), chosen.order)
            for n in names
            if n in recorded
        }
    return json.dumps(body, ensure_ascii=False)


# --- mock --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MockOptions:
    latency_ms: float = 0.0
    invalid_rate: float = 0.0  # share of (pair, order) answered with an unreadable refusal
    order_sensitive_rate: float = 0.1  # share of (pair, order) answered "first shown wins" (position bias)
    error_rate: float = 0.0  # random (not deterministic) share of calls failing with a retryable 429


@lru_cache(maxsize=256)
def mock_options(api_base: str | None) -> MockOptions:
    """Parse ``api_base`` ("latency_ms=300&invalid_rate=0.1"); empty or None gives the defaults."""
    known = {f.name for f in fields(MockOptions)}
    values: dict[str, float] = {}
    for name, value in parse_qsl(api_base or "", keep_blank_values=True, strict_parsing=bool(api_base)):
        if name not in known:
            raise ValueError(f"unknown mock option {name!r}; known: {sorted(known)}")
        values[name] = float(value)
    return MockOptions(**values)


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from the texts."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# Verdict about the lexicographically smaller response, from a uniform draw (cumulative shares).
_MOCK_SHARES = ((0.2, "A>>B"), (0.5, "A>B"), (0.6, "tie"), (0.9, "B>A"), (1.0, "B>>A"))


def _mock_verdict(draw: float, first: str, low: str) -> str:
    about_low = next(v for share, v in _MOCK_SHARES if draw < share)
    return about_low if first == low else swap(about_low)


# Share of aspects a mock judge answers as its overall verdict; the others get their own draw.
MOCK_ASPECT_FOLLOWS = 0.7


def mock_answer(
    name: str, prompt: str, first: str, second: str, options: MockOptions, aspects: tuple[str, ...] = ()
) -> str:
    """The mock judge's reply: JSON like a live judge's, positional, mostly order-consistent.
    ``aspects``: the aspect names asked (judge.prompt.asked_aspects), each answered too."""
    per_order = _unit(name, "order", prompt, first, second)  # differs between AB and BA
    if per_order < options.invalid_rate:
        return "I cannot compare these responses."
    low, high = sorted((first, second))
    biased = per_order < options.invalid_rate + options.order_sensitive_rate
    # position bias: whatever is shown first wins, so AB and BA disagree
    verdict = "A>B" if biased else _mock_verdict(_unit(name, "pair", prompt, low, high), first, low)
    confidence = round(0.5 + 0.5 * _unit(name, "confidence", prompt, first, second), 3)
    body: dict[str, object] = {
        "reasoning": f"mock judge {name}", "verdict": verdict, "both_bad": False, "safety_flag": False,
    }  # fmt: skip
    if aspects:
        body["aspects"] = {
            a: verdict
            if biased or _unit(name, "follows", a, prompt, low, high) < MOCK_ASPECT_FOLLOWS
            else _mock_verdict(_unit(name, "aspect", a, prompt, low, high), first, low)
            for a in aspects
        }
    return json.dumps({**body, "confidence": confidence})
