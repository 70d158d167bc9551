"""A fault-injecting OpenAI-compatible chat server on loopback, for tests and benches.

``POST /v1/chat/completions`` (what litellm's ``openai/<model>`` calls with ``api_base=
server.base_url``) answers each request with one kind drawn from a seeded schedule:

  rate_limit     429 with ``Retry-After`` (a short one, so tests stay fast)
  server_error   500
  hang           no answer until well past the client's timeout
  garbage_body   200 with a body that is not JSON
  garbage_text   a well-formed reply whose text no verdict parser can read
  empty_choices  200 with ``{"choices": []}`` (content filters and some gateways do this)
  valid          the JSON verdict the rubric prompt asks for (judge/prompt.py)

A request whose user message contains a ``sticky`` marker always gets that marker's kind, so a
test can make some calls fail on every attempt. The server counts requests by kind and, for a
request repeating one that got a 429, how long the client waited (``retry_gaps``). It keeps
every request body (``requests``) and the most requests it had open at once per model
(``max_inflight``; ``hold_s`` keeps each valid answer open that long so calls overlap).

A valid answer is ``render(verdict)``: the rubric's JSON object by default (:func:`json_answer`),
or plain text (:func:`verdict_line`, :func:`bare_label`). A request asking for ``logprobs``
gets ``choices[0].logprobs.content`` too: one entry per token, the verdict's first character a
token of its own with probability ``verdict_p`` and the other two directions among its
``top_logprobs`` (so a reader that finds the verdict token reports ``verdict_p``).
Standard library only: a threading HTTP server in a daemon thread.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from judge.prompt import extract_shown

KINDS = ("rate_limit", "server_error", "hang", "garbage_body", "garbage_text", "empty_choices", "valid")
# What litellm raises a retryable error for (a body that is not JSON is an InternalServerError).
RETRYABLE = frozenset({"rate_limit", "server_error", "hang", "garbage_body"})


def longer_wins(prompt: str, first: str, second: str) -> str:
    """The default verdict (positional): the longer response is better, so both orders agree."""
    if len(first) == len(second):
        return "tie"
    return "A>B" if len(first) > len(second) else "B>A"


class FaultServer:
    """Start with ``with FaultServer(...) as server:``; point judges at ``server.base_url``."""

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        seed: int = 0,
        retry_after_s: float = 0.1,
        hang_s: float = 30.0,
        sticky: Mapping[str, str] | None = None,
        verdict: Callable[[str, str, str], str] = longer_wins,
        render: Callable[[str], str] | None = None,
        verdict_p: float = 0.7,
        hold_s: float = 0.0,
    ) -> None:
        if unknown := set((sticky or {}).values()) - set(KINDS):
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        self.kinds: list[str] = []
        self.weights: list[float] = []
        self.rng = random.Random(seed)
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.sticky = dict(sticky or {})
        self.verdict = verdict
        self.render = render or json_answer
        self.verdict_p = verdict_p
        self.hold_s = hold_s
        self.requests: list[dict[str, Any]] = []  # every request body, parsed
        self.inflight: Counter[str] = Counter()  # open requests per model
        self.max_inflight: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.retry_gaps: list[float] = []  # seconds between a 429 and the same request again
        self._rate_limited: dict[str, float] = {}  # request digest -> when it got its 429
        self._lock = threading.Lock()
        self._closing = threading.Event()  # releases hanging requests at shutdown
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.schedule(weights)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def schedule(self, weights: Mapping[str, float]) -> None:
        """Answer from now on with these shares of each kind."""
        if unknown := set(weights) - set(KINDS):
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        with self._lock:
            self.kinds, self.weights = list(weights), list(weights.values())

    def reset(self) -> None:
        """Forget the counts (between the phases of a test)."""
        with self._lock:
            self.counts.clear()
            self.retry_gaps.clear()
            self.requests.clear()
            self.max_inflight.clear()

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _choose(self, body: bytes, user: str) -> str:
        """Pick this request's kind, count it, and time a retry after a 429."""
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            kind = next((k for marker, k in self.sticky.items() if marker in user), None)
            kind = kind or self.rng.choices(self.kinds, self.weights)[0]
            self.counts[kind] += 1
            now = time.monotonic()
            if (limited_at := self._rate_limited.pop(digest, None)) is not None:
                self.retry_gaps.append(now - limited_at)
            if kind == "rate_limit":
                self._rate_limited[digest] = now
        return kind

    def _reply(self, request: dict[str, Any], kind: str) -> tuple[int, dict[str, str], bytes]:
        model = str(request.get("model", "fault"))
        if kind == "rate_limit":
            error = {"error": {"message": "rate limited", "type": "rate_limit_error", "code": "rate_limit"}}
            return 429, {"retry-after": f"{self.retry_after_s:g}"}, json.dumps(error).encode()
        if kind == "server_error":
            error = {"error": {"message": "upstream failed", "type": "server_error", "code": None}}
            return 500, {}, json.dumps(error).encode()
        if kind == "garbage_body":
            return 200, {"content-type": "text/plain"}, b"<html>502 Bad Gateway</html>\x00\xff"
        if kind == "empty_choices":
            return 200, {}, json.dumps(_completion(model, None)).encode()
        if kind == "garbage_text":
            return 200, {}, json.dumps(_completion(model, "I would rather not say.")).encode()
        prompt, first, second = extract_shown(request["messages"])
        verdict = self.verdict(prompt, first, second)
        completion = _completion(model, self.render(verdict))
        if request.get("logprobs"):
            completion["choices"][0]["logprobs"] = _logprobs(self.render(verdict), verdict, self.verdict_p)
        return 200, {}, json.dumps(completion).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default backlog (5) drops a burst of new connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that hung up is no error here
            super().handle_error(request, client_address)


