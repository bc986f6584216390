"""Interactive latency while a large batch runs: the bulk lane's goal, measured in one run.

Starts ``imgrec serve``, measures interactive latency on the idle service (one client, one
request at a time), then runs ``imgrec batch`` in a process of its own on a folder of
``--items`` photos (default 2,000, the dev photos cycled) and, from its start until it has
written its results, keeps sending interactive requests (one client, ``--think-ms`` between
them). Prints idle p50, p50/p99 during the batch (and apart: while the batch is uploaded, and
after), the slowest requests' server timings, the ratio p99 / idle p50 (goal: <= 3), the
CPU the web tier and ``imgrec batch`` used during the upload, the batch's throughput and
worker-seconds per image, and writes ``bench/results/lanes.json``.

    .venv/bin/python bench/lanes.py [--items 2000] [--serve-arg=--workers=2]
"""

from __future__ import annotations

import argparse
import csv
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

from proctree import process_cpu_s, tree_cpu_s  # noqa: E402

from imgrec.batches.client import ServiceClient, state_path  # noqa: E402
from imgrec.loadgen.health import wait_until_healthy  # noqa: E402
from imgrec.percentile import percentile  # noqa: E402


def say(text: str) -> None:
    print(f"[lanes] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def interactive(url: str, photos: list[Path], n: int | None, stop: threading.Event | None,
                think_s: float, queue_ms: list[float] | None = None,
                samples: list[dict[str, float]] | None = None) -> list[float]:
    """Latencies (ms) of sequential /api/v1/classify requests: ``n`` of them, or until ``stop``;
    each one's time in the queue (``timings_ms.queue_ms``) goes to ``queue_ms``, and its start
    (monotonic s), latency and server timings to ``samples``."""
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
            latency_ms = (time.perf_counter() - started) * 1000
            out.append(latency_ms)
            timings = resp.json()["timings_ms"]
            if queue_ms is not None:
                queue_ms.append(float(timings["queue_ms"]))
            if samples is not None:
                samples.append({"at": time.monotonic(), "latency_ms": round(latency_ms, 2),
                                **timings})
            i += 1
            time.sleep(think_s)
    return out


def batch_folder(photos: list[Path], items: int, folder: Path) -> Path:
    """``items`` photos (the dev photos cycled) as files of one folder, hard-linked if we can."""
    folder.mkdir()
    for i in range(items):
        photo = photos[i % len(photos)]
        target = folder / f"{i:05d}-{photo.name}"
        try:
            os.link(photo, target)
        except OSError:
            target.write_bytes(photo.read_bytes())
    return folder


class BatchCommand:
    """``imgrec batch FOLDER`` in a process of its own, as a user runs it beside interactive
    clients; its state file says when every part is uploaded."""

    def __init__(self, url: str, folder: Path, out: Path, part_size: int) -> None:
        self.out = out
        self.state = state_path(out)
        self.parts = -(-sum(1 for _ in folder.iterdir()) // part_size)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imgrec", "batch", str(folder), "--out", str(out), "--url",
             url, "--chunk", str(part_size), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def uploaded(self) -> bool:
        try:
            state = json.loads(self.state.read_text())
        except (OSError, ValueError):
            return not self.running()  # no state file once the command is done
        return len(state.get("parts_done", [])) >= self.parts

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self) -> str:
        output, _ = self.proc.communicate(timeout=3600)
        if self.proc.returncode != 0:
            raise SystemExit(f"imgrec batch failed ({self.proc.returncode}): {output.decode()}")
        return output.decode()


def results_counts(csv_path: Path) -> dict[str, int]:
    """How many rows of ``imgrec batch``'s CSV are done and failed."""
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    done = sum(1 for row in rows if row.get("status") == "done")
    return {"done": done, "failed": len(rows) - done}


