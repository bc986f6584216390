"""The live panel's cost tile: worker-seconds per photo once a batch has been classified, and
the batch items waiting behind interactive requests in the queue tile."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import run_server

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402


@pytest.mark.browser
def test_the_cost_tile_shows_worker_seconds_per_photo(tmp_path: Path, page: Page,
                                                      dev_photos: list[DevPhoto],
                                                      artifacts: Path) -> None:
    with run_server(tmp_path / "state", "--workers", "1") as server:
        page.goto(server.url)
        live = page.locator("#live")
        expect(live).to_have_attribute("data-state", "live", timeout=15_000)
        files = [("file", (f"{i}-{p.path.name}", p.path.read_bytes()))
                 for i, p in enumerate(dev_photos * 2)]
        resp = httpx.post(f"{server.url}/api/v1/batches", files=files, timeout=120)
        assert resp.status_code == 201, resp.text
        expect(page.locator("#m-queue-sub")).to_contain_text("batch items", timeout=15_000)
        expect(live).to_have_attribute("data-cost-per-image", re.compile(r".+"),
                                       timeout=60_000)
        cost = float(page.locator("#m-cost").inner_text())
        assert 0 < cost < 60
        expect(page.locator("#m-cost-sub")).to_contain_text("idle and booting time included")
        page.screenshot(path=str(artifacts / "live-cost.png"), full_page=True)
