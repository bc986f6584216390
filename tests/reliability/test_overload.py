"""Overload is answered, not absorbed (issue 14, item 7): 5,000 requests at concurrency 500
(from 4 client processes) against one worker, with a backlog cap of 50.

Every client gets its answer (= the bare model) or a 503 ``overloaded`` / 429 with a
``Retry-After``; nothing accepted is lost or late; the web tier stays up with its memory
bounded. The figures go to ``test-artifacts/overload.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import run_server
from tests.reliability import support

REQUESTS = 5000
CONCURRENCY = 500
CLIENTS = 4
MAX_BACKLOG = 50
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


class _Peak:
    """The highest RSS (MiB) of a process, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.mib = max(self.mib, support.rss_kib(self.pid) / 1024)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _flood(url: str, photos: list[Path], clients: int) -> list[dict[str, Any]]:
    """``REQUESTS`` posts from ``clients`` processes, ``CONCURRENCY`` in flight in all."""
    share = [[(p.name, str(p)) for p in photos[i::clients]] for i in range(clients)]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.flood", url, "/api/v1/classify",
         str(CONCURRENCY // clients)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT) for _ in range(clients)]
    for proc, pairs in zip(procs, share, strict=True):
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(pairs).encode())
        proc.stdin.close()
    results: list[dict[str, Any]] = []
    for proc in procs:
        assert proc.stdout is not None
        results.extend(json.loads(line) for line in proc.stdout)
        assert proc.wait(timeout=600) == 0
    return results


@pytest.mark.slow
def test_5000_requests_at_concurrency_500_against_one_worker(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_top1: dict[str, int]
) -> None:
    photos = [p.path for p in (dev_photos * (REQUESTS // len(dev_photos) + 1))[:REQUESTS]]
    state = tmp_path / "state"
    env = {"IMGREC_MAX_BACKLOG": str(MAX_BACKLOG), "IMGREC_SYNC_TIMEOUT_S": "120"}
    with run_server(state, "--workers", "1", env=env) as srv:
        support.wait_for_workers(state, 1)
        rss_start = support.rss_kib(srv.process.pid) / 1024
        started = time.monotonic()
        with _Peak(srv.process.pid) as peak:
            results = _flood(srv.url, photos, CLIENTS)
        elapsed = time.monotonic() - started
        support.wait_for_empty_queue(srv.url, timeout_s=60)
        alive = srv.process.poll() is None
        rss_end = support.rss_kib(srv.process.pid) / 1024

    statuses = Counter(r["status"] for r in results)
    refused = [r for r in results if r["status"] in (429, 503)]
    answered = [r for r in results if r["status"] == 200]
    report = {
        "requests": REQUESTS, "concurrency": CONCURRENCY, "max_backlog": MAX_BACKLOG,
        "elapsed_s": round(elapsed, 1), "statuses": dict(statuses),
        "answered_per_s": round(len(answered) / elapsed, 1),
        "retry_after_s": sorted({int(r["retry_after"]) for r in refused if r["retry_after"]}),
        "rss_web_mib": {"start": round(rss_start, 1), "peak": round(peak.mib, 1),
                        "end": round(rss_end, 1)},
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "overload.json").write_text(json.dumps(report, indent=2))
    print("overload:", json.dumps(report))

    assert alive, "the web tier died"
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[503] > 0, "the backlog cap was never reached"
    for r in refused:
        assert int(r["retry_after"]) >= 1, r
        assert r["error"] in ("overloaded", "too_many_requests"), r
    measured = [r for r in refused if r["status"] == 503 and "requests/s" in r["detail"]]
    assert measured, "no Retry-After was computed from a measured throughput"
    for r in answered:
        assert r["class_index"] == bare_top1[r["name"]], r
    assert len({r["id"] for r in answered}) == len(answered)
    assert peak.mib < rss_start + 400, report["rss_web_mib"]
