"""The live panel against a real autoscaling ``imgrec serve``: a burst scales out, then to zero."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.conftest import DevPhoto
from tests.helpers.server import run_server

BURST_REQUESTS = 150
BURST_CONCURRENCY = 16
SCALE_TIMEOUT_MS = 120_000
WORKERS_ABOVE_ZERO = "Number(document.getElementById('live').dataset.workers) > 0"


class Burst:
    """Fires ``count`` classify requests, ``concurrency`` at a time, from a background thread."""

    def __init__(self, url: str, images: list[bytes], count: int, concurrency: int) -> None:
        self.url = url
        self.images = images
        self.count = count
        self.concurrency = concurrency
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="burst", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the load burst did not finish in time"

    def _one(self, client: httpx.Client, i: int) -> None:
        image = self.images[i % len(self.images)]
        try:
            files = {"file": (f"burst-{i}.jpg", image, "image/jpeg")}
            status = client.post(f"{self.url}/api/v1/classify", files=files).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.statuses[status] += 1

    def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        with httpx.Client(timeout=120, limits=limits) as client, \
                ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(lambda i: self._one(client, i), range(self.count)))


@pytest.mark.browser
def test_the_panel_shows_workers_during_a_burst_and_zero_after(
    tmp_path: Path, page: Page, dev_photos: list[DevPhoto], artifacts: Path,
) -> None:
    images = [p.path.read_bytes() for p in dev_photos[:20]]
    with run_server(tmp_path / "state") as server:  # no --workers: autoscaling from zero
        status = httpx.get(f"{server.url}/api/v1/status", timeout=10)
        assert status.status_code == 200, "GET /api/v1/status is missing; the panel needs it"
        page.goto(server.url)
        live = page.locator("#live")
        expect(live).to_have_attribute("data-state", "live", timeout=15_000)
        expect(live).to_have_attribute("data-workers", "0", timeout=SCALE_TIMEOUT_MS)
        page.screenshot(path=str(artifacts / "live-idle.png"), full_page=True)

        burst = Burst(server.url, images, BURST_REQUESTS, BURST_CONCURRENCY)
        burst.start()
        page.wait_for_function(WORKERS_ABOVE_ZERO, timeout=SCALE_TIMEOUT_MS)
        page.wait_for_timeout(2_000)  # let the charts show the climb
        page.screenshot(path=str(artifacts / "live-burst.png"), full_page=True)
        burst.join(timeout_s=SCALE_TIMEOUT_MS / 1000)
        assert burst.statuses[200] == BURST_REQUESTS, f"burst answers: {dict(burst.statuses)}"

        expect(live).to_have_attribute("data-workers", "0", timeout=SCALE_TIMEOUT_MS)
        expect(page.locator("#decisions li:not(.empty)").first).to_be_visible()
        # Each decision shows what the policy used: the backlog, rates, boot time, target.
        expect(page.locator("#decisions .inputs").first).to_contain_text("backlog")
        expect(page.locator("#m-workers")).to_have_text("0")
        page.screenshot(path=str(artifacts / "live-after.png"), full_page=True)
