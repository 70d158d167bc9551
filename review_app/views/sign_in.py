"""Sign in with a reviewer token (or see who is signed in, and sign out)."""

from __future__ import annotations

import streamlit as st

from review_app import common
from review_app.api_client import ApiClient, ApiError

if common.signed_in():
    st.title("Account")
    st.write(f"Signed in as **{st.session_state.get(common.REVIEWER)}**.")
    if st.button("Sign out", icon=":material/logout:"):
        common.sign_out()
        st.rerun()
    st.stop()

st.title("Sign in")
st.write("Reviewers sign in with the token an admin created for them.")
with st.form("sign_in"):
    token = st.text_input("Reviewer token", type="password", placeholder="rvw_…")
    submitted = st.form_submit_button("Sign in", type="primary")
if submitted:
    try:
        me = ApiClient(token=token.strip()).me()
    except ApiError as exc:
        refused = {
            401: "That token was not accepted.",
            403: "That is not a reviewer token (API keys and the admin token don't sign in here).",
        }
        st.error(refused.get(exc.status, f"The API refused: {exc.detail}"))
    except Exception as exc:  # network errors: the API is not reachable
        st.error(f"The API did not answer: {exc}")
    else:
        st.session_state[common.TOKEN] = token.strip()
        st.session_state[common.REVIEWER] = me["name"]
        st.session_state[common.SENIOR] = bool(me.get("senior"))
        st.rerun()
st.caption("No token? An admin creates one with `POST /v1/reviewers` (admin token); `make demo` prints one.")
