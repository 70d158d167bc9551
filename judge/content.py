"""Content identity of a pair: the hash that idempotency, caching and replay all key on."""

from __future__ import annotations

import hashlib
import json

# json.dumps with these options, built once: ``json.dumps`` builds a new encoder on every call
# that passes options, and a job hashes thousands of pairs.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def content_hash(prompt: str, response_a: str, response_b: str) -> str:
    """SHA-256 over the exact texts, unambiguous for any content (JSON-encoded triple)."""
    payload = _ENCODER.encode([prompt, response_a, response_b])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
