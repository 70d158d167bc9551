"""Dashboard: job progress, routes and reasons, the calibration gate, the review queues in
words, reviewer quality (speed, honeypots, agreement with peers, Dawid–Skene, pauses),
agreement per batch over time, control charts of agreement per reviewer and per batch,
throughput, and override rates with and without the judge's pre-label shown. Every table says
what its columns mean; nothing is shown as raw JSON."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from review_app import common, control_charts, summaries
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
    for warning in gate.get("warnings") or []:
        st.warning(warning[:1].upper() + warning[1:], icon=":material/warning:")
    versions = state.get("versions") or []
    if versions:
        with st.expander(f"Gate versions ({len(versions)})"):
            rows = [
                {
                    "Version": v.get("version"),
                    "Fitted": v.get("created_at"),
                    "Why refitted": v.get("trigger"),
                    "Gate": v.get("state"),
                    "Threshold": v.get("threshold"),
                    "Guaranteed agreement": v.get("guaranteed_agreement"),
                    "Expected coverage": v.get("expected_coverage"),
                    "Human labels": v.get("n_labels"),
                    "Label sources": summaries.label_sources_words(v.get("label_sources"), "—"),
                    "Reason": v.get("reason"),
                }
                for v in versions
            ]
            st.dataframe(
                pd.DataFrame(rows),
                hide_index=True,
                column_config={
                    "Guaranteed agreement": st.column_config.NumberColumn(format="percent"),
                    "Expected coverage": st.column_config.NumberColumn(format="percent"),
                },
            )


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
    # The report is our own API's HTML, and api/calibrate/reports_html.py escapes every
    # user-supplied name in it, so the script-capable iframe is no new exposure.
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
    for line in summaries.queue_words(depth):
        st.markdown(line)
    st.caption(
        f"Labels by source: {summaries.counts_words(stats['labels_by_source'], 'none yet')}. "
        f"Skips by reason: {summaries.counts_words(stats['skips_by_reason'], 'none')}."
    )

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
                    "override rate": summaries.percent(override[name]["rate"]),
                }
                for name in ("shown", "hidden")
            ]
        )
        st.dataframe(table, hide_index=True)
        st.caption(
            "An override is a human label on the other side from the judge's. A much lower rate when "
            "the pre-label is shown suggests reviewers follow the judge (automation bias)."
        )


def _fetch(call: Any, project_id: int, what: str) -> tuple[dict[str, Any] | None, str | None]:
    """An API answer the page can do without: (answer, None), or (None, why it is missing)."""
    try:
        return call(project_id), None
    except ApiError as exc:
        if exc.status in (404, 405):
            return None, f"This API does not report {what} yet."
        return None, f"{what.capitalize()} unavailable: {exc.detail}"
    except Exception as exc:  # network trouble: the rest of the page still works
        return None, f"{what.capitalize()} unavailable: {exc}"


def _quality(api: Any, project_id: int, agreement: dict[str, Any] | None) -> None:
    st.subheader("Reviewers")
    quality, missing = _fetch(api.quality, project_id, "reviewer quality")
    if quality is None:
        st.caption(missing)
        return
    rows = summaries.quality_rows(quality, agreement)
    if not rows:
        st.info("No reviewer is assigned to this project yet.")
        return
    paused = [r["Reviewer"] for r in rows if r["Status"] != "Active"]
    if paused:
        st.warning(
            f"Paused: {', '.join(paused)}. They get no pairs until an admin resumes them "
            "(POST /v1/reviewers/{id}/resume); their labels since the last good check are quarantined.",
            icon=":material/pause_circle:",
        )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={"Status": st.column_config.TextColumn(width="large")},
    )
    with st.expander("What the columns mean"):
        st.markdown("\n".join(f"- **{name}**: {text}" for name, text in summaries.QUALITY_COLUMNS.items()))


def _agreement(agreement: dict[str, Any] | None, missing: str | None) -> None:
    st.subheader("Agreement between reviewers")
    if agreement is None:
        st.caption(missing)
        return
    st.markdown(summaries.agreement_words(agreement))
    project = agreement.get("project") or {}
    if project.get("n_items"):
        cols = st.columns(4)
        cols[0].metric("Krippendorff's α, five-point", _fmt(project.get("krippendorff_alpha_ordinal")))
        cols[1].metric("Krippendorff's α, sides", _fmt(project.get("krippendorff_alpha_nominal")))
        cols[2].metric("Fleiss' κ", _fmt(project.get("fleiss_kappa")))
        cols[3].metric("Cohen's κ, mean of pairs", _fmt(project.get("cohen_kappa_mean")))
    batches = summaries.batch_rows(agreement)
    if batches:
        frame = pd.DataFrame(batches)
        st.markdown("**Agreement per batch over time**")
        chart = frame.dropna(subset=["α (five-point)"])
        if not chart.empty:
            chart = chart.assign(
                threshold=agreement.get("threshold"), Created=pd.to_datetime(chart["Created"])
            )
            st.line_chart(chart, x="Created", y=["α (five-point)", "threshold"], height=240)
        st.dataframe(frame, hide_index=True, width="stretch")
        st.caption(
            "A batch is one job's pairs. When its α is below the threshold its disputed pairs (reviewers "
            "on different sides) wait for a senior reviewer's adjudication; its reviewers' labels stop "
            "calibrating the gate only when even the upper bound of α (95 %, over at least 10 pairs "
            "compared) is below the threshold. Gold labels always calibrate."
        )
    pairs = summaries.pair_rows(agreement)
    if pairs:
        with st.expander(f"Reviewer pairs ({len(pairs)})"):
            st.dataframe(pd.DataFrame(pairs), hide_index=True)
            st.caption(
                "Cohen's κ: agreement between two reviewers beyond chance (1 = always agree, 0 = chance)."
            )


def _control_charts(api: Any, project_id: int) -> None:
    st.subheader("Agreement over time: control charts")
    window = st.select_slider(
        "Labels per point on a reviewer's chart", (10, 20, 50, 100), 20, key="chart_window"
    )
    answer, missing = _fetch(lambda pid: api.control_charts(pid, window), project_id, "control charts")
    if answer is None:
        st.caption(missing)
        return
    st.caption(
        "Each point is the share of answers that agreed with the reference (a honeypot's or gold "
        "label, or the side most of at least two other reviewers took): per batch, and per reviewer "
        f"for every {window} labels. The green line is the chart's overall agreement, the dashed "
        "steps its control limits (3 standard errors; wider where a point has fewer answers, light "
        "blue where too few for tight limits). Red: out of control — outside the limits, or the last "
        "of 8 points in a row on one side of the green line (a drift). Hover a point for its numbers."
    )
    batches = answer.get("batches")
    if batches and batches["points"]:
        st.altair_chart(control_charts.p_chart(batches, "batch", window), width="stretch")
    reviewers = [chart for chart in answer["reviewers"] if chart["points"]]
    if not batches and not reviewers:
        st.info("No reviewer answer has a reference to agree with yet (honeypots, gold, overlaps).")
        return
    # Reviewers with flagged points first: the ones to look at.
    reviewers.sort(key=lambda chart: -chart["flagged"])
    columns = st.columns(2)
    for i, chart in enumerate(reviewers):
        with columns[i % 2]:
            st.altair_chart(control_charts.p_chart(chart, "reviewer", window), width="stretch")
    flagged = control_charts.flagged_rows(answer)
    st.markdown(f"**Out-of-control points** ({len(flagged)})")
    if flagged:
        st.dataframe(pd.DataFrame(flagged), hide_index=True, width="stretch")
        st.caption(" ".join(f"{words[:1].upper()}{words[1:]}." for words in answer["rules"].values()))
    else:
        st.caption("None: every point is inside its limits and no run of 8 is on one side.")


api = common.client()
st.title("Dashboard")
project = common.pick_project(api)
if project is not None:
    _jobs(api, project["id"])
    _gate(api, project["id"])
    _review(api, project["id"])
    agreement, missing = _fetch(api.agreement, project["id"], "agreement between reviewers")
    _quality(api, project["id"], agreement)
    _agreement(agreement, missing)
    with st.container(key="control_charts"):  # the browser test finds the section by this key
        _control_charts(api, project["id"])
    _report(api, project["id"])
