"""Content identity of a pair: the hash that idempotency, caching and replay all key on."""

from __future__ import annotations

import hashlib
import json


def content_hash(prompt: str, response_a: str, response_b: str) -> str:
    """SHA-256 over the exact texts, unambiguous for any content (JSON-encoded triple)."""
    payload = json.dumps([prompt, response_a, response_b], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
