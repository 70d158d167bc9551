"""A project's judges, checked when the project is created rather than when its first pair is judged.

* ``replay/<judge>``: ``api_base`` is a recorded-judgments file under one of the replay data
  directories (symlinks and ``..`` resolved first), a regular file that parses and holds
  ``<judge>``. Its index is built here and cached for the worker (judge.providers).
  Errors name the file as given, never its contents.
* ``mock/<name>``: ``api_base`` is its option string ("latency_ms=300") and must parse.
  ``mock/`` and ``replay/`` without a name are refused.
* Any other model is live: litellm must know it (its price table lists the model for the
  provider it resolves to), unless the judge is marked ``custom``; a model served by a
  provider registered in-process (tests' fakes) counts as known. Its ``api_base``, if any,
  must be its provider's own host or allow-listed (judge.endpoints), as every call checks again.
  A known model also needs its provider's key in the environment (litellm's
  ``validate_environment``; not for an allow-listed endpoint, which gets no key) and, for a
  ``response_format`` other than text, a provider that takes it (litellm's
  ``get_supported_openai_params`` / ``supports_response_schema``). Custom judges skip both.

Settings read here (``replay_dirs``, ``judge_api_bases``) fall back to the environment
(``PRELABEL_REPLAY_DIRS``, ``PRELABEL_JUDGE_API_BASES``, comma-separated) where the settings
object does not carry them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from api.schemas import JudgeSpec, RoutingSettings
from judge.endpoints import EndpointRefused, check_api_base, parse_allowed
from judge.providers import MOCK_PROVIDER, REPLAY_PROVIDER, mock_options, replay_index
from judge.recorded import RecordedFormatError

__all__ = ["judge_problems", "routing_problems", "panel_of", "replay_dirs", "allowed_api_bases"]

REPLAY_DIRS_ENV = "PRELABEL_REPLAY_DIRS"
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


def replay_dirs(settings: Any) -> list[str]:
    """Directories replay files may live in: the packaged sample data (the demo's), plus
    ``settings.replay_dirs`` (``PRELABEL_REPLAY_DIRS``), else ``./data`` under the working
    directory."""
    configured = [d.strip() for d in settings.replay_dirs if d.strip()]
    return [str(SAMPLE_DATA), *(configured or [os.path.join(os.getcwd(), "data")])]


def allowed_api_bases(settings: Any) -> tuple[str, ...]:
    """The admin's extra judge endpoints (``PRELABEL_JUDGE_API_BASES``)."""
    return parse_allowed(settings.judge_api_bases)


def judge_problems(judges: list[JudgeSpec], settings: Any) -> list[str]:
    """What is wrong with each judge, as ``judges[i].field: problem``; empty when all is well."""
    problems: list[str] = []
    dirs = replay_dirs(settings)
    allowed = allowed_api_bases(settings)
    for i, spec in enumerate(judges):
        provider, _, name = spec.model.partition("/")
        problem: str | None
        if provider in (REPLAY_PROVIDER, MOCK_PROVIDER) and not name.strip():
            problem = f"model: {spec.model!r} names no judge (write {provider}/<name>)"
        elif provider == REPLAY_PROVIDER and name:
            problem = _replay_problem(name, spec.api_base, dirs)
        elif provider == MOCK_PROVIDER and name:
            problem = _mock_problem(spec.api_base)
        else:
            problem = _live_problem(spec, allowed)
        if problem:
            problems.append(f"judges[{i}].{problem}")
    return problems


def panel_of(
    entries: list[JudgeSpec | str], routing: RoutingSettings, settings: Any
) -> tuple[list[JudgeSpec], list[str]]:
    """A project's panel from its body's entries (a model string or a spec), and what is wrong
    with it and with the routing settings that name its judges: the one check a panel passes,
    at creation (POST /v1/projects) and on every edit (PATCH, a retry's new panel)."""
    judges = [JudgeSpec(model=j) if isinstance(j, str) else j for j in entries]
    if not judges:
        return judges, ["no judges: give `judges` or set PRELABEL_JUDGES"]
    models = [j.model for j in judges]
    if len(set(models)) != len(models):
        return judges, [f"judge listed twice: {sorted({m for m in models if models.count(m) > 1})}"]
    return judges, judge_problems(judges, settings) + routing_problems(judges, routing)


def routing_problems(judges: list[JudgeSpec], routing: RoutingSettings) -> list[str]:
    """Routing settings that name judges the panel does not have (a typo in
    ``order_sensitive_judges`` would silently drop that judge's hard flag)."""
    panel = {spec.model for spec in judges}
    return [
        f"routing.order_sensitive_judges[{i}]: {name!r} is not a judge of this project "
        f"(its judges: {', '.join(sorted(panel))})"
        for i, name in enumerate(routing.order_sensitive_judges or [])
        if name not in panel
    ]


def _inside(path: str, directories: list[str]) -> bool:
    for directory in directories:
        root = os.path.realpath(directory)
        if os.path.commonpath([path, root]) == root:
            return True
    return False


def _replay_problem(judge: str, api_base: str | None, dirs: list[str]) -> str | None:
    if not api_base:
        return "api_base: a replay judge needs the path of a recorded-judgments file"
    path = os.path.realpath(api_base)
    if not _inside(path, dirs):
        return (
            f"api_base: {api_base!r} is outside the replay data directories "
            f"(the admin sets them in {REPLAY_DIRS_ENV})"
        )
    if not os.path.isfile(path):
        return f"api_base: no recorded-judgments file at {api_base!r}"
    try:
        index = replay_index(path)
    except RecordedFormatError as exc:
        return f"api_base: {api_base!r} is not a recorded-judgments file ({len(exc.errors)} bad line(s))"
    except (OSError, UnicodeDecodeError, ValueError):
        return f"api_base: {api_base!r} cannot be read as a recorded-judgments file"
    recorded = {name for _, name in index.answers}
    if judge not in recorded:
        return f"model: no judge {judge!r} in {api_base!r} (it records {len(recorded)} judge(s))"
    return None


def _mock_problem(api_base: str | None) -> str | None:
    try:
        options = mock_options(api_base)
    except ValueError as exc:
        return f"api_base: not a mock option string ({exc})"
    values = vars(options)
    if not all(math.isfinite(v) and v >= 0 for v in values.values()):
        return "api_base: mock options must be finite numbers >= 0"
    if any(v > 1 for k, v in values.items() if k.endswith("_rate")) or options.latency_ms > 600_000:
        return "api_base: mock rates must be within [0, 1] and latency_ms at most 600000"
    return None


def _live_problem(spec: JudgeSpec, allowed: tuple[str, ...]) -> str | None:
    from judge.litellm_loader import load_litellm

    litellm = load_litellm()
    prefix = spec.model.split("/", 1)[0] if "/" in spec.model else None
    if prefix and prefix in {entry.get("provider") for entry in litellm.custom_provider_map}:
        return None  # served in-process: no endpoint, no key
    sends_key = True
    if spec.api_base:
        try:
            sends_key = check_api_base(spec.model, spec.api_base, allowed).send_key
        except EndpointRefused as exc:
            return f"api_base: {exc}"
    if spec.custom:  # a self-hosted or fine-tuned model: its server decides what it supports
        return None
    if not _priced(litellm, spec.model, spec.api_base):
        return (
            f"model: litellm does not know {spec.model!r} (not in its model table for the provider it "
            'resolves to); check the spelling, or mark a self-hosted or fine-tuned model {"custom": true}'
        )
    # An allow-listed endpoint that is not the provider's own is called without its key.
    return (_key_problem(litellm, spec) if sends_key else None) or _format_problem(litellm, spec)


def _key_problem(litellm: Any, spec: JudgeSpec) -> str | None:
    """The provider key a live judge needs and the server's environment lacks: every call would
    fail with an authentication error, each pair going to review as judge_failed."""
    try:
        missing = litellm.validate_environment(model=spec.model, api_base=spec.api_base).get("missing_keys")
    except Exception:  # noqa: BLE001 - litellm cannot tell: the first call will
        return None
    if not missing:
        return None
    names = " and ".join(str(name) for name in missing)
    return (
        f"model: {spec.model!r} needs {names} in the server's environment, which is not set; set it "
        'before creating the project, or mark a self-hosted model {"custom": true}'
    )


def _format_problem(litellm: Any, spec: JudgeSpec) -> str | None:
    """A ``response_format`` the judge's provider does not take, by litellm's own tables."""
    if spec.response_format == "text":
        return None
    try:
        stripped, provider, _, _ = litellm.get_llm_provider(spec.model, api_base=spec.api_base)
        supported = litellm.get_supported_openai_params(model=stripped, custom_llm_provider=provider) or []
        schema = litellm.supports_response_schema(model=stripped, custom_llm_provider=provider)
    except Exception:  # noqa: BLE001 - litellm cannot route it: no support it can vouch for
        supported, schema = [], False
    if "response_format" not in supported or (spec.response_format == "json_schema" and not schema):
        return (
            f"response_format: {spec.model!r} does not support {spec.response_format!r} output "
            '(by litellm\'s tables); use "text", or mark a self-hosted model {"custom": true}'
        )
    return None


def _priced(litellm: Any, model: str, api_base: str | None) -> bool:
    try:
        stripped, provider, _, _ = litellm.get_llm_provider(model, api_base=api_base)
    except Exception:  # noqa: BLE001 - litellm cannot route it: unknown
        return False
    for name in (model, f"{provider}/{stripped}", stripped):
        info = litellm.model_cost.get(name)
        listed = str(info.get("litellm_provider", "")) if isinstance(info, dict) else ""
        if listed and (provider in listed or listed in provider):
            return True
    return False
