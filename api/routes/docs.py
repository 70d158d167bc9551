"""The API's docs pages (Swagger UI at /docs, ReDoc at /redoc), served without a CDN.

FastAPI's default pages load their JavaScript and CSS from cdn.jsdelivr.net, so offline they are
blank. These are FastAPI's documented self-hosting recipe (``get_swagger_ui_html`` with local
URLs), with the assets from the ``fastapi-offline`` package. Public pages: no auth.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS_DIR = files("fastapi_offline") / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc...

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """The prefix the app is served under (uvicorn --root-path, a proxy), as FastAPI's own pages do."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=f"{root}{app.swagger_ui_oauth2_redirect_url}",
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    app = request.app
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    # ReDoc's "API docs by Redocly" footer loads its logo from cdn.redoc.ly: keep it local-only.
    page.headers["Content-Security-Policy"] = "img-src 'self' data:"
    return page


def install(app: FastAPI) -> None:
    """Serve the docs pages and their assets. Create ``app`` with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")
    app.include_router(router)
