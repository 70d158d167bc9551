"""The dashboard's words and tables, from the API's answers (pure: no Streamlit, no HTTP)."""

from __future__ import annotations

from typing import Any

# What each column of the reviewer-quality table means, in plain words (shown under it).
QUALITY_COLUMNS: dict[str, str] = {
    "Labels": "current labels the reviewer gave on this project (a changed label counts once).",
    "Median time": "the typical time spent on one pair.",
    "Honeypots": "pairs with a known answer (honeypots mixed into the queue unannounced, and pairs with "
    "an imported gold label): how many the reviewer met, the share answered right, and the range "
    "that share is 95 % sure to lie in.",
    "Agrees with peers": "on pairs other reviewers labelled too, the share where this reviewer picked "
    "the same side as they did.",
    "Dawid–Skene accuracy": "how often this reviewer's side is right, as estimated from all "
    "reviewers' overlapping labels (a model that learns who is reliable; more trustworthy than "
    "a plain vote).",
    "Too fast": "labels given in less than the time it takes to read the pair; they are kept but "
    "never calibrate the automation.",
    "Quarantined": "labels held back from calibration and export while the reviewer's answers are "
    "checked (released when an admin resumes them).",
    "Status": "paused reviewers get no pairs until an admin resumes them; the reason says why.",
}


