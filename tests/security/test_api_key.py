"""``IMGREC_API_KEY``: when set, the API and the page need it; ``/healthz`` and assets stay open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.server import RunningServer, run_server

KEY = "test-key-Zq8vW3nP0s"  # pragma: allowlist secret
PHOTO = "n01530575_brambling.JPEG"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("api-key") / "state"
    with run_server(state, "--workers", "1", env={"IMGREC_API_KEY": KEY}) as srv:
        yield srv


def _photo(dev_images: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (PHOTO, (dev_images / PHOTO).read_bytes())}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/"), ("POST", "/api/v1/classify"), ("POST", "/api/v1/jobs"),
     ("GET", f"/api/v1/jobs/{'0' * 32}"), ("GET", "/metrics"), ("GET", "/openapi.json"),
     ("GET", "/docs"), ("GET", "/")],
)
@pytest.mark.parametrize("sent", [None, "wrong-key", KEY[:-1], ""])
def test_every_route_but_health_needs_the_key(
    server: RunningServer, dev_images: Path, method: str, path: str, sent: str | None
) -> None:
    headers = {} if sent is None else {"X-API-Key": sent}
    files = _photo(dev_images) if method == "POST" else None
    resp = httpx.request(method, f"{server.url}{path}", headers=headers, files=files, timeout=30)
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body["error"] == "unauthorized" and "X-API-Key" in body["detail"]
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}],
    ids=["x-api-key", "bearer"],
)
def test_the_right_key_in_either_header_is_accepted(
    server: RunningServer, dev_images: Path, headers: dict[str, str]
) -> None:
    resp = httpx.post(f"{server.url}/", files={"myfile": _photo(dev_images)["file"]},
                      headers=headers, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.text == "n01530575_brambling:brambling"
    job = httpx.post(f"{server.url}/api/v1/jobs", files=_photo(dev_images), headers=headers,
                     timeout=60)
    assert job.status_code == 202
    assert httpx.get(f"{server.url}{job.json()['poll']}", headers=headers,
                     timeout=10).status_code == 200


def test_a_browser_gets_a_password_prompt_for_the_page(server: RunningServer) -> None:
    accept = {"Accept": "text/html,application/xhtml+xml"}
    resp = httpx.get(f"{server.url}/", headers=accept, timeout=10)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Basic")
    ok = httpx.get(f"{server.url}/", headers=accept, auth=("any-user", KEY), timeout=10)
    assert ok.status_code == 200 and "text/html" in ok.headers["content-type"]


def test_health_and_static_assets_need_no_key(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).json()["status"] == "ok"
    static = Path(__file__).resolve().parents[2] / "src" / "imgrec" / "web" / "static"
    asset = next(p for p in sorted(static.rglob("*")) if p.is_file())
    resp = httpx.get(f"{server.url}/static/{asset.relative_to(static).as_posix()}", timeout=10)
    assert resp.status_code == 200


def test_the_key_never_reaches_the_log(server: RunningServer, dev_images: Path) -> None:
    httpx.post(f"{server.url}/api/v1/classify", files=_photo(dev_images),
               headers={"X-API-Key": KEY + "-almost"}, timeout=30)
    httpx.post(f"{server.url}/api/v1/classify", files=_photo(dev_images),
               headers={"X-API-Key": KEY}, timeout=60)
    assert KEY not in server.log()


def test_without_a_key_configured_no_key_is_needed(tmp_path: Path, dev_images: Path) -> None:
    with run_server(tmp_path / "state", "--workers", "1") as srv:
        resp = httpx.post(f"{srv.url}/api/v1/classify", files=_photo(dev_images), timeout=60)
        assert resp.status_code == 200 and resp.json()["label"] == "brambling"
        assert httpx.get(f"{srv.url}/openapi.json", timeout=10).status_code == 200
