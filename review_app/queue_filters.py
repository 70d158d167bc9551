"""The queue's filter bar (reason, source job, metadata, text) and the senior's assign control.

One filter per project, kept in the browser session: the labeling pages serve only matching
pairs (items assigned to you still come first), the Queue page lists what matches. The API does
the matching (``QueueFilter``); a text search looks only at the redacted text reviewers see.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from review_app.api_client import ApiClient, ApiError

# Reason codes (api/vocab.py's Reason) as a reviewer reads them in the filter.
REASONS: dict[str, str] = {
    "order_sensitive": "Order-sensitive",
    "judges_disagree": "Judges disagree",
    "low_confidence": "Low confidence",
    "judge_failed": "A judge failed",
    "safety_flag": "Safety flag",
    "injection_suspected": "Injection suspected",
    "both_bad": "Both bad",
    "gate_closed": "Gate closed",
    "audit": "Audit sample",
    "calibration_sample": "Calibration sample",
    "reviewer_safety_flag": "Reviewer safety flag",
}


_OPEN = "filter_panel_open"


def _key(project_id: int) -> str:
    return f"queue_filter:{project_id}"


def current(project_id: int) -> dict[str, Any] | None:
    """The project's filter as the API takes it, or None when nothing is filtered."""
    flt = st.session_state.get(_key(project_id))
    return flt or None


def parse_metadata(text: str) -> tuple[dict[str, str], str | None]:
    """``key:value`` pairs separated by commas, and an error message (None when it reads).

    >>> parse_metadata("lang:de, domain: math")
    ({'lang': 'de', 'domain': 'math'}, None)
    >>> parse_metadata("lang")
    ({}, 'Write metadata as key:value (several: a comma between them).')
    """
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition(":")
        if not sep or not key.strip():
            return {}, "Write metadata as key:value (several: a comma between them)."
        pairs[key.strip()] = value.strip()
    return pairs, None


def describe(flt: dict[str, Any] | None) -> str:
    """A filter in a few words, for the panel's title.

    >>> describe({"reasons": ["audit"], "text": "refund"})
    'reason: Audit sample · text: “refund”'
    >>> describe(None)
    'none'
    """
    if not flt:
        return "none"
    parts = []
    if flt.get("reasons"):
        parts.append("reason: " + ", ".join(REASONS.get(r, r) for r in flt["reasons"]))
    if flt.get("jobs"):
        parts.append("job " + ", ".join(f"#{j}" for j in flt["jobs"]))
    if flt.get("metadata"):
        parts.append(", ".join(f"{k}={v}" for k, v in flt["metadata"].items()))
    if flt.get("text"):
        parts.append(f"text: “{flt['text']}”")
    return " · ".join(parts)


def _jobs(api: ApiClient, project_id: int) -> dict[int, str]:
    try:
        jobs = api.jobs(project_id)
    except Exception:  # the filter still works without the job names
        return {}
    return {j["id"]: f"Job #{j['id']} ({j['pairs']} pairs)" for j in jobs}


def filter_form(api: ApiClient, project_id: int, form_key: str) -> None:
    """The filter's widgets in a form; Apply stores the filter, Clear drops it."""
    flt = current(project_id) or {}
    jobs = _jobs(api, project_id)
    with st.form(form_key, border=False):
        reason_col, job_col = st.columns(2)
        reasons = reason_col.multiselect(
            "Reason",
            list(REASONS),
            default=[r for r in flt.get("reasons", []) if r in REASONS],
            format_func=lambda r: REASONS[r],
            placeholder="any reason",
        )
        chosen_jobs = job_col.multiselect(
            "Source (job)",
            list(jobs),
            default=[j for j in flt.get("jobs", []) if j in jobs],
            format_func=lambda j: jobs.get(j, f"Job #{j}"),
            placeholder="any job",
        )
        meta_col, text_col = st.columns(2)
        meta_text = meta_col.text_input(
            "Metadata",
            value=", ".join(f"{k}:{v}" for k, v in flt.get("metadata", {}).items()),
            placeholder="key:value, e.g. lang:de",
        )
        text = text_col.text_input("Text search", value=flt.get("text", ""), placeholder="words in the pair")
        apply, clear = st.columns(2)
        applied = apply.form_submit_button(
            "Apply filter", type="primary", icon=":material/filter_alt:", width="stretch"
        )
        cleared = clear.form_submit_button("Clear", icon=":material/filter_alt_off:", width="stretch")
    if cleared:
        st.session_state.pop(_key(project_id), None)
        st.rerun()
    if applied:
        metadata, problem = parse_metadata(meta_text)
        if problem:
            st.error(problem)
            return
        new = {"reasons": reasons, "jobs": chosen_jobs, "metadata": metadata, "text": text.strip()}
        st.session_state[_key(project_id)] = {k: v for k, v in new.items() if v}
        st.session_state[_OPEN] = True  # the panel's title changes: keep it open to show the count
        st.rerun()


