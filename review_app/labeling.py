"""The labeling screen both queues share: one leased pair, labelled from the keyboard.

Keys: 1-5 label (A≫B, A>B, tie, B>A, B≫A), 0 both bad (needs a rationale), F toggles the
safety flag, S skips with the chosen reason. Keys do nothing while typing in the rationale
box (Streamlit ignores shortcuts inside text inputs), so click outside it first.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from review_app import common
from review_app.api_client import ApiClient, ApiError

LABELS: list[tuple[str, str, str, str]] = [
    # (value, button text, shortcut, tooltip)
    ("A>>B", "A ≫ B", "1", "Response A is much better"),
    ("A>B", "A > B", "2", "Response A is better"),
    ("tie", "Tie", "3", "Neither is better"),
    ("B>A", "B > A", "4", "Response B is better"),
    ("B>>A", "B ≫ A", "5", "Response B is much better"),
]
PRETTY = {value: text for value, text, _, _ in LABELS}
SKIP_REASONS = [
    "Unsure: I need more context",
    "Needs domain expertise",
    "Text is unreadable or broken",
    "Conflict of interest",
]
TITLES = {"review": "Review", "incident": "Incidents"}
INTRO = {
    "review": "Which response is better? Judge the pair yourself; the reasons below say why it is here.",
    "incident": "Pairs where both responses may be bad, or with a possible safety issue. "
    "Label them as usual; flag safety problems with F.",
}


def _item_key(queue: str, project_id: int) -> str:
    return f"item:{queue}:{project_id}"


def _submit(api: ApiClient, key: str, label: str | None, both_bad: bool = False) -> None:
    """Button callback: send the label; on success drop the item so the next one loads."""
    item = st.session_state.get(key)
    if item is None:
        return
    lease = item["lease_id"]
    rationale = (st.session_state.get(f"rationale:{lease}") or "").strip()
    if both_bad and not rationale:
        st.session_state["flash_error"] = (
            "Both bad needs a rationale: write why in the box, then press 0 again."
        )
        return
    body: dict[str, Any] = {
        "label": label,
        "both_bad": both_bad,
        "safety_flag": bool(st.session_state.get(f"safety:{lease}", False)),
        "rationale": rationale or None,
        "time_on_task_s": round(time.time() - st.session_state.get(f"shown_at:{lease}", time.time()), 2),
        "prelabel_shown": bool(item["prelabel_shown"]),
    }
    try:
        saved = api.submit(lease, body)
    except ApiError as exc:
        if exc.status == 409 and ("skipped" in exc.detail or "was reassigned" in exc.detail):
            # This lease can never take a label now: drop the item, the next one is served.
            st.session_state.pop(key, None)
        st.session_state["flash_error"] = exc.detail
        return
    except Exception as exc:  # network trouble: keep the item, let the reviewer retry
        st.session_state["flash_error"] = f"Not saved, the API did not answer: {exc}"
        return
    text = "Both bad" if both_bad else PRETTY.get(label or "", label)
    extra = " + safety flag" if body["safety_flag"] else ""
    st.session_state["flash"] = f"Saved: {text}{extra} ({body['time_on_task_s']:.0f} s)"
    st.session_state["labelled_this_session"] = st.session_state.get("labelled_this_session", 0) + 1
    st.session_state["last_label"] = saved
    st.session_state.pop(key, None)


def _skip(api: ApiClient, key: str) -> None:
    item = st.session_state.get(key)
    if item is None:
        return
    lease = item["lease_id"]
    reason = st.session_state.get(f"skip_reason:{lease}") or SKIP_REASONS[0]
    try:
        api.skip(lease, reason)
    except ApiError as exc:
        st.session_state["flash_error"] = exc.detail
        return
    st.session_state["flash"] = f"Skipped ({reason})."
    st.session_state.pop(key, None)


def _toggle_safety(lease: int) -> None:
    st.session_state[f"safety:{lease}"] = not st.session_state.get(f"safety:{lease}", False)


@st.fragment(run_every=1)
def _timer(shown_at: float) -> None:
    seconds = int(time.time() - shown_at)
    st.markdown(f":material/timer: **{seconds // 60}:{seconds % 60:02d}** on this pair")


def _header(api: ApiClient, project_id: int, queue: str) -> None:
    st.title(TITLES[queue])
    st.caption(INTRO[queue])
    try:
        progress = api.progress(project_id, queue)
    except ApiError as exc:
        st.warning(f"Progress unavailable: {exc.detail}")
        return
    total = progress["done"] + progress["remaining"]
    st.progress(
        progress["done"] / total if total else 1.0,
        text=f"{progress['done']} of {total} labelled · {progress['remaining']} waiting · "
        f"you: {progress['labelled_by_you_24h']} in the last 24 h",
    )


def render_queue(queue: str) -> None:
    api = common.client()
    project = common.pick_project(api)
    if project is None:
        return
    project_id = project["id"]
    key = _item_key(queue, project_id)
    _header(api, project_id, queue)
    if message := st.session_state.pop("flash", None):
        st.success(message, icon=":material/check_circle:")
    if message := st.session_state.pop("flash_error", None):
        st.error(message, icon=":material/error:")

    item = st.session_state.get(key)
    if item is None:
        try:
            answer = api.next_item(project_id, queue)
        except ApiError as exc:
            if exc.status == 401:  # token revoked or rotated: back to the sign-in page
                common.sign_out()
                st.rerun()
            st.error(f"Could not get the next pair: {exc.detail}")
            return
        item = answer["item"]
        if item is None:
            st.info(
                f"Nothing to label here right now. {answer.get('detail', '')}", icon=":material/done_all:"
            )
            st.button("Check again", icon=":material/refresh:")
            return
        st.session_state[key] = item
        st.session_state.setdefault(f"shown_at:{item['lease_id']}", time.time())
    _render_item(api, key, item)


def _render_item(api: ApiClient, key: str, item: dict[str, Any]) -> None:
    lease = item["lease_id"]
    why = item["why"]
    top_left, top_right = st.columns([4, 1])
    with top_left.expander("Why am I seeing this?", expanded=True, icon=":material/help:"):
        for reason in why["reasons"]:
            st.markdown(f"- {reason['text']}")
        if why.get("priority_text"):
            st.caption(why["priority_text"])
    with top_right:
        _timer(st.session_state.get(f"shown_at:{lease}", time.time()))
        st.caption(f"Pair #{item['pair_id']}")
        if item.get("redacted_values"):
            st.caption(f"{item['redacted_values']} private value(s) hidden as ‹TYPE_n› tokens")
    if item["prelabel_shown"] and item.get("prelabel"):
        pre = item["prelabel"]
        confidence = (
            f" (panel confidence {pre['confidence']:.2f})" if pre.get("confidence") is not None else ""
        )
        st.info(
            f"Judge pre-label: **{PRETTY.get(pre['label'], pre['label'])}**{confidence}. "
            "It is often wrong on pairs like this: decide for yourself.",
            icon=":material/smart_toy:",
        )
    if item.get("safety"):
        st.warning("Possible safety issue: read carefully before labelling.", icon=":material/warning:")

    # Long prompts scroll inside their box so both responses stay on screen.
    with st.container(border=True, height=220 if len(item["prompt"]) > 700 else "content"):
        st.markdown("**Prompt**")
        st.markdown(common.safe_markdown(item["prompt"]))
    left, right = st.columns(2)
    for column, name, text in ((left, "A", item["response_a"]), (right, "B", item["response_b"])):
        with column.container(border=True, height=380):
            st.markdown(f"**Response {name}**")
            st.markdown(common.safe_markdown(text))

    buttons = st.columns(len(LABELS))
    for column, (value, text, shortcut, tip) in zip(buttons, LABELS, strict=True):
        column.button(
            text,
            key=f"label:{value}:{lease}",
            shortcut=shortcut,
            help=tip,
            type="secondary",  # all alike: no option may look like the expected answer
            width="stretch",
            on_click=_submit,
            args=(api, key, value),
        )
    st.text_area(
        "Rationale (optional; required for both bad)",
        key=f"rationale:{lease}",
        height=80,
        placeholder="Why? Click outside this box before using the number keys.",
    )
    bad, safety, reason, skip = st.columns([1, 1, 2, 1])
    bad.button(
        "Both bad",
        key=f"both_bad:{lease}",
        shortcut="0",
        help="Neither response is acceptable (write a rationale first)",
        width="stretch",
        on_click=_submit,
        args=(api, key, None, True),
    )
    flagged = st.session_state.get(f"safety:{lease}", False)
    safety.button(
        "Safety: ON" if flagged else "Safety: off",
        key=f"safety_button:{lease}",
        shortcut="F",
        help="Flag a safety issue (harmful content, PII leak…); sent with your label",
        type="primary" if flagged else "secondary",
        icon=":material/flag:",
        width="stretch",
        on_click=_toggle_safety,
        args=(lease,),
    )
    reason.selectbox("Skip reason", SKIP_REASONS, key=f"skip_reason:{lease}", label_visibility="collapsed")
    skip.button(
        "Skip",
        key=f"skip:{lease}",
        shortcut="S",
        help="Give this pair back (someone else will label it)",
        width="stretch",
        on_click=_skip,
        args=(api, key),
    )
    st.caption(
        "Keys: **1** A≫B · **2** A>B · **3** tie · **4** B>A · **5** B≫A · **0** both bad · "
        "**F** safety flag · **S** skip"
    )