def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 pair", "3 pairs".

    >>> plural(1, "pair"), plural(3, "pair"), plural(2, "reply", "replies")
    ('1 pair', '3 pairs', '2 replies')
    """
    return f"{n} {word if n == 1 else (many or word + 's')}"


def percent(value: float | None, digits: int = 0) -> str:
    """0.8123 -> "81%"; None -> "—".

    >>> percent(0.8123), percent(None), percent(0.5, 1)
    ('81%', '—', '50.0%')
    """
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def number(value: float | None, pattern: str = "{:.2f}") -> str:
    return "—" if value is None else pattern.format(value)


def queue_words(depth: dict[str, dict[str, int]]) -> list[str]:
    """The review queues' depth as sentences.

    >>> print(queue_words({"review": {"open": 9, "leased": 3, "done": 40, "stale": 2, "waiting": 12}})[0])
    **Review:** 12 pairs wait for a reviewer (3 of them are open on a reviewer's screen right now); \
40 are done. 2 were withdrawn because they no longer need a person (the pair was routed elsewhere, \
e.g. accepted automatically once the gate opened); labels already given on them are kept.
    >>> queue_words({"incident": {"open": 0, "leased": 0, "done": 0, "stale": 0, "waiting": 0}})
    ['**Incidents:** nothing waiting; none done yet.']
    """
    names = {"review": "Review", "incident": "Incidents"}
    lines = []
    for queue, counts in depth.items():
        waiting, leased = counts.get("waiting", 0), counts.get("leased", 0)
        done, stale = counts.get("done", 0), counts.get("stale", 0)
        if waiting:
            verb = "waits" if waiting == 1 else "wait"
            text = f"{plural(waiting, 'pair')} {verb} for a reviewer"
            if leased:
                are = "is" if leased == 1 else "are"
                text += f" ({leased} of them {are} open on a reviewer's screen right now)"
        else:
            text = "nothing waiting"
        text += f"; {done} {'is' if done == 1 else 'are'} done." if done else "; none done yet."
        if stale:
            text += (
                f" {stale} {'was' if stale == 1 else 'were'} withdrawn because they no longer need a person "
                "(the pair was routed elsewhere, e.g. accepted automatically once the gate opened); "
                "labels already given on them are kept."
            )
        lines.append(f"**{names.get(queue, queue.title())}:** {text}")
    return lines


def quality_rows(quality: dict[str, Any] | None, agreement: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One display row per reviewer: the quality table joined with the Dawid–Skene accuracy."""
    ds = {r["reviewer"]: r.get("ds_accuracy") for r in (agreement or {}).get("reviewers", [])}
    rows = []
    for r in (quality or {}).get("reviewers", []):
        lo, hi = (r.get("honeypot_ci") or [None, None])[:2]
        seen = r.get("honeypots_seen") or 0
        if seen:
            honeypots = f"{percent(r.get('honeypot_accuracy'))} of {seen}"
            if lo is not None and hi is not None:
                honeypots += f" ({percent(lo)}–{percent(hi)})"
        else:
            honeypots = "none yet"
        checked = r.get("peer_checked")
        peers = percent(r.get("peer_agreement"))
        if r.get("peer_agreement") is not None and checked:
            peers += f" of {checked}"
        seconds = r.get("median_seconds_per_label")
        rows.append(
            {
                "Reviewer": r["name"],
                "Labels": r.get("labels", 0),
                "Median time": "—" if seconds is None else f"{seconds:.0f} s",
                "Honeypots": honeypots,
                "Agrees with peers": peers,
                "Dawid–Skene accuracy": percent(ds.get(r["name"])),
                "Too fast": r.get("speed_flags", 0),
                "Quarantined": r.get("quarantined_labels", 0),
                "Status": f"Paused: {r.get('paused_reason') or 'no reason given'}"
                if r.get("paused")
                else "Active",
            }
        )
    return rows


def agreement_words(agreement: dict[str, Any]) -> str:
    """The project's agreement in a sentence: α against the threshold, and what follows."""
    project = agreement.get("project") or {}
    alpha = project.get("krippendorff_alpha_ordinal")
    threshold = agreement.get("threshold")
    n = project.get("n_items") or 0
    if not n or alpha is None:
        return (
            "No agreement yet: it needs pairs labelled by two reviewers or more, with labels that count "
            "(not flagged as too fast, not quarantined). Pairs get several reviewers when the project's "
            "review_overlap is 2 or more."
        )
    verdict = (
        "above the threshold, so its labels may calibrate the gate"
        if threshold is not None and alpha >= threshold
        else "below the threshold: the disputed pairs of batches like this go to adjudication, and a "
        "batch whose α is below the threshold with confidence (enough pairs compared) does not calibrate"
    )
    limit = f" (threshold {threshold:.3f})" if threshold is not None else ""
    return (
        f"Across {plural(n, 'pair')} labelled by several reviewers, Krippendorff's α on the five-point "
        f"scale is **{alpha:.3f}**{limit}: {verdict}. α is 1 when reviewers always agree and 0 when they "
        "agree no more than chance."
    )


def batch_rows(agreement: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-batch agreement rows, oldest first (for the table and the chart over time)."""
    rows = []
    for b in sorted(agreement.get("batches") or [], key=lambda b: str(b.get("created_at"))):
        rows.append(
            {
                "Batch": f"job {b['job_id']}",
                "Created": b.get("created_at"),
                "Pairs compared": b.get("n_items", 0),
                "α (five-point)": b.get("krippendorff_alpha_ordinal"),
                "α upper bound": b.get("alpha_upper"),
                "Calibrates": "yes" if b.get("calibrates") else "no",
                "Disputed pairs": b.get("disputed", 0),
            }
        )
    return rows


def pair_rows(agreement: dict[str, Any]) -> list[dict[str, Any]]:
    """Cohen's κ for every two reviewers who labelled the same pairs."""
    return [
        {"Reviewers": f"{p['a']} and {p['b']}", "Pairs in common": p["n"], "Cohen's κ": p.get("cohen_kappa")}
        for p in agreement.get("pairs_of_reviewers") or []
    ]


def label_sources_words(sources: dict[str, Any] | list[dict[str, Any]] | None, empty: str) -> str:
    """A calibration version's ``label_sources`` (source -> {"n", "used", "why"}; the gate
    state lists them with a "source" key instead) in words, largest first, empty sources left out.

    >>> label_sources_words({"gold": {"n": 200, "used": True}, "review": {"n": 10, "used": False},
    ...                      "audit": {"n": 0, "used": True}}, "none")
    'gold 200 (used) · review 10 (not used)'
    >>> label_sources_words([{"source": "gold", "n": 3, "used": True}], "—"), label_sources_words({}, "—")
    ('gold 3 (used)', '—')
    """
    rows = (
        [(str(s.get("source")), s) for s in sources]
        if isinstance(sources, list)
        else list((sources or {}).items())
    )
    shown = [(name, int(row.get("n") or 0), bool(row.get("used"))) for name, row in rows if row.get("n")]
    if not shown:
        return empty
    shown.sort(key=lambda row: -row[1])
    return " · ".join(f"{name} {n} ({'used' if used else 'not used'})" for name, n, used in shown)


def counts_words(counts: dict[str, int], empty: str) -> str:
    """{"review": 40, "gold": 12} -> "review 40 · gold 12" (largest first).

    >>> counts_words({"review": 40, "gold": 12}, "none"), counts_words({}, "none")
    ('review 40 · gold 12', 'none')
    """
    if not counts:
        return empty
    return " · ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
