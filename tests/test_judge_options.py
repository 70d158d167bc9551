"""Judges tuned per judge (judge/options.py, JudgeSpec): options reach the provider, concurrency
and timeout limits hold per judge, logprob confidences are stored for every answer shape, a live
judge without its key is refused, and errors and raw answers say why a judgment has no verdict.

Providers are the fault server on 127.0.0.1 (tests/fault_server.py), which records each
request body and the most requests it had open per model; the worker is the real one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import Judgment, Pair
from api.schemas import JudgeSpec
from api.settings import Settings
from judge.client import RetryPolicy, call_judge, judge_key
from judge.parse import VERDICT_SCHEMA
from judge.prompt import render_messages
from tests.fault_server import FaultServer, bare_label, json_answer, verdict_line
from tests.helpers import make_project, post_question_pairs, run_worker


def _local(server: FaultServer, model: str, **options: Any) -> dict[str, Any]:
    """A self-hosted judge on the fault server, as a user of a local server writes it."""
    return {"model": f"openai/{model}", "api_base": server.base_url, "custom": True, **options}


def _allow(client: TestClient, settings: Settings, server: FaultServer, **update: Any) -> Settings:
    """Settings that allow-list the fault server (for project creation and the worker)."""
    allowed = settings.model_copy(update={"judge_api_bases": [server.base_url], **update})
    client.app.state.settings = allowed  # type: ignore[attr-defined]
    return allowed


def _judgments(engine: Engine) -> list[Judgment]:
    with Session(engine) as session:
        return list(session.exec(select(Judgment)).all())


def _by_model(server: FaultServer) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for request in server.requests:
        found.setdefault(str(request["model"]), []).append(request)
    return found


# --- the cache key ------------------------------------------------------------------------


def _key_before_options(model: str, api_base: str | None, logprobs: bool, rubric: str | None) -> str:
    """judge_key as it was computed before judges had options (main at 5677d41), written out."""
    params: dict[str, Any] = {"max_retries": 0, "temperature": 0}
    if api_base:
        params["api_base"] = api_base
    if logprobs:
        params.update(logprobs=True, top_logprobs=5)
    described = {
        "model": model,
        "prompt_version": "rubric-v1",
        "messages": render_messages("", "", "", rubric),
        "params": params,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode("utf-8")).hexdigest()


@pytest.mark.parametrize("api_base", [None, "http://127.0.0.1:8080/v1"])
@pytest.mark.parametrize("logprobs", [False, True])
def test_a_judge_without_options_keeps_its_cache_key(api_base: str | None, logprobs: bool) -> None:
    def key(spec: JudgeSpec) -> str:
        return judge_key(
            spec.model, api_base=api_base, logprobs=logprobs, rubric="R", prompt_version="rubric-v1",
            options=spec.call_options(),
        )  # fmt: skip

    before = _key_before_options("openai/j", api_base, logprobs, "R")
    assert key(JudgeSpec(model="openai/j")) == before
    assert key(JudgeSpec.model_validate({"model": "openai/j", "temperature": 0.0})) == before
    # How long we wait and how many calls are open change no answer: the same key.
    assert key(JudgeSpec(model="openai/j", timeout_s=5, max_concurrency=2)) == before
    changed = [
        key(JudgeSpec.model_validate({"model": "openai/j", **option}))
        for option in (
            {"max_tokens": 64}, {"temperature": 0.7}, {"response_format": "json_object"},
            {"response_format": "json_schema"}, {"extra_params": {"seed": 1}},
        )
    ]  # fmt: skip
    assert before not in changed and len(set(changed)) == len(changed)


# --- validation at project creation ------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 601}, "timeout_s"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"response_format": "xml"}, "response_format"),
        ({"extra_params": {"api_base": "http://elsewhere"}}, "'api_base'"),
        ({"extra_params": {"Stream": True}}, "'Stream'"),
        ({"extra_params": {"mock_response": "A>B"}}, "'mock_response'"),
        ({"extra_params": {"litellm_logging_obj": 1}}, "'litellm_logging_obj'"),
        ({"extra_params": {"stop": ["x" * 5000]}}, "bytes"),
        ({"extra_params": {"logit_bias": [[[[[[1]]]]]]}}, "nested"),
        ({"extra_params": "seed=1"}, "extra_params"),
    ],
)
def test_bad_options_are_refused_naming_the_option(
    client: TestClient, option: dict[str, Any], named: str
) -> None:
    judge = {"model": "openai/local", "custom": True, **option}
    r = client.post("/v1/projects", json={"name": "bad", "judges": [judge]})
    assert r.status_code == 422 and named in r.text, r.text
    assert client.get("/v1/projects").json() == []  # nothing stored


def test_a_live_judge_without_its_key_is_refused(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = client.post("/v1/projects", json={"name": "nokey", "judges": ["mock/ok", "gpt-4o-mini"]})
    assert r.status_code == 422, r.text
    assert "judges[1].model" in r.text and "OPENAI_API_KEY" in r.text, r.text
    assert client.get("/v1/projects").json() == []
    # A self-hosted model: marked custom, or on an allow-listed endpoint (called without a key).
    local = "http://127.0.0.1:8080"
    client.app.state.settings = settings.model_copy(update={"judge_api_bases": [local]})  # type: ignore[attr-defined]
    readme = {
        "model": "openai/gemma-3-270m", "api_base": f"{local}/v1", "custom": True, "max_tokens": 64,
        "timeout_s": 120, "max_concurrency": 1, "response_format": "json_object",
    }  # fmt: skip
    r = client.post("/v1/projects", json={"name": "local", "judges": [readme]})
    assert r.status_code == 201, r.text
    assert {k: r.json()["judges"][0][k] for k in readme} == readme
    r = client.post(
        "/v1/projects",
        json={"name": "listed", "judges": [{"model": "gpt-4o-mini", "api_base": f"{local}/v1"}]},
    )
    assert r.status_code == 201, r.text
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert client.post("/v1/projects", json={"name": "keyed", "judges": ["gpt-4o-mini"]}).status_code == 201


@pytest.mark.parametrize(
    ("judge", "accepted"),
    [
        ({"model": "gpt-4o", "response_format": "json_schema"}, True),
        ({"model": "gpt-4o-mini", "response_format": "json_object"}, True),
        ({"model": "gpt-3.5-turbo", "response_format": "json_schema"}, False),  # no schema support
        ({"model": "command-a-03-2025", "response_format": "json_object"}, False),  # cohere: none
        ({"model": "openai/my-server", "custom": True, "response_format": "json_schema"}, True),
    ],
)
def test_response_format_needs_a_provider_that_takes_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, judge: dict[str, Any], accepted: bool
) -> None:
    for name in ("OPENAI_API_KEY", "COHERE_API_KEY", "CO_API_KEY"):
        monkeypatch.setenv(name, "test-key")
    r = client.post("/v1/projects", json={"name": "formats", "judges": [judge]})
    assert r.status_code == (201 if accepted else 422), r.text
    if not accepted:
        assert "judges[0].response_format" in r.text and judge["response_format"] in r.text, r.text


# --- options reach the provider ----------------------------------------------------------


def test_each_judges_options_reach_its_provider_calls(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    with FaultServer({"valid": 1.0}) as server:
        settings = _allow(client, settings, server)
        judges = [
            _local(server, "tuned", max_tokens=64, temperature=0.3, response_format="json_object",
                   extra_params={"seed": 7, "top_p": 0.5, "stop": ["\n\n\n"]}),
            _local(server, "schema", response_format="json_schema"),
            _local(server, "plain"),
        ]  # fmt: skip
        post_question_pairs(client, make_project(client, "tuned", judges), n=3)
        run_worker(engine, settings)
        sent = _by_model(server)
    assert {model: len(calls) for model, calls in sent.items()} == {"tuned": 6, "schema": 6, "plain": 6}
    for body in sent["tuned"]:
        assert body["max_tokens"] == 64 and body["temperature"] == 0.3
        assert body["response_format"] == {"type": "json_object"}
        assert (body["seed"], body["top_p"], body["stop"]) == (7, 0.5, ["\n\n\n"])
    for body in sent["schema"]:
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"] == VERDICT_SCHEMA
    for body in sent["plain"]:  # today's call: temperature 0 and nothing else of ours
        assert body["temperature"] == 0
        assert not {"max_tokens", "response_format", "seed", "top_p", "stop"} & set(body)
    stored = _judgments(engine)  # longer_wins: the longer response (B) wins in both orders
    assert len(stored) == 18 and all(j.error is None and j.verdict == "B>A" for j in stored)


def test_max_concurrency_limits_each_judges_open_calls(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    # Every answer stays open a moment, so calls overlap wherever nothing limits them.
    with FaultServer({"valid": 1.0}, hold_s=0.05) as server:
        settings = _allow(client, settings, server, judge_concurrency=32)
        judges = [
            _local(server, "one", max_concurrency=1),
            _local(server, "two", max_concurrency=2),
            _local(server, "free"),
        ]
        post_question_pairs(client, make_project(client, "limits", judges), n=12)
        run_worker(engine, settings)
        sent = {model: len(calls) for model, calls in _by_model(server).items()}
        peak = dict(server.max_inflight)
    assert sent == {"one": 24, "two": 24, "free": 24}
    assert peak["one"] == 1 and peak["two"] <= 2
    assert peak["free"] > 2, peak  # without a limit of its own the same calls do overlap


def test_a_judges_timeout_replaces_the_workers_and_the_error_says_so(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    with FaultServer({"hang": 1.0}, hang_s=30) as server:
        # The worker's own timeout (5 s) would fail the test's patience; the judge's is 0.2 s.
        settings = _allow(client, settings, server, judge_max_attempts=2, judge_timeout_s=5.0)
        project = make_project(client, "slow", [_local(server, "slow", timeout_s=0.2, orders="ab")])
        post_question_pairs(client, project, n=1)
        run_worker(engine, settings)
    [judgment] = _judgments(engine)
    assert judgment.verdict is None and judgment.attempts == 2
    assert re.fullmatch(
        r"Timeout: no answer within 0\.2 s \(attempt 2 of 2, \d+\.\d s in all\)", judgment.error or ""
    )


def test_a_rate_limited_call_says_its_kind_attempts_and_time() -> None:
    with FaultServer({"rate_limit": 1.0}, retry_after_s=0.01) as server:
        policy = RetryPolicy(max_attempts=3, initial_s=0.001, max_s=0.01, retry_after_max_s=0.02)
        result = asyncio.run(
            call_judge("openai/busy", "p", "a", "b", "ab", api_base=server.base_url, policy=policy,
                       allowed_api_bases=(server.base_url,))
        )  # fmt: skip
    assert server.total == 3
    assert result.error is not None and result.error.startswith("RateLimitError: "), result.error
    assert re.search(r"rate limited.* \(attempt 3 of 3, \d+\.\d s in all\)$", result.error), result.error


# --- logprob confidences -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("render", "response_format"),
    [(json_answer, "json_object"), (json_answer, "text"), (verdict_line, "text"), (bare_label, "text")],
)
def test_logprob_confidence_is_stored_for_each_answer_shape(
    client: TestClient, engine: Engine, settings: Settings, render: Callable[[str], str], response_format: str
) -> None:
    with FaultServer({"valid": 1.0}, render=render, verdict_p=0.7) as server:
        settings = _allow(client, settings, server)
        judges = [
            _local(server, "lp", logprobs=True, response_format=response_format),
            _local(server, "nolp", response_format=response_format),
        ]
        post_question_pairs(client, make_project(client, "logprobs", judges), n=2)
        run_worker(engine, settings)
        asked = {
            model: {bool(b.get("logprobs")) for b in bodies} for model, bodies in _by_model(server).items()
        }
    assert asked == {"lp": {True}, "nolp": {False}}
    stored = _judgments(engine)
    assert len(stored) == 8 and all(j.verdict == "B>A" and j.error is None for j in stored)
    for judgment in stored:
        if judgment.judge == "openai/lp":  # the mass on the verdict's direction, from its token
            assert judgment.confidence == pytest.approx(0.7), (judgment.raw, judgment.confidence)
        else:  # no logprobs and no "confidence" in the answer: none
            assert judgment.confidence is None


# --- why a judgment has no verdict -------------------------------------------------------


def test_invalid_answers_say_why_and_admins_read_the_raw_answer(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    with FaultServer({"garbage_text": 1.0}) as server:
        settings = _allow(client, settings, server)
        job = post_question_pairs(client, make_project(client, "garbled", [_local(server, "garbled")]), n=1)
        run_worker(engine, settings)
    [row] = client.get(f"/v1/jobs/{job}/results").json()["results"]
    why = 'InvalidAnswer: no verdict found in the answer (23 characters; starts "I would rather not say.")'
    assert [(j["verdict"], j["error"]) for j in row["judgments"]] == [("invalid", why)] * 2
    assert "judge_failed" in row["reasons"]
    # Stored errors stay the failed calls' (routing counts those): an invalid answer is no failure.
    assert all(j.error is None for j in _judgments(engine))

    r = client.get(f"/v1/admin/pairs/{row['pair_id']}/judgments")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pair_id"] == row["pair_id"] and len(body["judgments"]) == 2
    for judgment in body["judgments"]:
        assert judgment["raw"] == "I would rather not say." and judgment["error"] == why
        assert (judgment["judge"], judgment["verdict"], judgment["attempts"]) == (
            "openai/garbled",
            "invalid",
            1,
        )
        assert (judgment["prompt_tokens"], judgment["completion_tokens"], judgment["cached"]) == (
            100,
            20,
            False,
        )
        assert judgment["latency_ms"] > 0 and judgment["created_at"]
    assert {j["order"] for j in body["judgments"]} == {"ab", "ba"}
    with Session(engine) as session:
        missing = max(p.id for p in session.exec(select(Pair))) + 1
    assert client.get(f"/v1/admin/pairs/{missing}/judgments").status_code == 404
