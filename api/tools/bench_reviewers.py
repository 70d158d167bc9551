"""``prelabel bench reviewers``: real annotators (and simulated bad ones) through the review API.

Replays PandaLM's three human annotators (``testset_3annotators.jsonl``) as three reviewers
who each label every pair (overlap = all reviewers), plus simulated ``spammer`` (a random side)
and ``lazy`` (always "A") reviewers, through ``POST .../review/next`` and ``.../submit`` of
the ASGI app in-process with an admin token. A random ~6 % of the pairs with a majority
answer are honeypots (gold labels with ``honeypot: true``, their answer the annotators'
majority; the real annotators answer them with their own recorded label). The project runs
the default quality settings except the speed filter, which a replay (answers in
milliseconds) would trip on every label.

Reports agreement among the three real annotators (Cohen's kappa per pair, Fleiss' kappa,
Krippendorff's alpha on the ordinal A < tie < B scale and nominal), Dawid--Skene against
majority-vote accuracy leave-one-annotator-out (each real annotator's labels as the truth,
the aggregate of all the other reviewers' labels as the prediction), how many labels each
simulated reviewer gave before the auto-pause stopped them, and how many real annotators
were paused.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.db import make_engine, upgrade
from api.main import create_app
from api.models import Decision, Job, Pair, utcnow
from api.review import queue
from api.settings import Settings
from calibration.aggregation import dawid_skene, majority_vote
from calibration.agreement import fleiss_kappa, krippendorff_alpha, pairwise_cohen_kappa

FIVE_POINT_OF_SIDE = {"A": "A>B", "B": "B>A", "tie": "tie"}
HONEYPOT_SHARE = 0.06
_ADMIN = "bench-reviewers-admin"


def load_pandalm(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the PandaLM three-annotator file: id, prompt, responses, annotator -> side."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            rows.append(
                {
                    "id": record["id"],
                    "prompt": record["prompt"],
                    "response_a": record["response_a"],
                    "response_b": record["response_b"],
                    "labels": {a["annotator"]: a["label"] for a in record["annotations"]},
                }
            )
            if limit is not None and len(rows) >= limit:
                break
    return rows


def _majority(labels: dict[str, str]) -> str | None:
    side, n = Counter(labels.values()).most_common(1)[0]
    return side if 2 * n > len(labels) else None


def _seed_pairs(engine: Any, project_id: int, rows: list[dict[str, Any]], honeypots: set[str]) -> None:
    """The pairs, decided: review for the replayed ones, auto-accepted for the honeypots (so
    they reach reviewers as honeypots only), then the queue's own enqueue hook."""
    now = utcnow()
    with Session(engine) as session:
        job = Job(project_id=project_id, n_pairs=len(rows))
        session.add(job)
        session.flush()
        for row in rows:
            pair = Pair(
                project_id=project_id,
                job_id=job.id,
                client_id=row["id"],
                prompt=row["prompt"],
                response_a=row["response_a"],
                response_b=row["response_b"],
                content_hash=uuid.uuid4().hex,
                state="done",
                judged_at=now,
            )
            session.add(pair)
            session.flush()
            route = "auto_accept" if row["id"] in honeypots else "review"
            decision = Decision(
                pair_id=pair.id,
                route=route,
                reasons=[] if route == "auto_accept" else ["gate_closed"],
                confidence=0.5,
                version="bench",
            )
            session.add(decision)
            session.flush()
            pair.decision_id = decision.id
            session.add(pair)
        session.flush()
        pair_ids = list(session.exec(select(Pair.id).where(Pair.project_id == project_id)))
        queue.on_decisions_written(session, pair_ids)
        session.commit()


def _agreement(long: pd.DataFrame) -> dict[str, Any]:
    kappas = pairwise_cohen_kappa(long)
    return {
        "cohen_kappa": {
            f"{r.annotator_1}|{r.annotator_2}": round(float(r.kappa), 4) for r in kappas.itertuples()
        },
        "fleiss_kappa": round(fleiss_kappa(long), 4),
        "krippendorff_alpha_ordinal": round(krippendorff_alpha(long, level="ordinal"), 4),
        "krippendorff_alpha_nominal": round(krippendorff_alpha(long, level="nominal"), 4),
    }


def _leave_one_out(long: pd.DataFrame, real: list[str]) -> dict[str, float]:
    """Mean accuracy of Dawid--Skene and of majority vote (a split vote is a tie) over the real
    annotators, each held out as the truth for the aggregate of everyone else's labels."""
    ds_acc, mv_acc = [], []
    for held_out in real:
        truth = long[long["annotator"] == held_out].set_index("item")["label"]
        others = long[long["annotator"] != held_out]
        ds = dawid_skene(others, categories=["A", "tie", "B"]).labels
        mv = majority_vote(others, on_tie="label", tie_label="tie", categories=["A", "tie", "B"]).labels
        items = truth.index.intersection(ds.index)
        ds_acc.append(float((ds[items] == truth[items]).mean()))
        mv_acc.append(float((mv[items] == truth[items]).mean()))
    return {
        "ds_accuracy": round(sum(ds_acc) / len(ds_acc), 4),
        "mv_accuracy": round(sum(mv_acc) / len(mv_acc), 4),
    }


