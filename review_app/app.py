"""prelabel review app (Streamlit). Talks to the API over HTTP only.

Run with ``prelabel review`` (or ``make demo``). Set PRELABEL_API_URL to the API.
"""

from __future__ import annotations

import httpx
import pandas as pd
import streamlit as st

from review_app.api_client import ApiClient

st.set_page_config(page_title="prelabel review", layout="wide")
api = ApiClient()
st.title("prelabel")
st.caption(f"API: {api.base_url}")

try:
    projects = api.projects()
except httpx.HTTPError as exc:
    st.error(f"The API at {api.base_url} did not answer: {exc}")
    st.stop()

if not projects:
    st.info("No projects yet. Create one with POST /v1/projects, or run `make demo`.")
    st.stop()

names = {f"{p['name']} (#{p['id']})": p for p in projects}
project = names[st.selectbox("Project", list(names))]
st.write("Judges: " + ", ".join(j["model"] for j in project["judges"]))

jobs = api.jobs(project["id"])
if not jobs:
    st.info("This project has no jobs yet.")
    st.stop()

done = sum(j["done"] for j in jobs)
total = sum(j["pairs"] for j in jobs)
st.progress(done / total if total else 1.0, text=f"{done} of {total} pairs judged")
routes: dict[str, int] = {}
reasons: dict[str, int] = {}
for job in jobs:
    for key, value in job["by_route"].items():
        routes[key] = routes.get(key, 0) + value
    for key, value in job["by_reason"].items():
        reasons[key] = reasons.get(key, 0) + value
left, right = st.columns(2)
left.subheader("Pairs by route")
left.dataframe(pd.DataFrame(sorted(routes.items()), columns=["route", "pairs"]), hide_index=True)
right.subheader("Reasons for review")
right.dataframe(
    pd.DataFrame(sorted(reasons.items(), key=lambda kv: -kv[1]), columns=["reason", "pairs"]), hide_index=True
)

st.subheader("Pairs waiting for review")
job = st.selectbox("Job", [j["id"] for j in jobs], index=len(jobs) - 1)
rows = [r for r in api.results(job)["results"] if r["route"] in ("review", "incident")]
st.dataframe(
    pd.DataFrame(
        [
            {"client_id": r["client_id"], "route": r["route"], "provisional label": r["label"],
             "confidence": r["confidence"], "reasons": ", ".join(r["reasons"])}
            for r in rows
        ]
    ),
    hide_index=True,
)  # fmt: skip
