"""Pieces every page of the review app shares: the API client, sign-in state, project choice,
and markdown that shows untrusted text as text."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from review_app.api_client import ApiClient, ApiError

TOKEN = "token"
REVIEWER = "reviewer_name"
PROJECT = "project_id"


def client() -> ApiClient:
    """One client per browser session and token (httpx keeps the connection open)."""
    token = st.session_state.get(TOKEN)
    cached = st.session_state.get("_api")
    if cached is None or cached[0] != token:
        cached = (token, ApiClient(token=token))
        st.session_state["_api"] = cached
    return cached[1]


def signed_in() -> bool:
    return bool(st.session_state.get(TOKEN))


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def pick_project(api: ApiClient) -> dict[str, Any] | None:
    """The project selector in the sidebar; None (with a message) when there is none."""
    try:
        projects = api.projects()
    except Exception as exc:  # the API is down or unreachable: say so, do not crash the page
        st.error(f"The API at {api.base_url} did not answer: {exc}")
        return None
    if not projects:
        st.info("No projects yet. Create one with POST /v1/projects, or run `make demo`.")
        return None
    by_id = {p["id"]: p for p in projects}
    ids = list(by_id)
    current = st.session_state.get(PROJECT)
    index = ids.index(current) if current in by_id else len(ids) - 1
    chosen = st.sidebar.selectbox(
        "Project", ids, index=index, format_func=lambda i: f"{by_id[i]['name']} (#{i})", key="project_picker"
    )
    st.session_state[PROJECT] = chosen
    return by_id[chosen]


# Code spans and fenced blocks render verbatim; everything else is markdown we must tame.
_CODE = re.compile(r"(```[\s\S]*?```|~~~[\s\S]*?~~~|`[^`\n]+`)")


def safe_markdown(text: str) -> str:
    """Markdown for untrusted text: raw HTML and redaction tokens like <EMAIL_1> stay
    visible as text (not swallowed as tags), and "$5 or $10" is not typeset as math."""
    parts = _CODE.split(text)
    return "".join(
        part if i % 2 else part.replace("$", "\\$").replace("<", "&lt;") for i, part in enumerate(parts)
    )


def error_text(exc: Exception) -> str:
    return exc.detail if isinstance(exc, ApiError) else str(exc)