def filter_panel(api: ApiClient, project: dict[str, Any], queue: str, holding: bool) -> None:
    """The labeling page's filter bar: a collapsed panel naming the active filter."""
    flt = current(project["id"])
    title = f"Filter: {describe(flt)}" if flt else "Filter and search"
    with st.expander(title, icon=":material/filter_alt:", expanded=st.session_state.pop(_OPEN, False)):
        filter_form(api, project["id"], f"filter_form:{queue}")
        try:
            page = api.queue(project["id"], queue, flt, limit=1)
        except ApiError as exc:
            st.error(f"The filter was refused: {exc.detail}")
            return
        mine = f" · {page['assigned_to_you']} assigned to you" if page["assigned_to_you"] else ""
        st.caption(f"{page['matched']} waiting pair(s) match{mine}.")
        if holding and flt:
            st.caption(
                "The pair on screen stays until you label or skip it; the filter applies from the next."
            )


# --- the senior's assign control -------------------------------------------------------------------


def assign_control(api: ApiClient, project_id: int, queue: str, selected: list[int], matched: int) -> None:
    """Assign the selected items (or every matching one) to a reviewer; give items back."""
    try:
        overview = api.assignments(project_id)
    except ApiError as exc:
        st.caption(f"Assignments unavailable: {exc.detail}")
        return
    people = {r["reviewer_id"]: r for r in overview["reviewers"]}
    if not people:
        st.caption("No reviewers on this project yet.")
        return

    def name(rid: int) -> str:
        # Names only: Streamlit keeps a keyed box's option texts, so counts would go stale.
        return str(people[rid]["name"])

    who_col, sel_col, all_col, back_col = st.columns([2.2, 1.3, 1.3, 1.3], vertical_alignment="bottom")
    who = who_col.selectbox("Assign to", list(people), format_func=name, key=f"assignee:{project_id}")
    flt = current(project_id)
    body: dict[str, Any] = {"reviewer_id": who, "queue": queue}
    if sel_col.button(
        f"Assign {len(selected)} selected",
        disabled=not selected,
        icon=":material/assignment_ind:",
        width="stretch",
    ):
        _act(lambda: api.assign(project_id, {**body, "item_ids": selected}), "Assigned")
    if all_col.button(
        f"Assign all {matched} matching", disabled=not matched, icon=":material/group_add:", width="stretch"
    ):
        _act(
            lambda: api.assign(
                project_id, {**body, "filter": flt or {}, "limit": max(1, min(matched, 10_000))}
            ),
            "Assigned",
        )
    if back_col.button("Give back theirs", icon=":material/assignment_return:", width="stretch"):
        _act(lambda: api.unassign(project_id, {"reviewer_id": who}), "Gave back")
    st.caption(
        "Assigned now: "
        + " · ".join(
            f"{r['name']} {r['assigned']}" + (" (paused)" if r["paused"] else "") for r in people.values()
        )
    )
    if message := st.session_state.pop("assign_flash", None):
        st.success(message, icon=":material/check_circle:")


def _act(call: Any, verb: str) -> None:
    try:
        answer = call()
    except ApiError as exc:
        st.error(exc.detail)
        return
    n = answer.get("assigned", answer.get("unassigned", 0))
    moved = f" ({answer['moved']} taken over from another reviewer)" if answer.get("moved") else ""
    st.session_state["assign_flash"] = f"{verb} {n} item(s){moved}."
    st.rerun()
