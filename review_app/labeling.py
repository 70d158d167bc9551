"""The labeling screen both queues share: one leased pair, labelled from the keyboard.

One window, no page scrolling (page_style.py): a one-line header (title, progress, timer), the
rubric and guidelines and the reasons for the pair in two collapsed panels, then the prompt
(a conversation turn by turn, opened on its last turn) and the two responses side by side,
and the label bar at the bottom.

Keys: 1-5 label (A≫B, A>B, tie, B>A, B≫A), 0 both bad (needs a rationale), F toggles the
safety flag, S skips with the chosen reason. Keys do nothing while typing in the rationale
box (Streamlit ignores shortcuts inside text inputs), so click outside it first. A project with
aspects adds their grid to the label bar (review_app/aspects.py); the keys send it along.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from review_app import common, page_style, queue_filters
from review_app.api_client import ApiClient, ApiError
from review_app.aspects import aspect_answers, aspect_grid
from review_app.conversation import split_turns

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
    "review": "Which response is better? Judge the pair yourself.",
    "incident": "Pairs where both responses may be bad, or with a possible safety issue (flagged by "
    "the judges or by another reviewer, never your own flags). Label them as usual; F flags safety.",
}
KEYS_HELP = (
    "Keys: **1** A≫B · **2** A>B · **3** tie · **4** B>A · **5** B≫A · **0** both bad · "
    "**F** safety flag · **S** skip (not while typing in the rationale box: click outside it first)"
)
ASPECT_HELP = " · aspects: click in the grid (a name opens its rubric, * required)"
SCALE = "\n".join(f"- **{text}** ({shortcut}): {tip.lower()}" for _, text, shortcut, tip in LABELS)
HISTORY_PAGE = "views/history.py"
AVATARS = {"human": ":material/person:", "assistant": ":material/smart_toy:", "system": ":material/settings:"}
ROLE_NAMES = {"human": "Human", "assistant": "Assistant", "system": "System"}


def pretty_label(label: str | None, both_bad: bool = False) -> str:
    """A label as the buttons write it ("A > B", "Both bad")."""
    return "Both bad" if both_bad else PRETTY.get(label or "", label or "—")


def label_body(
    label: str | None,
    both_bad: bool,
    safety_flag: bool,
    rationale: str,
    seconds: float,
    prelabel_shown: bool,
    aspects: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The body of a submit (and of a revise, which takes the same body); ``aspects`` only on
    a project with aspects."""
    body = {
        "label": label,
        "both_bad": both_bad,
        "safety_flag": safety_flag,
        "rationale": rationale or None,
        "time_on_task_s": round(seconds, 2),
        "prelabel_shown": prelabel_shown,
    }
    return body if aspects is None else {**body, "aspects": aspects}


def warning_text(answer: dict[str, Any]) -> str | None:
    """The API's warnings on a stored label (e.g. too_fast), as one line; None when there are none."""
    messages = [w.get("message") or w.get("code", "") for w in answer.get("warnings") or []]
    return " ".join(m for m in messages if m) or None


def _item_key(queue: str, project_id: int) -> str:
    return f"item:{queue}:{project_id}"


def answer_body(
    ident: str | int, label: str | None, both_bad: bool, prelabel_shown: bool
) -> dict[str, Any] | None:
    """The label bar ``ident``'s answer as a submit/revise body (its rationale, safety flag and
    time on the pair); None, with the reason flashed, when both bad lacks a rationale."""
    rationale = (st.session_state.get(f"rationale:{ident}") or "").strip()
    if both_bad and not rationale:
        st.session_state["flash_error"] = (
            "Both bad needs a rationale: write why in the box, then press 0 again."
        )
        return None
    aspects, missing = aspect_answers(ident)
    if missing:
        st.session_state["flash_error"] = f"Label every required aspect first: {', '.join(missing)}."
        return None
    shown_at = st.session_state.get(f"shown_at:{ident}", time.time())
    safety = bool(st.session_state.get(f"safety:{ident}", False))
    return label_body(label, both_bad, safety, rationale, time.time() - shown_at, prelabel_shown, aspects)


