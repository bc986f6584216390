"""``imgrec serve`` scales its real worker processes: from 0 up under load, back to 0, no loss."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server

from imgrec.model.classifier import Classification, load_classifier

REQUESTS = 150
CONCURRENCY = 16
STATUS_KEYS = {"time", "backend", "queue", "workers", "scaling", "throughput", "history"}


def status(server: RunningServer) -> dict[str, Any]:
    resp = httpx.get(f"{server.url}/api/v1/status", timeout=10)
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


def wait_for(server: RunningServer, check: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = status(server)
        if check(body):
            return body
        assert time.monotonic() < deadline, f"status never matched: {body}\n{server.log()}"
        time.sleep(0.2)


async def classify_under_scale_in(
    server: RunningServer, photos: list[DevPhoto]
) -> tuple[list[httpx.Response], list[int]]:
    """Send the requests at a fixed concurrency; SIGTERM a worker once a third are answered."""
    done = 0
    killed: list[int] = []
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            nonlocal done
            photo = photos[i % len(photos)]
            async with gate:
                resp = await client.post("/api/v1/classify",
                                         files={"file": (photo.path.name, photo.path.read_bytes())})
            done += 1
            return resp

        async def scale_in() -> None:
            while done < REQUESTS // 3:
                await asyncio.sleep(0.02)
            workers = (await client.get("/api/v1/status")).json()["workers"]["list"]
            pids = [w["pid"] for w in workers if w["pid"] and w["state"] != "draining"]
            assert pids, "no live worker to scale in"
            os.kill(pids[0], signal.SIGTERM)
            killed.append(pids[0])

        killer = asyncio.create_task(scale_in())
        responses = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
        await killer
    return list(responses), killed


@pytest.fixture(scope="module")
def bare_model(dev_photos: list[DevPhoto]) -> dict[str, int]:
    outcomes = load_classifier("mobilenet_v2").classify_images(
        [p.path.read_bytes() for p in dev_photos]
    )
    return {p.path.name: o.class_index for p, o in zip(dev_photos, outcomes, strict=True)
            if isinstance(o, Classification)}


def test_scales_from_zero_and_back_losing_nothing_on_scale_in(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_model: dict[str, int]
) -> None:
    with run_server(tmp_path / "state", "--max-workers", "2") as server:
        idle = status(server)
        assert set(idle) >= STATUS_KEYS
        assert idle["scaling"]["mode"] == "autoscale"
        assert (idle["scaling"]["min"], idle["scaling"]["max"]) == (0, 2)
        assert idle["workers"]["total"] == 0

        responses, killed = asyncio.run(classify_under_scale_in(server, dev_photos))

        assert [r.status_code for r in responses] == [200] * REQUESTS, server.log()
        ids = [r.json()["id"] for r in responses]
        assert len(set(ids)) == REQUESTS, "a request was answered twice or got another's answer"
        for i, resp in enumerate(responses):
            photo = dev_photos[i % len(dev_photos)]
            assert resp.json()["class_index"] == bare_model[photo.path.name], photo.path.name
        assert killed

        after = wait_for(server, lambda s: s["workers"]["total"] == 0)
        assert after["queue"] == {"visible": 0, "in_flight": 0, "dead_letter": 0}
        decisions = after["scaling"]["decisions"]
        assert any(d["launch"] > 0 for d in decisions)
        assert any(d["drain"] for d in decisions), "never drained idle workers"
        assert all(d["reason"] for d in decisions)
        assert max(h["workers"] for h in after["history"]) <= 2
        assert after["scaling"]["launch_to_ready_s"] is not None
        assert after["throughput"]["answered_per_s"] > 0
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert 'imgrec_workers{state="busy"}' in metrics
        assert "imgrec_worker_launch_to_ready_seconds" in metrics


def test_pinned_workers_are_kept_and_replaced(tmp_path: Path) -> None:
    with run_server(tmp_path / "state", "--workers", "1") as server:
        first = wait_for(server, lambda s: s["workers"]["by_state"]["ready"] == 1)
        assert first["scaling"]["mode"] == "fixed"
        assert (first["scaling"]["min"], first["scaling"]["max"]) == (1, 1)
        [worker] = first["workers"]["list"]
        os.kill(worker["pid"], signal.SIGKILL)

        def replacement_ready(s: dict[str, Any]) -> bool:
            ready = [w["id"] for w in s["workers"]["list"] if w["state"] == "ready"]
            return ready not in ([], [worker["id"]])

        replaced = wait_for(server, replacement_ready)
        assert replaced["workers"]["total"] == 1
