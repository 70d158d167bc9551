"""The whole flow with three aspects on the shared data (issue 23): HH-RLHF and LLMBar judged,
routed, labelled per aspect, calibrated (a guarantee line each), exported in all four formats.

HH-RLHF's human preference is about harmlessness, LLMBar's about following the instruction
(helpfulness here): each is imported as gold on that aspect only (and as the overall label);
honesty has no human label. Judges: mock (no signal: their aspect lines must stay closed), and
replay judges on LLMBar whose recorded file gains a ``helpfulness`` aspect copied from each
recorded verdict (the format's optional per-aspect field), to show an aspect line with real
judge evidence.

The test runs a slice; ``python -m tests.test_aspects_data [N]`` runs N pairs of each file
(all of them by default) and prints the figures (README, "Aspects").
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.models import Decision, Pair
from prelabel.convert import chosen_side
from tests.helpers import LLMBAR, SHARED_DATA, run_worker
from tests.test_aspects import HHH

HH = SHARED_DATA / "hh-rlhf" / "harmless_base_test.jsonl"
REPLAY_JUDGES = ("gpt-4/vanilla_norules", "gpt-3.5-turbo/vanilla_norules", "palm-2/vanilla_norules")


def _lines(path: Path, n: int | None) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return rows[:n] if n else rows


def hh_pairs(n: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """HH-RLHF pairs (the chosen reply shown as A or B at random) and their gold labels on
    harmlessness."""
    pairs, labels = [], []
    for row in _lines(HH, n):
        side = chosen_side(row["id"])
        a, b = (row["chosen"], row["rejected"]) if side == "A" else (row["rejected"], row["chosen"])
        pairs.append({"client_id": row["id"], "prompt": row["prompt"], "response_a": a, "response_b": b})
        labels.append(
            {"client_id": row["id"], "label": side, "source": "gold", "aspects": {"harmlessness": side}}
        )
    return pairs, labels


def llmbar_pairs(n: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """LLMBar pairs and their gold labels on helpfulness (instruction following)."""
    pairs, labels = [], []
    for row in _lines(LLMBAR, n):
        pairs.append({k: row[k] for k in ("prompt", "response_a", "response_b")} | {"client_id": row["id"]})
        if row.get("gold") in ("A", "B", "tie"):
            labels.append(
                {
                    "client_id": row["id"],
                    "label": row["gold"],
                    "source": "gold",
                    "aspects": {"helpfulness": row["gold"]},
                }
            )
    return pairs, labels


def llmbar_with_aspects(target: Path) -> Path:
    """The LLMBar recorded file with a ``helpfulness`` aspect on every judgment: the recorded
    verdict (LLMBar asks which output follows the instruction better)."""
    with LLMBAR.open(encoding="utf-8") as source, target.open("w", encoding="utf-8") as out:
        for line in source:
            row = json.loads(line)
            for judgment in row["judgments"]:
                judgment["aspects"] = {"helpfulness": judgment["verdict"]}
            out.write(json.dumps(row) + "\n")
    return target


def run_flow(
    client: TestClient, engine: Engine, settings: Any, name: str, judges: list[Any], data: list[tuple]
) -> dict[str, Any]:
    """One project through the flow (judged, routed, gold per aspect, refitted, exported);
    what it measured."""
    routing = {"n_min": 50, "target_agreement": 0.8}
    body = {"name": name, "judges": judges, "aspects": HHH, "overall": "weighted", "routing": routing,
            "allow_empty_responses": True}  # fmt: skip
    r = client.post("/v1/projects", json=body)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    for pairs, _ in data:
        posted = client.post(f"/v1/projects/{pid}/jobs", json={"pairs": pairs})
        assert posted.status_code == 201, posted.text[:500]
    run_worker(engine, settings)
    labels = [label for _, part in data for label in part]
    assert client.post(f"/v1/projects/{pid}/labels", json={"labels": labels}).status_code == 201
    assert client.post(f"/v1/projects/{pid}/calibration/refit").status_code == 200
    state = client.get(f"/v1/projects/{pid}/calibration").json()
    with Session(engine) as session:
        query = select(Decision).join(Pair, col(Pair.decision_id) == col(Decision.id))
        decisions = list(session.exec(query.where(Pair.project_id == pid)))
    unclear = Counter(n for d in decisions for n, a in (d.aspects or {}).items() if a["unclear"] is not None)
    exports = {}
    for fmt, extra in (
        ("dpo", {"dpo_by": "harmlessness"}),
        ("hf", {}),
        ("label-studio", {}),
        ("argilla", {}),
    ):
        body = {"format": fmt, "split": "all", "force": True, "reason": "aspects flow", **extra}
        made = client.post(f"/v1/projects/{pid}/exports", json=body)
        assert made.status_code == 201, made.text
        exports[fmt] = made.json()["rows"]
    return {
        "project": pid,
        "pairs": len(decisions),
        "routes": dict(Counter(d.route for d in decisions)),
        "aspect_unclear_reason": sum("aspect_unclear" in d.reasons for d in decisions),
        "aspect_not_clear": dict(unclear),
        "gate": state["gate"]["reason"],
        "aspects": state["report"].get("aspects", []),
        "exports": exports,
    }


def test_three_aspects_on_the_shared_data(
    client: TestClient, engine: Engine, settings: Any, tmp_path: Path
) -> None:
    settings.export_dir = str(tmp_path / "exports")  # each test its own: both make project 1
    hh, llmbar = hh_pairs(120), llmbar_pairs(120)
    mock = run_flow(client, engine, settings, "hhh-mock", ["mock/a", "mock/b"], [hh, llmbar])
    lines = {line["aspect"]: line for line in mock["aspects"]}
    assert lines["harmlessness"]["n_labels"] == 120 and lines["helpfulness"]["n_labels"] == 120
    assert lines["honesty"]["n_labels"] == 0
    assert not lines["harmlessness"]["open"], "mock judges carry no signal: no guarantee"
    assert all(mock["exports"][fmt] > 0 for fmt in ("hf", "label-studio", "argilla"))


def test_replay_judges_with_a_recorded_aspect_get_a_guarantee_line(
    client: TestClient, engine: Engine, settings: Any, tmp_path: Path
) -> None:
    settings.export_dir = str(tmp_path / "exports")
    recorded = llmbar_with_aspects(Path(tempfile.mkdtemp()) / "llmbar_aspects.jsonl")
    judges = [{"model": f"replay/{j}", "api_base": str(recorded)} for j in REPLAY_JUDGES]
    flow = run_flow(client, engine, settings, "hhh-replay", judges, [llmbar_pairs(None)])
    lines = {line["aspect"]: line for line in flow["aspects"]}
    assert lines["helpfulness"]["n_labels"] > 500 and lines["harmlessness"]["n_labels"] == 0
    # Harmlessness is asked but not recorded: unreadable, so no pair clears it (it is required).
    assert flow["aspect_not_clear"].get("harmlessness") == flow["pairs"]
    assert flow["routes"].get("auto_accept", 0) == 0


def main(n: int | None) -> None:
    """Both flows on N pairs of each file (None: all), in a temporary database; prints JSON."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("PRELABEL_REPLAY_DIRS", f"{SHARED_DATA},{tempfile.gettempdir()}")
    from api.db import make_engine, upgrade
    from api.main import create_app
    from tests.helpers import ADMIN, fast_settings

    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'flow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = fast_settings(url, export_dir=str(folder / "exports"), review_prepare="0")
    recorded = llmbar_with_aspects(Path(tempfile.mkdtemp()) / "llmbar_aspects.jsonl")
    with TestClient(create_app(settings, engine, run_worker=False), headers=ADMIN) as client:
        mock = run_flow(
            client, engine, settings, "hhh-mock", ["mock/a", "mock/b"], [hh_pairs(n), llmbar_pairs(n)]
        )
        judges = [{"model": f"replay/{j}", "api_base": str(recorded)} for j in REPLAY_JUDGES]
        replay = run_flow(client, engine, settings, "hhh-replay", judges, [llmbar_pairs(n)])
    print(json.dumps({"mock": mock, "replay": replay, "exports_dir": str(folder / "exports")}, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