def bench_reviewers(
    data: str | Path, spammers: int = 0, lazy: int = 0, limit: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Replay the annotators through the review API; the figures as a dict (see the module)."""
    rows = load_pandalm(data, limit)
    rng = random.Random(seed)
    real = sorted({name for row in rows for name in row["labels"]})
    with_majority = [row["id"] for row in rows if _majority(row["labels"]) is not None]
    honeypots = set(rng.sample(with_majority, max(1, round(HONEYPOT_SHARE * len(rows)))))
    simulated = [("spammer", f"spammer-{i + 1}") for i in range(spammers)] + [
        ("lazy", f"lazy-{i + 1}") for i in range(lazy)
    ]
    names = real + [name for _, name in simulated]
    if len(names) > 10:
        raise ValueError("at most 10 reviewers per pair (review_overlap <= 10)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prelabel-bench-reviewers-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        settings = Settings(database_url=url, admin_token=_ADMIN, ingest_processes=0)
        admin = {"authorization": f"Bearer {_ADMIN}"}
        with TestClient(create_app(settings, engine, run_worker=False), headers=admin) as client:
            routing = {"review_overlap": len(names), "min_seconds_base": 0.0, "min_seconds_per_1k_chars": 0.0}
            created = client.post(
                "/v1/projects",
                json={"name": "pandalm-reviewers", "judges": ["mock/bench"], "routing": routing},
            )
            created.raise_for_status()
            project_id = created.json()["id"]
            _seed_pairs(engine, project_id, rows, honeypots)
            by_id = {row["id"]: row for row in rows}
            gold = [
                {
                    "client_id": cid,
                    # honeypots are drawn from the pairs with a majority (with_majority)
                    "label": FIVE_POINT_OF_SIDE[_majority(by_id[cid]["labels"]) or ""],
                    "source": "gold",
                    "annotator": "pandalm-majority",
                    "honeypot": True,
                }
                for cid in sorted(honeypots)
            ]
            client.post(f"/v1/projects/{project_id}/labels", json={"labels": gold}).raise_for_status()
            tokens = {}
            for name in names:
                r = client.post("/v1/reviewers", json={"name": name, "projects": [project_id]})
                r.raise_for_status()
                tokens[name] = {"authorization": f"Bearer {r.json()['token']}"}
            kind_of = dict((name, kind) for kind, name in simulated)
            client_id_of: dict[int, str] = {}
            given: Counter[str] = Counter()
            paused_after: dict[str, int] = {}
            active = list(names)
            while active:
                for name in list(active):
                    r = client.post(f"/v1/projects/{project_id}/review/next", json={}, headers=tokens[name])
                    if r.status_code == 423:
                        paused_after[name] = given[name]
                        active.remove(name)
                        continue
                    r.raise_for_status()
                    item = r.json()["item"]
                    if item is None:
                        active.remove(name)
                        continue
                    if item["pair_id"] not in client_id_of:
                        with Session(engine) as session:
                            client_id_of[item["pair_id"]] = session.get_one(Pair, item["pair_id"]).client_id
                    row = by_id[client_id_of[item["pair_id"]]]
                    kind = kind_of.get(name)
                    side = (
                        row["labels"][name]
                        if kind is None
                        else rng.choice(["A", "B", "tie"])
                        if kind == "spammer"
                        else "A"
                    )
                    body = {"label": FIVE_POINT_OF_SIDE[side], "time_on_task_s": 30.0}
                    client.post(
                        f"/v1/review/leases/{item['lease_id']}/submit", json=body, headers=tokens[name]
                    ).raise_for_status()
                    given[name] += 1
            quality = client.get(f"/v1/projects/{project_id}/review/quality").json()["reviewers"]
            labels: list[dict[str, Any]] = []
            after = 0
            while True:
                page = client.get(
                    f"/v1/projects/{project_id}/review/labels", params={"after": after, "limit": 5000}
                ).json()
                labels += page["labels"]
                if page["next_after"] is None:
                    break
                after = page["next_after"]
        engine.dispose()
    sides = {"A>>B": "A", "A>B": "A", "tie": "tie", "B>A": "B", "B>>A": "B"}
    long = pd.DataFrame(
        [
            {"item": label["pair_id"], "annotator": label["annotator"], "label": sides[label["label"]]}
            for label in labels
            if label["source"] != "honeypot"
        ],
        columns=["item", "annotator", "label"],
    )
    paused = {row["name"] for row in quality if row["paused"]}
    return {
        "items": len(rows) - len(honeypots),
        "honeypots": len(honeypots),
        "reviewers": names,
        **_agreement(long[long["annotator"].isin(real)]),
        **_leave_one_out(long, real),
        "simulated": [
            {"kind": kind, "name": name, "labels_until_paused": paused_after.get(name)}
            for kind, name in simulated
        ],
        "real_paused": sum(name in paused for name in real),
        "quality": [
            {
                key: row[key]
                for key in (
                    "name",
                    "labels",
                    "honeypots_seen",
                    "honeypot_accuracy",
                    "peer_agreement",
                    "paused",
                )
            }
            for row in quality
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }
