"""Where a live judge may be called, and whether the provider's key may go there.

litellm sends a provider's key (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...) to whatever
``api_base`` a judge names, so an ``api_base`` is a place keys can leak to. The rule: a
provider's key only ever goes to that provider's own hosts, and any other endpoint must be
allow-listed by the admin and is called without a provider key.

* Official hosts: :data:`OFFICIAL_HOSTS` (the big providers, whose default endpoint lives in
  litellm's handlers) plus the host of the default ``api_base`` litellm gives a provider
  (``groq/x`` -> ``api.groq.com``). HTTPS only. The key goes there.
* Admin entries (``PRELABEL_JUDGE_API_BASES``, comma-separated): ``URL`` allows an endpoint
  that gets no provider key (a local vLLM server: ``http://127.0.0.1:8000``); ``provider=URL``
  declares an endpoint of that provider, which does get its key (an Azure resource:
  ``azure=https://myorg.openai.azure.com``). An entry matches the same scheme, host and port
  and any path under its own.

:func:`check_api_base` answers for (model, api_base); ``judge.client`` asks it before every
live call with an ``api_base`` (and passes a placeholder key where no provider key may go), and
project creation asks it too, so a bad endpoint is refused up front. Replay and mock judges
(and other in-process providers) have no network endpoint and are not checked here.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["EndpointRefused", "Endpoint", "check_api_base", "parse_allowed", "NO_KEY", "ENV"]

ENV = "PRELABEL_JUDGE_API_BASES"
# Sent as the key to an allow-listed endpoint that is not the provider's own: litellm would
# otherwise fall back to the provider's key from the environment.
NO_KEY = "prelabel-no-provider-key"

# Hosts per litellm provider name where that provider's key belongs; "*." matches subdomains.
# Customer-specific hosts (Azure resources, Databricks workspaces) are not here: the admin
# declares them with "provider=URL".
OFFICIAL_HOSTS: dict[str, tuple[str, ...]] = {
    "openai": ("api.openai.com",),
    "text-completion-openai": ("api.openai.com",),
    "anthropic": ("api.anthropic.com",),
    "gemini": ("generativelanguage.googleapis.com",),
    "vertex_ai": ("aiplatform.googleapis.com", "*.aiplatform.googleapis.com"),
    "vertex_ai_beta": ("aiplatform.googleapis.com", "*.aiplatform.googleapis.com"),
    "mistral": ("api.mistral.ai",),
    "codestral": ("codestral.mistral.ai",),
    "cohere": ("api.cohere.ai", "api.cohere.com"),
    "cohere_chat": ("api.cohere.ai", "api.cohere.com"),
    "groq": ("api.groq.com",),
    "together_ai": ("api.together.xyz", "api.together.ai"),
    "deepseek": ("api.deepseek.com",),
    "fireworks_ai": ("api.fireworks.ai",),
    "openrouter": ("openrouter.ai",),
    "xai": ("api.x.ai",),
    "perplexity": ("api.perplexity.ai",),
    "deepinfra": ("api.deepinfra.com",),
    "cerebras": ("api.cerebras.ai",),
    "ai21": ("api.ai21.com",),
    "replicate": ("api.replicate.com",),
    "nvidia_nim": ("integrate.api.nvidia.com",),
    "huggingface": ("api-inference.huggingface.co", "router.huggingface.co"),
    "bedrock": ("bedrock-runtime.*.amazonaws.com",),
}


class EndpointRefused(ValueError):
    """A live judge's ``api_base`` is neither its provider's own host nor allow-listed."""


@dataclass(frozen=True)
class Endpoint:
    provider: str
    send_key: bool  # False: call with NO_KEY, never the provider's key


@dataclass(frozen=True)
class _Entry:
    scheme: str
    host: str
    port: int
    path: str
    provider: str | None


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL; ValueError for anything else."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.username or parts.password:
        raise ValueError("an api_base must not carry credentials")
    port = parts.port or (443 if scheme == "https" else 80)  # parts.port raises on a bad port
    return scheme, parts.hostname.lower().rstrip("."), port, parts.path.rstrip("/")


def parse_allowed(entries: tuple[str, ...] | list[str] | str | None) -> tuple[str, ...]:
    """Admin entries as given (a list, or the comma-separated environment form)."""
    if entries is None:
        entries = os.environ.get(ENV, "")
    if isinstance(entries, str):
        entries = entries.split(",")
    return tuple(e.strip() for e in entries if e and e.strip())


@functools.lru_cache(maxsize=64)
def _entries(allowed: tuple[str, ...]) -> tuple[_Entry, ...]:
    out = []
    for raw in allowed:
        provider, sep, url = raw.partition("=")
        if not sep or "://" in provider:
            provider, url = "", raw
        scheme, host, port, path = _split(url)
        out.append(_Entry(scheme, host, port, path, provider.strip() or None))
    return tuple(out)


def _host_matches(host: str, pattern: str) -> bool:
    if "*" not in pattern:
        return host == pattern
    head, _, tail = pattern.partition("*")
    return host.startswith(head) and host.endswith(tail) and len(host) > len(head) + len(tail)


def official_hosts(provider: str) -> tuple[str, ...]:
    """Where ``provider``'s key belongs: the table above plus litellm's default endpoint."""
    hosts = list(OFFICIAL_HOSTS.get(provider, ()))
    if provider.startswith("vertex_ai"):
        hosts += OFFICIAL_HOSTS["vertex_ai"]
    default = _litellm_default_base(provider)
    if default:
        try:
            hosts.append(_split(default if "://" in default else f"https://{default}")[1])
        except ValueError:
            pass
    return tuple(hosts)


@functools.cache
def _litellm_default_base(provider: str) -> str | None:
    from judge.litellm_loader import load_litellm

    try:
        base: str | None = load_litellm().get_llm_provider(f"{provider}/x")[3]
        return base
    except Exception:  # noqa: BLE001 - a provider litellm cannot route has no default endpoint
        return None


def provider_of(model: str, api_base: str | None = None) -> str:
    """The litellm provider ``model`` is called through (it may depend on ``api_base``)."""
    from judge.litellm_loader import load_litellm

    try:
        provider: str = load_litellm().get_llm_provider(model, api_base=api_base)[1]
        return provider
    except Exception as exc:  # noqa: BLE001 - litellm raises its own BadRequestError here
        raise EndpointRefused(f"litellm cannot tell which provider serves {model!r}") from exc


@functools.lru_cache(maxsize=1024)
def check_api_base(model: str, api_base: str, allowed: tuple[str, ...] = ()) -> Endpoint:
    """Whether ``model`` may be called at ``api_base``, and with its provider's key.

    Raises :class:`EndpointRefused` (naming the host, never a key) when it may not.
    """
    try:
        scheme, host, port, path = _split(api_base)
    except ValueError as exc:
        raise EndpointRefused(f"api_base {api_base!r}: {exc}") from None
    provider = provider_of(model, api_base)
    try:
        entries = _entries(allowed)
    except ValueError as exc:
        raise EndpointRefused(f"{ENV} has an entry that is not an http(s) URL: {exc}") from None
    if scheme == "https" and port == 443 and any(_host_matches(host, p) for p in official_hosts(provider)):
        return Endpoint(provider, send_key=True)
    for entry in entries:
        if (entry.scheme, entry.host, entry.port) == (scheme, host, port) and (
            path == entry.path or path.startswith(entry.path + "/") or not entry.path
        ):
            return Endpoint(provider, send_key=entry.provider == provider)
    where = f"{scheme}://{host}:{port}"
    raise EndpointRefused(
        f"api_base {where} is not an endpoint of provider {provider!r} and is not allow-listed "
        f"(the admin lists extra endpoints in {ENV})"
    )
