"""Previous items: the reviewer's own recent labels in the project, and a way to change one.

A change is a new label that replaces the old one (the API keeps both, with their times); the
same keys as on the queue (1-5, 0, F) give the new answer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from review_app import common, page_style
from review_app.api_client import ApiClient, ApiError
from review_app.labeling import (
    answer_body,
    flash_saved,
    guidelines_panel,
    label_bar,
    pretty_label,
    render_pair,
)

INTRO = (
    "Your own labels in this project, newest first. Pick one and press a new answer to change it: "
    "the new label replaces the old one (both are kept, with their times)."
)
PICK = "history_pair"
LEGEND = (
    "Keys: **1** A≫B · **2** A>B · **3** tie · **4** B>A · **5** B≫A · **0** both bad · **F** safety flag "
    "(then press the answer) · your current answer is highlighted"
)


def ago(created_at: str, now: datetime | None = None) -> str:
    """How long ago, in words ("just now", "5 min ago", "3 h ago", "2 days ago")."""
    moment = datetime.fromisoformat(created_at)
    if moment.tzinfo is None:  # the API writes UTC (SQLite drops the zone)
        moment = moment.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} days ago"


def _said(row: dict[str, Any]) -> str:
    extra = " + safety flag" if row["safety_flag"] else ""
    return f"{pretty_label(row['label'], row['both_bad'])}{extra}"


def _revise(api: ApiClient, row: dict[str, Any], label: str | None, both_bad: bool) -> None:
    ident = f"label{row['label_id']}"
    body = answer_body(ident, label, both_bad, prelabel_shown=False)
    if body is None:
        return
    try:
        answer = api.revise(row["label_id"], body)
    except ApiError as exc:
        st.session_state["flash_error"] = exc.detail
        return
    except Exception as exc:  # network trouble: nothing changed, the reviewer may retry
        st.session_state["flash_error"] = f"Not changed, the API did not answer: {exc}"
        return
    flash_saved(f"Pair #{row['pair_id']} changed from {_said(row)} to", body, answer)


def _load(api: ApiClient, project_id: int) -> list[dict[str, Any]] | None:
    try:
        return api.history(project_id, limit=30)
    except ApiError as exc:
        if exc.status in (404, 405):
            st.info("This API does not keep a label history yet, so labels cannot be changed here.")
        else:
            st.error(f"Your previous labels are unavailable: {exc.detail}")
    except Exception as exc:  # the API is down: say so, keep the page
        st.error(f"The API did not answer: {exc}")
    return None


def render() -> None:
    api = common.client()
    project = common.pick_project(api)
    if project is None:
        return
    page_style.apply()
    rows = _load(api, project["id"])
    if rows is None:
        return
    by_pair = {row["pair_id"]: row for row in rows}
    with st.container(key=page_style.HEAD, gap="small"):
        title, pick, _ = st.columns([1.6, 4.6, 0.8], vertical_alignment="center")
        title.title("Previous items")
        if by_pair:
            if st.session_state.get(PICK) not in by_pair:
                st.session_state[PICK] = rows[0]["pair_id"]
            pick.selectbox(
                "Your labels, newest first",
                list(by_pair),
                key=PICK,
                label_visibility="collapsed",
                format_func=lambda pid: (
                    f"Pair #{pid} · you said {_said(by_pair[pid])} · {ago(str(by_pair[pid]['created_at']))}"
                ),
            )
        guide, said = st.columns(2, vertical_alignment="center")
        with guide:
            guidelines_panel(project, INTRO)
    if not rows:
        st.info("You have not labelled anything in this project yet.", icon=":material/history:")
        return
    row = by_pair[st.session_state[PICK]]
    ident = f"label{row['label_id']}"
    # The stored answer is the starting point: its rationale and safety flag carry over.
    st.session_state.setdefault(f"rationale:{ident}", row["rationale"] or "")
    st.session_state.setdefault(f"safety:{ident}", bool(row["safety_flag"]))
    st.session_state.setdefault(f"shown_at:{ident}", time.time())
    said.markdown(
        f"You said **{_said(row)}** · {ago(str(row['created_at']))} · press a new answer to change it"
    )
    render_pair(row)
    label_bar(
        ident,
        lambda label, both_bad: _revise(api, row, label, both_bad),
        current=row,
        legend=LEGEND,
        aspects=project.get("aspects") or [],
    )


render()
