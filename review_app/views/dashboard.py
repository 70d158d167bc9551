"""Dashboard: job progress, routes and reasons, the calibration gate, review throughput,
queue depth, and override rates with and without the judge's pre-label shown."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from review_app import common
from review_app.api_client import ApiError


def _fmt(value: Any, pattern: str = "{:.3f}") -> str:
    return "—" if value is None else pattern.format(value)


def _jobs(api: Any, project_id: int) -> None:
    jobs = api.jobs(project_id)
    if not jobs:
        st.info("This project has no jobs yet.")
        return
    done = sum(j["done"] for j in jobs)
    total = sum(j["pairs"] for j in jobs)
    st.progress(done / total if total else 1.0, text=f"Judging: {done} of {total} pairs done")
    st.caption(f"{len(jobs)} job(s) · judge cost so far \\${sum(j['cost'] for j in jobs):.2f}")
    routes: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for job in jobs:
        for name, n in job["by_route"].items():
            routes[name] = routes.get(name, 0) + n
        for name, n in job["by_reason"].items():
            reasons[name] = reasons.get(name, 0) + n
    left, right = st.columns(2)
    with left:
        st.subheader("Pairs by route")
        if routes:
            st.bar_chart(pd.DataFrame({"pairs": routes}), horizontal=True, height=220)
    with right:
        st.subheader("Pairs by reason")
        if reasons:
            st.bar_chart(pd.DataFrame({"pairs": reasons}).sort_values("pairs"), horizontal=True, height=220)


def _gate(api: Any, project_id: int) -> None:
    st.subheader("Calibration gate")
    try:
        state = api.calibration(project_id)
    except ApiError as exc:
        st.warning(f"Calibration state unavailable: {exc.detail}")
        return
    except Exception as exc:  # an older API or a network error: the rest of the page still works
        st.warning(f"Calibration state unavailable: {exc}")
        return
    if state is None:
        st.info("This API does not serve calibration yet: the gate stays closed, every pair goes to review.")
        return
    gate = state.get("gate", {})
    is_open = gate.get("open", gate.get("state") == "open")
    cols = st.columns(4)
    cols[0].metric("Gate", "open" if is_open else "closed")
    cols[1].metric("Threshold", _fmt(gate.get("threshold")))
    cols[2].metric("Guaranteed agreement", _fmt(gate.get("guaranteed_agreement"), "{:.1%}"))
    cols[3].metric("Expected coverage", _fmt(gate.get("expected_coverage"), "{:.1%}"))
    if gate.get("reason"):
        st.caption(f"Why: {gate['reason']}")
    versions = state.get("versions") or []
    if versions:
        with st.expander(f"Gate versions ({len(versions)})"):
            st.dataframe(pd.DataFrame(versions), hide_index=True)


def _report(api: Any, project_id: int) -> None:
    st.subheader("Calibration plots")
    try:
        html = api.calibration_report_html(project_id)
    except Exception as exc:  # the report is optional: say why it is missing
        st.info(f"No calibration report: {exc}")
        return
    if not html:
        st.info("No calibration report from this API yet.")
        return
    # st.iframe (Streamlit >= 1.56) replaces the deprecated components.v1.html and always scrolls.
    # The report is our own API's HTML, and calibration/report.py escapes every user-supplied name in it,
    # so the script-capable iframe is no new exposure.
    st.iframe(html, height=900)
    st.caption(f"Full page: {api.calibration_report_url(project_id)}")


def _review(api: Any, project_id: int) -> None:
    try:
        stats = api.stats(project_id)
    except ApiError as exc:
        st.warning(f"Review statistics unavailable: {exc.detail}")
        return
    st.subheader("Review queues")
    depth = stats["queue_depth"]
    cols = st.columns(4)
    cols[0].metric("Review: waiting", depth.get("review", {}).get("waiting", 0))
    cols[1].metric("Review: labelled", depth.get("review", {}).get("done", 0))
    cols[2].metric("Incidents: waiting", depth.get("incident", {}).get("waiting", 0))
    cols[3].metric("Median time per pair", _fmt(stats.get("median_time_on_task_s"), "{:.0f} s"))

    left, right = st.columns(2)
    with left:
        st.markdown("**Labels per reviewer per hour** (last 24 h)")
        rows = stats["labels_per_reviewer_per_hour"]
        if rows:
            frame = pd.DataFrame(rows)
            # Categorical hours draw as wide bars; a datetime axis draws hairlines.
            frame["hour"] = pd.to_datetime(frame["hour"]).dt.strftime("%m-%d %H:00")
            st.bar_chart(frame, x="hour", y="labels", color="annotator", height=260)
        else:
            st.caption("No labels yet.")
    with right:
        st.markdown("**Override rate: judge's pre-label shown vs hidden**")
        override = stats["override"]
        table = pd.DataFrame(
            [
                {
                    "pre-label": name,
                    "labels": override[name]["labels"],
                    "overrides": override[name]["overrides"],
                    "override rate": override[name]["rate"],
                }
                for name in ("shown", "hidden")
            ]
        )
        st.dataframe(
            table,
            hide_index=True,
            column_config={"override rate": st.column_config.NumberColumn(format="percent")},
        )
        st.caption(
            "An override is a human label on the other side from the judge's. A much lower rate when "
            "the pre-label is shown suggests reviewers follow the judge (automation bias)."
        )
    with st.expander("Queue depth by state, labels by source, skips"):
        st.dataframe(pd.DataFrame(depth).T, width="stretch")
        st.write({"labels by source": stats["labels_by_source"], "skips by reason": stats["skips_by_reason"]})


api = common.client()
st.title("Dashboard")
project = common.pick_project(api)
if project is not None:
    _jobs(api, project["id"])
    _gate(api, project["id"])
    _review(api, project["id"])
    _report(api, project["id"])
