"""The world's identifiers never reach a reviewer, nor a redacted export (through the API).

The planted set (``tests/planted_world.py``: 30 kinds, 14 languages, dev and held-out parts)
goes in as pairs; reviewers lease them from the review and incident queues, label them and
read their history; then the project is exported in all four formats with ``redact: true``.
Every view is searched for every planted value (and every 4+ character part of it): a leak per
kind and split is counted and printed, and must be 0. An export without redaction is searched
too: it must hold the raw values (so the search can fail), and its manifest say so.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.export.snapshots import STAGING_PREFIX, remove_stale_staging
from api.models import Decision, Pair
from api.review import queue
from tests.helpers import auth, make_project, new_reviewer, post_labels, post_question_pairs
from tests.planted_world import DATA, build

TOKEN = re.compile(r"<[A-Z_]+_\d+>")
FORMATS = ("dpo", "hf", "label-studio", "argilla")


def _records() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def leaked(value: str, shown: str) -> bool:
    """The value, or a 4+ character part of it, is visible (tokens removed first: "<PRIVATE_KEY_1>"
    is not a leak of "PRIVATE KEY")."""
    shown = TOKEN.sub(" ", shown)
    if value in shown:
        return True
    parts = [p.strip(",.;:") for p in value.split()]
    return any(p in shown for p in parts if sum(c.isalnum() for c in p) >= 4 and not p.startswith("-----"))


def test_committed_set_is_what_the_generator_writes() -> None:
    records = _records()
    assert records == build()
    kinds = {r["kind"] for r in records}
    assert len(records) >= 150 and len(kinds) >= 18
    assert {r["split"] for r in records} == {"dev", "heldout"}
    assert len({r["lang"] for r in records}) >= 12


def _pairs(records: list[dict[str, str]]) -> list[dict[str, Any]]:
    # The value in the prompt and quoted back in one response; the other refuses.
    return [
        {
            "client_id": f"w{i}",
            "prompt": r["text"],
            "response_a": f"Noted: {r['text']} I will keep it safe.",
            "response_b": "I can't help with personal data.",
            "metadata": {"note": r["text"]},
        }
        for i, r in enumerate(records)
    ]


def _route(engine: Engine, project_id: int) -> None:
    """Judge every pair as the worker would: every 4th to the incident queue, the rest to review."""
    with Session(engine) as session:
        pairs = list(session.exec(select(Pair).where(Pair.project_id == project_id).order_by(Pair.id)))  # type: ignore[arg-type]
        for i, pair in enumerate(pairs):
            incident = i % 4 == 0
            decision = Decision(
                pair_id=pair.id,  # type: ignore[arg-type]
                label="A>B",
                chosen="A",
                confidence=0.6,
                route="incident" if incident else "review",
                reasons=["both_bad"] if incident else ["below_threshold"],
                version="planted",
            )
            session.add(decision)
            session.flush()
            pair.decision_id = decision.id
            pair.state = "done"
            pair.judged_at = decision.created_at
        queue.on_decisions_written(session, [p.id for p in pairs])  # type: ignore[misc]
        session.commit()


def _drain(client: TestClient, project_id: int, token: str, queue_name: str) -> list[dict[str, Any]]:
    items = []
    for _ in range(400):
        r = client.post(
            f"/v1/projects/{project_id}/review/next", json={"queue": queue_name}, headers=auth(token)
        )
        assert r.status_code == 200, r.text
        item = r.json()["item"]
        if item is None:
            break
        items.append(item)
        r = client.post(
            f"/v1/review/leases/{item['lease_id']}/submit",
            json={"label": "A>B", "safety_flag": queue_name == "incident"},
            headers=auth(token),
        )
        assert r.status_code in (200, 201), r.text
    return items


def _export_rows(
    client: TestClient, project_id: int, fmt: str, redact: bool | None
) -> tuple[dict[int, str], str, dict[str, Any]]:
    """An export made through the API and downloaded: (pair id -> every string of its row, all the
    files' text, manifest)."""
    body: dict[str, Any] = {"format": fmt, "split": "all", "force": True, "reason": "leak test"}
    if redact is not None:
        body["redact"] = redact
    r = client.post(f"/v1/projects/{project_id}/exports", json=body)
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    zipped = client.get(f"/v1/projects/{project_id}/exports/{number}/download")
    assert zipped.status_code == 200
    rows: list[dict[str, Any]] = []
    texts: list[str] = []
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name.endswith(".parquet"):
                import pyarrow.parquet as pq

                rows += pq.read_table(io.BytesIO(data)).to_pylist()
            elif name.endswith(".arrow"):
                import pyarrow as pa

                texts.append(
                    json.dumps(
                        pa.ipc.open_stream(io.BytesIO(data)).read_all().to_pylist(), ensure_ascii=False
                    )
                )
            else:
                text = data.decode("utf-8", errors="replace")
                texts.append(text)
                if name in ("data.jsonl", "tasks.json", "records.json"):
                    rows += [
                        json.loads(line.strip().rstrip(","))
                        for line in text.splitlines()
                        if line.strip() not in ("[", "]", "")
                    ]
    by_pair: dict[int, str] = defaultdict(str)
    for row in rows:
        pid = row.get("pair_id") or (row.get("data") or {}).get("pair_id") or int(row["id"])
        by_pair[int(pid)] += json.dumps(row, ensure_ascii=False) + "\n" + "\n".join(_strings(row))
    assert by_pair, f"{fmt}: {json.dumps(r.json()['manifest']['counts'])}"
    return by_pair, "\n".join(texts), r.json()["manifest"]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _by_pair(items: list[dict[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = defaultdict(str)
    for item in items:
        out[item["pair_id"]] += "\n".join((item["prompt"], item["response_a"], item["response_b"]))
    return out


@pytest.mark.slow
def test_no_planted_value_reaches_a_reviewer_or_a_redacted_export(client: TestClient, engine: Engine) -> None:
    records = _records()
    project_id = make_project(client, "world-pii", judges=[{"model": "fake/ok", "custom": True}])
    post_question_pairs(client, project_id, pairs=_pairs(records))
    _route(engine, project_id)
    token = new_reviewer(client, "reviewer-world", [project_id])
    with Session(engine) as session:
        record_of = {
            pid: records[int(cid[1:])]
            for pid, cid in session.exec(select(Pair.id, Pair.client_id).where(Pair.project_id == project_id))
        }
    t0 = time.perf_counter()
    review = _drain(client, project_id, token, "review")
    incident = _drain(client, project_id, token, "incident")
    assert len(review) + len(incident) == len(records) and incident
    history = client.get(f"/v1/projects/{project_id}/review/history?limit=200", headers=auth(token))
    assert history.status_code == 200 and len(history.json()) == 200
    # Imported labels give every pair a final label, so the DPO export has rows whatever the
    # reviewers' labels count for (instant submissions may be speed-flagged and not count).
    post_labels(client, project_id, [(f"w{i}", "A>B") for i in range(len(records))], "import")
    # Per view: pair id -> what that view shows of the pair; and the whole response or files.
    views: dict[str, tuple[dict[int, str], str]] = {
        "review item": (_by_pair(review), json.dumps(review, ensure_ascii=False)),
        "incident item": (_by_pair(incident), json.dumps(incident, ensure_ascii=False)),
        "history": (_by_pair(history.json()), json.dumps(history.json(), ensure_ascii=False)),
    }
    for fmt in FORMATS:
        rows, files, manifest = _export_rows(client, project_id, fmt, redact=True)
        assert manifest["redacted"] is True
        views[f"export {fmt}"] = (rows, files)
    raw_rows, _, raw_manifest = _export_rows(client, project_id, "label-studio", redact=None)  # default: off
    assert raw_manifest["redacted"] is False
    print(f"\n{len(records)} planted values, views built in {time.perf_counter() - t0:.1f} s")

    leaks: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    totals: Counter[tuple[str, str]] = Counter((r["split"], r["kind"]) for r in records)
    for view, (per_pair, whole) in views.items():
        for pid, r in record_of.items():
            # Its parts in its own pair's texts; the whole value anywhere in the view.
            if leaked(r["value"], per_pair.get(pid, "")) or r["value"] in whole:
                leaks[view][r["split"], r["kind"]] += 1
    raw_leaks = sum(leaked(r["value"], raw_rows.get(pid, "")) for pid, r in record_of.items())
    print(f"{'split':<8}{'kind':<17}{'n':>4}  " + "  ".join(f"{v[:13]:>13}" for v in views))
    for split, kind in sorted(totals):
        row = "  ".join(f"{leaks[v][split, kind]:>13}" for v in views)
        print(f"{split:<8}{kind:<17}{totals[split, kind]:>4}  {row}")
    print(f"unredacted label-studio export: {raw_leaks} of {len(records)} values in clear")
    assert raw_leaks == len(records)  # the search finds what is there
    for view in views:
        assert not leaks[view], (view, dict(leaks[view]))


def test_stale_staging_folders_are_removed(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    host = socket.gethostname()
    killed = tmp_path / f"{STAGING_PREFIX}{host}-{dead_pid}-abc"
    running = tmp_path / f"{STAGING_PREFIX}{host}-{os.getpid()}-def"
    legacy = tmp_path / f"{STAGING_PREFIX}0123456789abcdef"
    other_host = tmp_path / f"{STAGING_PREFIX}elsewhere-{dead_pid}-ghi"
    for path in (killed, running, legacy, other_host):
        path.mkdir()
        (path / "data.jsonl").write_text("{}", encoding="utf-8")
    removed = remove_stale_staging(tmp_path)
    assert removed == [killed]
    assert running.exists() and legacy.exists() and other_host.exists()
    # A day later, folders whose writer cannot be checked go too; a live writer's stays.
    later = time.time() + 2 * 24 * 3600
    assert sorted(remove_stale_staging(tmp_path, now=later)) == sorted([legacy, other_host])
    assert running.exists()


def test_background_preparation_redoes_redactions_of_an_older_version(engine: Engine) -> None:
    """Pairs queued under redact-v2 get the current redaction off the request path."""
    from api.models import PairRedaction
    from api.review.prepare import prepare_batch
    from api.review.redaction import REDACTION_VERSION
    from tests.helpers import seed_review_queue

    seed_review_queue(engine, 4)
    assert prepare_batch(engine)["redacted"] == 4
    with Session(engine) as session:
        for row in session.exec(select(PairRedaction)):
            pair = session.get(Pair, row.pair_id)
            assert pair is not None and "@example.com" in pair.prompt
            row.version, row.prompt = "redact-v2", pair.prompt  # what an older redactor let through
            session.add(row)
        session.commit()
    assert prepare_batch(engine)["redacted"] == 4
    with Session(engine) as session:
        rows = list(session.exec(select(PairRedaction)))
    assert len(rows) == 4
    assert all(r.version == REDACTION_VERSION and "@example.com" not in r.prompt for r in rows)
    assert prepare_batch(engine)["redacted"] == 0  # nothing left to redo