def stats(values: list[float]) -> dict[str, float | None]:
    return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "max_ms": max(values) if values else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--idle-requests", type=int, default=100)
    parser.add_argument("--think-ms", type=float, default=100.0)
    parser.add_argument("--part-size", type=int, default=100)
    parser.add_argument("--poll-s", type=float, default=0.25, help="state-file polls")
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
            folder = batch_folder(photos, args.items, Path(tmp) / "photos")
            client = ServiceClient(url)
            cost_start = client.cost() or {}
            stop = threading.Event()
            during: list[float] = []
            during_queue: list[float] = []
            samples: list[dict[str, float]] = []
            probe = threading.Thread(target=lambda: during.extend(
                interactive(url, photos, None, stop, args.think_ms / 1000, during_queue,
                            samples)))
            started = time.monotonic()
            web_cpu_start = process_cpu_s(proc.pid)
            probe.start()
            command = BatchCommand(url, folder, Path(tmp) / "results.csv", args.part_size)
            while not command.uploaded():
                time.sleep(args.poll_s)
            submitted_s = time.monotonic() - started
            upload_cpu = {"web_tier_s": round(process_cpu_s(proc.pid) - web_cpu_start, 2),
                          "imgrec_batch_s": round(tree_cpu_s(command.proc.pid), 2)}
            say(f"imgrec batch: {args.items} items uploaded in {submitted_s:.1f} s; CPU "
                f"meanwhile: web tier {upload_cpu['web_tier_s']} s, imgrec batch "
                f"{upload_cpu['imgrec_batch_s']} s")
            while command.running():
                time.sleep(args.poll_s)
            batch_s = time.monotonic() - started
            command.wait()
            counts = results_counts(Path(tmp) / "results.csv")
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
    submitting = [x["latency_ms"] for x in samples if x["at"] - started <= submitted_s]
    after = [x["latency_ms"] for x in samples if x["at"] - started > submitted_s]
    slowest = sorted(samples, key=lambda x: -x["latency_ms"])[:max(1, len(samples) // 100)]
    ws = (cost_end.get("worker_seconds") or 0.0) - (cost_start.get("worker_seconds") or 0.0)
    images = (cost_end.get("images") or 0) - (cost_start.get("images") or 0)
    result: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_before": load, "load_average_after": os.getloadavg(),
        "cores": len(os.sched_getaffinity(0)), "serve_args": serve_args,
        "items": args.items, "counts": counts,
        "idle": stats(idle), "during_batch": during_stats,
        "queue_ms_idle": stats(idle_queue), "queue_ms_during": stats(during_queue),
        "while_submitting": stats(submitting), "after_submitting": stats(after),
        "slowest": [{**x, "at": round(x["at"] - started, 2)} for x in slowest],
        "ratio_p99_during_to_idle_p50": round(p99 / idle_p50, 2) if idle_p50 else None,
        "goal_ratio": 3.0,
        "batch_s": round(batch_s, 2), "submit_s": round(submitted_s, 2),
        "cpu_while_uploading": upload_cpu,
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
    ws_, wa = stats(submitting), stats(after)
    print(f"while submitting      p50 {ws_['p50_ms'] or 0:.1f} ms, p99 {ws_['p99_ms'] or 0:.1f} ms "
          f"(n={ws_['n']}); after: p50 {wa['p50_ms'] or 0:.1f} ms, p99 {wa['p99_ms'] or 0:.1f} ms "
          f"(n={wa['n']})")
    for x in result["slowest"]:
        print(f"  slow: at {x['at']:6.2f} s  {x['latency_ms']:6.1f} ms  server {x.get('total_ms')}"
              f"  queue {x.get('queue_ms')}  decode {x.get('decode_ms')}  "
              f"inference {x.get('inference_ms')}  batch {x.get('batch_size')}")
    print(f"ratio p99 / idle p50  {result['ratio_p99_during_to_idle_p50']}  (goal <= 3)")
    print(f"batch                 {args.items} items in {batch_s:.1f} s "
          f"({result['batch_images_per_s']} images/s; submitted in {submitted_s:.1f} s), "
          f"{counts}")
    print(f"worker-seconds/image  {result['worker_seconds_per_image']}")
    print(f"load average          before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"written to {args.out}")


if __name__ == "__main__":
    main()
