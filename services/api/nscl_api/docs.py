"""The interactive API documentation (Swagger UI at /docs, ReDoc at /redoc), served whole
from this service: government networks often have no internet, and pages that load their
viewer from a public CDN render blank there.

The viewers' files come from the fastapi-offline package; the pages and the scripts that
start the viewers are this module's, so the pages need no inline script."""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
PAGE_PATHS = frozenset({DOCS_PATH, REDOC_PATH})

_VENDOR = resources.files("fastapi_offline") / "static"
_JS = "text/javascript; charset=utf-8"

# The validator is Swagger UI's call to validator.swagger.io: off, nothing leaves the service.
_SWAGGER_INIT = """\
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
"""

_REDOC_INIT = """\
"use strict";
(function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapiUrl, {}, root);
})();
"""


@dataclass(frozen=True)
class _Asset:
    media_type: str
    vendor_file: str | None = None
    text: str | None = None


@functools.cache
def _body(asset: _Asset) -> bytes:
    # Read once: the bundles are megabytes and never change while the process runs.
    if asset.text is not None:
        return asset.text.encode()
    assert asset.vendor_file is not None
    return (_VENDOR / asset.vendor_file).read_bytes()


# A fixed list, not a static folder: nothing else in the package can be fetched, and each
# file answers with the type the browser needs to run it under `nosniff`.
ASSETS = {
    "swagger-ui-bundle.js": _Asset(_JS, vendor_file="swagger-ui-bundle.js"),
    "swagger-ui.css": _Asset("text/css; charset=utf-8", vendor_file="swagger-ui.css"),
    "redoc.standalone.js": _Asset(_JS, vendor_file="redoc.standalone.js"),
    "favicon.png": _Asset("image/png", vendor_file="favicon.png"),
    "swagger-init.js": _Asset(_JS, text=_SWAGGER_INIT),
    "redoc-init.js": _Asset(_JS, text=_REDOC_INIT),
}

# Plain routes, as FastAPI's own pages are: not operations of the API, so neither in the
# contract nor among the routes that must declare a permission.
router = APIRouter()


def _page(request: Request, title: str, head: str, body: str) -> HTMLResponse:
    root = html.escape(request.scope.get("root_path", ""))
    text = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{root}{ASSETS_PATH}/favicon.png">
{head.format(root=root, assets=ASSETS_PATH)}
</head>
<body>
{body.format(root=root, assets=ASSETS_PATH, openapi=html.escape(_openapi_url(request)))}
</body>
</html>
"""
    return HTMLResponse(text)


def _openapi_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}{request.app.openapi_url}"


async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: try every operation with a token from the client credentials flow."""
    return _page(
        request,
        f"{request.app.title} API",
        '<link rel="stylesheet" href="{root}{assets}/swagger-ui.css">',
        '<div id="swagger-ui" data-openapi-url="{openapi}"></div>\n'
        '<script src="{root}{assets}/swagger-ui-bundle.js"></script>\n'
        '<script src="{root}{assets}/swagger-init.js"></script>',
    )


async def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the contract as one readable page."""
    return _page(
        request,
        f"{request.app.title} API reference",
        "",
        '<div id="redoc" data-openapi-url="{openapi}"></div>\n'
        '<script src="{root}{assets}/redoc.standalone.js"></script>\n'
        '<script src="{root}{assets}/redoc-init.js"></script>',
    )


async def asset(request: Request) -> Response:
    """One of the viewers' files."""
    found = ASSETS.get(request.path_params["name"])
    if found is None:
        raise HTTPException(status_code=404)
    # Not versioned in the URL: a day's caching, and an upgrade shows up by the next day.
    return Response(
        _body(found),
        media_type=found.media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )


router.add_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False)
router.add_route(REDOC_PATH, redoc, methods=["GET"], include_in_schema=False)
router.add_route(ASSETS_PATH + "/{name}", asset, methods=["GET"], include_in_schema=False)
