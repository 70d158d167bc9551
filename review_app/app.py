"""prelabel review app (Streamlit, multipage). Talks to the API over HTTP only.

Run with ``prelabel review`` (or ``make demo``); PRELABEL_API_URL points it at the API.
Pages: sign in, review queue, previous items (change a label), incidents queue, the queue listed
(filter, search; seniors assign), dashboard.
"""

from __future__ import annotations

import streamlit as st

from review_app import common

st.set_page_config(page_title="prelabel review", page_icon="⚖️", layout="wide")

sign_in = st.Page("views/sign_in.py", title="Sign in", icon=":material/login:", url_path="sign-in")
if common.signed_in():
    pages = {
        "Label": [
            st.Page(
                "views/review.py",
                title="Review",
                icon=":material/rate_review:",
                url_path="review",
                default=True,
            ),
            st.Page(
                "views/history.py", title="Previous items", icon=":material/history:", url_path="previous"
            ),
            st.Page("views/incidents.py", title="Incidents", icon=":material/report:", url_path="incidents"),
            st.Page("views/queue.py", title="Queue", icon=":material/filter_list:", url_path="queue"),
        ],
        "Monitor": [
            st.Page(
                "views/dashboard.py", title="Dashboard", icon=":material/monitoring:", url_path="dashboard"
            )
        ],
        "Account": [
            st.Page("views/sign_in.py", title="Account", icon=":material/person:", url_path="account")
        ],
    }
    navigation = st.navigation(pages)
    st.sidebar.caption(f"Signed in as **{st.session_state.get(common.REVIEWER, '?')}**")
else:
    navigation = st.navigation([sign_in])
st.sidebar.caption(f"API: {common.client().base_url}")
navigation.run()
