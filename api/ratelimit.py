"""Rate limits per caller on the write routes and on ``review/next``: 429 with Retry-After.

A token bucket per caller (the bearer token; the client address when there is none) and per
kind of request, in this process's memory: each API process counts on its own, a restart
forgets, and several API processes behind one address each allow the full rate (the limits
are against a runaway script or a flood, not a quota). The buckets are kept in a bounded LRU
map so that a flood of made-up tokens cannot grow it without end. Not a library: slowapi
wants a decorator and a ``request`` argument on every route, ``limits`` brings storage
back-ends this needs none of; this is one ASGI middleware over ~60 lines.

Which requests: every POST, PUT, PATCH and DELETE under ``/v1/`` is a *write*; the two
queue routes that lease an item (``review/next``, ``adjudication/next``) have a bucket of
their own, since a review app asks for its next item after every label. Reads (job status
polling, results, dashboards) are not limited. Settings ``PRELABEL_RATE_LIMIT_*``
(api/settings.py); a rate of 0 turns a limit off.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.security.utils import get_authorization_scheme_param
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NEXT = re.compile(r"^/v1/projects/[^/]+/(review|adjudication)/next/?$")
MAX_CALLERS = 100_000  # buckets kept; the least recently used go first (a full bucket is no loss)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Buckets of ``burst`` tokens refilled at ``rate_per_s``; one per key.

    >>> now = [0.0]
    >>> buckets = TokenBuckets(rate_per_s=1.0, burst=2, clock=lambda: now[0])
    >>> [buckets.take("k") for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> now[0] = 1.0
    >>> buckets.take("k"), buckets.take("other")
    (0.0, 0.0)
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_CALLERS,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(1, burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()  # one lock: a take is a few arithmetic operations

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when there was one, else the seconds until there is."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate_per_s)
            bucket.stamp = now
            self._buckets[key] = bucket  # most recently used last
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate_per_s


def _caller_key(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            # The credentials as api/deps.py reads them (scheme in any case, spaces around the
            # token): keyed on the raw header, "bearer  t" and "Bearer t" were separate buckets
            # of one caller, and padding the header gave a fresh bucket per request.
            _, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            # A digest, not the token: the map must not be a copy of everyone's credentials.
            return "token:" + hashlib.sha256(credentials.encode("latin-1")).hexdigest()
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    """429 with ``Retry-After`` when a caller's bucket for this kind of request is empty."""

    def __init__(
        self,
        app: ASGIApp,
        writes_per_s: float,
        writes_burst: int,
        next_per_s: float,
        next_burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.writes = TokenBuckets(writes_per_s, writes_burst, clock) if writes_per_s > 0 else None
        self.next = TokenBuckets(next_per_s, next_burst, clock) if next_per_s > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            buckets, what = None, ""
            if method == "POST" and _NEXT.match(path):
                buckets, what = self.next, "requests for the next item"
            elif method in WRITE_METHODS and path.startswith("/v1/"):
                buckets, what = self.writes, "write requests"
            if buckets is not None:
                wait = buckets.take(_caller_key(scope))
                if wait > 0:
                    seconds = max(1, math.ceil(wait))
                    response = JSONResponse(
                        {
                            "detail": f"too many {what} from this token (at most {buckets.burst} at once, "
                            f"then {buckets.rate_per_s:g} per second); retry in {seconds} s"
                        },
                        status_code=429,
                        headers={"Retry-After": str(seconds)},
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
