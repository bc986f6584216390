"""Run ``imgrec serve`` as a real process on 127.0.0.1 for tests, and stop it afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from imgrec.loadgen import health


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path,
                       timeout_s: float = 60.0) -> None:
    try:
        health.wait_until_healthy(url, process, timeout_s=timeout_s)
    except health.ServiceNotHealthy as exc:
        raise RuntimeError(f"{exc}:\n{log_path.read_text(errors='replace')}") from exc


@contextmanager
def run_server(state_dir: Path, *args: str, env: dict[str, str] | None = None,
               port: int | None = None) -> Iterator[RunningServer]:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = state_dir.parent / f"serve-{port}.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgrec", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--state-dir", str(state_dir), *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
    server = RunningServer(url, state_dir, proc, log_path)
    try:
        wait_until_healthy(url, proc, log_path)
        yield server
    finally:
        server.stop()


def classify_each(url: str, photos: Sequence[Path], *, concurrency: int = 5) -> list[int]:
    """POST each photo to ``url``'s /api/v1/classify; their top-1 class indexes, in order."""

    def classify(path: Path) -> int:
        resp = httpx.post(f"{url}/api/v1/classify", files={"file": (path.name, path.read_bytes())},
                          timeout=90)
        assert resp.status_code == 200, resp.text
        return int(resp.json()["class_index"])

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(classify, photos))
