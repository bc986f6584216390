"""Interactive requests are served before bulk ones: a batch of 300 photos on one worker, and
interactive requests sent while it runs are each answered before the batch finishes, having
waited in the queue for a small part of the batch's time (FIFO would make the first ones wait
for the whole backlog ahead of them). The latency goal itself is measured by bench/lanes.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server

BATCH_ITEMS = 300


@pytest.fixture(scope="module", params=["10", "0"], ids=["bulk-thread", "one-loop"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A worker with its bulk lane in a nicer thread (the default), and with one loop."""
    state = tmp_path_factory.mktemp("lanes") / "state"
    with run_server(state, "--workers", "1", "--durability", "crash",
                    "--bulk-nice", request.param) as srv:
        yield srv


def test_interactive_requests_overtake_a_running_batch(server: RunningServer,
                                                       dev_photos: list[DevPhoto]) -> None:
    photos = [p.path for p in dev_photos]
    files = [("file", (f"{i:04d}-{photos[i % len(photos)].name}",
                       photos[i % len(photos)].read_bytes())) for i in range(BATCH_ITEMS)]
    created = httpx.post(f"{server.url}/api/v1/batches", files=files, timeout=120)
    assert created.status_code == 201, created.text
    batch = created.json()
    submitted = time.monotonic()
    finished: list[float] = []

    def watch() -> None:
        while True:
            doc = httpx.get(f"{server.url}{batch['poll']}", timeout=10).json()
            if doc["status"] == "done":
                finished.append(time.monotonic())
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    answered: list[float] = []
    queue_ms: list[float] = []
    for photo in photos[:8]:
        resp = httpx.post(f"{server.url}/api/v1/classify",
                          files={"file": (photo.name, photo.read_bytes())}, timeout=60)
        assert resp.status_code == 200, resp.text
        answered.append(time.monotonic())
        queue_ms.append(resp.json()["timings_ms"]["queue_ms"])
        time.sleep(0.05)
    watcher.join(timeout=300)
    assert finished, "the batch did not finish"
    batch_s = finished[0] - submitted
    assert max(answered) < finished[0], (answered, finished, batch_s)
    # Each waited behind at most a bulk batch or two in hand, not behind the backlog.
    assert max(queue_ms) < 0.25 * batch_s * 1000, (queue_ms, batch_s)
    doc = httpx.get(f"{server.url}{batch['poll']}", timeout=10).json()
    assert doc["counts"]["done"] == BATCH_ITEMS
