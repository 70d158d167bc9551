"""Per-aspect labels on the labeling screen (issue 23): a compact grid in the label bar.

A project with aspects ("B is more helpful but A is safer") shows one small row of choices per
aspect above the overall buttons, three aspects to a line: the aspect's name opens its rubric
(one click), then its scale as a segmented control. The overall keys (1-5, 0, F, S) work as
before and send the aspects chosen with the overall label; a required aspect left open stops
the submit with a message naming it (the API refuses it too, 422).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# (stored value, what the grid shows): five-point, or A / = / B on a three-way scale.
FIVE_POINT = [("A>>B", "A≫B"), ("A>B", "A>B"), ("tie", "="), ("B>A", "B>A"), ("B>>A", "B≫A")]
THREE_WAY = [("A>B", "A"), ("tie", "="), ("B>A", "B")]
PER_ROW = 3
SHOWN = {value: text for value, text in FIVE_POINT}


def _names_key(ident: str | int) -> str:
    return f"aspect_names:{ident}"


def _required_key(ident: str | int) -> str:
    return f"aspect_required:{ident}"


def value_key(name: str, ident: str | int) -> str:
    return f"aspect:{name}:{ident}"


def aspect_grid(
    aspects: list[dict[str, Any]], ident: str | int, current: dict[str, Any] | None = None
) -> None:
    """The grid for the answer ``ident``; ``current``: a stored label being changed (its
    aspect answers preselected)."""
    st.session_state[_names_key(ident)] = [a["name"] for a in aspects]
    st.session_state[_required_key(ident)] = [a["name"] for a in aspects if a.get("required")]
    stored = (current or {}).get("aspects") or {}
    for start in range(0, len(aspects), PER_ROW):
        row = st.columns(PER_ROW, gap="small")
        for column, aspect in zip(row, aspects[start : start + PER_ROW], strict=False):
            name, scale = aspect["name"], FIVE_POINT if aspect.get("scale") != "three_way" else THREE_WAY
            key = value_key(name, ident)
            if key not in st.session_state and stored.get(name) in dict(scale):
                st.session_state[key] = stored[name]
            rubric, choice = column.columns([1.2, 2.2], gap="xsmall", vertical_alignment="center")
            with rubric.popover(name + (" *" if aspect.get("required") else ""), width="stretch"):
                st.markdown(f"**{name}**" + (" (required)" if aspect.get("required") else " (optional)"))
                st.markdown(aspect.get("description") or "No rubric for this aspect yet.")
                st.caption("Which response is better on this aspect alone, whatever the others say.")
            choice.segmented_control(
                name,
                [value for value, _ in scale],
                format_func=dict(scale).__getitem__,
                key=key,
                label_visibility="collapsed",
                width="stretch",
            )


def aspect_answers(ident: str | int) -> tuple[dict[str, str] | None, list[str]]:
    """The grid's answers for ``ident`` (None when no grid was shown: a project without
    aspects) and the required aspects still open."""
    names = st.session_state.get(_names_key(ident))
    if not names:
        return None, []
    given = {n: v for n in names if (v := st.session_state.get(value_key(n, ident)))}
    missing = [n for n in st.session_state.get(_required_key(ident)) or [] if n not in given]
    return given, missing


def said(aspects: dict[str, str] | None) -> str:
    """Per-aspect answers in a line ("helpfulness A>B · harmlessness B>A")."""
    return " · ".join(f"{name} {SHOWN.get(value, value)}" for name, value in (aspects or {}).items())
