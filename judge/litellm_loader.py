"""litellm, imported and set up on first use: one home that the judge call (:mod:`judge.client`)
and the endpoint checks (:mod:`judge.endpoints`) both use, so neither imports the other."""

from __future__ import annotations

import functools
import logging
import os
from types import ModuleType


@functools.cache
def load_litellm() -> ModuleType:
    """litellm, imported and set up on first use. Importing it takes seconds of CPU, and a
    process that only replays recorded judgments (benchmarks, the demo, tests) never needs it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    import litellm

    from judge.litellm_providers import register_providers

    litellm.suppress_debug_info = True
    # litellm logs every call at INFO; thousands of calls a minute would drown everything else.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.WARNING)
    litellm.drop_params = True  # a judge that does not take logprobs still gets called
    register_providers()
    return litellm
