"""The queue as a list: filter and search what waits; senior reviewers assign it to people.

The filter here is the one the Review and Incidents pages serve by. Text is redacted, as
everywhere in the app; a search never sees hidden personal data.
"""

from __future__ import annotations

import streamlit as st

from review_app import common, queue_filters
from review_app.api_client import ApiError

PAGE_SIZE = 50
SHOW = {"any": "All", "me": "Assigned to me", "none": "Unassigned"}

api = common.client()
project = common.pick_project(api)
if project is None:
    st.stop()
project_id = project["id"]
st.title("Queue")
queue = (
    st.segmented_control(
        "Queue",
        ["review", "incident"],
        default="review",
        key="queue_page_queue",
        label_visibility="collapsed",
    )
    or "review"
)
with st.container(border=True, key="queue_filter_bar"):
    queue_filters.filter_form(api, project_id, "filter_form:queue_page")
flt = queue_filters.current(project_id)
assigned = (
    st.segmented_control(
        "Show",
        ["any", "me", "none"],
        default="any",
        format_func=lambda key: SHOW[key],
        key="queue_page_assigned",
    )
    or "any"
)
try:
    page = api.queue(project_id, queue, flt, assigned=assigned, limit=PAGE_SIZE)
except ApiError as exc:
    st.error(f"The filter was refused: {exc.detail}")
    st.stop()
mine = f" · {page['assigned_to_you']} assigned to you" if page["assigned_to_you"] else ""
st.caption(
    f"**{page['matched']}** waiting pair(s) match (filter: {queue_filters.describe(flt)}){mine}. "
    f"Best first; the first {PAGE_SIZE} are listed."
)
if page["searched_unprepared"]:
    st.caption(f"{page['searched_unprepared']} pair(s) are still being prepared and were not searched yet.")
rows = [
    {
        "item": i["item_id"],
        "pair": i["pair_id"],
        "job": i["job_id"],
        "reasons": ", ".join(queue_filters.REASONS.get(r, r) for r in i["reasons"]),
        "assigned to": (i["assigned_to"] or {}).get("name", ""),
        "labels": f"{i['labels_done']}/{i['labels_needed']}",
        "prompt (redacted)": i["prompt"],
    }
    for i in page["items"]
]
senior = bool(st.session_state.get(common.SENIOR))
table = st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    height=min(38 + 35 * max(len(rows), 1), 420),
    key="queue_table",
    on_select="rerun" if senior else "ignore",
    selection_mode="multi-row",
    column_config={"prompt (redacted)": st.column_config.TextColumn(width="large")},
)
if senior:
    picked = table.selection.rows if table is not None and hasattr(table, "selection") else []
    selected = [rows[i]["item"] for i in picked]
    st.subheader("Assign", divider="gray")
    st.caption(
        "Assigned pairs are served to that reviewer first and to nobody else, until they have had them "
        "or are paused or removed (then the pairs go back to the pool)."
    )
    queue_filters.assign_control(api, project_id, queue, selected, page["matched"])
