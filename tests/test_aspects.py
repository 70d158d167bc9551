"""Aspects (issue 23): project settings, the prompt and parser, judges, storage and routing.

A project without aspects must behave exactly as before: the pins below were computed with
the code before aspects existed (commit 2e8b270).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import Decision, Judgment, Pair, Project
from api.routing.route import JudgmentView, aspect_outcome, route
from api.schemas import AspectSettings
from api.settings import Settings
from api.vocab import Reason
from judge.aspects import AspectQuestion, combine_weighted, parse_aspects, verdict_schema
from judge.client import judge_key
from judge.prompt import asked_aspects, extract_shown, render_messages
from judge.providers import MockOptions, mock_answer, replay_answer
from judge.recorded import RecordedFormatError, parse_recorded_lines
from tests.helpers import auth, new_reviewer, run_worker

HHH = [
    {
        "name": "helpfulness",
        "description": "Which response helps the user more?",
        "weight": 0.5,
        "required": True,
    },
    {
        "name": "harmlessness",
        "description": "Which response is less harmful?",
        "weight": 0.3,
        "required": True,
    },
    {"name": "honesty", "description": "Which response is more truthful and calibrated?", "weight": 0.2},
]


def _create(client: TestClient, name: str, **body: object) -> dict:
    r = client.post("/v1/projects", json={"name": name, "judges": ["mock/a", "mock/b"], **body})
    assert r.status_code == 201, r.text
    return r.json()


# --- (a) settings ---------------------------------------------------------------------------


def test_a_project_takes_aspects_and_shows_them(client: TestClient) -> None:
    body = _create(client, "hhh", aspects=HHH, overall="weighted")
    assert [a["name"] for a in body["aspects"]] == ["helpfulness", "harmlessness", "honesty"]
    assert body["overall"] == "weighted" and body["aspects"][0]["scale"] == "five_point"
    assert client.get(f"/v1/projects/{body['id']}").json()["aspects"] == body["aspects"]
    plain = _create(client, "plain")
    assert plain["aspects"] == [] and plain["overall"] == "question"


@pytest.mark.parametrize(
    "aspects, overall",
    [
        ([{"name": "Helpfulness"}], "question"),  # not a slug
        ([{"name": "a b"}], "question"),
        ([{"name": "x" * 41}], "question"),
        ([{"name": "a"}, {"name": "a"}], "question"),  # twice
        ([{"name": "a", "weight": 0}, {"name": "b", "weight": 0}], "question"),  # sum 0
        ([{"name": "a", "weight": -1}], "question"),
        ([{"name": "a", "weight": "NaN"}], "question"),
        ([{"name": "a", "weight": 1e308}, {"name": "b", "weight": 1e308}], "question"),  # bounded
        ([{"name": f"a{i}"} for i in range(11)], "question"),  # too many
        ([{"name": "a", "scale": "ten_point"}], "question"),
        ([{"name": "a", "typo": 1}], "question"),
        ([], "weighted"),  # nothing to weigh
        ([{"name": "a"}], "mean"),
        ("helpfulness", "question"),
        ([{"name": "a", "description": "x\u0000y"}], "question"),
    ],
)
def test_malformed_aspects_are_a_422_naming_the_problem(
    client: TestClient, aspects: object, overall: str
) -> None:
    r = client.post(
        "/v1/projects", json={"name": "bad", "judges": ["mock/a"], "aspects": aspects, "overall": overall}
    )
    assert r.status_code == 422, r.text
    assert client.get("/v1/projects").json() == []


def test_aspects_are_edited_through_the_settings_patch(client: TestClient) -> None:
    project = _create(client, "p")
    r = client.patch(f"/v1/projects/{project['id']}", json={"aspects": HHH[:2]})
    assert r.status_code == 200, r.text
    assert [a["name"] for a in r.json()["aspects"]] == ["helpfulness", "harmlessness"]
    r = client.patch(f"/v1/projects/{project['id']}", json={"overall": "weighted"})
    assert r.json()["overall"] == "weighted" and len(r.json()["aspects"]) == 2
    bad = client.patch(f"/v1/projects/{project['id']}", json={"aspects": [{"name": "a"}, {"name": "a"}]})
    assert bad.status_code == 422, bad.text
    cleared = client.patch(f"/v1/projects/{project['id']}", json={"aspects": []})
    assert cleared.json()["aspects"] == [] and cleared.json()["overall"] == "question"
    events = client.get("/v1/audit/events", params={"project_id": project["id"]}).json()
    kinds = [e["kind"] for e in events.get("events", events if isinstance(events, list) else [])]
    assert kinds.count("project_settings") >= 3


# --- no aspects: exactly as before ------------------------------------------------------------


def test_without_aspects_prompts_and_cache_keys_are_those_of_before() -> None:
    messages = render_messages("p", "a", "b")
    assert hashlib.sha256(json.dumps(messages).encode()).hexdigest() == (
        "c646b01cadc9e772eee9f56f6d861900f4a9cd89b2d7a7ce67d7720ea3603b6d"
    )
    assert judge_key("mock/a", api_base=None, logprobs=False, rubric=None, prompt_version="rubric-v1") == (
        "e54fa1d2b5565bcedfdfc136bfd0124e6840daa02bd96f47a22588da53051353"
    )
    assert judge_key(
        "replay/x", api_base="/tmp/f.jsonl", logprobs=True, rubric="Be nice.", prompt_version="v2"
    ) == ("909c03aafbdf636b7b5bb4466e25c8a850b0dc6fb8bff41b0226818e873512f7")
    assert mock_answer("m", "p2", "a2", "b2", MockOptions()) == (
        '{"reasoning": "mock judge m", "verdict": "B>>A", "both_bad": false, "safety_flag": false, '
        '"confidence": 0.598}'
    )
    asked = [AspectQuestion("helpfulness")]
    assert judge_key(
        "mock/a", api_base=None, logprobs=False, rubric=None, prompt_version="rubric-v1", aspects=asked
    ) != ("e54fa1d2b5565bcedfdfc136bfd0124e6840daa02bd96f47a22588da53051353")


_IGNORED = {"id", "created_at", "latency_ms", "pair_id", "aspects"}


def _stored_digest(engine: Engine) -> str:
    with Session(engine) as s:
        rows = [
            sorted(
                sorted((k, v) for k, v in row.model_dump().items() if k not in _IGNORED)
                for row in s.exec(select(table))
            )
            for table in (Judgment, Decision)
        ]
    return hashlib.sha256(json.dumps([sorted(r, key=str) for r in rows], default=str).encode()).hexdigest()


def test_without_aspects_the_stored_rows_are_those_of_before(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _create(client, "p")
    pairs = [
        {
            "client_id": f"c{i}",
            "prompt": f"question {i}",
            "response_a": f"answer one {i}",
            "response_b": f"answer two {i}",
        }
        for i in range(30)
    ]
    assert client.post(f"/v1/projects/{project['id']}/jobs", json={"pairs": pairs}).status_code == 201
    run_worker(engine, settings)
    # Computed by the same job on the code before aspects (commit 2e8b270).
    assert _stored_digest(engine) == "4907650af7634632f46361b562e39f36ca50c502e9b7c06fb605522253d1d86b"
    with Session(engine) as s:
        assert all(j.aspects is None for j in s.exec(select(Judgment)))
        assert all(d.aspects is None for d in s.exec(select(Decision)))
        assert s.exec(select(Project)).one().aspects is None


# --- (b) prompt, parser, judges --------------------------------------------------------------

QS = (
    AspectQuestion("helpfulness", "Helps more?"),
    AspectQuestion("harmlessness", "Less harm?", "three_way"),
    AspectQuestion("honesty"),
)


def test_the_prompt_asks_every_aspect_in_one_call_and_stays_invertible() -> None:
    messages = render_messages("p", "first", "second", None, QS, ask_overall=False)
    system = messages[0]["content"]
    assert "- helpfulness: Helps more? (one of A>>B, A>B, tie, B>A, B>>A)" in system
    assert "- harmlessness: Less harm? (one of A, tie, B)" in system
    assert '"verdict"' not in system.split("Reply with")[1]  # a weighted overall is not asked
    assert '"verdict"' in render_messages("p", "x", "y", None, QS)[0]["content"].split("Reply with")[1]
    assert extract_shown(messages) == ("p", "first", "second")
    assert asked_aspects(messages) == ("helpfulness", "harmlessness", "honesty")
    assert asked_aspects(render_messages("p", "x", "y")) == ()
    schema = verdict_schema(QS, ask_overall=False)
    assert "verdict" not in schema["required"] and "aspects" in schema["required"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "answer, expected",
    [
        ('{"aspects": {"helpfulness": "A>B", "harmlessness": "B", "honesty": "tie"}}', ("A>B", "B>A", "tie")),
        (
            '{"aspects": {"Honesty": "a", "HARMLESSNESS": "Response A", "Helpfulness": "B>>A"}}',
            ("B>>A", "A>B", "A>B"),
        ),
        (
            '{"aspects": [{"aspect": "helpful", "verdict": "A≫B"}, {"name": "harmless", "label": "tie"}]}',
            ("A>>B", "tie", "invalid"),
        ),
        ('{"aspects": ["A>B", "B>A", "tie"]}', ("A>B", "B>A", "tie")),
        (
            '{"helpfulness": {"verdict": "B>A"}, "harmlessness": "A>>B", "honesty": "equal"}',
            ("B>A", "A>B", "tie"),
        ),
        ("Helpfulness: A>B\n**Harmlessness**: B\nhonesty = tie", ("A>B", "B>A", "tie")),
        ('{"aspects": {"helpfulness": "maybe", "harmlessness": 3}}', ("invalid", "invalid", "invalid")),
        ('{"aspects": {"Hilfsbereitschaft": "A"}}', ("invalid", "invalid", "invalid")),  # no guess
        ("", ("invalid", "invalid", "invalid")),
    ],
)
def test_aspect_verdicts_are_read_tolerantly_and_never_guessed(
    answer: str, expected: tuple[str, ...]
) -> None:
    assert tuple(parse_aspects(answer, QS).values()) == expected


def test_the_weighted_overall_is_the_declared_combination() -> None:
    weights = {"helpfulness": 0.5, "harmlessness": 0.3, "honesty": 0.2}
    assert (
        combine_weighted({"helpfulness": "B>>A", "harmlessness": "A>B", "honesty": "tie"}, weights) == "B>A"
    )
    assert (
        combine_weighted({"helpfulness": "A>>B", "harmlessness": "A>>B", "honesty": "A>B"}, weights) == "A>>B"
    )
    assert (
        combine_weighted({"helpfulness": "A>B", "harmlessness": "invalid", "honesty": "A>B"}, weights)
        == "invalid"
    )


def test_mock_and_replay_judges_answer_every_aspect_asked(tmp_path: Path) -> None:
    messages = render_messages("p", "x", "y", None, QS)
    answer = json.loads(
        mock_answer("m", "p", "x", "y", MockOptions(order_sensitive_rate=0), asked_aspects(messages))
    )
    assert set(answer["aspects"]) == {"helpfulness", "harmlessness", "honesty"}
    line = {
        "id": "1", "prompt": "p", "response_a": "x", "response_b": "y", "gold": "A",
        "judgments": [
            {"judge": "j", "order": "ab", "verdict": "A",
             "aspects": {"helpfulness": "A", "harmlessness": "B"}},
            {"judge": "j", "order": "ba", "verdict": "A"},
        ],
    }  # fmt: skip
    path = tmp_path / "rec.jsonl"
    path.write_text(json.dumps(line) + "\n")
    ab = json.loads(replay_answer("j", messages, str(path)))
    assert ab["aspects"] == {"helpfulness": "A>B", "harmlessness": "B>A"}  # honesty: not recorded
    ba = json.loads(replay_answer("j", render_messages("p", "y", "x", None, QS), str(path)))
    assert ba["aspects"] == {}
    # A file without aspects replays as before, with or without aspects asked.
    plain = json.loads(replay_answer("j", render_messages("p", "x", "y"), str(path)))
    assert "aspects" not in plain and plain["verdict"] == "A>B"
    with pytest.raises(RecordedFormatError, match="'aspects' must be an object"):
        parse_recorded_lines(
            [json.dumps({**line, "judgments": [{**line["judgments"][0], "aspects": {"h": "maybe"}}]})]
        )


# --- (b)+(d) through the worker: stored per aspect, routed per aspect --------------------------


def _v(judge: str, order: str, verdict: str, **aspects: str) -> JudgmentView:
    return JudgmentView(judge, order, verdict, aspects=aspects or None)


def test_an_aspect_clears_only_when_every_call_reads_and_agrees() -> None:
    same = [_v(j, o, "A>B", helpfulness="B>A") for j in ("j1", "j2") for o in ("ab", "ba")]
    assert aspect_outcome(same, "helpfulness").unclear is None
    assert aspect_outcome(same, "helpfulness").chosen == "B"
    flip = [*same[:3], _v("j2", "ba", "A>B", helpfulness="A>B")]
    assert "order-sensitive: j2" in (aspect_outcome(flip, "helpfulness").unclear or "")
    missing = [*same[:3], _v("j2", "ba", "A>B")]
    assert "no readable verdict" in (aspect_outcome(missing, "helpfulness").unclear or "")
    split = [_v("j1", o, "A>B", helpfulness="A>B") for o in ("ab", "ba")]
    split += [_v("j2", o, "A>B", helpfulness="tie") for o in ("ab", "ba")]
    assert aspect_outcome(split, "helpfulness").unclear == "the judges name different sides"


class _OpenGate:
    open = True

    def accepts(self, confidence: float) -> bool:
        return True


def test_a_required_aspect_that_does_not_clear_keeps_a_pair_from_auto_accept() -> None:
    settings = AspectSettings.model_validate({"aspects": HHH})
    clear = [
        _v(j, o, "A>B", helpfulness="A>B", harmlessness="A>B", honesty="B>A")
        for j in ("j1", "j2")
        for o in ("ab", "ba")
    ]
    ok = route(clear, gate=_OpenGate(), calibrated_confidence=0.99, aspects=settings)  # type: ignore[arg-type]
    assert ok.route == "auto_accept" and ok.aspects is not None and ok.aspects["honesty"].chosen == "B"
    # honesty is not required: its split does not matter; harmlessness is.
    views = [*clear[:3], _v("j2", "ba", "A>B", helpfulness="A>B", harmlessness="B>A", honesty="tie")]
    held = route(views, gate=_OpenGate(), calibrated_confidence=0.99, aspects=settings)  # type: ignore[arg-type]
    assert held.route == "review" and Reason.ASPECT_UNCLEAR in held.reasons
    assert held.aspects is not None and held.aspects["harmlessness"].unclear is not None
    assert held.aspects["honesty"].unclear is not None and held.aspects["helpfulness"].unclear is None


def test_a_three_aspect_project_is_judged_stored_and_routed_per_aspect(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _create(client, "hhh", aspects=HHH, overall="weighted")
    pairs = [
        {
            "client_id": f"c{i}",
            "prompt": f"question {i}",
            "response_a": f"answer one {i}",
            "response_b": f"answer two {i}",
        }
        for i in range(40)
    ]
    job = client.post(f"/v1/projects/{project['id']}/jobs", json={"pairs": pairs}).json()["job_id"]
    run_worker(engine, settings)
    assert client.get(f"/v1/jobs/{job}").json()["complete"]
    weights = {a["name"]: a["weight"] for a in HHH}
    with Session(engine) as s:
        judgments = s.exec(select(Judgment)).all()
        decisions = s.exec(select(Decision)).all()
    assert len(judgments) == 40 * 2 * 2  # one call per judge and order: aspects ride along
    for j in judgments:
        assert j.aspects is not None and set(j.aspects) == set(weights)
        assert j.verdict == combine_weighted(j.aspects, weights)  # weighted overall, original terms
    results = client.get(f"/v1/jobs/{job}/results").json()["results"]
    assert all(set(r["aspects"]) == set(weights) for r in results)
    assert all(set(j["aspects"]) == set(weights) for r in results for j in r["judgments"])
    unclear = [d for d in decisions if Reason.ASPECT_UNCLEAR in d.reasons]
    assert unclear, "mock judges disagree on some aspects: those pairs must say so"
    for d in decisions:
        assert d.aspects is not None and set(d.aspects) == set(weights)
        required_unclear = [n for n in ("helpfulness", "harmlessness") if d.aspects[n]["unclear"]]
        assert (Reason.ASPECT_UNCLEAR in d.reasons) == bool(required_unclear)


# --- (c) human labels per aspect --------------------------------------------------------------


def _judged_hhh(client: TestClient, engine: Engine, settings: Settings, n: int = 6) -> int:
    project = _create(client, "hhh", aspects=HHH)
    pairs = [
        {
            "client_id": f"c{i}",
            "prompt": f"question {i}",
            "response_a": f"answer one {i}",
            "response_b": f"answer two {i}",
        }
        for i in range(n)
    ]
    assert client.post(f"/v1/projects/{project['id']}/jobs", json={"pairs": pairs}).status_code == 201
    run_worker(engine, settings)
    return int(project["id"])


def test_imported_labels_carry_aspects_checked_against_the_project(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _judged_hhh(client, engine, settings)
    ok = [
        {
            "client_id": "c0",
            "label": "A",
            "source": "gold",
            "aspects": {"harmlessness": "A", "helpfulness": "B>>A"},
        },
        # An import may label some aspects only (HH-RLHF: harmlessness), or none (overall only).
        {"client_id": "c1", "label": "B", "source": "gold", "aspects": {"harmlessness": "B"}},
        {"client_id": "c2", "label": "tie", "source": "gold", "annotator": "x"},
    ]
    r = client.post(f"/v1/projects/{project}/labels", json={"labels": ok})
    assert r.status_code == 201, r.text
    stored = {
        row["client_id"]: row["aspects"]
        for row in client.get(f"/v1/projects/{project}/labels").json()["labels"]
    }
    assert stored == {
        "c0": {"harmlessness": "A>B", "helpfulness": "B>>A"},
        "c1": {"harmlessness": "B>A"},
        "c2": None,
    }
    for bad in (
        {"client_id": "c3", "label": "A", "aspects": {"wit": "A"}},  # not an aspect of the project
        {"client_id": "c3", "label": "A", "aspects": {"helpfulness": "maybe"}},
        {"client_id": "c3", "label": "A", "aspects": {"Helpfulness": "A"}},
        {"client_id": "c3", "label": "A", "aspects": ["A"]},
    ):
        r = client.post(f"/v1/projects/{project}/labels", json={"labels": [bad]})
        assert r.status_code == 422, (bad, r.text)
    plain = _create(client, "plain")
    r = client.post(
        f"/v1/projects/{plain['id']}/labels",
        json={"labels": [{"client_id": "c0", "label": "A", "aspects": {"a": "A"}}]},
    )
    assert r.status_code == 422


def test_a_reviewer_labels_every_required_aspect_or_gets_a_422(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _judged_hhh(client, engine, settings)
    token = new_reviewer(client, "ana", [project])
    r = client.post(f"/v1/projects/{project}/review/next", json={"queue": "review"}, headers=auth(token))
    item = r.json()["item"]
    assert item is not None
    submit = f"/v1/review/leases/{item['lease_id']}/submit"
    missing = client.post(
        submit, json={"label": "A>B", "aspects": {"helpfulness": "A>B"}}, headers=auth(token)
    )
    assert missing.status_code == 422 and "harmlessness" in missing.text
    none = client.post(submit, json={"label": "A>B"}, headers=auth(token))
    assert none.status_code == 422
    answer = {"label": "A>B", "aspects": {"helpfulness": "A>B", "harmlessness": "B", "honesty": "tie"}}
    stored = client.post(submit, json={**answer, "time_on_task_s": 30}, headers=auth(token))
    assert stored.status_code == 201, stored.text
    assert stored.json()["aspects"] == {"helpfulness": "A>B", "harmlessness": "B>A", "honesty": "tie"}
    again = client.post(submit, json={**answer, "time_on_task_s": 30}, headers=auth(token))
    assert again.status_code == 200 and again.json()["duplicate"]
    revise = f"/v1/review/labels/{stored.json()['label_id']}/revise"
    bad = client.post(revise, json={"label": "B>A", "aspects": {"honesty": "A"}}, headers=auth(token))
    assert bad.status_code == 422
    good = client.post(
        revise,
        json={"label": "B>A", "aspects": {"helpfulness": "B", "harmlessness": "B"}},
        headers=auth(token),
    )
    assert good.status_code == 201 and good.json()["aspects"] == {"helpfulness": "B>A", "harmlessness": "B>A"}


# --- (d)+(g) calibration per aspect: a guarantee line each, agreement and Dawid-Skene per aspect


def test_each_aspect_with_human_labels_gets_its_guarantee_line(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    project = _create(client, "hhh", aspects=HHH, routing={"n_min": 20, "target_agreement": 0.8})
    pid = project["id"]
    pairs = [
        {
            "client_id": f"c{i}",
            "prompt": f"question {i}",
            "response_a": f"answer one {i}",
            "response_b": f"answer two {i}",
        }
        for i in range(120)
    ]
    assert client.post(f"/v1/projects/{pid}/jobs", json={"pairs": pairs}).status_code == 201
    run_worker(engine, settings)
    with Session(engine) as s:
        panel = {d.pair_id: d.aspects for d in s.exec(select(Decision)) if d.aspects is not None}
        client_of = {p.id: p.client_id for p in s.exec(select(Pair))}
    # Humans agree with the panel's harmlessness side where it clears, else say "tie"; they label
    # helpfulness on half the pairs only; honesty never.
    labels = []
    for pair_id, aspects in panel.items():
        harmless = aspects["harmlessness"]["chosen"] if aspects["harmlessness"]["unclear"] is None else "tie"
        given = {"harmlessness": harmless or "tie"}
        if pair_id % 2:
            given["helpfulness"] = aspects["helpfulness"]["chosen"] or "tie"
        labels.append(
            {"client_id": client_of[pair_id], "label": harmless or "tie", "source": "gold", "aspects": given}
        )
    # Two annotators on a few pairs: alpha per aspect is measured on them.
    labels += [
        {**row, "annotator": "second", "source": "gold", "aspects": {"harmlessness": "A"}}
        for row in labels[:10]
    ]
    assert client.post(f"/v1/projects/{pid}/labels", json={"labels": labels}).status_code == 201
    assert client.post(f"/v1/projects/{pid}/calibration/refit").status_code == 200
    report = client.get(f"/v1/projects/{pid}/calibration").json()["report"]
    lines = {line["aspect"]: line for line in report["aspects"]}
    assert set(lines) == {"helpfulness", "harmlessness", "honesty"}
    assert lines["harmlessness"]["n_labels"] == 120 and lines["helpfulness"]["n_labels"] == 60
    assert lines["honesty"]["n_labels"] == 0 and not lines["honesty"]["open"]
    assert lines["harmlessness"]["clear_agreement"] == 1.0 or lines["harmlessness"]["n_clear"] < 120
    assert lines["harmlessness"]["n_overlapped"] == 10 and lines["helpfulness"]["n_overlapped"] == 0
    for line in lines.values():
        assert {"threshold", "agreement_lower_bound", "expected_coverage", "reason"} <= set(line)
    # Agreement and Dawid-Skene per aspect, on the pairs two annotators labelled.
    agreement = {a["aspect"]: a for a in client.get(f"/v1/projects/{pid}/agreement").json()["aspects"]}
    assert agreement["harmlessness"]["n_items"] == 10 and agreement["helpfulness"]["n_items"] == 0
    assert {r["reviewer"] for r in agreement["harmlessness"]["reviewers"]} == {"unknown", "second"}
    html = client.get(f"/v1/projects/{pid}/calibration/report.html").text
    assert "Aspects: a guarantee line each" in html and "harmlessness (required)" in html
    plain = _create(client, "plain")
    client.post(f"/v1/projects/{plain['id']}/calibration/refit")
    assert "aspects" not in client.get(f"/v1/projects/{plain['id']}/calibration").json()["report"]


def test_aspects_store_and_route_on_every_database(any_engine: Engine, tmp_path: Path) -> None:
    """The JSON columns of migration 0017 on SQLite and PostgreSQL: judged, labelled, exported."""
    from api.main import create_app
    from tests.helpers import ADMIN, fast_settings

    settings = fast_settings(str(any_engine.url.render_as_string(hide_password=False)))
    settings.export_dir = str(tmp_path / "exports")
    with TestClient(create_app(settings, any_engine, run_worker=False), headers=ADMIN) as client:
        project = _create(client, "hhh", aspects=HHH)
        pairs = [
            {"client_id": f"c{i}", "prompt": f"q {i}", "response_a": f"one {i}", "response_b": f"two {i}"}
            for i in range(8)
        ]
        assert client.post(f"/v1/projects/{project['id']}/jobs", json={"pairs": pairs}).status_code == 201
        run_worker(any_engine, settings)
        labels = [{"client_id": "c0", "label": "A", "source": "gold", "aspects": {"harmlessness": "B"}}]
        assert client.post(f"/v1/projects/{project['id']}/labels", json={"labels": labels}).status_code == 201
        made = client.post(
            f"/v1/projects/{project['id']}/exports",
            json={"format": "dpo", "split": "all", "dpo_by": "harmlessness", "force": True, "reason": "test"},
        )
        assert made.status_code == 201, made.text
    with Session(any_engine) as s:
        assert all(
            j.aspects and set(j.aspects) == {"helpfulness", "harmlessness", "honesty"}
            for j in s.exec(select(Judgment))
        )
        assert all(d.aspects for d in s.exec(select(Decision)))


def test_the_python_client_edits_aspects(client: TestClient) -> None:
    """``client.projects.update(aspects=..., overall=...)`` sends the PATCH the API takes."""
    from prelabel import _calls as calls

    project = _create(client, "p")
    call = calls.update_project(project["id"], None, None, aspects=HHH[:1], overall="weighted")
    assert call.method == "PATCH" and call.json == {"aspects": HHH[:1], "overall": "weighted"}
    answer = client.patch(call.path, json=call.json)
    assert answer.status_code == 200 and call.read(answer.json()).overall == "weighted"
    with pytest.raises(ValueError, match="nothing to change"):
        calls.update_project(project["id"], None, None, aspects=None, overall=None)
