"""Per-client concurrency cap: past ``IMGREC_MAX_CONCURRENT_PER_CLIENT`` a request gets 429."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from tests.helpers.server import run_server


def test_a_client_over_its_cap_gets_429_with_retry_after(tmp_path: Path, dev_images: Path) -> None:
    photo = (dev_images / "n01440764_tench.JPEG").read_bytes()
    env = {"IMGREC_MAX_CONCURRENT_PER_CLIENT": "2", "IMGREC_SYNC_TIMEOUT_S": "3"}

    async def scenario(url: str) -> tuple[list[int], httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            # No workers: these two wait until the sync timeout, holding the client's slots.
            held = [asyncio.create_task(client.post("/api/v1/classify",
                                                    files={"file": ("a.jpg", photo)}))
                    for _ in range(2)]
            for _ in range(100):
                await asyncio.sleep(0.05)
                if (await client.get("/healthz")).json()["queue_visible"] == 2:
                    break
            over = await client.post("/api/v1/jobs", files={"file": ("b.jpg", photo)})
            statuses = [r.status_code for r in await asyncio.gather(*held)]
            after = await client.post("/api/v1/jobs", files={"file": ("c.jpg", photo)})
            return statuses, over, after

    with run_server(tmp_path / "state", "--workers", "0", env=env) as srv:
        statuses, over, after = asyncio.run(scenario(srv.url))

    assert statuses == [504, 504]
    assert over.status_code == 429, over.text
    assert over.json()["error"] == "too_many_requests" and "2 requests" in over.json()["detail"]
    assert int(over.headers["retry-after"]) >= 1
    assert after.status_code == 202, after.text
