"""Provider keys only go to their provider's own hosts (issue 10, item 1).

A canary OPENAI_API_KEY and a local OpenAI-compatible server on 127.0.0.1 that is not
allow-listed: the project is refused at creation, and a project that got past creation anyway
(stored before the rule, or the allow-list changed since) never sends a request there. An
allow-listed local endpoint is called without the key; only an admin entry that declares the
endpoint as the provider's own ("openai=URL") sends it, which also shows the server would see
a key if one were sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.main import create_app
from api.models import Project
from api.settings import Settings
from judge.client import call_judge
from judge.endpoints import EndpointRefused, check_api_base
from tests.helpers import ADMIN, fast_settings, run_worker

MODEL = "gpt-4o-mini"  # in litellm's price table: known, routed to provider "openai"


@dataclass
class Canary:
    """The local server's view: every request it got, with its Authorization header."""

    base: str
    key: str
    seen: list[dict[str, str]] = field(default_factory=list)

    def carrying_key(self) -> list[dict[str, str]]:
        return [r for r in self.seen if self.key in json.dumps(r)]


def _answer() -> bytes:
    verdict = json.dumps({"reasoning": "ok", "verdict": "A>B", "both_bad": False, "safety_flag": False})
    return json.dumps(
        {
            "id": "chatcmpl-canary",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": verdict}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    ).encode()


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    key = f"sk-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.delenv("PRELABEL_JUDGE_API_BASES", raising=False)
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            seen.append({"path": self.path, "headers": json.dumps(dict(self.headers)), "body": body})
            payload = _answer()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Canary(f"http://127.0.0.1:{server.server_address[1]}", key, seen)
    finally:
        server.shutdown()
        server.server_close()


def _app(engine: Engine) -> tuple[TestClient, Settings]:
    settings = fast_settings(str(engine.url), judge_max_attempts=1)
    return TestClient(create_app(settings, engine, run_worker=False), headers=ADMIN), settings


def _post_pair(client: TestClient, project_id: int) -> int:
    pair = {"client_id": "c1", "prompt": "2+2?", "response_a": "4", "response_b": "5"}
    r = client.post(f"/v1/projects/{project_id}/jobs", json={"pairs": [pair]})
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


def _judgments(client: TestClient, job_id: int) -> list[dict[str, Any]]:
    return client.get(f"/v1/jobs/{job_id}/results").json()["results"][0]["judgments"]


def test_a_key_never_reaches_a_host_that_is_not_allow_listed(engine: Engine, canary: Canary) -> None:
    client, settings = _app(engine)
    with client:
        judge = {"model": MODEL, "api_base": f"{canary.base}/v1"}
        refused = client.post("/v1/projects", json={"name": "leak", "judges": [judge]})
        assert refused.status_code == 422 and "judges[0].api_base" in refused.text, refused.text
        assert "not allow-listed" in refused.text and canary.key not in refused.text

        # Past creation anyway (stored before the rule; the allow-list changed since): every
        # call checks again, and nothing is sent.
        with Session(engine, expire_on_commit=False) as session:
            project = Project(name="stored", judges=[judge], routing={})
            session.add(project)
            session.commit()
        job = _post_pair(client, project.id)  # type: ignore[arg-type]
        run_worker(engine, settings)
        judgments = _judgments(client, job)
        assert judgments and all("EndpointRefused" in (j["error"] or "") for j in judgments), judgments
        result = asyncio.run(call_judge(MODEL, "p", "a", "b", "ab", api_base=f"{canary.base}/v1"))
        assert result.error and "EndpointRefused" in result.error
    assert canary.seen == []


def test_an_allow_listed_endpoint_gets_no_provider_key(
    engine: Engine, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRELABEL_JUDGE_API_BASES", canary.base)
    client, settings = _app(engine)
    with client:
        judge = {"model": "openai/local-judge", "api_base": f"{canary.base}/v1", "custom": True}
        r = client.post("/v1/projects", json={"name": "local", "judges": [judge]})
        assert r.status_code == 201, r.text
        job = _post_pair(client, r.json()["id"])
        run_worker(engine, settings)
        judgments = _judgments(client, job)  # "first shown wins" in both orders: A>B, then B>A
        assert sorted(j["verdict"] for j in judgments) == ["A>B", "B>A"], judgments
    assert len(canary.seen) == 2 and canary.carrying_key() == []
    assert all("prelabel-no-provider-key" in r["headers"] for r in canary.seen)


def test_the_server_would_see_a_key_declared_for_it(canary: Canary) -> None:
    """Positive control: an admin entry "openai=URL" declares the endpoint OpenAI's own, so
    the key goes there; the tests above would have seen it."""
    allowed = (f"openai={canary.base}",)
    result = asyncio.run(
        call_judge(MODEL, "p", "a", "b", "ab", api_base=f"{canary.base}/v1", allowed_api_bases=allowed)
    )
    assert result.error is None, result.error
    assert len(canary.carrying_key()) == 1


@pytest.mark.parametrize(
    ("model", "api_base", "allowed", "send_key"),
    [
        ("gpt-4o", "https://api.openai.com/v1", (), True),
        ("groq/llama-3.1-8b-instant", "https://api.groq.com/openai/v1", (), True),
        ("anthropic/claude-sonnet-4-5", "https://api.anthropic.com", (), True),
        ("gpt-4o", "http://127.0.0.1:9/v1", ("http://127.0.0.1:9",), False),
        ("gpt-4o", "http://127.0.0.1:9/v1", ("http://127.0.0.1:9/v1",), False),
        ("azure/deployment", "https://me.openai.azure.com", ("azure=https://me.openai.azure.com",), True),
    ],
)
def test_allowed_endpoints(model: str, api_base: str, allowed: tuple[str, ...], send_key: bool) -> None:
    assert check_api_base(model, api_base, allowed).send_key is send_key


@pytest.mark.parametrize(
    ("model", "api_base", "allowed"),
    [
        ("gpt-4o", "http://api.openai.com/v1", ()),  # a key in clear text
        ("gpt-4o", "https://api.openai.com.evil.example/v1", ()),
        ("gpt-4o", "https://api.anthropic.com", ()),  # another provider's host
        ("gpt-4o", "https://user:pw@api.openai.com/v1", ()),
        ("gpt-4o", "http://127.0.0.1:9/v1", ("http://127.0.0.1:8",)),  # another port
        ("gpt-4o", "http://127.0.0.1:9/other", ("http://127.0.0.1:9/v1",)),  # outside the path
        ("gpt-4o", "file:///etc/passwd", ()),
        ("azure/my-deployment", "https://evil.openai.azure.com", ()),  # customer hosts: declared only
    ],
)
def test_refused_endpoints(model: str, api_base: str, allowed: tuple[str, ...]) -> None:
    with pytest.raises(EndpointRefused):
        check_api_base(model, api_base, allowed)
