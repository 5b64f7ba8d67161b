"""The web console: its production build (web/ builds into `gateway/console_dist`, which the wheel and
the image carry), served at `/`.

It answers only what no route answers (the router's fallback), so it never shadows the API, the docs
or health, and every other method or a reserved prefix keeps its usual 404/405. Paths of the
single-page app (`/incidents/...`) get `index.html`; its hashed assets are cached for good."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

DIST = Path(__file__).resolve().parent / "console_dist"
# First path segments that belong to the API and its tooling, never to the console.
RESERVED = frozenset({"api", "docs", "redoc", "openapi.json", "health", "metrics", "mcp"})

# What the browser may do on a console page: only this origin (and its websocket), no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SRE Copilot</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>SRE Copilot</h1>
<p>The API is up (<a href="/docs">/docs</a>, <a href="/health">/health</a>), but the web console
has not been built in this checkout.</p>
<p>Build it with Node.js 20+ and npm: <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>
(<code>./run.sh</code> does this for you when <code>gateway/console_dist</code> is missing or stale), then
reload.</p>
</body></html>
"""


class Console:
    def __init__(self, dist: Path, fallback: ASGIApp) -> None:
        self.dist = dist.resolve()
        self.fallback = fallback

    def _response(self, path: str) -> Response | None:
        index = self.dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        relative = path.lstrip("/")
        if relative:
            candidate = (self.dist / relative).resolve()
            if candidate.is_relative_to(self.dist) and candidate.is_file():
                immutable = relative.startswith("assets/")
                cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
                return FileResponse(candidate, headers={"Cache-Control": cache, **SECURITY_HEADERS})
            if "." in relative.rsplit("/", 1)[-1]:
                return None  # a missing file, not a page of the app
        return FileResponse(index, headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "/")
        first = path.lstrip("/").split("/", 1)[0]
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") and first not in RESERVED:
            response = self._response(path)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.fallback(scope, receive, send)


def install(app: FastAPI, dist: Path = DIST) -> None:
    """Serve the console for whatever no route matched (after every router is included)."""
    app.router.default = Console(dist, app.router.default)
