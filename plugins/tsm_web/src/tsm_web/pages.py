"""The HTML pages (form, product list, product) and the API documentation, served
entirely from files installed with the Python packages: no page loads anything from
another host, so the service works offline and under a strict Content-Security-Policy."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

STATIC = Path(__file__).parent / "static"
#: Swagger UI's files (Apache-2.0), as the fastapi-offline package installs them
DOCS_ASSETS = "/docs-assets"


def docs_assets() -> Path:
    """The folder of Swagger UI's JavaScript and CSS, installed from PyPI."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


router = APIRouter(include_in_schema=False)


@functools.cache
def _layout() -> str:
    return (STATIC / "layout.html").read_text()


def page(title: str, part: str) -> HTMLResponse:
    """The shared layout around ``static/<part>.part.html``, whose script is ``static/<part>.js``."""
    body = (STATIC / f"{part}.part.html").read_text()
    html = _layout().replace("{title}", title).replace("{body}", body).replace("{script}", f"/static/{part}.js")
    return HTMLResponse(html)


@router.get("/", response_class=HTMLResponse)
def form_page() -> HTMLResponse:
    return page("New training set", "form")


@router.get("/products", response_class=HTMLResponse)
def products_page() -> HTMLResponse:
    return page("Training sets", "products")


@router.get("/products/{product_id}", response_class=HTMLResponse)
def product_page(product_id: int) -> HTMLResponse:
    return page(f"Training set {product_id}", "product")


@router.get("/favicon.svg")
@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The site's icon (an SVG; browsers that ask for ``/favicon.ico`` get it too)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/report.css")
def report_css() -> Response:
    """The style of the embedded training-set report (``tsm_core.reports``), as a file, so
    that the product page needs no inline style."""
    from tsm_core.reports import CSS

    return Response(CSS, media_type="text/css")


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """Swagger UI from the installed assets; its one inline script is allowed by its hash."""
    html = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url="/favicon.svg",
    ).body.decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    )
    csp = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp})
