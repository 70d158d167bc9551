"""Exports checked by the tools themselves: every Label Studio task through label-studio-sdk's
validator, the Argilla export through the Argilla SDK's own record validation, the HF export's
metadata as a struct."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.export import hf, label_studio
from api.export.snapshots import ExportRequest, create_export
from api.models import Label, Pair, Project
from api.tools.bench_export import build_project


@pytest.fixture
def project(engine: Engine) -> Project:
    return build_project(engine, 600, seed=3, name="exported")


def export(engine: Engine, project: Project, tmp_path: Path, fmt: str) -> Path:
    made = create_export(
        engine, project, ExportRequest(format=fmt, split="all"), export_dir=tmp_path / "exports"
    )
    return Path(made.path)


def flag_one_label_for_safety(engine: Engine, project: Project) -> int:
    """A reviewer's safety flag on one human label (the built project has pre-check flags only)."""
    with Session(engine) as session:
        label = session.exec(select(Label).where(Label.project_id == project.id).order_by(Label.id)).first()
        assert label is not None
        label.safety_flag = True
        session.add(label)
        session.commit()
        return label.pair_id


def test_every_label_studio_task_validates_with_the_sdk(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    sdk = pytest.importorskip("label_studio_sdk.label_interface")
    flagged = flag_one_label_for_safety(engine, project)
    directory = export(engine, project, tmp_path, "label-studio")
    interface = sdk.LabelInterface((directory / label_studio.CONFIG).read_text(encoding="utf-8"))
    interface.validate()  # the shipped config parses and passes the SDK's schema checks
    tasks = json.loads((directory / label_studio.TASKS).read_text(encoding="utf-8"))
    seen: dict[str, int] = {"pairwise": 0, "tie": 0, "both_bad": 0, "safety": 0, "annotations": 0}
    for task in tasks:
        pid = task["data"]["pair_id"]
        for obj in interface.objects:  # every object's $variable is in the task's data
            assert task["data"].get(obj.value_name) is not None, (pid, obj.name)
        for kind, items in (("prediction", task["predictions"]), ("annotation", task["annotations"])):
            for item in items:
                assert interface.validate_prediction(item, return_errors=True) == [], (pid, kind, item)
                assert interface.validate_annotation(item), (pid, kind)
                _count(seen, item["result"])
        seen["annotations"] += len(task["annotations"])
        seen["safety_incident"] = seen.get("safety_incident", 0) + task["data"]["safety_incident"]
        if pid == flagged:
            assert task["data"]["safety_incident"]
    # The project holds the cases that once broke or could: sides, ties, both-bad and safety flags.
    assert all(seen.values()), seen


def _count(seen: dict[str, int], result: list[dict[str, Any]]) -> None:
    for region in result:
        if region["type"] == "pairwise":
            seen["pairwise"] += 1
        elif region["from_name"] == label_studio.STRENGTH and region["value"]["choices"] == [
            label_studio.TIE
        ]:
            seen["tie"] += 1
        elif region["from_name"] == label_studio.FLAGS:
            seen["both_bad"] += label_studio.BOTH_BAD in region["value"]["choices"]
            seen["safety"] += label_studio.SAFETY in region["value"]["choices"]


def test_label_studio_sdk_refuses_what_the_old_export_wrote() -> None:
    """The check above can fail: a region named after the control (the old export) is refused."""
    sdk = pytest.importorskip("label_studio_sdk.label_interface")
    interface = sdk.LabelInterface(label_studio.LABEL_CONFIG)
    (region, strength) = label_studio.result("A>B")
    assert interface.validate_prediction({"result": [region, strength]}, return_errors=True) == []
    old = {**region, "to_name": label_studio.PAIRWISE}
    errors = interface.validate_prediction({"result": [old, strength]}, return_errors=True)
    assert errors and "not found in configuration" in errors[0]


MIXED = [  # metadata of the first pairs, in pair-id order; the rest keep {"topic": int}
    {"topic": 1, "lang": "en"},
    {"tags": ["a", "b"], "score": 2},
    {"score": 0.5, "flag": True, "mixed": 1},
    {"mixed": "one", "nested": {"k": [1, None]}},
    {},
]


def set_metadata(engine: Engine, project: Project, metadata: list[dict[str, Any]]) -> list[int]:
    with Session(engine) as session:
        pairs = session.exec(select(Pair).where(Pair.project_id == project.id).order_by(Pair.id)).all()
        for pair, meta in zip(pairs, metadata, strict=False):
            pair.meta = meta
            session.add(pair)
        session.commit()
        return [p.id for p in pairs[: len(metadata)]]  # type: ignore[misc]


def test_hf_metadata_is_a_struct_over_the_union_of_keys(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq
    from datasets import Value, load_from_disk

    ids = set_metadata(engine, project, MIXED)
    directory = export(engine, project, tmp_path, "hf")
    dataset = load_from_disk(str(directory / hf.DATASET_DIR))
    expected = {
        "flag": Value("bool"),
        "lang": Value("string"),
        "mixed": Value("string"),  # int in one row, str in another: JSON text
        "nested": Value("string"),  # an object: JSON text
        "score": Value("float64"),  # int and float: float
        "tags": Value("string"),  # a list: JSON text
        "topic": Value("int64"),
    }
    for split in dataset.values():
        assert split.features["metadata"] == expected
    rows = {r["pair_id"]: r["metadata"] for split in dataset.values() for r in split}
    assert rows[ids[0]] == {**dict.fromkeys(expected), "topic": 1, "lang": "en"}
    assert json.loads(rows[ids[1]]["tags"]) == ["a", "b"] and rows[ids[1]]["score"] == 2.0
    assert rows[ids[2]]["flag"] is True and json.loads(rows[ids[2]]["mixed"]) == 1
    assert json.loads(rows[ids[3]]["mixed"]) == "one" and json.loads(rows[ids[3]]["nested"]) == {
        "k": [1, None]
    }
    assert rows[ids[4]] == dict.fromkeys(expected)
    later = [pid for pid in rows if pid not in ids]
    assert later and all(isinstance(rows[pid]["topic"], int) for pid in later)
    # The parquet files carry the same struct.
    for path in (directory / hf.PARQUET_DIR).glob("*.parquet"):
        kind = pq.read_schema(path).field("metadata").type
        assert kind.num_fields == len(expected) and {
            kind.field(i).name for i in range(kind.num_fields)
        } == set(expected)
    assert not (directory / hf.SPOOL_DIR).exists()
    assert "union of every pair's metadata keys" in (directory / "README.md").read_text(encoding="utf-8")


def test_hf_metadata_without_any_key_is_a_null_column(engine: Engine, tmp_path: Path) -> None:
    from datasets import Value, load_from_disk

    project = build_project(engine, 30, seed=4, name="bare")
    set_metadata(engine, project, [{}] * 30)
    dataset = load_from_disk(str(export(engine, project, tmp_path, "hf") / hf.DATASET_DIR))
    for split in dataset.values():
        assert split.features["metadata"] == Value("null") and set(split["metadata"]) == {None}


def test_push_to_hub_flag_uploads_the_hf_export_with_the_token(
    engine: Engine, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a real upload: DatasetDict.push_to_hub is replaced by a recorder."""
    from click.testing import CliRunner
    from datasets import DatasetDict

    from api.tools.cli import prelabel

    calls: list[dict[str, Any]] = []

    def recorder(self: DatasetDict, repo_id: str, **kw: Any) -> None:
        calls.append({"repo_id": repo_id, "splits": {k: len(v) for k, v in self.items()}, **kw})

    monkeypatch.setattr(DatasetDict, "push_to_hub", recorder)
    base = ["export", "--project", "exported", "--database-url", str(engine.url)]
    hub = ["--push-to-hub", "me/prefs"]
    monkeypatch.delenv("HF_TOKEN", raising=False)
    no_token = CliRunner().invoke(prelabel, [*base, "--format", "hf", "--out", str(tmp_path / "a"), *hub])
    assert no_token.exit_code == 2 and "HF_TOKEN" in no_token.output and not (tmp_path / "a").exists()
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    wrong = CliRunner().invoke(prelabel, [*base, "--format", "dpo", "--out", str(tmp_path / "b"), *hub])
    assert wrong.exit_code == 2 and "hf export" in wrong.output
    lone = CliRunner().invoke(prelabel, [*base, "--format", "hf", "--out", str(tmp_path / "c"), "--private"])
    assert lone.exit_code == 2 and "--push-to-hub" in lone.output
    assert calls == []
    out = tmp_path / "hf-v1"
    args = [*base, "--format", "hf", "--split", "all", "--out", str(out), *hub, "--private"]
    result = CliRunner().invoke(prelabel, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    (call,) = calls
    assert call["repo_id"] == "me/prefs" and call["token"] == "hf_test_token" and call["private"] is True
    assert call["splits"] == manifest["counts"]["by_split"]
    assert "pushed to https://huggingface.co/datasets/me/prefs (private)" in result.output
