"""Exports: every format produced and checked against its tool's schema, manifests that verify,
DPO exclusions, the frozen-eval split and leakage gate, the promotion gate, snapshots and diff."""

from __future__ import annotations

import io
import json
import shutil
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.audit import list_events
from api.export import argilla as argilla_export
from api.export import dpo, hf, label_studio
from api.export.rows import RowHashes, sha256_file, sha256_text
from api.export.snapshots import ExportRefused, ExportRequest, create_export, diff_snapshots
from api.main import create_app
from api.models import CalibrationVersion, Decision, Label, Pair, Project
from api.tools.bench_export import build_project
from api.tools.cli import prelabel
from judge.verdicts import to_side
from tests.helpers import ADMIN, copy_sqlite, fast_settings, fold_wal

FORMATS = ("dpo", "hf", "label-studio", "argilla")


@pytest.fixture(scope="module")
def _built(migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The 600-pair project built once per module (a folded SQLite file), not per test."""
    path = tmp_path_factory.mktemp("exports") / "project.db"
    built = copy_sqlite(migrated_sqlite, path)
    try:
        project_id = build_project(built, 600, seed=3, name="exported").id
    finally:
        built.dispose()
    fold_wal(path)
    assert project_id is not None
    return path, project_id


@pytest.fixture
def project(_built: tuple[Path, int], engine: Engine) -> Project:
    """The built project in this test's database (the ``engine`` fixture's file, replaced by a
    copy of the built one before anything used it)."""
    source, project_id = _built
    engine.dispose()
    target = Path(engine.url.database or "")
    assert not target.with_name(target.name + "-wal").exists(), "the test database is in use"
    shutil.copyfile(source, target)
    with Session(engine, expire_on_commit=False) as session:
        project = session.get(Project, project_id)
    assert project is not None
    return project


def export(
    engine: Engine, project: Project, tmp_path: Path, fmt: str, **kw: Any
) -> tuple[Path, dict[str, Any]]:
    made = create_export(engine, project, ExportRequest(format=fmt, **kw), export_dir=tmp_path / "exports")
    directory = Path(made.path)
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == json.loads(json.dumps(made.manifest, default=str))
    return directory, manifest


def pairs_of(engine: Engine, project: Project) -> dict[int, tuple[Pair, Decision, list[Label]]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Pair, Decision)
            .join(Decision, Decision.id == Pair.decision_id)
            .where(Pair.project_id == project.id)
        ).all()
        labels: dict[int, list[Label]] = {}
        for label in session.exec(select(Label).where(Label.project_id == project.id)):
            labels.setdefault(label.pair_id, []).append(label)
    return {p.id: (p, d, labels.get(p.id, [])) for p, d in rows}  # type: ignore[misc]


def verify_hashes(directory: Path, manifest: dict[str, Any]) -> list[tuple[int, str]]:
    """Every file hash of the manifest holds; returns rows.sha256 as (pair id, sha256)."""
    assert manifest["files"], "the manifest lists no file"
    for name, digest in manifest["files"].items():
        assert sha256_file(directory / name) == digest, name
    assert sha256_file(directory / RowHashes.FILE) == manifest["rows_sha256"]
    lines = (directory / RowHashes.FILE).read_text(encoding="utf-8").splitlines()
    rows = [(int(pid), digest) for pid, digest in (line.split("\t") for line in lines)]
    assert len(rows) == manifest["counts"]["rows"]
    return rows


def json_list_lines(path: Path) -> Iterator[str]:
    """The elements of a JSON list written one per line, as written (what the row hash covers)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.rstrip(",")
        if line not in ("[", "]"):
            yield line


