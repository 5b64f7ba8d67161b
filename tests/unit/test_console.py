"""The gateway serves the web console's build at / without shadowing the API, docs or health."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway import console, errors


def _app(dist: Path) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.post("/api/v1/things")
    async def things() -> dict[str, str]:
        return {"made": "yes"}

    console.install(app, dist)
    return app


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("not for you")
    return tmp_path


def test_index_and_client_routes_get_the_app(dist: Path) -> None:
    client = TestClient(_app(dist))
    for path in ("/", "/incidents", "/incidents/0190-abc", "/admin/people?x=1"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "id=root" in response.text
        assert response.headers["cache-control"] == "no-cache"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_assets_are_served_and_cached(dist: Path) -> None:
    response = TestClient(_app(dist)).get("/assets/index-abc.js")
    assert response.status_code == 200
    assert response.text == "console.log(1)"
    assert "immutable" in response.headers["cache-control"]


def test_api_docs_and_health_are_not_shadowed(dist: Path) -> None:
    client = TestClient(_app(dist))
    assert client.get("/health").json() == {"status": "healthy"}
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")
    assert "swagger" in client.get("/docs").text.lower()
    # Unknown API paths stay JSON 404s; a wrong method stays a 405; other methods are untouched.
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"]
    assert client.get("/metrics").status_code == 404
    assert client.get("/api/v1/things").status_code == 405
    assert client.post("/api/v1/things").json() == {"made": "yes"}
    assert client.post("/incidents").status_code == 404


def test_missing_files_and_traversal_are_404(dist: Path) -> None:
    client = TestClient(_app(dist))
    assert client.get("/assets/missing.js").status_code == 404
    assert client.get("/favicon.ico").status_code == 404
    assert client.get("/..%2Fsecret.txt").status_code in (200, 404)
    assert "not for you" not in client.get("/..%2Fsecret.txt").text
    assert "not for you" not in client.get("/assets/../../secret.txt").text


def test_without_a_build_the_root_says_how_to_build(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path / "nothing"))
    response = client.get("/")
    assert response.status_code == 503
    assert "npm run build" in response.text
    assert client.get("/health").status_code == 200
