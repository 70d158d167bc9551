"""The review app served with security headers: ``streamlit run review_app/server.py``.

Streamlit has no setting for response headers, but ``streamlit run`` serves a script that
defines an ASGI ``st.App`` through it, with its middleware (Streamlit's Starlette server,
1.67 here). This file is that script: the pages are still ``app.py``'s.

The Content-Security-Policy is the second line of defence for untrusted pair texts (the
first: ``common.safe_markdown`` renders links and images as text). Whatever a response
manages to put on the page, the browser fetches nothing from another origin: no image (a
tracking pixel would tell a third party the reviewer's address and when they read the item),
no frame, no font, no script, no style sheet, no form target; the page connects only to its
own origin (Streamlit's websocket and endpoints). The review app calls the API from its own
server process, never from the browser, so the API needs no entry either.

``'unsafe-inline'`` for styles: Streamlit's frontend (emotion) and page_style.py write
``<style>`` elements. Scripts: only the app's own files, plus the hash of the one inline line
in Streamlit's index.html. ``frame-src 'self'``: the dashboard shows the calibration report
with ``st.iframe`` (a srcdoc frame, which inherits this policy).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

APP = Path(__file__).with_name("app.py")

def _inline_script_hashes() -> list[str]:
    """CSP hashes of the inline scripts in Streamlit's own index.html (one line that sets
    ``window.prerenderReady``), read from the installed Streamlit so a new version cannot
    break the page: every other inline script stays blocked."""
    index = Path(st.__file__).with_name("static") / "index.html"
    try:
        html = index.read_text(encoding="utf-8")
    except OSError:
        return []
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts]


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        " ".join(["script-src 'self'", *_inline_script_hashes()]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "frame-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),  # a URL a reviewer opens learns nothing of the app
    (b"x-content-type-options", b"nosniff"),
]


class SecurityHeaders:
    """Adds :data:`HEADERS` to every HTTP response (the page, its assets, Streamlit's endpoints)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


app = st.App(str(APP), middleware=[Middleware(SecurityHeaders)])
