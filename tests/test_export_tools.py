"""Exports checked by the tools themselves: every Label Studio task through label-studio-sdk's
validator, the Argilla export through the Argilla SDK's own record validation, the HF export's
metadata as a struct."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.export import argilla as argilla_export
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
    {"mixed": "one", "nested": {"k": [1, None]}, "never": None},
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
        "never": Value("string"),  # only ever null: still a field
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


@pytest.fixture
def argilla_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[str]]]:
    """A real ``rg.Argilla`` client, unpatched. Its constructor checks the connection once
    (``GET /api/v1/me``): a loopback stub answers that, and records every path asked for, so a
    test can show that reading the export needed nothing else from a server."""
    rg = pytest.importorskip("argilla")
    asked: list[str] = []

    class Me(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            asked.append(self.path)
            found = self.path == "/api/v1/me"
            body = json.dumps({"id": str(uuid.uuid4()), "username": "owner", "role": "owner"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Me)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(rg.Argilla, "_default_client", None)  # restored after the test
    try:
        yield (
            rg.Argilla(api_url=f"http://127.0.0.1:{server.server_port}", api_key="offline", retries=0),
            asked,
        )
    finally:
        server.shutdown()
        server.server_close()


def test_argilla_export_validates_with_the_sdk_against_its_own_settings(
    engine: Engine, project: Project, tmp_path: Path, argilla_client: tuple[Any, list[str]]
) -> None:
    import argilla as rg
    from argilla._models import DatasetModel, UserModel

    client, asked = argilla_client
    directory = export(engine, project, tmp_path, "argilla")
    settings = rg.Settings.from_json(directory / argilla_export.SETTINGS)
    settings.validate()
    about = json.loads((directory / argilla_export.DATASET).read_text(encoding="utf-8"))
    DatasetModel(**about)
    dataset = rg.Dataset(name=about["name"], settings=settings, client=client)
    users = json.loads((directory / argilla_export.USERS).read_text(encoding="utf-8"))
    ids = {u["id"] for u in users}
    for user in users:  # what rg.User(...).create() would send: the id kept, a legal username
        assert UserModel(username=user["username"], id=user["id"]).id == uuid.UUID(user["id"])
        assert re.fullmatch(r"(?![-_])[A-Za-z0-9_-]+", user["username"]), user
    (question,) = settings.questions
    records = json.loads((directory / argilla_export.RECORDS).read_text(encoding="utf-8"))
    responded = 0
    for data in records:
        record = rg.Record.from_dict(data, dataset=dataset)
        model = record.api_model()  # responses and suggestions checked against the settings
        assert set(record.fields) == {f.name for f in settings.fields}
        for response in model.responses:
            assert str(response.user_id) in ids and response.status == "submitted"
            assert response.values[question.name]["value"] in question.values
            responded += 1
        for suggestion in model.suggestions:
            assert suggestion.question_id == question.id and suggestion.value in question.values
    assert responded > 0 and len(ids) > 1
    # The same check refuses a response to a question the settings do not have.
    stray = {**records[0], "responses": {"nope": [{"value": 1, "user_id": next(iter(ids))}]}}
    with pytest.raises(Exception, match="nope"):
        rg.Record.from_dict(stray, dataset=dataset).api_model()
    assert asked == ["/api/v1/me"]  # nothing but the client's connection check reached the stub


def test_argilla_usernames_are_stable_and_legal() -> None:
    assert argilla_export.username("reviewer_1") == "reviewer_1"
    odd = argilla_export.username("jane.doe@example.com")
    assert odd == f"jane-doe-example-com-{argilla_export.user_id('jane.doe@example.com')[:8]}"
    assert argilla_export.user_id("jane") == argilla_export.user_id("jane") != argilla_export.user_id("jane2")
    assert argilla_export.username("..").startswith("user-")
