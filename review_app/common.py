"""Pieces every page of the review app shares: the API client, sign-in state, project choice,
and markdown that shows untrusted text as text (and fetches nothing: see server.py too)."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from review_app.api_client import ApiClient, ApiError

TOKEN = "token"
REVIEWER = "reviewer_name"
PROJECT = "project_id"
SENIOR = "senior"  # a senior reviewer: adjudication, and assigning work on the Queue page


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

# Untrusted text must not make the reviewer's browser fetch or link anything: no image (a
# tracking pixel), no link, no autolink. Each pattern below is where markdown would start
# one, and gets a word joiner (U+2060: invisible, no line break; the text reads the same)
# that breaks it: "](" and "][" (inline and reference links and images), "]:" (a link
# reference definition), "://" and "www." (GFM's bare-URL autolinks), "@" (e-mail
# autolinks), and "<" in code (``<http://…>`` autolinks and HTML). Applied to code too: the
# splitter above and the browser's markdown parser may disagree on what is code
# (```` ``![](…)` ````, a fence whose info string holds a backtick), and then it must not
# matter. The app's Content-Security-Policy (server.py) blocks remote loads regardless.
_JOINER = "\u2060"
_LINK_SYNTAX = re.compile(r"(?<=\])(?=[(\[:])|(?<=:)(?=//)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)


def _inert(part: str) -> str:
    return _LINK_SYNTAX.sub(_JOINER, part)


def safe_markdown(text: str) -> str:
    r"""Markdown for untrusted text: raw HTML and redaction tokens like <EMAIL_1> stay
    visible as text (not swallowed as tags), "$5 or $10" is not typeset as math, and links,
    images and autolinks stay text (a URL is shown in full, never fetched or clickable).

    >>> safe_markdown("![x](http://t.example/p.png) <img src=x>")
    '![x]\u2060(http:\u2060//t.example/p.png) &lt;img src=x>'
    >>> safe_markdown("`[a](b)` and www.example.com")
    '`[a]\u2060(b)` and www\u2060.example.com'
    """
    parts = [_inert(part) for part in _CODE.split(text)]
    return "".join(
        part.replace("<", "<" + _JOINER) if i % 2 else part.replace("$", "\\$").replace("<", "&lt;")
        for i, part in enumerate(parts)
    )


def error_text(exc: Exception) -> str:
    return exc.detail if isinstance(exc, ApiError) else str(exc)
