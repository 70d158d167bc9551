"""What an export holds and under which guarantees: its manifest (JSON) and dataset card.

:class:`Counts` is filled by a writer while rows stream past; :func:`build_manifest` and
:func:`dataset_card` are pure: the caller reads the gate, audits and costs from the database and
passes them grouped (:class:`ExportIdentity`, :class:`ExportFiles`, :class:`LabelProvenance`,
:class:`PromotionOverride`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.export.rows import ExportRow, RowHashes, canonical

MANIFEST = "manifest.json"
CARD = "README.md"
MANIFEST_VERSION = 1


class Counts:
    """Rows written, by route, label source, label and split; rows left out, by reason."""

    def __init__(self) -> None:
        self.rows = 0
        self.by_route: Counter[str] = Counter()
        self.by_source: Counter[str] = Counter()
        self.by_label: Counter[str] = Counter()
        self.by_split: Counter[str] = Counter()
        self.excluded: Counter[str] = Counter()

    def add(self, row: ExportRow) -> None:
        self.rows += 1
        self.by_route[row.route or "undecided"] += 1
        self.by_source[row.final.source or "none"] += 1
        self.by_label[row.final.label or "none"] += 1
        self.by_split[row.split] += 1

    def exclude(self, row: ExportRow, reason: str) -> None:
        self.excluded[reason] += 1

    @property
    def labelled(self) -> int:
        """Rows written with a final label."""
        return self.rows - self.by_source.get("none", 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "by_route": dict(self.by_route),
            "by_source": dict(self.by_source),
            "by_label": dict(self.by_label),
            "by_split": dict(self.by_split),
            "excluded": dict(self.excluded),
        }


@dataclass(frozen=True)
class ExportIdentity:
    """Which export this is: project (id, name), number, format, filters, when, and whether its
    texts went through the redactor (``redaction_version``: the redactor reviewers see through)."""

    project: dict[str, Any]
    number: int
    export_format: str
    filters: dict[str, Any]
    created_at: str
    redacted: bool
    redaction_version: str


@dataclass(frozen=True)
class ExportFiles:
    """What was written: sha256 per data file, of ``rows.sha256`` (a sha256 per row), and the
    pairs held back (pair id -> reason) before writing."""

    files: dict[str, str]
    rows_sha256: str
    held_back: dict[int, str]


@dataclass(frozen=True)
class LabelProvenance:
    """Where the labels come from: the gate in force, the audits so far, the judges and their
    prompt versions, and what judging cost (USD)."""

    calibration: dict[str, Any]
    audited_agreement: dict[str, Any]
    judges: list[str]
    prompt_versions: list[str]
    judge_cost: float


@dataclass(frozen=True)
class PromotionOverride:
    """A forced export: whether the promotion gate was overridden, why, and what it refused."""

    forced: bool = False
    reason: str | None = None
    refusals: list[dict[str, str]] = field(default_factory=list)


def build_manifest(
    identity: ExportIdentity,
    counts: Counts,
    written: ExportFiles,
    provenance: LabelProvenance,
    override: PromotionOverride,
) -> dict[str, Any]:
    """The manifest written next to an export (``manifest.json``) and stored on its row."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "project": identity.project,
        "export": identity.number,
        "format": identity.export_format,
        "created_at": identity.created_at,
        "filters": identity.filters,
        "counts": counts.as_dict(),
        "calibration": provenance.calibration,
        "audited_agreement": provenance.audited_agreement,
        "judges": provenance.judges,
        "prompt_versions": provenance.prompt_versions,
        "redaction_version": identity.redaction_version,
        # True: texts and metadata strings went through that redactor (typed tokens, no
        # mapping); False: they are the raw texts as posted, personal data included.
        "redacted": identity.redacted,
        "held_back": {
            "total": len(written.held_back),
            "by_reason": dict(Counter(written.held_back.values())),
        },
        "cost": {
            "judge_cost_usd": round(provenance.judge_cost, 6),
            "labels": counts.labelled,
            "cost_per_accepted_label": round(provenance.judge_cost / counts.labelled, 6)
            if counts.labelled
            else None,
        },
        "forced": override.forced,
        "force_reason": override.reason,
        "refusals_overridden": override.refusals if override.forced else [],
        # sha256 of every data file, and of rows.sha256 (a sha256 per row, in row order).
        "files": written.files,
        "rows_sha256": written.rows_sha256,
    }