def flash_saved(prefix: str, body: dict[str, Any], answer: dict[str, Any]) -> None:
    """Remember what was stored (and the API's gentle warnings) for the next run's status line."""
    extra = " + safety flag" if body["safety_flag"] else ""
    text = pretty_label(body["label"], body["both_bad"])
    st.session_state["flash"] = f"{prefix} {text}{extra} ({body['time_on_task_s']:.0f} s)"
    if warning := warning_text(answer):
        st.session_state["flash_warning"] = warning


def _submit(api: ApiClient, key: str, label: str | None, both_bad: bool = False) -> None:
    """Button callback: send the label; on success drop the item so the next one loads."""
    item = st.session_state.get(key)
    if item is None:
        return
    lease = item["lease_id"]
    body = answer_body(lease, label, both_bad, bool(item["prelabel_shown"]))
    if body is None:
        return
    try:
        saved = api.submit(lease, body)
    except ApiError as exc:
        if exc.status == 409 and ("skipped" in exc.detail or "was reassigned" in exc.detail):
            # This lease can never take a label now: drop the item, the next one is served.
            st.session_state.pop(key, None)
        if exc.status == 423:  # paused meanwhile: the page says so instead of a pair
            st.session_state.pop(key, None)
        st.session_state["flash_error"] = exc.detail
        return
    except Exception as exc:  # network trouble: keep the item, let the reviewer retry
        st.session_state["flash_error"] = f"Not saved, the API did not answer: {exc}"
        return
    flash_saved("Saved:", body, saved)
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


def _toggle_safety(ident: str | int) -> None:
    st.session_state[f"safety:{ident}"] = not st.session_state.get(f"safety:{ident}", False)


@st.fragment(run_every=1)
def _timer(shown_at: float) -> None:
    seconds = int(time.time() - shown_at)
    st.markdown(f":material/timer: **{seconds // 60}:{seconds % 60:02d}** on this pair")


def guidelines_panel(project: dict[str, Any], intro: str) -> None:
    """The project's rubric and guidelines, and the label scale, in a collapsed panel."""
    with st.expander("Rubric and guidelines", icon=":material/menu_book:"):
        st.markdown(intro)
        if project.get("rubric"):
            st.markdown("**Rubric** (what the judges were asked)")
            st.markdown(common.safe_markdown(project["rubric"]))
        if project.get("guidelines"):
            st.markdown("**Guidelines for reviewers**")
            # Written by the project's admin: rendered as markdown (Streamlit never runs its HTML).
            st.markdown(project["guidelines"])
        else:
            st.caption("This project has no reviewer guidelines yet (an admin sets them).")
        st.markdown("**The scale**")
        st.markdown(SCALE)
        st.caption(
            "**0** both bad: neither response is acceptable (write why). **F** flags a safety issue "
            "(harmful content, a private detail). **S** skips with a reason: someone else labels it."
        )


def _header(api: ApiClient, project: dict[str, Any], queue: str, item: dict[str, Any] | None) -> None:
    with st.container(key=page_style.HEAD, gap="small"):
        title, bar, clock = st.columns([1.3, 4, 1.2], vertical_alignment="center")
        title.title(TITLES[queue])
        try:
            progress = api.progress(project["id"], queue)
        except ApiError as exc:
            bar.caption(f"Progress unavailable: {exc.detail}")
        else:
            total = progress["done"] + progress["remaining"]
            bar.progress(
                progress["done"] / total if total else 1.0,
                text=f"{progress['done']} of {total} labelled · {progress['remaining']} waiting · "
                f"you: {progress['labelled_by_you_24h']} in the last 24 h",
            )
        if item is not None:
            with clock:
                _timer(st.session_state.get(f"shown_at:{item['lease_id']}", time.time()))
        guide, why, steer = st.columns(3)
        with guide:
            guidelines_panel(project, INTRO[queue])
        if item is not None:
            with why:
                _why_panel(item)
        with steer:
            queue_filters.filter_panel(api, project, queue, holding=item is not None)


def _why_panel(item: dict[str, Any]) -> None:
    reasons = item["why"]["reasons"]
    with st.expander(
        f"Why am I seeing this? ({len(reasons)} reason{'s' * (len(reasons) != 1)})", icon=":material/help:"
    ):
        for reason in reasons:
            st.markdown(f"- {reason['text']}")
        if item["why"].get("priority_text"):
            st.caption(item["why"]["priority_text"])
        st.caption(f"Pair #{item['pair_id']}")
        if item.get("redacted_values"):
            st.caption(f"{item['redacted_values']} private value(s) hidden as ‹TYPE_n› tokens")


