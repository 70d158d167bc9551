"""Credentials: provider API keys and tokens, private keys, bearer tokens, JWTs, URL
credentials and ``name = value`` assignments of a secret.

Provider keys are found by their published prefixes (each one's length and alphabet below);
everything else needs a secret-looking name or header in front and a value that looks
generated (:func:`api.review.redaction.checks.looks_random`).

>>> [(e.type, e.value[:8]) for e in find_secrets("I pushed with hf_aB3dE6gH9jK2mN5pQ8rS1tU4vW7xY0zAbC.")]
[('API_KEY', 'hf_aB3dE')]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from api.review.redaction.checks import has_symbol, looks_random
from api.review.redaction.spans import Entity, from_match

__all__ = ["find_secrets"]

_AWS_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}(?![A-Za-z0-9])"
)
_GITHUB = re.compile(
    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})(?![A-Za-z0-9_])"
)
# Bot/user/app tokens, refresh tokens (xoxe), app-level tokens (xapp) and webhook URLs.
_SLACK = re.compile(
    r"(?<![A-Za-z0-9-])(?:xox[abposre]-[A-Za-z0-9-]{10,250}|xapp-\d-[A-Za-z0-9-]{10,250}"
    r"|https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,})"
)
# Published key formats of model providers, code hosts, package registries and clouds.
# A prefix alone is not enough: each needs its format's length, so "sk-learn" or "hf_hub"
# in prose stays.
_KEY_FORMATS = (
    r"sk-(?:proj-|ant-|svcacct-|admin-|or-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic, OpenRouter, DeepSeek
    r"[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe secret, restricted and publishable keys
    r"whsec_[A-Za-z0-9+/=]{24,}",  # Stripe webhook signing secrets
    r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}_[A-Za-z0-9]{8,}",  # Stripe keys of connected accounts
    r"SK[0-9a-f]{32}",  # Twilio API key SIDs
    r"key-[0-9a-f]{32}",  # Mailgun
    r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",  # Shopify access tokens
    r"dop_v1_[a-f0-9]{64}",  # DigitalOcean
    r"lin_api_[A-Za-z0-9]{40}",  # Linear
    r"(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})",  # Notion integrations
    r"PMAK-[0-9a-f]{24}-[0-9a-f]{34}",  # Postman
    r"dapi[0-9a-f]{32}(?:-\d)?",  # Databricks
    r"figd_[A-Za-z0-9_-]{40,}",  # Figma
    r"EAAA[A-Za-z0-9_-]{60}",  # Square
    r"\d{8,10}:AA[0-9A-Za-z_-]{33}",  # Telegram bot tokens
    r"[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,38}",  # Discord bot tokens
    r"AGE-SECRET-KEY-1[0-9A-Z]{58}",  # age encryption keys
    r"AIza[0-9A-Za-z_-]{35}",  # Google API keys (Gemini, Maps, Firebase)
    r"ya29\.[0-9A-Za-z_-]{30,}",  # Google OAuth access tokens
    r"GOCSPX-[0-9A-Za-z_-]{28}",  # Google OAuth client secrets
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face user access tokens
    r"gsk_[A-Za-z0-9]{48,}",  # Groq
    r"r8_[A-Za-z0-9]{37}",  # Replicate
    r"xai-[A-Za-z0-9]{60,}",  # xAI
    r"pplx-[A-Za-z0-9]{40,}",  # Perplexity
    # GitLab: personal, deploy, runner, pipeline-trigger, CI-job, feed, mail, OAuth, SCIM and
    # agent tokens; newer ones are routable ("glpat-<payload>.<version>.<check>").
    r"gl(?:pat|dt|rt|ptt|cbt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*",
    r"ATBB[A-Za-z0-9]{28,}",  # Bitbucket app passwords
    r"ATATT3[A-Za-z0-9_=-]{50,}",  # Atlassian API tokens
    r"npm_[A-Za-z0-9]{36}",  # npm
    r"pypi-AgE[A-Za-z0-9_-]{40,}",  # PyPI (a macaroon: "pypi-AgEIcHlwaS5vcmc...")
    r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",  # SendGrid
)
_API_KEY = re.compile(r"(?<![A-Za-z0-9_-])(?:" + "|".join(_KEY_FORMATS) + r")(?![A-Za-z0-9_-])")
_BEARER = re.compile(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/-]{16,}=*)")
# A PEM private key: BEGIN line, base64 body and header lines, END line -- or, pasted
# truncated, as much base64 as follows the BEGIN line. The body's character set excludes
# nothing of a BEGIN line, so the body is bounded (a 4096-bit RSA key is ~3.3 kB) to keep
# text with many BEGIN lines linear.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[A-Za-z0-9+/=\s:,.-]{0,16384}?-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"|(?:\s*[A-Za-z0-9+/=:,-]{8,})*)"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://[^\s:/@]{1,64}:([^\s:/@]{3,128})@")
# `name = value`, `"name": "value"`, `NAME=value`, "my password is: x" where the name
# mentions a secret. Values of key/token names must look random; password values need not
# (people choose words), but without ":" or "=" they need a digit or symbol ("is strong").
# Azure's connection strings name theirs AccountKey / SharedAccessKey.
_SECRET_NAME = re.compile(
    r"(?i)(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|access[_-]?key|auth[_-]?key"
    r"|account[_-]?key|credentials?|private[_-]?key)"
)
# Matched from the end of a secret word. Every part is bounded, so text crafted to be full
# of secret words stays linear (a lazy `\w*?secret` prefix was quadratic on "a.a.a...").
_ASSIGNMENT_TAIL = re.compile(
    r"[A-Za-z0-9_-]{0,40}[\"']?(?P<is>[ \t]{1,4}(?:is|was)\b)?[ \t]{0,4}(?P<sep>:=|=>|[:=])?[ \t]{0,4}[\"']?"
    r"(?P<value>[^\s\"'`,;()\[\]{}<>]{4,256})"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|none|null|nil|true|false|undefined|changeme|example|your[_-]?\w*|<.*>|\$\{?\w+\}?"
    r"|os\.\w+.*|process\.env.*|env\[.*|password|secret|token|\w+_(?:here|placeholder))$"
)


def find_secrets(text: str) -> Iterator[Entity]:
    """Credentials in ``text``, overlapping each other (and other findings) as found."""
    if "-----BEGIN" in text:
        for m in _PRIVATE_KEY.finditer(text):
            yield from_match(m, "PRIVATE_KEY")
    for m in _AWS_KEY.finditer(text):
        yield from_match(m, "AWS_KEY")
    for m in _GITHUB.finditer(text):
        yield from_match(m, "GITHUB_TOKEN")
    if "xox" in text or "xapp-" in text or "hooks.slack" in text:
        for m in _SLACK.finditer(text):
            yield from_match(m, "SLACK_TOKEN")
    for m in _API_KEY.finditer(text):
        yield from_match(m, "API_KEY")
    for m in _BEARER.finditer(text):
        # "Bearer" in prose ("basic understanding of...") is followed by words, not tokens.
        token = m.group(1)
        if looks_random(token.rstrip("=")) or (len(token) >= 24 and re.search(r"\d", token)):
            yield from_match(m, "BEARER_TOKEN", group=1)
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            yield from_match(m, "SECRET")
    if "://" in text:
        for m in _URL_CREDENTIALS.finditer(text):
            yield from_match(m, "SECRET", group=1)
    yield from _assignments(text)


def _assignments(text: str) -> Iterator[Entity]:
    for name_match in _SECRET_NAME.finditer(text):
        m = _ASSIGNMENT_TAIL.match(text, name_match.end())
        if m is None:
            continue
        value, sep = m["value"], m["sep"]
        if not sep and not m["is"]:
            continue
        if not sep:
            value = value.rstrip(".!?")  # "my password is hunter2." ends a sentence
        if _PLACEHOLDER.match(value) or text[m.end("value") : m.end("value") + 1] in ("(", "["):
            continue
        if re.search(r"passw|pwd", name_match.group().lower()):
            # A dotted/underscored identifier is code, not a password; after a bare "is"
            # a plain word is prose ("the password is strong").
            ok = not re.fullmatch(r"[A-Za-z]+(?:[._][A-Za-z]+)+", value) and (bool(sep) or has_symbol(value))
        else:
            ok = looks_random(value)
        if ok:
            start = m.start("value")
            yield Entity(start, start + len(value), "SECRET", value, f"SECRET:{value}")
