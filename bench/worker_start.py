"""Worker start and memory (issue 15, items 6 and 8): launch-to-ready, cold start, RSS at load.

    .venv/bin/python bench/worker_start.py [--modes spawn,fork] [--launches 5] [--colds 3]

For each worker start mode, in one run (so the ratios compare like with like):

- **launch-to-ready**: ``launches`` workers started one after another by a ``ProcessFleet``,
  each from launch until its heartbeat says the model is loaded (the fleet's
  ``health().launch_to_ready_s``);
- **cold start**: ``imgrec serve`` (autoscaled) at 0 workers, one upload, until its answer;
- **memory at load**: ``imgrec serve --workers 2`` under ``imgrec loadgen`` (concurrency 16), the
  sum of RSS and of PSS of every process of the service, the largest of 1 s samples.

Prints one line per mode and measure, and a JSON object at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from proctree import tree_memory, tree_memory_by_process  # noqa: E402

DEV = Path(os.environ.get("IMGREC_DEV_IMAGES", HERE.parent.parent / "shared" / "images" / "dev"))


def say(text: str) -> None:
    print(f"[worker-start] {text}", file=sys.stderr, flush=True)


def launch_to_ready(mode: str, launches: int) -> list[float]:
    from imgrec.backend import open_backend
    from imgrec.config import load_settings

    with tempfile.TemporaryDirectory(prefix="imgrec-ws-") as tmp:
        chosen = {} if mode == "default" else {"worker_start": mode}
        settings = load_settings(state_dir=Path(tmp) / "state", worker_threads=1, **chosen)
        backend = open_backend(settings)
        fleet = backend.open_fleet(1)
        time.sleep(3.0)  # as in serve, where the fork server imports long before a launch
        try:
            for _ in range(launches):
                [worker_id] = fleet.launch(1)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    ready = [w for w in fleet.list() if w.worker_id == worker_id and w.ready_s]
                    if ready:
                        break
                    time.sleep(0.02)
                fleet.drain([worker_id])
                while any(w.worker_id == worker_id for w in fleet.list()):
                    time.sleep(0.02)
            return list(fleet.health().launch_to_ready_s)
        finally:
            fleet.close()
            backend.close()


class Serve:
    def __init__(self, tmp: Path, *args: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMGREC_")}
        env["IMGREC_LOG_LEVEL"] = "WARNING"
        self.log = open(tmp / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imgrec", "serve", "--port", str(self.port),
             "--state-dir", str(tmp / "state"), *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.status() is not None:
                return
            time.sleep(0.1)
        raise SystemExit("imgrec serve did not start")

    def status(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(self.url + "/api/v1/status", timeout=5)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        status: dict[str, Any] = response.json()
        return status

    def workers(self) -> int | None:
        status = self.status()
        return None if status is None else int(status["workers"]["total"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


EXTRA_SERVE_ARGS: list[str] = []


def _mode_args(mode: str) -> list[str]:
    """``default``: the build's default mode (also for builds before ``--worker-start``)."""
    return [*EXTRA_SERVE_ARGS, *([] if mode == "default" else ["--worker-start", mode])]


def cold_starts(mode: str, count: int) -> list[float]:
    photo = sorted(DEV.glob("*.JPEG"))[0]
    body = photo.read_bytes()
    out: list[float] = []
    with tempfile.TemporaryDirectory(prefix="imgrec-ws-") as tmp:
        serve = Serve(Path(tmp), *_mode_args(mode), "--idle-before-drain-s", "0.5")
        try:
            for _ in range(count):
                deadline = time.monotonic() + 60
                while serve.workers() != 0 and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(1.0)  # quiet: no drain in progress
                started = time.perf_counter()
                response = httpx.post(serve.url + "/", files={"myfile": (photo.name, body)},
                                      timeout=60)
                out.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
        finally:
            serve.stop()
    return out


def memory_at_load(mode: str, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="imgrec-ws-") as tmp:
        serve = Serve(Path(tmp), *_mode_args(mode), "--workers", "2")
        try:
            deadline = time.monotonic() + 60
            while serve.workers() != 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            load = subprocess.Popen(
                [sys.executable, "-m", "imgrec", "loadgen", serve.url + "/", "--images",
                 str(DEV), "--duration", str(seconds), "--concurrency", "16"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rss = pss = 0
            biggest: dict[int, tuple[str, int, int]] = {}
            while load.poll() is None:
                sample = tree_memory(serve.proc.pid)
                if sample[0] > rss:
                    biggest = tree_memory_by_process(serve.proc.pid)
                rss, pss = max(rss, sample[0]), max(pss, sample[1])
                time.sleep(1.0)
            for pid, (cmd, p_rss, p_pss) in sorted(biggest.items()):
                say(f"  {pid} RSS {p_rss / 2**20:.0f} MB PSS {p_pss / 2**20:.0f} MB  {cmd[-70:]}")
            return {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20}
        finally:
            serve.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="spawn,fork")
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--colds", type=int, default=3)
    parser.add_argument("--load-s", type=float, default=20.0)
    parser.add_argument("--skip", default="", help="comma list of: ready,cold,memory")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra argument for imgrec serve (repeat)")
    args = parser.parse_args()
    EXTRA_SERVE_ARGS.extend(args.serve_arg)
    skip = set(args.skip.split(","))
    say(f"load average {os.getloadavg()}")
    results: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        row: dict[str, Any] = {}
        if "ready" not in skip:
            ready = launch_to_ready(mode, args.launches)
            row["launch_to_ready_ms"] = [round(s * 1000) for s in ready]
            say(f"{mode}: launch-to-ready median {statistics.median(ready) * 1000:.0f} ms "
                f"({row['launch_to_ready_ms']})")
        if "cold" not in skip:
            cold = cold_starts(mode, args.colds)
            row["cold_start_s"] = [round(s, 3) for s in cold]
            say(f"{mode}: cold start median {statistics.median(cold):.2f} s "
                f"({row['cold_start_s']})")
        if "memory" not in skip:
            row["memory"] = memory_at_load(mode, args.load_s)
            say(f"{mode}: at load with 2 workers: RSS sum {row['memory']['rss_mb']:.0f} MB, "
                f"PSS sum {row['memory']['pss_mb']:.0f} MB")
        results[mode] = row
    say(f"load average {os.getloadavg()}")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