def json_answer(verdict: str) -> str:
    """The rubric's JSON object (judge/prompt.py), as a judge in JSON mode answers."""
    return json.dumps(
        {"reasoning": "fault server", "verdict": verdict, "both_bad": False, "safety_flag": False}
    )


def verdict_line(verdict: str) -> str:
    """A plain chat answer: a remark, then a ``Verdict:`` line."""
    return f"Both answer the question; one is more complete.\nVerdict: {verdict}"


def bare_label(verdict: str) -> str:
    """A plain chat answer that is the label alone (small models often answer so)."""
    return verdict


def _logprobs(text: str, verdict: str, p: float) -> dict[str, Any]:
    """OpenAI's ``logprobs`` of ``text``: the verdict's first character one token with
    probability ``p``, the other directions its alternatives; every other token near-certain."""
    at = text.rindex(verdict)  # the JSON's value, not a word of the reasoning
    before = _TOKEN.findall(text[:at])
    tokens = [*before, verdict[0], *_TOKEN.findall(text[at + 1 :])]
    content: list[dict[str, Any]] = [
        {"token": t, "logprob": -0.001, "bytes": list(t.encode()), "top_logprobs": []} for t in tokens
    ]
    others = [t for t in ("A", "B", "tie") if t[0] != verdict[0]]
    alternatives = [(verdict[0], p), (others[0], (1 - p) * 0.7), (others[1], (1 - p) * 0.2)]
    content[len(before)]["logprob"] = math.log(p)
    content[len(before)]["top_logprobs"] = [
        {"token": t, "logprob": math.log(q), "bytes": list(t.encode())} for t, q in alternatives
    ]
    return {"content": content}


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def _completion(model: str, content: str | None) -> dict[str, Any]:
    """A chat.completion object; ``content`` None gives an empty ``choices`` list."""
    choices = [] if content is None else [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    ]  # fmt: skip
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with a real provider

        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {}, b'{"error": {"message": "not found"}}')
                return
            request = json.loads(body)
            user = next((m.get("content", "") for m in request["messages"] if m.get("role") == "user"), "")
            model = str(request.get("model"))
            with server._lock:
                server.requests.append(request)
                server.inflight[model] += 1
                server.max_inflight[model] = max(server.max_inflight[model], server.inflight[model])
            try:
                kind = server._choose(body, str(user))
                if kind == "hang":
                    server._closing.wait(server.hang_s)  # the client has timed out long before
                    kind = "valid"
                elif kind == "valid" and server.hold_s:
                    server._closing.wait(server.hold_s)  # open long enough for calls to overlap
                reply = server._reply(request, kind)
            finally:
                with server._lock:
                    server.inflight[model] -= 1
            self._send(*reply)

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", headers.pop("content-type", "application/json"))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a hang): fine
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

    return Handler