def paused_message(detail: str) -> None:
    """What a paused reviewer sees instead of a pair (the API's reason, and what happens next)."""
    st.warning(
        f"{detail}\n\nYour labels so far are kept. This page serves pairs again once an admin "
        "has resumed you.",
        icon=":material/pause_circle:",
    )
    st.button("Check again", icon=":material/refresh:")


def render_queue(queue: str) -> None:
    api = common.client()
    project = common.pick_project(api)
    if project is None:
        return
    page_style.apply()
    project_id = project["id"]
    key = _item_key(queue, project_id)
    item = st.session_state.get(key)
    problem: ApiError | None = None
    empty_detail = ""
    if item is None:
        try:
            answer = api.next_item(project_id, queue, queue_filters.current(project_id))
        except ApiError as exc:
            if exc.status == 401:  # token revoked or rotated: back to the sign-in page
                common.sign_out()
                st.rerun()
            problem = exc
        else:
            item = answer["item"]
            empty_detail = answer.get("detail", "")
            if item is not None:
                st.session_state[key] = item
                st.session_state.setdefault(f"shown_at:{item['lease_id']}", time.time())
    _header(api, project, queue, item)
    if item is None:
        status_line(legend=None)
        if problem is not None and (problem.status == 423 or problem.code == "reviewer_paused"):
            paused_message(problem.detail)
        elif problem is not None:
            st.error(f"Could not get the next pair: {problem.detail}")
        else:
            st.info(f"Nothing to label here right now. {empty_detail}", icon=":material/done_all:")
            st.button("Check again", icon=":material/refresh:")
        return
    if queue == "incident":
        st.caption(INTRO[queue])
    render_pair(item)
    _label_bar(api, key, item, project.get("aspects") or [])


def render_prompt(prompt: str) -> None:
    """The prompt: a conversation turn by turn in a box opened on its last turn, else markdown."""
    turns = split_turns(prompt)
    if turns is None:
        st.markdown("**Prompt**")
        with st.container(border=True, key=page_style.PROMPT_TEXT):
            st.markdown(common.safe_markdown(prompt))
        return
    humans = sum(t.role == "human" for t in turns)
    st.markdown(
        f"**Conversation** · {len(turns)} turns ({humans} from the human) · "
        "the responses below answer the last turn"
        if len(turns) > 1
        else "**Prompt**"
    )
    with st.container(border=True, key=page_style.PROMPT_CHAT), st.container(gap="small"):
        for i, turn in enumerate(turns):
            last = i == len(turns) - 1
            with st.container(key=page_style.LAST_TURN) if last else st.container():
                with st.chat_message(turn.role, avatar=AVATARS[turn.role]):
                    st.markdown(f"**{ROLE_NAMES[turn.role]}**{' · last turn' if last else ''}")
                    st.markdown(common.safe_markdown(turn.text))


def render_responses(response_a: str, response_b: str) -> None:
    """The two responses side by side, each in its own scrolling box."""
    with st.container(key=page_style.RESPONSES):
        left, right = st.columns(2)
        for column, name, text in ((left, "A", response_a), (right, "B", response_b)):
            with column.container(border=True, key=f"response_{name.lower()}"):
                st.markdown(f"**Response {name}**")
                st.markdown(common.safe_markdown(text))


def render_pair(item: dict[str, Any]) -> None:
    """A pair as the reviewer judges it: notes (pre-label, safety), prompt, both responses."""
    with st.container(key=page_style.PAIR):
        notes = []
        if item.get("prelabel_shown") and item.get("prelabel"):
            pre = item["prelabel"]
            confidence = f" (confidence {pre['confidence']:.2f})" if pre.get("confidence") is not None else ""
            notes.append(
                f":blue-background[:material/smart_toy: Judge pre-label: **{pretty_label(pre['label'])}**"
                f"{confidence}] it is often wrong on pairs like this: decide for yourself."
            )
        if item.get("assigned"):
            notes.append(":violet-background[:material/assignment_ind: Assigned to you]")
        if item.get("safety"):
            notes.append(":orange-background[:material/warning: Possible safety issue: read carefully.]")
        if notes:
            st.markdown(" &nbsp; ".join(notes))
        render_prompt(item["prompt"])
        render_responses(item["response_a"], item["response_b"])


