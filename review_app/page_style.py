"""The labeling page's layout: one screen, no page scrolling for a typical pair.

Streamlit lays elements out top to bottom at their natural height; a reviewer needs the prompt,
both responses and the label bar on one screen whatever the window size. This stylesheet makes
the labeling page a column as tall as the window: the header and the label bar keep their
height, the pair takes the rest; the prompt gets at most two fifths of it, the two responses
share what remains side by side, and each scrolls inside itself when longer. A conversation's
box starts scrolled to its end (``column-reverse``), so the turn being answered is in view.

Targets are the ``st-key-<key>`` classes Streamlit gives keyed containers and the
``data-testid`` attributes of its layout blocks; everything is local CSS (no fonts or scripts
from the network).
"""

from __future__ import annotations

import streamlit as st

# Keys of the containers the stylesheet positions (labeling.py creates them).
HEAD, PAIR, PROMPT_CHAT, PROMPT_TEXT, LAST_TURN = "head", "pair", "prompt_chat", "prompt_text", "last_turn"
RESPONSES, LABEL_BAR = "responses", "labelbar"

_WRAP = '[data-testid="stLayoutWrapper"]'

CSS = f"""
<style>
/* The page is exactly one window tall; the header overlay shrinks to its buttons. */
[data-testid="stHeader"] {{ height: 2.25rem; background: transparent; pointer-events: none; }}
[data-testid="stHeader"] button, [data-testid="stHeader"] a {{ pointer-events: auto; }}
[data-testid="stMainBlockContainer"] {{
  padding: 0.6rem 1.25rem 0.5rem 1.25rem; height: 100dvh; max-width: none;
}}
[data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] {{ height: 100%; gap: 0.5rem; }}
[data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] > *,
.st-key-{HEAD} > *, .st-key-{LABEL_BAR} > * {{ flex-shrink: 0 !important; }}

/* Header: a small title, progress and timer on one line. */
.st-key-{HEAD} h1 {{ font-size: 1.45rem; padding: 0; line-height: 1.6; }}
.st-key-{HEAD} [data-testid="stHeaderActionElements"] {{ display: none; }}
.st-key-{HEAD} [data-testid="stExpander"] summary {{ padding-top: 0.3rem; padding-bottom: 0.3rem; }}
/* An opened panel scrolls inside itself: the pair and the label bar stay on screen. */
.st-key-{HEAD} [data-testid="stExpanderDetails"] {{ max-height: 33vh; overflow-y: auto; }}
.st-key-{HEAD} [data-testid="stExpanderDetails"] :is(h1, h2, h3, h4) {{
  font-size: 1.05rem; padding: 0.4rem 0 0.2rem;
}}

/* The pair takes whatever height the header and the label bar leave. */
[data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] > {_WRAP}:has(> .st-key-{PAIR}) {{
  flex: 1 1 0; min-height: 12rem;
}}
.st-key-{PAIR} {{ height: 100%; gap: 0.5rem; flex-wrap: nowrap; }}
{_WRAP}:has(> .st-key-{PROMPT_CHAT}), {_WRAP}:has(> .st-key-{PROMPT_TEXT}) {{
  flex: 0 1 auto; max-height: 60%; min-height: 3.5rem; display: flex; flex-direction: column;
}}
.st-key-{PROMPT_CHAT}, .st-key-{PROMPT_TEXT} {{ overflow-y: auto; min-height: 0; flex: 0 1 auto; }}
/* One child, reversed: the box opens scrolled to the bottom, on the last turn. */
.st-key-{PROMPT_CHAT} {{ flex-direction: column-reverse; justify-content: flex-start; }}
.st-key-{PROMPT_CHAT} [data-testid="stChatMessage"] {{ padding: 0.3rem 0.6rem; gap: 0.6rem; }}
.st-key-{PROMPT_CHAT} [data-testid="stChatMessage"] p {{ margin-bottom: 0.4rem; }}
.st-key-{LAST_TURN} [data-testid="stChatMessage"] {{
  box-shadow: inset 3px 0 0 var(--st-primary-color, #ff4b4b);
}}

/* Responses side by side, each scrolling inside itself; its title stays on top. */
{_WRAP}:has(> .st-key-{RESPONSES}) {{ flex: 1 1 auto; min-height: max(50%, 8rem); }}
.st-key-{RESPONSES} {{ height: 100%; }}
.st-key-{RESPONSES} [data-testid="stHorizontalBlock"] {{ height: 100%; flex-wrap: nowrap; }}
.st-key-{RESPONSES} [data-testid="stColumn"] > [data-testid="stVerticalBlock"] {{ height: 100%; }}
.st-key-{RESPONSES} {_WRAP} {{ flex: 1 1 0; min-height: 0; }}
.st-key-response_a, .st-key-response_b {{ height: 100%; overflow-y: auto; padding-top: 0; }}
.st-key-response_a > div:first-child, .st-key-response_b > div:first-child {{
  position: sticky; top: 0; z-index: 1; background: var(--st-background-color, #fff); padding-top: 0.6rem;
}}
/* Long code wraps instead of hiding behind a horizontal scroll bar. */
.st-key-{PAIR} pre, .st-key-{PAIR} pre code {{ white-space: pre-wrap !important; overflow-wrap: anywhere; }}
.st-key-{PAIR} pre {{ max-width: 100%; }}

/* The aspect grid (review_app/aspects.py): narrow choices, so three aspects fit one line. */
.st-key-{LABEL_BAR} [data-testid="stButtonGroup"] button {{
  padding-left: 0.2rem; padding-right: 0.2rem; min-width: 0; min-height: 2.1rem;
}}
.st-key-{LABEL_BAR} [data-testid="stButtonGroup"] button p,
.st-key-{LABEL_BAR} [data-testid="stPopover"] button p {{ font-size: 0.85rem; }}
.st-key-{LABEL_BAR} [data-testid="stPopover"] button {{
  padding-left: 0.3rem; padding-right: 0.3rem; min-height: 2.1rem;
}}
/* The aspect's name is the whole button: its chevron would cut the name short on a laptop. */
.st-key-{LABEL_BAR} [data-testid="stPopover"] button [data-testid="stIconMaterial"] {{ display: none; }}

/* The label bar: always on screen, even when the page has to scroll. */
.st-key-{LABEL_BAR} {{
  position: sticky; bottom: 0; z-index: 2; gap: 0.4rem;
  background: var(--st-background-color, #fff); border-top: 1px solid rgba(49, 51, 63, 0.2);
  padding-top: 0.45rem; overflow: clip; /* Streamlit's captions hang 1rem below their box */
}}
</style>
"""


def apply() -> None:
    """Lay the current page out as a labeling screen (call once per run, before the content)."""
    st.html(CSS)