def test_dpo_rows_hash_and_leave_out_ties_both_bad_and_incidents(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    directory, manifest = export(engine, project, tmp_path, "dpo", split="all")
    lines = (directory / dpo.FILE).read_text(encoding="utf-8").splitlines()
    hashes = verify_hashes(directory, manifest)
    assert [digest for _, digest in hashes] == [sha256_text(line) for line in lines]
    pairs = pairs_of(engine, project)
    seen = set()
    for line in lines:
        row = json.loads(line)
        pair, decision, labels = pairs[row["pair_id"]]
        seen.add(pair.id)
        assert to_side(row["label"]) in ("A", "B") and not pair.safety_flag
        assert not any(label.both_bad for label in labels)
        winner, loser = (
            (pair.response_a, pair.response_b)
            if to_side(row["label"]) == "A"
            else (
                pair.response_b,
                pair.response_a,
            )
        )
        assert (row["prompt"], row["chosen"], row["rejected"]) == (pair.prompt, winner, loser)
        if labels:  # a human label beats the judges'
            assert row["label_source"] == "human" and row["provenance"]["label_ids"]
        else:
            assert row["label_source"] == "auto" and row["label"] == decision.label
            assert row["provenance"]["calibration_version"] == "cal-1"
            assert row["provenance"]["guaranteed_agreement"] == 0.86
    excluded = manifest["counts"]["excluded"]
    assert excluded["tie"] > 0 and excluded["safety_incident"] > 0 and excluded["both_bad"] > 0
    assert excluded["no_final_label"] > 0
    # Everything labelled is either a DPO pair or counted out, once.
    labelled = [p for p, (pair, d, labels) in pairs.items() if labels or d.route == "auto_accept"]
    assert len(seen) + sum(v for k, v in excluded.items() if k != "no_final_label") + manifest["held_back"][
        "total"
    ] == len(labelled)
    ties = [p for p in labelled if not pairs[p][2] and pairs[p][1].label == "tie"]
    assert ties and not set(ties) & seen
    assert (
        manifest["calibration"]["version"] == "cal-1"
        and manifest["calibration"]["guaranteed_agreement"] == 0.86
    )
    assert manifest["judges"] == ["mock/judge-a", "mock/judge-b"] and manifest["prompt_versions"] == [
        "rubric-v1"
    ]
    assert manifest["cost"]["cost_per_accepted_label"] > 0 and manifest["redaction_version"]
    assert manifest["audited_agreement"]["n"] == 0
    card = (directory / "README.md").read_text(encoding="utf-8")
    assert "exported: export 1 (dpo)" in card and "cal-1" in card


def test_hf_export_loads_with_declared_features_one_split_per_pair_split(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    from datasets import load_from_disk

    directory, manifest = export(engine, project, tmp_path, "hf", split="all")
    verify_hashes(directory, manifest)
    dataset = load_from_disk(str(directory / hf.DATASET_DIR))
    assert set(dataset) == {"train", "frozen_eval"}
    assert dataset["train"].features == hf.features({"topic": "int64"})  # the built project's metadata
    pairs = pairs_of(engine, project)
    for split, data in dataset.items():
        assert len(data) == manifest["counts"]["by_split"][split]
        assert {pairs[pid][0].split for pid in data["pair_id"]} == {split}
    first = dataset["train"][0]
    assert first["prompt"] == pairs[first["pair_id"]][0].prompt
    assert first["metadata"] == pairs[first["pair_id"]][0].meta


def test_label_studio_tasks_fit_the_pairwise_config(engine: Engine, project: Project, tmp_path: Path) -> None:
    directory, manifest = export(engine, project, tmp_path, "label-studio", split="all")
    hashes = verify_hashes(directory, manifest)
    lines = list(json_list_lines(directory / label_studio.TASKS))
    assert [d for _, d in hashes] == [sha256_text(line) for line in lines]
    tasks = json.loads((directory / label_studio.TASKS).read_text(encoding="utf-8"))
    assert len(tasks) == manifest["counts"]["rows"]
    config = ET.fromstring((directory / label_studio.CONFIG).read_text(encoding="utf-8"))
    controls = {el.get("name"): el for el in config.iter() if el.tag in ("Pairwise", "Choices")}
    objects = {el.get("name") for el in config.iter() if el.tag == "Text"}
    variables = {el.get("value")[1:] for el in config.iter() if el.tag == "Text"}  # type: ignore[index]
    assert controls["preference"].get("toName").split(",") == ["response_a", "response_b"]  # type: ignore[union-attr]
    pairs = pairs_of(engine, project)
    annotated = predicted = 0
    for task in tasks:
        assert set(task) == {"data", "predictions", "annotations"} and variables <= set(task["data"])
        for item in [*task["predictions"], *task["annotations"]]:
            assert item["result"], task["data"]["pair_id"]
            for result in item["result"]:
                control = controls[result["from_name"]]
                assert result["type"] == control.tag.lower()
                assert result["to_name"] in objects and result["to_name"] in control.get("toName").split(",")  # type: ignore[union-attr]
                if result["type"] == "pairwise":
                    assert result["value"]["selected"] in ("left", "right")
                else:
                    choices = {c.get("value") for c in control.iter("Choice")}
                    assert set(result["value"]["choices"]) <= choices
        predicted += bool(task["predictions"])
        annotated += bool(task["annotations"])
        labels = pairs[task["data"]["pair_id"]][2]
        assert len(task["annotations"]) == (1 if labels else 0)
        if labels:
            (annotation,) = task["annotations"]
            assert (
                annotation["meta"]["label_id"] == labels[-1].id
                and task["data"]["final_label"] == labels[-1].label
            )
            assert annotation["ground_truth"] == (labels[-1].source == "gold")
    assert predicted == len(tasks) and annotated > 0


def test_argilla_settings_and_records_load_in_the_sdk(
    engine: Engine, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rg = pytest.importorskip("argilla")
    from unittest.mock import MagicMock

    # The SDK's objects want a server client; none is contacted to read settings and records.
    monkeypatch.setattr(rg.Argilla, "_default_client", MagicMock())
    directory, manifest = export(engine, project, tmp_path, "argilla", split="all")
    hashes = verify_hashes(directory, manifest)
    lines = list(json_list_lines(directory / argilla_export.RECORDS))
    assert [d for _, d in hashes] == [sha256_text(line) for line in lines]
    settings = rg.Settings.from_json(directory / argilla_export.SETTINGS)
    assert [f.name for f in settings.fields] == ["prompt", "response_a", "response_b"]
    (question,) = settings.questions
    assert question.name == "preference" and isinstance(question, rg.RatingQuestion)
    assert sorted(question.values) == [1, 2, 3, 4, 5]
    from argilla._models import DatasetModel

    DatasetModel(**json.loads((directory / argilla_export.DATASET).read_text(encoding="utf-8")))
    records = [rg.Record.from_dict(json.loads(line)) for line in lines]
    pairs = pairs_of(engine, project)
    responded = 0
    for record in records:
        pair, decision, labels = pairs[int(record.id)]
        assert record.fields["prompt"] == pair.prompt
        suggestion = record.suggestions["preference"]
        assert suggestion.value == argilla_export.RATING[decision.label]  # type: ignore[index]
        if labels:
            responded += 1
            (response,) = record.responses["preference"]
            assert response.value == argilla_export.RATING[labels[-1].label]
    assert responded > 0


def test_a_train_export_never_holds_frozen_eval_pairs_nor_their_duplicates(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    pairs = pairs_of(engine, project)
    frozen_prompts = {p.prompt for p, _, _ in pairs.values() if p.split == "frozen_eval"}
    leaks = {pid for pid, (p, _, _) in pairs.items() if p.split == "train" and p.prompt in frozen_prompts}
    assert frozen_prompts and leaks, "the built project should hold frozen pairs and leaked prompts"
    directory, manifest = export(engine, project, tmp_path, "label-studio", split="train")
    exported = {
        t["data"]["pair_id"] for t in json.loads((directory / label_studio.TASKS).read_text(encoding="utf-8"))
    }
    assert all(pairs[pid][0].split == "train" for pid in exported)
    assert not exported & leaks
    assert (
        manifest["held_back"]["total"] >= len(leaks) and manifest["held_back"]["by_reason"]["exact_duplicate"]
    )
    assert len(exported) + manifest["held_back"]["total"] == sum(
        p.split == "train" for p, _, _ in pairs.values()
    )
    # An evaluation export holds only the frozen pairs, and nothing is held back from it.
    directory, manifest = export(engine, project, tmp_path, "argilla", split="frozen_eval")
    rows = json.loads((directory / argilla_export.RECORDS).read_text(encoding="utf-8"))
    assert len(rows) == len(frozen_prompts) and {r["metadata"]["split"] for r in rows} == {"frozen_eval"}
    assert manifest["held_back"]["total"] == 0


def test_min_source_keeps_human_or_any_final_label(engine: Engine, project: Project, tmp_path: Path) -> None:
    _, human = export(engine, project, tmp_path, "argilla", split="all", min_source="human")
    assert set(human["counts"]["by_source"]) == {"human"}
    _, auto = export(engine, project, tmp_path, "argilla", split="all", min_source="auto")
    assert set(auto["counts"]["by_source"]) == {"human", "auto"}
    _, everything = export(engine, project, tmp_path, "argilla", split="all")
    assert everything["counts"]["by_source"]["none"] > 0
    assert everything["counts"]["rows"] == auto["counts"]["rows"] + everything["counts"]["by_source"]["none"]


def close_gate_by_kill_switch(engine: Engine, project: Project) -> None:
    with Session(engine) as session:
        session.add(
            CalibrationVersion(
                project_id=project.id,  # type: ignore[arg-type]
                version=2,
                trigger="drift",
                open=False,
                reason="closed by the kill-switch: audited agreement below target",
            )
        )
        session.commit()


@pytest.fixture
def api(any_engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = fast_settings(str(any_engine.url), export_dir=str(tmp_path / "exports"))
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        yield client


def test_the_export_resource_refuses_with_every_reason_numbers_and_downloads(
    api: TestClient, any_engine: Engine, tmp_path: Path
) -> None:
    project = build_project(any_engine, 200, seed=1, name="resource")
    base = f"/v1/projects/{project.id}/exports"
    first = api.post(base, json={"format": "dpo"})
    assert first.status_code == 201, first.text
    assert first.json()["number"] == 1 and first.json()["manifest"]["forced"] is False
    assert api.post(base, json={"format": "parquet"}).status_code == 422
    no_reason = api.post(base, json={"format": "dpo", "force": True, "reason": "  "})
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    close_gate_by_kill_switch(any_engine, project)
    refused = api.post(base, json={"format": "hf"})
    assert refused.status_code == 409, refused.text
    assert [e["code"] for e in refused.json()["errors"]] == ["kill_switch"]
    assert (
        "kill_switch" not in api.post(base, json={"format": "dpo", "split": "frozen_eval"}).text
    )  # not a train export
    forced = api.post(
        base, json={"format": "dpo", "force": True, "reason": "pilot run, signed off by the lead"}
    )
    assert forced.status_code == 201, forced.text
    assert forced.json()["number"] == 3
    manifest = forced.json()["manifest"]
    assert manifest["forced"] and manifest["force_reason"] == "pilot run, signed off by the lead"
    assert [r["code"] for r in manifest["refusals_overridden"]] == ["kill_switch"]
    listed = api.get(base).json()
    assert [e["number"] for e in listed] == [1, 2, 3] and listed[1]["filters"]["split"] == "frozen_eval"
    assert api.get(f"{base}/3").json()["force_reason"] == manifest["force_reason"]
    assert api.get(f"{base}/4").status_code == 404
    download = api.get(f"{base}/3/download")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = set(archive.namelist())
        assert {"data.jsonl", "manifest.json", "README.md", "rows.sha256"} <= names
        assert json.loads(archive.read("manifest.json"))["export"] == 3
    with Session(any_engine) as session:
        events = [e for e in list_events(session, project_id=project.id, limit=50) if e.kind == "export"]
    assert sorted(e.payload["number"] for e in events) == [1, 2, 3]
    assert any(e.payload["force_reason"] == manifest["force_reason"] for e in events)
    # Refused and invalid requests stored nothing.
    assert sorted(p.name for p in (tmp_path / "exports" / f"project-{project.id}").iterdir()) == [
        "0001-dpo",
        "0002-dpo",
        "0003-dpo",
    ]


def test_create_export_refuses_before_writing(engine: Engine, project: Project, tmp_path: Path) -> None:
    close_gate_by_kill_switch(engine, project)
    with pytest.raises(ExportRefused) as refused:
        create_export(engine, project, ExportRequest(format="dpo"), export_dir=tmp_path / "exports")
    assert [r["code"] for r in refused.value.reasons] == ["kill_switch"]
    assert not (tmp_path / "exports" / f"project-{project.id}").exists() or not any(
        (tmp_path / "exports" / f"project-{project.id}").iterdir()
    )


def test_diff_names_added_removed_and_relabelled_pairs(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    first, _ = export(engine, project, tmp_path, "dpo", split="all", min_source="human")
    pairs = pairs_of(engine, project)
    labelled = sorted(
        pid for pid, (_, _, labels) in pairs.items() if labels and labels[-1].label in ("A>>B", "B>A")
    )
    relabel, remove = labelled[0], labelled[1]
    unlabelled = next(
        pid
        for pid, (p, d, labels) in pairs.items()
        if not labels and p.split == "train" and not p.safety_flag
    )
    with Session(engine, expire_on_commit=False) as session:
        old = session.get(Label, pairs[relabel][2][-1].id)
        new = Label(
            project_id=project.id,  # type: ignore[arg-type]
            pair_id=relabel,
            label="B>>A" if to_side(old.label) == "A" else "A>>B",  # type: ignore[union-attr]
            source="gold",
            annotator="editor",
            idempotency_key="edit-1",
        )
        session.add(new)
        session.flush()
        old.superseded_by_id = new.id  # type: ignore[union-attr]
        gone = session.get(Label, pairs[remove][2][-1].id)
        gone.quarantined = True  # type: ignore[union-attr]
        session.add(
            Label(
                project_id=project.id,  # type: ignore[arg-type]
                pair_id=unlabelled,
                label="A>B",
                source="gold",
                annotator="editor",
                idempotency_key="add-1",
            )
        )
        session.commit()
    second, _ = export(engine, project, tmp_path, "dpo", split="all", min_source="human")
    diff = diff_snapshots(first, second)
    assert diff["added"] == [unlabelled] and diff["removed"] == [remove]
    assert [c["pair_id"] for c in diff["relabelled"]] == [relabel]
    assert diff["relabelled"][0]["to"] == new.label
    # The same through the CLI, by export number, and by path for another format.
    result = CliRunner().invoke(
        prelabel,
        ["export", "diff", "1", "2", "--project", "exported", "--database-url", str(engine.url), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"] == {"added": 1, "removed": 1, "relabelled": 1}
    hf_a, _ = export(engine, project, tmp_path, "hf", split="all", min_source="human")
    assert diff_snapshots(hf_a, second)["counts"]["relabelled"] == 0


def test_the_cli_exports_to_a_new_directory_and_never_overwrites(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    out = tmp_path / "dpo-v1"
    args = [
        "export",
        "--project",
        "exported",
        "--format",
        "dpo",
        "--out",
        str(out),
        "--database-url",
        str(engine.url),
    ]
    result = CliRunner().invoke(prelabel, args)
    assert result.exit_code == 0, result.output
    assert "export 1 of project 'exported' (dpo)" in result.output
    assert (out / "data.jsonl").is_file() and (out / "manifest.json").is_file()
    again = CliRunner().invoke(prelabel, args)
    assert again.exit_code == 1 and "exists" in again.output
    missing = CliRunner().invoke(
        prelabel, ["export", "--project", "exported", "--database-url", str(engine.url)]
    )
    assert missing.exit_code == 2 and "--format" in missing.output
    close_gate_by_kill_switch(engine, project)
    refused = CliRunner().invoke(prelabel, [*args[:-4], "--out", str(tmp_path / "v2"), *args[-2:]])
    assert refused.exit_code == 1 and "kill_switch" in refused.output
    forced = CliRunner().invoke(
        prelabel,
        [*args[:-4], "--out", str(tmp_path / "v2"), *args[-2:], "--force", "--reason", "audit pending"],
    )
    assert forced.exit_code == 0, forced.output
    assert json.loads((tmp_path / "v2" / "manifest.json").read_text())["force_reason"] == "audit pending"


# --- redacted exports ----------------------------------------------------------------------------

PII_PROMPT = "Email jane.doe@example.com; my CPF is 123.456.789-09 and my passport number is C01X00T47."


def _plant_pii(engine: Engine, project: Project) -> int:
    """Put personal data into one labelled pair's texts and metadata; returns its id."""
    with Session(engine) as session:
        pair = session.exec(
            select(Pair).where(Pair.project_id == project.id, Pair.split == "train").order_by(Pair.id)  # type: ignore[arg-type]
        ).first()
        assert pair is not None
        pair.prompt = PII_PROMPT
        pair.response_a = "I'll write to jane.doe@example.com about CPF 123.456.789-09."
        pair.meta = {"contact": "jane.doe@example.com", "notes": ["MAC 00:1A:2B:3C:4D:5E"]}
        session.add(pair)
        session.commit()
        return pair.id  # type: ignore[return-value]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_redacted_export_holds_tokens_not_personal_data(
    engine: Engine, project: Project, tmp_path: Path, fmt: str
) -> None:
    _plant_pii(engine, project)
    directory, manifest = export(engine, project, tmp_path, fmt, split="all", redact=True)
    assert manifest["redacted"] is True
    verify_hashes(directory, manifest)
    assert "**Redacted**" in (directory / "README.md").read_text(encoding="utf-8")
    blob = b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())
    for value in ("jane.doe@example.com", "123.456.789-09", "C01X00T47", "00:1A:2B:3C:4D:5E"):
        assert value.encode() not in blob, value
    if fmt in ("dpo", "label-studio"):
        text = blob.decode("utf-8", errors="replace")
        assert "<EMAIL_1>" in text and "<NATIONAL_ID_1>" in text and "<PASSPORT_1>" in text
        assert "<MAC_ADDRESS_1>" in text  # metadata strings are redacted with the texts' tokens


def test_an_export_is_raw_unless_asked_and_says_so(engine: Engine, project: Project, tmp_path: Path) -> None:
    _plant_pii(engine, project)
    directory, manifest = export(engine, project, tmp_path, "label-studio", split="all")
    assert manifest["redacted"] is False
    assert "**Not redacted**" in (directory / "README.md").read_text(encoding="utf-8")
    assert "jane.doe@example.com" in (directory / label_studio.TASKS).read_text(encoding="utf-8")


def test_the_api_takes_the_project_default_and_the_request_overrides_it(
    api: TestClient, any_engine: Engine
) -> None:
    project = build_project(any_engine, 60, seed=2, name="redacting")
    base = f"/v1/projects/{project.id}/exports"
    body = {"format": "dpo", "split": "frozen_eval"}  # no promotion gate on frozen_eval
    assert api.post(base, json=body).json()["manifest"]["redacted"] is False
    with Session(any_engine) as session:
        stored = session.get(Project, project.id)
        assert stored is not None
        stored.routing = {**stored.routing, "redact_exports": True}
        session.add(stored)
        session.commit()
    assert api.post(base, json=body).json()["manifest"]["redacted"] is True
    assert api.post(base, json={**body, "redact": False}).json()["manifest"]["redacted"] is False
    bad = api.post(base, json={**body, "redact": "sometimes"})
    assert bad.status_code == 422 and "redact" in bad.text
    events = [e for e in _export_events(any_engine, project) if "redacted" in e.payload]
    assert [e.payload["redacted"] for e in sorted(events, key=lambda e: e.payload["number"])] == [
        False,
        True,
        False,
    ]


def _export_events(engine: Engine, project: Project) -> list[Any]:
    with Session(engine) as session:
        return [e for e in list_events(session, project_id=project.id, limit=50) if e.kind == "export"]


def test_the_cli_redacts_when_asked(engine: Engine, project: Project, tmp_path: Path) -> None:
    _plant_pii(engine, project)
    out = tmp_path / "shareable"
    args = ["export", "--project", "exported", "--format", "dpo", "--split", "frozen_eval"]
    result = CliRunner().invoke(
        prelabel, [*args, "--out", str(out), "--redact", "--database-url", str(engine.url)]
    )
    assert result.exit_code == 0, result.output
    assert "redacted: yes" in result.output
    assert json.loads((out / "manifest.json").read_text())["redacted"] is True


def test_a_killed_export_leaves_no_staging_folder_behind(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    """A process killed mid-export cannot clean up: the next export removes its folder."""
    import socket
    import subprocess
    import sys

    parent = tmp_path / "exports" / f"project-{project.id}"
    parent.mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )

    killed = parent / f".tmp-export-{socket.gethostname()}-{int(gone.stdout)}-0f0f"
    killed.mkdir()
    (killed / "data.jsonl").write_text("{}\n", encoding="utf-8")
    export(engine, project, tmp_path, "dpo", split="frozen_eval")
    assert not killed.exists()
    assert [p.name for p in parent.iterdir()] == ["0001-dpo"]


def test_a_folder_left_with_the_same_number_is_neither_overwritten_nor_a_failure(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    """A service reset to a new database keeps its export directory: its first export is
    number 1 again, and 0001-dpo is an earlier database's. It gets a folder of its own."""
    parent = tmp_path / "exports" / f"project-{project.id}"
    (parent / "0001-dpo").mkdir(parents=True)
    (parent / "0001-dpo" / "data.jsonl").write_text("an earlier export\n", encoding="utf-8")
    directory, manifest = export(engine, project, tmp_path, "dpo", split="frozen_eval")
    assert directory.parent == parent and directory.name.startswith("0001-dpo-")
    assert (parent / "0001-dpo" / "data.jsonl").read_text(encoding="utf-8") == "an earlier export\n"
