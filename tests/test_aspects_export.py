"""Aspects in the four export formats (issue 23), checked by the tools' own validators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.export import argilla as argilla_export
from api.export import dpo, hf, label_studio
from api.export.snapshots import ExportRequest, create_export
from api.models import Project
from api.settings import Settings
from tests.helpers import run_worker
from tests.test_aspects import HHH
from tests.test_export_tools import argilla_client as argilla_client  # noqa: F401 (a fixture)

N = 60


@pytest.fixture
def project(client: TestClient, engine: Engine, settings: Settings) -> Project:
    """Three aspects, mock judges, gold labels with aspects (two annotators on some pairs, some
    labelling harmlessness only), both-bad and safety flags among them."""
    r = client.post(
        "/v1/projects",
        json={"name": "hhh", "judges": ["mock/a", "mock/b"], "aspects": HHH, "overall": "weighted"},
    )
    pid = r.json()["id"]
    pairs = [
        {
            "client_id": f"c{i}",
            "prompt": f"question {i}",
            "response_a": f"answer one {i}",
            "response_b": f"answer two {i}",
        }
        for i in range(N)
    ]
    assert client.post(f"/v1/projects/{pid}/jobs", json={"pairs": pairs}).status_code == 201
    run_worker(engine, settings)
    sides = ["A>B", "B>A", "tie", "A>>B", "B>>A"]
    labels: list[dict[str, Any]] = []
    for i in range(0, N, 2):
        aspects = {"harmlessness": sides[i % 5]}
        if i % 4:
            aspects |= {"helpfulness": sides[(i + 1) % 5], "honesty": sides[(i + 2) % 5]}
        labels.append(
            {"client_id": f"c{i}", "label": sides[(i + 3) % 5], "source": "gold", "aspects": aspects}
        )
    labels += [{**labels[k], "annotator": "second", "aspects": {"harmlessness": "A"}} for k in range(5)]
    labels[7] |= {"both_bad": True}
    labels[9] |= {"safety_flag": True}
    assert client.post(f"/v1/projects/{pid}/labels", json={"labels": labels}).status_code == 201
    with Session(engine) as session:
        found = session.get(Project, pid)
        assert found is not None
        return found


def export(engine: Engine, project: Project, tmp_path: Path, fmt: str, **kw: Any) -> Path:
    request = ExportRequest(format=fmt, split="all", **kw)
    return Path(
        create_export(engine, project, request, export_dir=tmp_path / f"exports-{fmt}-{len(kw)}").path
    )


def test_label_studio_has_a_question_per_aspect_and_every_task_validates(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    sdk = pytest.importorskip("label_studio_sdk.label_interface")
    directory = export(engine, project, tmp_path, "label-studio")
    config = (directory / label_studio.CONFIG).read_text(encoding="utf-8")
    interface = sdk.LabelInterface(config)
    interface.validate()
    names = {c.name for c in interface.controls}
    assert {"aspect_helpfulness", "aspect_harmlessness", "aspect_honesty"} <= names
    assert "Which response helps the user more?" in config  # the aspect's rubric with its question
    tasks = json.loads((directory / label_studio.TASKS).read_text(encoding="utf-8"))
    aspect_regions = {"prediction": 0, "annotation": 0}
    for task in tasks:
        for kind, items in (("prediction", task["predictions"]), ("annotation", task["annotations"])):
            for item in items:
                assert interface.validate_prediction(item, return_errors=True) == [], (kind, item)
                aspect_regions[kind] += sum(r["from_name"].startswith("aspect_") for r in item["result"])
        assert set(task["data"]["aspects"]) == {"helpfulness", "harmlessness", "honesty"}
    assert all(aspect_regions.values()), aspect_regions


def test_argilla_has_a_rating_question_per_aspect_and_every_record_validates(
    engine: Engine,
    project: Project,
    tmp_path: Path,
    argilla_client: tuple[Any, list[str]],  # noqa: F811
) -> None:
    import argilla as rg

    client, asked = argilla_client
    directory = export(engine, project, tmp_path, "argilla")
    settings = rg.Settings.from_json(directory / argilla_export.SETTINGS)
    settings.validate()
    questions = {q.name: q for q in settings.questions}
    assert set(questions) == {"preference", "aspect_helpfulness", "aspect_harmlessness", "aspect_honesty"}
    about = json.loads((directory / argilla_export.DATASET).read_text(encoding="utf-8"))
    dataset = rg.Dataset(name=about["name"], settings=settings, client=client)
    answered: dict[str, int] = {}
    for data in json.loads((directory / argilla_export.RECORDS).read_text(encoding="utf-8")):
        model = rg.Record.from_dict(data, dataset=dataset).api_model()  # checked against the settings
        for response in model.responses:
            for name, value in response.values.items():
                assert value["value"] in questions[name].values
                answered[name] = answered.get(name, 0) + 1
        for suggestion in model.suggestions:
            assert suggestion.value in range(1, 6)
    assert answered["aspect_harmlessness"] > answered["aspect_helpfulness"] > 0
    assert asked == ["/api/v1/me"]


def test_hf_has_a_column_pair_per_aspect(engine: Engine, project: Project, tmp_path: Path) -> None:
    from datasets import Value, load_from_disk

    directory = export(engine, project, tmp_path, "hf")
    dataset = load_from_disk(str(directory / hf.DATASET_DIR))
    for split in dataset.values():
        for name in ("helpfulness", "harmlessness", "honesty"):
            assert split.features[f"aspect_{name}"] == Value("string")
            assert split.features[f"aspect_{name}_source"] == Value("string")
    rows = [r for split in dataset.values() for r in split]
    assert any(r["aspect_harmlessness"] is not None and r["aspect_helpfulness"] is None for r in rows)


def _dpo(directory: Path) -> dict[int, dict[str, Any]]:
    lines = (directory / dpo.FILE).read_text(encoding="utf-8").splitlines()
    return {r["pair_id"]: r for r in map(json.loads, lines)}


def test_dpo_prefers_by_the_overall_an_aspect_or_the_weighted_aspects(
    client: TestClient, engine: Engine, project: Project, tmp_path: Path
) -> None:
    overall = _dpo(export(engine, project, tmp_path, "dpo"))
    harmless = _dpo(export(engine, project, tmp_path, "dpo", dpo_by="harmlessness"))
    weighted = _dpo(export(engine, project, tmp_path, "dpo", dpo_by="weighted", redact=False))
    assert overall and harmless and weighted
    for rows, by in ((overall, "overall"), (harmless, "harmlessness"), (weighted, "weighted")):
        for row in rows.values():
            assert row["preferred_by"] == by and set(row["aspects"]) == {
                "helpfulness",
                "harmlessness",
                "honesty",
            }
    for row in harmless.values():
        assert row["label"] == row["aspects"]["harmlessness"] and row["label"] != "tie"
    assert any(harmless[p]["chosen"] != overall[p]["chosen"] for p in harmless.keys() & overall.keys())
    # Weighted: pairs with every positively weighted aspect labelled only.
    assert all(None not in row["aspects"].values() for row in weighted.values())
    bad = client.post(f"/v1/projects/{project.id}/exports", json={"format": "dpo", "dpo_by": "wit"})
    assert bad.status_code == 422 and "wit" in bad.text