def status_line(legend: str | None = KEYS_HELP, change_link: bool = True) -> None:
    """The outcome of the last action: an error stands out; a saved label (with the API's
    gentle warnings, e.g. too fast) is one quiet line with a way back to change it; otherwise
    the ``legend`` (the keys)."""
    if message := st.session_state.pop("flash_error", None):
        st.error(message, icon=":material/error:")
    saved = st.session_state.pop("flash", None)
    warning = st.session_state.pop("flash_warning", None)
    if not (saved or warning):
        if legend:
            st.caption(legend)
        return
    text, link = st.columns([7, 1], vertical_alignment="center") if change_link else (st.container(), None)
    parts = [f":green[:material/check_circle: **{saved}**]"] if saved else []
    if warning:
        parts.append(f":orange[:material/schedule: {warning}]")
    text.markdown(" &nbsp; ".join(parts))
    if link is not None:
        link.page_link(HISTORY_PAGE, label="Change it", icon=":material/undo:")


def label_bar(
    ident: str | int,
    on_label: Any,
    on_skip: Any | None = None,
    current: dict[str, Any] | None = None,
    legend: str = KEYS_HELP,
    aspects: list[dict[str, Any]] | None = None,
) -> None:
    """The label buttons (keys 1-5, 0, F, and S when ``on_skip`` is given) and the rationale box
    for the answer ``ident``; ``on_label(label, both_bad)`` is called on a press. ``current``
    is a stored label being changed: its answer is marked and its rationale prefilled.
    ``aspects``: the project's, labelled in a grid above the buttons."""
    with st.container(key=page_style.LABEL_BAR, gap="small"):
        if aspects:
            aspect_grid(aspects, ident, current)
        buttons = st.columns(len(LABELS))
        mine = current["label"] if current and not current["both_bad"] else None
        for column, (value, text, shortcut, tip) in zip(buttons, LABELS, strict=True):
            column.button(
                text,
                key=f"label:{value}:{ident}",
                shortcut=shortcut,
                help=tip + (" (your current answer)" if value == mine else ""),
                # On the queue all alike: no option may look like the expected answer. When
                # changing a label, the reviewer's own answer is marked.
                type="primary" if value == mine else "secondary",
                width="stretch",
                on_click=on_label,
                args=(value, False),
            )
        widths = [4, 1.1, 1.1, 2, 0.9] if on_skip else [4, 1.1, 1.1]
        rationale, bad, safety, *skipping = st.columns(widths, vertical_alignment="center")
        rationale.text_input(
            "Rationale",
            key=f"rationale:{ident}",
            label_visibility="collapsed",
            placeholder="Rationale (optional; needed for Both bad)",
        )
        bad.button(
            "Both bad",
            key=f"both_bad:{ident}",
            shortcut="0",
            help="Neither response is acceptable (write a rationale first)",
            type="primary" if current and current["both_bad"] else "secondary",
            width="stretch",
            on_click=on_label,
            args=(None, True),
        )
        flagged = st.session_state.get(f"safety:{ident}", False)
        safety.button(
            "Safety: ON" if flagged else "Safety",
            key=f"safety_button:{ident}",
            shortcut="F",
            help="Flag a safety issue (harmful content, PII leak…); sent with your label",
            type="primary" if flagged else "secondary",
            icon=":material/flag:",
            width="stretch",
            on_click=_toggle_safety,
            args=(ident,),
        )
        if on_skip:
            reason, skip = skipping
            reason.selectbox(
                "Skip reason", SKIP_REASONS, key=f"skip_reason:{ident}", label_visibility="collapsed"
            )
            skip.button(
                "Skip",
                key=f"skip:{ident}",
                shortcut="S",
                help="Give this pair back (someone else will label it)",
                width="stretch",
                on_click=on_skip,
            )
        status_line(legend, change_link=current is None)


def _label_bar(api: ApiClient, key: str, item: dict[str, Any], aspects: list[dict[str, Any]]) -> None:
    lease = item["lease_id"]
    label_bar(
        lease,
        lambda label, both_bad: _submit(api, key, label, both_bad),
        on_skip=lambda: _skip(api, key),
        legend=KEYS_HELP + (ASPECT_HELP if aspects else ""),
        aspects=aspects,
    )