def _table(counter: dict[str, int]) -> str:
    if not counter:
        return "(none)\n"
    lines = ["| value | rows |", "| --- | ---: |"]
    lines += [f"| {key} | {value} |" for key, value in sorted(counter.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def _redaction_line(manifest: dict[str, Any]) -> str:
    if manifest.get("redacted"):
        return (
            f"**Redacted**: personal data and secrets in the texts and metadata are replaced by typed "
            f"tokens (`<EMAIL_1>`, `<PERSON_2>`, ...) by {manifest['redaction_version']}; the originals "
            "are not in this export. Pair ids, client ids and reviewer account names are kept."
        )
    return (
        "**Not redacted**: the texts are exactly as posted and may contain personal data and "
        "secrets. Export with `redact: true` (or the project setting `redact_exports`) to share."
    )


def dataset_card(manifest: dict[str, Any]) -> str:
    """A short dataset card (markdown) for an export, from its manifest."""
    cal = manifest["calibration"]
    audit = manifest["audited_agreement"]
    counts = manifest["counts"]
    bound = cal.get("guaranteed_agreement")
    guarantee = (
        f"auto-accepted labels agree with humans >= {bound:.3f} with probability "
        f"{1 - cal['delta']:.2f} (target {cal['target_agreement']})"
        if bound is not None and cal.get("open")
        else "the gate is closed: no label in force is covered by a guarantee"
    )
    audited = (
        f"{audit['agreed']}/{audit['n']} audits agreed ({audit['rate']:.3f})"
        if audit["n"]
        else "no audits yet"
    )
    forced = (
        f"\n**Forced past the promotion gate:** {manifest['force_reason']}\n" if manifest["forced"] else ""
    )
    notes = _FORMAT_NOTES.get(manifest["format"], "")
    return f"""---
pretty_name: {manifest["project"]["name"]} (prelabel export {manifest["export"]})
tags: [preference, pairwise, prelabel]
---

# {manifest["project"]["name"]}: export {manifest["export"]} ({manifest["format"]})

Pairwise preference data labelled by prelabel: each pair's label is a human label when one
exists, otherwise a judge label the calibrated gate auto-accepted. Every row says which
(`label_source`, provenance).
{forced}
- Created: {manifest["created_at"]}
- Filters: `{manifest["filters"]}`
- Rows: {counts["rows"]}; left out: {counts["excluded"] or "none"}; held back as exact or near duplicates
  of frozen evaluation prompts: {manifest["held_back"]["total"]}
- Calibration in force: {cal.get("version")}: {guarantee}
- Audited agreement so far: {audited}
- Judges: {", ".join(manifest["judges"]) or "none"}; prompt versions: {", ".join(manifest["prompt_versions"])}
- Redaction version (what reviewers saw): {manifest["redaction_version"]}
- {_redaction_line(manifest)}
- Judge cost per accepted label: {manifest["cost"]["cost_per_accepted_label"]} USD

## Rows by label source

{_table(counts["by_source"])}
## Rows by route

{_table(counts["by_route"])}
## Rows by label

{_table(counts["by_label"])}
{notes}Integrity: `manifest.json` lists a sha256 per file; `rows.sha256` a sha256 per row.
"""


# What a reader of one format needs to know about its columns (the card is the same otherwise).
_FORMAT_NOTES = {
    "hf": """## Columns

`metadata` is a struct: its fields are the union of every pair's metadata keys, so a row
without a key has null in that field. A key whose values are all booleans, integers, numbers
or strings has that type; a key holding lists or objects, or values of different types in
different rows, holds each value as JSON text (`json.loads` it). With no metadata key at all
the column is null.

""",
}


def write_json_list(
    path: Path,
    rows: Iterable[ExportRow],
    build: Callable[[ExportRow], dict[str, Any]],
    hashes: RowHashes,
    counts: Counts,
) -> None:
    """Stream ``build(row)`` for every row into a JSON list at ``path``, one item per line,
    hashing and counting each as written (memory stays flat)."""
    with path.open("wb") as out:
        out.write(b"[")
        first = True
        for row in rows:
            data = canonical(build(row))
            out.write((b"\n" if first else b",\n") + data)
            first = False
            hashes.add(row.pair_id, data)
            counts.add(row)
        out.write(b"\n]\n")
