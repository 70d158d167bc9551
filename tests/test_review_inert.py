"""Untrusted markup is inert in the review app (issue 20): a real browser shows a pair full of
remote images, frames, style sheets and links, and fetches nothing from anywhere but the app.

Two layers, each checked on its own: the pair's text renders links and images as text
(``review_app.common.safe_markdown``), and the app's Content-Security-Policy
(``review_app/server.py``) blocks what a page would fetch anyway. The "attacker" is a local
HTTP server on another origin that counts every request; the browser's request listener must
see no request to any origin but the app's (the app calls the API from its server process).
Screenshots at 1366x768 and 1920x1080 go to test-output/screenshots/ (look at them).
"""

from __future__ import annotations

import doctest
import http.server
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from review_app import common
from review_app.server import CONTENT_SECURITY_POLICY
from tests import fakes
from tests.browser import (
    LABEL_BUTTONS,
    SHOTS,
    VIEWPORTS,
    chromium,
    in_a_browser,
    live_copy,
    new_page,
    review_app,
    screenshots,
    sign_in,
)
from tests.helpers import ADMIN, auth, new_reviewer, run_worker
from tests.waiting import HTTP_TIMEOUT_S

JOINER = "\u2060"  # what safe_markdown adds


def hostile(base: str) -> dict[str, str]:
    """A pair whose texts try every way markdown and HTML have to fetch or link ``base``."""
    response_a = f"""Here is the answer.

![tracking pixel]({base}/markdown-image.png)

<img src="{base}/html-img.png"> <iframe src="{base}/iframe"></iframe>
<div style="background-image: url({base}/css-url.png)">styled</div>
<svg xmlns="http://www.w3.org/2000/svg"><image href="{base}/svg-image.png"/></svg>
<link rel="stylesheet" href="{base}/style.css"><style>@import url({base}/import.css);</style>
<video src="{base}/video.mp4" autoplay></video><object data="{base}/object"></object>

Read [the docs]({base}/inline-link) or <{base}/autolink> or {base}/bare-url or www.example.com,
mail me at someone@example.com. ![by reference][pixel] and [a reference link][pixel].

[pixel]: {base}/reference.png

``![code-span trick]({base}/code-span-trick.png)`

```a`b

![fence trick]({base}/fence-trick.png)

```
"""
    response_b = f"""A plain answer with code:

```html
<img src="{base}/inside-a-code-block.png">
```

and `<a href="{base}/inside-code-span">x</a>` inline."""
    return {
        "client_id": "hostile",
        "prompt": f"Which is better? ![prompt image]({base}/prompt.png) [prompt link]({base}/prompt-link)",
        "response_a": response_a,
        "response_b": response_b,
    }


def test_safe_markdown_breaks_every_link_and_image_syntax() -> None:
    assert doctest.testmod(common).failed == 0
    shown = common.safe_markdown(hostile("http://t.example")["response_a"])
    for syntax in ("](", "][", "]:", "://", "www."):
        assert syntax not in shown, syntax
    assert shown.count("@") == shown.count(JOINER + "@") > 0  # no e-mail autolink either
    assert "<img" not in shown and "<iframe" not in shown and "&lt;img" in shown
    # Only word joiners were added (and "<" written as an entity): the text reads the same.
    assert shown.replace(JOINER, "").replace("&lt;", "<") == hostile("http://t.example")["response_a"]


class _Attacker(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        _Attacker.hits.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Any) -> Iterator[dict[str, Any]]:
    """The API, the review app (as `prelabel review` starts it), the attacker, and a reviewer
    whose queue holds the hostile pair."""
    fakes.install()
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    # "localhost", not the address: a redactor could take an IP address for PII and hide it.
    base = f"http://localhost:{attacker.server_address[1]}"
    path = tmp_path_factory.mktemp("inert") / "inert.db"
    try:
        with live_copy(migrated_sqlite, path, run_worker=False, review_prepare="0") as live:
            with httpx.Client(timeout=HTTP_TIMEOUT_S, base_url=live.url, headers=ADMIN) as http_client:
                created = http_client.post("/v1/projects", json={"name": "inert", "judges": ["fake/ok"]})
                project = created.json()["id"]
                posted = http_client.post(f"/v1/projects/{project}/jobs", json={"pairs": [hostile(base)]})
                assert posted.status_code == 201, posted.text
                token = new_reviewer(http_client, "rev-inert", projects=[project])
            run_worker(live.engine, live.settings)
            with review_app(live.url) as app_url:
                yield {"api": live.url, "app": app_url, "token": token, "base": base, "project": project}
    finally:
        attacker.shutdown()


def _elsewhere(urls: list[str], app: str) -> list[str]:
    """The requests to any origin but the app's (data: and blob: URLs are the page's own)."""

    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    return [u for u in urls if not u.startswith(("data:", "blob:")) and origin(u) != origin(app)]


