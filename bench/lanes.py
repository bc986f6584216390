"""Interactive latency while a large batch runs: the bulk lane's goal, measured in one run.

Starts ``imgrec serve``, measures interactive latency on the idle service (one client, one
request at a time), then submits a batch (``--items``, default 2,000, the dev photos cycled)
through the batch API and, from its creation until its last result, keeps sending interactive
requests (one client, ``--think-ms`` between them). Prints idle p50, p50/p99 during the batch,
the ratio p99 / idle p50 (goal: <= 3), the batch's throughput and worker-seconds per image,
and writes ``bench/results/lanes.json``.

    .venv/bin/python bench/lanes.py [--items 2000] [--serve-arg=--workers=2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

from imgrec.batches.client import ServiceClient  # noqa: E402
from imgrec.chunks import chunks  # noqa: E402
from imgrec.loadgen.health import wait_until_healthy  # noqa: E402
from imgrec.percentile import percentile  # noqa: E402


def say(text: str) -> None:
    print(f"[lanes] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def interactive(url: str, photos: list[Path], n: int | None, stop: threading.Event | None,
                think_s: float, queue_ms: list[float] | None = None) -> list[float]:
    """Latencies (ms) of sequential /api/v1/classify requests: ``n`` of them, or until ``stop``;
    each one's time in the queue (``timings_ms.queue_ms``) goes to ``queue_ms``."""
    out: list[float] = []
    with httpx.Client(timeout=120) as client:
        i = 0
        while (n is None or i < n) and not (stop is not None and stop.is_set()):
            photo = photos[i % len(photos)]
            data = photo.read_bytes()
            started = time.perf_counter()
            resp = client.post(f"{url}/api/v1/classify", files={"file": (photo.name, data)})
            if resp.status_code != 200:
                raise SystemExit(f"interactive request failed: {resp.status_code} {resp.text}")
            out.append((time.perf_counter() - started) * 1000)
            if queue_ms is not None:
                queue_ms.append(float(resp.json()["timings_ms"]["queue_ms"]))
            i += 1
            time.sleep(think_s)
    return out


def submit_batch(client: ServiceClient, photos: list[Path], items: int, part_size: int) -> str:
    batch_id = client.create()
    names = [(f"{i:05d}-{photos[i % len(photos)].name}", photos[i % len(photos)])
             for i in range(items)]
    for n, part in enumerate(chunks(names, part_size)):
        client.add_part(batch_id, f"c{n:06d}", [(name, p.read_bytes()) for name, p in part])
    return batch_id


def stats(values: list[float]) -> dict[str, float | None]:
    return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "max_ms": max(values) if values else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--idle-requests", type=int, default=100)
    parser.add_argument("--think-ms", type=float, default=100.0)
    parser.add_argument("--part-size", type=int, default=100)
    parser.add_argument("--poll-s", type=float, default=0.5, help="batch progress polls")
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared/images/dev")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra imgrec serve argument, e.g. --serve-arg=--workers=2")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "lanes.json")
    args = parser.parse_args()
    photos = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
    serve_args = args.serve_arg or ["--workers=2"]
    load = os.getloadavg()
    say(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory(prefix="imgrec-lanes-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "serve.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "imgrec", "serve", "--host", "127.0.0.1", "--port",
                 str(port), "--state-dir", str(Path(tmp) / "state"), *serve_args],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_healthy(url, proc, timeout_s=120)
            interactive(url, photos, 20, None, 0.0)  # warm-up: workers ready, caches hot
            idle_queue: list[float] = []
            idle = interactive(url, photos, args.idle_requests, None, args.think_ms / 1000,
                               idle_queue)
            say(f"idle: p50 {percentile(idle, 50):.1f} ms over {len(idle)} requests")
            client = ServiceClient(url)
            cost_start = client.cost() or {}
            stop = threading.Event()
            during: list[float] = []
            during_queue: list[float] = []
            probe = threading.Thread(target=lambda: during.extend(
                interactive(url, photos, None, stop, args.think_ms / 1000, during_queue)))
            started = time.monotonic()
            probe.start()
            batch_id = submit_batch(client, photos, args.items, args.part_size)
            submitted_s = time.monotonic() - started
            say(f"batch {batch_id}: {args.items} items submitted in {submitted_s:.1f} s")
            while True:
                doc = client.progress(batch_id)
                if doc["status"] == "done":
                    break
                time.sleep(args.poll_s)
            batch_s = time.monotonic() - started
            stop.set()
            probe.join()
            cost_end = client.cost() or {}
            client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    idle_p50 = percentile(idle, 50) or 0.0
    during_stats = stats(during)
    p99 = during_stats["p99_ms"] or 0.0
    ws = (cost_end.get("worker_seconds") or 0.0) - (cost_start.get("worker_seconds") or 0.0)
    images = (cost_end.get("images") or 0) - (cost_start.get("images") or 0)
    result: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_before": load, "load_average_after": os.getloadavg(),
        "cores": len(os.sched_getaffinity(0)), "serve_args": serve_args,
        "items": args.items, "counts": doc["counts"],
        "idle": stats(idle), "during_batch": during_stats,
        "queue_ms_idle": stats(idle_queue), "queue_ms_during": stats(during_queue),
        "ratio_p99_during_to_idle_p50": round(p99 / idle_p50, 2) if idle_p50 else None,
        "goal_ratio": 3.0,
        "batch_s": round(batch_s, 2), "submit_s": round(submitted_s, 2),
        "batch_images_per_s": round(args.items / batch_s, 1),
        "worker_seconds_per_image": round(ws / images, 5) if images else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"idle interactive      p50 {idle_p50:7.1f} ms  (n={len(idle)})")
    print(f"during the batch      p50 {during_stats['p50_ms'] or 0:7.1f} ms  p99 {p99:7.1f} ms  "
          f"max {during_stats['max_ms'] or 0:7.1f} ms  (n={len(during)})")
    qi, qd = stats(idle_queue), stats(during_queue)
    print(f"time in queue         idle p50 {qi['p50_ms'] or 0:.1f} ms; during p50 "
          f"{qd['p50_ms'] or 0:.1f} ms, p99 {qd['p99_ms'] or 0:.1f} ms")
    print(f"ratio p99 / idle p50  {result['ratio_p99_during_to_idle_p50']}  (goal <= 3)")
    print(f"batch                 {args.items} items in {batch_s:.1f} s "
          f"({result['batch_images_per_s']} images/s; submitted in {submitted_s:.1f} s), "
          f"{doc['counts']}")
    print(f"worker-seconds/image  {result['worker_seconds_per_image']}")
    print(f"load average          before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"written to {args.out}")


if __name__ == "__main__":
    main()
