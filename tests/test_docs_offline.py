"""/docs and /redoc work offline: their JavaScript and CSS come from the app, not a CDN.

The browser test serves the API on loopback, opens the pages in headless Chromium with every
request to another host aborted (and counted), and checks Swagger UI and ReDoc drew the API.
Needs Debian's chromium (``apt-get install chromium``); Playwright never downloads a browser.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.main import create_app
from api.settings import Settings
from tests.helpers import CHROMIUM, CHROMIUM_FLAGS, live_api
from tests.waiting import slowdown

SCREENSHOT = Path("/tmp/docs_offline.png")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "testserver"}
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def _referenced(html: str) -> list[str]:
    """Every src/href in a page, plus the spec URL Swagger UI (``url: '...'``) or ReDoc loads."""
    urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)
    return urls + re.findall(r"\burl: '([^']+)'", html)


def _external(html: str) -> list[str]:
    absolute = re.findall(r"""https?://[^\s"'<>)]+""", html)
    return [url for url in absolute if urlsplit(url).hostname not in LOCAL_HOSTS]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets(client: TestClient, page: str) -> None:
    response = client.get(page)  # no Authorization header: the docs are public
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert _external(response.text) == []
    urls = _referenced(response.text)
    assets = [url for url in urls if Path(urlsplit(url).path).suffix in ASSET_TYPES]
    assert len(assets) == (3 if page == "/docs" else 2), urls  # js+css+icon / js+icon
    for url in urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        expected = ASSET_TYPES.get(Path(urlsplit(url).path).suffix, "application/json")
        assert expected in asset.headers["content-type"], (url, asset.headers["content-type"])
    assert client.get("/docs/oauth2-redirect").status_code == 200
    if page == "/redoc":  # its footer's logo is on cdn.redoc.ly: the browser must not fetch it
        assert response.headers["content-security-policy"] == "img-src 'self' data:"


def test_docs_are_left_out_of_the_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/healthz" in paths
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]


def test_docs_follow_the_root_path(engine: Engine, settings: Settings) -> None:
    """Behind a proxy that strips ``/prelabel`` (uvicorn --root-path), the page links stay right."""
    app = create_app(settings, engine, run_worker=False)
    with TestClient(app, root_path="/prelabel") as proxied:
        html = proxied.get("/docs").text
    assert "/prelabel/docs-assets/swagger-ui-bundle.js" in html
    assert "/prelabel/docs-assets/swagger-ui.css" in html and "'/prelabel/openapi.json'" in html


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_docs_render_in_chromium_without_network(engine: Engine, settings: Settings) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    blocked: list[str] = []
    errors: list[str] = []

    def only_loopback(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()  # type: ignore[attr-defined]
        else:
            blocked.append(url)
            route.abort()  # type: ignore[attr-defined]

    with live_api(create_app(settings, engine, run_worker=False)) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.set_default_timeout(10_000 * slowdown())  # a step has no progress to follow
            page.on("pageerror", lambda error: errors.append(str(error)))

            page.goto(f"{base}/docs")
            page.locator(".opblock").first.wait_for()
            assert page.locator(".opblock-summary-path[data-path='/healthz']").count() == 1
            assert page.locator(".opblock").count() > 10
            sync_api.expect(page.get_by_role("heading", level=1)).to_contain_text("prelabel")
            page.screenshot(path=str(SCREENSHOT))

            page.goto(f"{base}/redoc")
            sync_api.expect(page.locator("h1").first).to_contain_text("prelabel")
            sync_api.expect(page.get_by_role("menuitem").first).to_be_visible()
            page.screenshot(path=str(SCREENSHOT.with_name("redoc_offline.png")))
        finally:
            browser.close()
    assert blocked == [], blocked
    assert errors == [], errors
