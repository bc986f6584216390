"""Soak: 1000 requests at concurrency 200 against ``imgrec serve``; nothing lost, memory flat.

Every answer must equal the bare model's top-1 for its file. The resident memory of the web tier
and of each worker is sampled from /proc during the run, printed, and written to
``test-artifacts/soak.json``; the test asserts only a generous bound (final < 2x warmed-up).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import run_server
from tests.reliability import support

REQUESTS = 1000
CONCURRENCY = 200
WARM_UP = 200
WORKERS = 2
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class RssSampler:
    """Samples the RSS (MiB) of the web tier and the workers every ``interval_s``."""

    def __init__(self, web_pid: int, state: Path, interval_s: float = 0.5) -> None:
        self.web_pid = web_pid
        self.state = state
        self.interval_s = interval_s
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def snapshot(self) -> dict[str, float]:
        workers = support.worker_pids(self.state)
        return {
            "t_s": round(time.monotonic(), 2),
            "web_mib": round(support.rss_kib(self.web_pid) / 1024, 1),
            "workers_mib": round(sum(support.rss_kib(p) for p in workers.values()) / 1024, 1),
            "workers": len(workers),
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(self.snapshot())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_soak_1000_requests_at_concurrency_200(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_top1: dict[str, int]
) -> None:
    photos = [(p.path.name, p.path.read_bytes()) for p in dev_photos]
    uploads = [photos[i % len(photos)] for i in range(REQUESTS)]
    state = tmp_path / "state"
    env = {"IMGREC_SYNC_TIMEOUT_S": "300"}
    # A fixed fleet, so that the workers' memory is comparable from sample to sample.
    with run_server(state, "--workers", str(WORKERS), env=env) as srv:
        workers = len(support.wait_for_workers(state, WORKERS))
        sampler = RssSampler(srv.process.pid, state)
        support.classify_all(srv.url, photos * (WARM_UP // len(photos)), concurrency=CONCURRENCY)
        warm = sampler.snapshot()
        started = time.monotonic()
        with sampler:
            results = support.classify_all(srv.url, uploads, concurrency=CONCURRENCY,
                                           timeout_s=300)
        elapsed = time.monotonic() - started
        final = sampler.snapshot()
        support.wait_for_empty_queue(srv.url)
        dead = support.dead_letters(state)

    errors = [r if isinstance(r, Exception) else f"{r.status_code} {r.text[:200]}"
              for r in results if not (isinstance(r, httpx.Response) and r.status_code == 200)]
    wrong = [name for (name, _), r in zip(uploads, results, strict=True)
             if isinstance(r, httpx.Response) and r.status_code == 200
             and r.json()["class_index"] != bare_top1[name]]
    ids = {r.json()["id"] for r in results if isinstance(r, httpx.Response)
           and r.status_code == 200}
    report = {
        "requests": REQUESTS, "concurrency": CONCURRENCY, "workers": workers,
        "elapsed_s": round(elapsed, 2), "throughput_rps": round(REQUESTS / elapsed, 1),
        "errors": len(errors), "wrong_answers": len(wrong),
        "lost": REQUESTS - len(errors) - len(ids), "dead_letters": dead,
        "rss_after_warm_up": warm, "rss_final": final,
        "rss_peak_web_mib": max([s["web_mib"] for s in sampler.samples] or [0]),
        "rss_peak_workers_mib": max([s["workers_mib"] for s in sampler.samples] or [0]),
        "samples": sampler.samples,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak.json").write_text(json.dumps(report, indent=2))
    print("soak:", json.dumps({k: v for k, v in report.items() if k != "samples"}))

    assert errors == [], errors[:5]
    assert wrong == []
    assert len(ids) == REQUESTS and dead == 0
    assert final["web_mib"] < 2 * warm["web_mib"]
    assert final["workers_mib"] < 2 * warm["workers_mib"]