@in_a_browser
def test_a_hostile_pair_fetches_nothing_and_links_nowhere(stack: dict[str, Any]) -> None:
    _Attacker.hits.clear()
    requests: list[str] = []
    violations: list[str] = []
    with chromium() as browser:
        page = new_page(browser, *VIEWPORTS[0])
        page.on("request", lambda request: requests.append(request.url))
        page.on(
            "console",
            lambda message: (
                violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        response = page.goto(stack["app"])
        assert response is not None
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        sign_in(page, stack["token"])
        page.locator(".st-key-response_b").wait_for()
        page.get_by_text("A plain answer with code").wait_for()
        # Settling long: let anything the page would load be requested.
        screenshots(page, "review_hostile", settle_ms=1500)
        pair = page.locator(".st-key-pair")
        # Layer one: nothing in the pair loads or links anything.
        for tag in ("img", "iframe", "a", "video", "object", "link", "svg image", "style"):
            assert pair.locator(tag).count() == 0, tag
        shown = pair.inner_text().replace(JOINER, "")
        # Links are shown as text, their full URL with them.
        assert f"[the docs]({stack['base']}/inline-link)" in shown
        assert f"![tracking pixel]({stack['base']}/markdown-image.png)" in shown
        assert f'<img src="{stack["base"]}/html-img.png">' in shown
        assert violations == [], violations  # nothing on the page even tried
        shown_requests = list(requests)
        # Layer two: were something to try, the policy blocks it (and the browser says so).
        page.evaluate(
            """base => { const i = new Image(); i.src = base + '/csp-check.png';
                        document.body.appendChild(i);
                        const f = document.createElement('iframe'); f.src = base + '/csp-frame';
                        document.body.appendChild(f); }""",
            stack["base"],
        )
        page.wait_for_timeout(1500)
        assert any("csp-check.png" in v for v in violations), violations
        page.close()
    assert _elsewhere(shown_requests, stack["app"]) == []
    assert len(shown_requests) > 5  # the listener did see the page's own requests
    # The forced image and frame were attempted (the listener saw them), and blocked: the
    # attacker's server got nothing at all.
    assert any(u.endswith("/csp-check.png") for u in requests)
    assert _Attacker.hits == [], _Attacker.hits


@in_a_browser
def test_the_history_page_is_inert_too(stack: dict[str, Any]) -> None:
    """The reviewer's previous items show the same pair: label it, then open that page."""
    with httpx.Client(
        timeout=HTTP_TIMEOUT_S, base_url=stack["api"], headers=auth(stack["token"])
    ) as reviewer:
        item = reviewer.post(f"/v1/projects/{stack['project']}/review/next", json={}).json()["item"]
        if item is not None:  # the first test may have left its lease: answer it
            answered = reviewer.post(
                f"/v1/review/leases/{item['lease_id']}/submit", json={"label": "A>B", "time_on_task_s": 60}
            )
            assert answered.status_code in (200, 201), answered.text
    _Attacker.hits.clear()
    requests: list[str] = []
    with chromium() as browser:
        page = new_page(browser, 1366, 768)
        page.on("request", lambda request: requests.append(request.url))
        page.goto(stack["app"])
        sign_in(page, stack["token"])
        page.get_by_role("link", name="Previous items").click()
        page.get_by_text("A plain answer with code").first.wait_for()
        page.get_by_text("inside-a-code-block.png").first.wait_for()
        page.locator(LABEL_BUTTONS).first.wait_for()
        page.wait_for_timeout(1500)  # let anything the page would load be requested
        page.screenshot(path=str(SHOTS / "history_hostile_1366x768.png"))
        main = page.locator('[data-testid="stMain"]')
        for tag in ("img", "iframe", "video", "object"):
            assert main.locator(tag).count() == 0, tag
        assert main.locator(f'a[href^="{stack["base"]}"]').count() == 0
    assert _elsewhere(requests, stack["app"]) == [] and _Attacker.hits == [], _Attacker.hits


@in_a_browser
def test_the_dashboard_works_under_the_policy(stack: dict[str, Any]) -> None:
    """The policy blocks nothing the app itself needs: the dashboard's charts, tables and the
    calibration report (a srcdoc frame with inline styles and data: images) raise no violation."""
    violations: list[str] = []
    requests: list[str] = []
    with chromium() as browser:
        page = new_page(browser, 1366, 768)
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else None)
        page.goto(stack["app"])
        sign_in(page, stack["token"])
        page.get_by_role("link", name="Dashboard").click()
        page.get_by_text("Pairs by route").wait_for()
        page.get_by_text("Calibration plots").wait_for()
        page.wait_for_timeout(3000)
        page.screenshot(path=str(SHOTS / "dashboard_under_csp_1366x768.png"), full_page=True)
        # The calibration report: a srcdoc frame whose own page (inline style sheet) renders.
        report = page.frame_locator('[data-testid="stMain"] iframe').first
        report.locator("h1, h2").first.wait_for()
        chart = '[data-testid="stVegaLiteChart"]'
        assert page.locator(f"{chart} canvas, {chart} svg").count() > 0  # drawn, not blocked
    assert violations == [], violations
    assert _elsewhere(requests, stack["app"]) == []
