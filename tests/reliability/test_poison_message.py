"""A request that kills its worker every time reaches the dead-letter queue after N receives;
its client gets an error result and the other requests keep being served.

The crash is real, not a test hook: the service runs in a memory cgroup (as in a container with
a memory limit) that leaves each worker about 150 MB of headroom, and the poison is a 6300x6300
RGBA PNG of 150 KB. It is under the pixel limit, so it is accepted, but decoding it needs about
300 MB: the kernel's OOM killer SIGKILLs the worker each time it takes the request.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import free_port, wait_until_healthy
from tests.reliability import support

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")  # cgroup v1 memory controller
HEADROOM_BYTES = 150 * 1024 * 1024
MAX_RECEIVES = 2


@contextlib.contextmanager
def memory_cgroup() -> Iterator[Path]:
    if os.geteuid() != 0 or not (CGROUP_ROOT / "memory.limit_in_bytes").exists():
        pytest.skip("needs root and the cgroup v1 memory controller")
    group = CGROUP_ROOT / f"imgrec-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup: {exc}")
    try:
        yield group
    finally:
        for _ in range(100):
            try:
                group.rmdir()
                break
            except OSError:  # processes still exiting
                time.sleep(0.1)


def test_a_request_that_kills_its_worker_is_dead_lettered_and_answered(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_top1: dict[str, int]
) -> None:
    poison = support.blank_png(6300, 6300, color_type=6)
    good = [(p.path.name, p.path.read_bytes()) for p in dev_photos[:40]]
    state = tmp_path / "state"
    env = {**os.environ, "IMGREC_MAX_RECEIVES": str(MAX_RECEIVES),
           "IMGREC_VISIBILITY_TIMEOUT_S": "3", "IMGREC_SYNC_TIMEOUT_S": "90"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with memory_cgroup() as group, open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh",
             sys.executable, "-m", "imgrec", "serve", "--port", str(port),
             "--state-dir", str(state), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        try:
            wait_until_healthy(url, proc, log_path)
            support.wait_for_workers(state, 1)
            assert support.classify_all(url, good[:16], concurrency=16)  # warm up
            used = int((group / "memory.usage_in_bytes").read_text())
            (group / "memory.limit_in_bytes").write_text(str(used + HEADROOM_BYTES))

            poisoned: list[httpx.Response | Exception] = []
            sender = threading.Thread(target=lambda: poisoned.extend(
                support.classify_all(url, [("poison.png", poison)], concurrency=1)))
            sender.start()
            _wait_for_first_delivery(state)
            # Others keep being served while the poison kills workers and is retried.
            served = support.classify_all(url, good, concurrency=8)
            sender.join(timeout=120)
            assert not sender.is_alive(), "the poisoned request was never answered"
            after = support.classify_all(url, good[:8], concurrency=8)
            support.wait_for_empty_queue(url)
            dead_left = support.dead_letters(state)
            oom_kills = _oom_kills(group)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    server_log = log_path.read_text(errors="replace")

    [answer] = poisoned
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "processing_failed"
    assert oom_kills >= MAX_RECEIVES, server_log[-3000:]
    assert server_log.count("exited with code -9") >= MAX_RECEIVES
    assert dead_left == 0
    for (name, _), resp in zip(good + good[:8], served + after, strict=True):
        assert isinstance(resp, httpx.Response) and resp.status_code == 200, resp
        assert resp.json()["class_index"] == bare_top1[name], name


def _oom_kills(group: Path) -> int:
    for line in (group / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def _wait_for_first_delivery(state: Path) -> None:
    """Wait until a worker holds the poison. (Requests received together with it at its first
    delivery die with it and would reach the dead-letter queue too with MAX_RECEIVES=2; the
    worker keeps later fresh requests apart from redelivered ones.)"""
    deadline = time.monotonic() + 30
    while not support.in_flight_request_ids(state):
        assert time.monotonic() < deadline, "the poison was never received"
        time.sleep(0.01)
