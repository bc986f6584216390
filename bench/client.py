"""A load generator that costs the server nothing: ``wrk`` (or ``hey``) posting prepared bodies.

The httpx-based ``imgrec loadgen`` checks every answer and draws plots, but it spends several
milliseconds of CPU per request on the cores the service needs. Here the multipart bodies are
built once, written to files, and replayed by ``wrk`` (C, one event loop, a Lua script that only
hands back prepared requests) so the bench's ratios describe the service, not the client.

    from client import prepare_bodies, run_load
    bodies = prepare_bodies(sorted(Path("../shared/images/dev").glob("*.JPEG")), Path(tmp))
    result = run_load("http://127.0.0.1:8000/", bodies, concurrency=64, requests=2000)
    result.rps, result.latency_p99_s, result.client_cpu_ms_per_request, result.connections

Also measured: the client's own CPU (from ``wait4``'s rusage of the wrk process) and the TCP
connections it opened to the server's port (every client port seen in ``/proc/net/tcp``
during the run, TIME_WAIT included, so a connection closed and reopened counts twice).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_post.lua"
TOOLS = ("wrk", "hey")


class ClientError(RuntimeError):
    """The load generator is missing or failed; the message says what to install or check."""


@dataclass(frozen=True)
class Bodies:
    """Prepared multipart bodies on disk, all with the same boundary (one Content-Type)."""

    files: tuple[Path, ...]
    content_type: str
    list_file: Path


@dataclass(frozen=True)
class LoadResult:
    """One run of the client. Latencies in seconds; ``sent`` includes requests still in flight
    when the client stopped (the server did that work too)."""

    tool: str
    concurrency: int
    sent: int
    answered: int
    ok: int
    errors: dict[str, int]
    elapsed_s: float
    latency_p50_s: float
    latency_p90_s: float
    latency_p99_s: float
    latency_max_s: float
    latency_mean_s: float
    client_cpu_s: float
    connections: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def client_cpu_ms_per_request(self) -> float:
        return self.client_cpu_s / max(1, self.answered) * 1000

    @property
    def p99_over_p50(self) -> float:
        return self.latency_p99_s / self.latency_p50_s if self.latency_p50_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rps": self.rps, "p99_over_p50": self.p99_over_p50,
                               "client_cpu_ms_per_request": self.client_cpu_ms_per_request}


def prepare_bodies(images: Sequence[Path], folder: Path, *, field_name: str = "myfile") -> Bodies:
    """One ``multipart/form-data`` body file per image in ``folder``, as a browser sends it."""
    if not images:
        raise ClientError("no images to prepare bodies from")
    boundary = f"----imgrecbench{uuid.uuid4().hex}"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, image in enumerate(images):
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
                f"filename=\"{image.name}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
        body = head + image.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        path = folder / f"body-{i:04d}.bin"
        path.write_bytes(body)
        files.append(path)
    list_file = folder / "bodies.txt"
    list_file.write_text("".join(f"{p}\n" for p in files))
    return Bodies(tuple(files), f"multipart/form-data; boundary={boundary}", list_file)


def run_load(url: str, bodies: Bodies, *, concurrency: int, requests: int,
             tool: str = "wrk", timeout_s: float = 60) -> LoadResult:
    """``requests`` POSTs of the prepared bodies to ``url`` over ``concurrency`` connections."""
    if tool not in TOOLS:
        raise ClientError(f"unknown client {tool!r}; use one of {', '.join(TOOLS)}")
    if shutil.which(tool) is None:
        raise ClientError(f"{tool} is not installed: apt-get install -y {tool}")
    port = urlsplit(url).port or 80
    watcher = _ConnectionWatcher(port)
    watcher.start()
    try:
        if tool == "wrk":
            result = _run_wrk(url, bodies, concurrency, requests, timeout_s)
        else:
            result = _run_hey(url, bodies, concurrency, requests, timeout_s)
    finally:
        connections = watcher.stop()
    if tool == "wrk":  # wrk.resolve() connects once to check the address before the run
        connections = max(0, connections - 1)
    return _replace(result, connections=connections)


def _replace(result: LoadResult, **changes: Any) -> LoadResult:
    return LoadResult(**(asdict(result) | changes))


def _run_timed(argv: list[str], *, interrupt_after: int = 0) -> tuple[str, float]:
    """(stdout, CPU seconds of the child) for one client run. With ``interrupt_after`` the
    child gets SIGINT once it has written that many ``WRKDONE`` lines on stderr."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = proc.stdout, proc.stderr
        out_chunks: list[bytes] = []
        err_lines: list[bytes] = []

        def read_err() -> None:
            done = 0
            for line in stderr:
                if line.strip() == b"WRKDONE":
                    done += 1
                    if done == interrupt_after:
                        proc.send_signal(signal.SIGINT)
                else:
                    err_lines.append(line)

        readers = [threading.Thread(target=lambda: out_chunks.append(stdout.read())),
                   threading.Thread(target=read_err)]
        for reader in readers:
            reader.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for reader in readers:
            reader.join()
    out, err = b"".join(out_chunks).decode(), b"".join(err_lines).decode()
    if proc.returncode != 0:
        raise ClientError(f"{argv[0]} exited with {proc.returncode}: {err.strip() or out[-500:]}")
    return out, usage.ru_utime + usage.ru_stime


def _run_wrk(url: str, bodies: Bodies, concurrency: int, requests: int,
             timeout_s: float) -> LoadResult:
    threads = 1  # one epoll loop drives hundreds of connections at a fraction of a core
    argv = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", "3600s",
            "--timeout", f"{timeout_s:g}s", "-s", str(WRK_SCRIPT), url, "--",
            str(-(-requests // threads)), str(bodies.list_file), bodies.content_type]
    out, cpu_s = _run_timed(argv, interrupt_after=threads)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise ClientError(f"wrk printed no summary:\n{out[-1000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    us = 1e-6
    errors = {k: int(raw[k]) for k in ("connect", "read", "write", "status", "timeout")
              if raw[k]}
    return LoadResult(
        tool="wrk", concurrency=concurrency, sent=raw["sent"], answered=raw["answered"],
        ok=raw["ok"], errors=errors, elapsed_s=raw["duration_us"] * us,
        latency_p50_s=raw["p50_us"] * us, latency_p90_s=raw["p90_us"] * us,
        latency_p99_s=raw["p99_us"] * us, latency_max_s=raw["max_us"] * us,
        latency_mean_s=raw["mean_us"] * us, client_cpu_s=cpu_s, connections=0,
    )


def _run_hey(url: str, bodies: Bodies, concurrency: int, requests: int,
             timeout_s: float) -> LoadResult:
    """hey replays one body (its ``-D`` takes a single file): the first prepared one."""
    argv = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST",
            "-T", bodies.content_type, "-D", str(bodies.files[0]), "-t", f"{int(timeout_s)}",
            "-o", "csv", url]
    started = time.perf_counter()
    out, cpu_s = _run_timed(argv)
    elapsed = time.perf_counter() - started
    latencies, ok, answered = [], 0, 0
    for row in out.splitlines()[1:]:
        cols = row.split(",")
        if len(cols) < 8:
            continue
        answered += 1
        latencies.append(float(cols[0]))
        ok += cols[6] == "200"
    latencies.sort()
    if not latencies:
        raise ClientError(f"hey answered nothing:\n{out[-1000:]}")

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return LoadResult(
        tool="hey", concurrency=concurrency, sent=requests, answered=answered, ok=ok,
        errors={"status": answered - ok} if answered > ok else {}, elapsed_s=elapsed,
        latency_p50_s=pct(50), latency_p90_s=pct(90), latency_p99_s=pct(99),
        latency_max_s=latencies[-1], latency_mean_s=sum(latencies) / len(latencies),
        client_cpu_s=cpu_s, connections=0,
    )


class _ConnectionWatcher:
    """Client ports of the TCP connections to ``port``, sampled from /proc/net/tcp{,6}.

    A closed connection stays listed in TIME_WAIT for a minute, so a 5 Hz sample sees every
    connection of a run, whichever side closed it.
    """

    def __init__(self, port: int, interval_s: float = 0.2) -> None:
        self.port = port
        self.interval_s = interval_s
        self.seen: set[int] = set()
        self._before = self._sample()  # connections that were there before the run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="conn-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.seen |= self._sample()
        return len(self.seen - self._before)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.seen |= self._sample()

    def _sample(self) -> set[int]:
        ports: set[int] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                local = int(cols[1].rsplit(":", 1)[1], 16)
                remote = int(cols[2].rsplit(":", 1)[1], 16)
                if remote == self.port:
                    ports.add(local)  # the client's end
                elif local == self.port and remote != 0:
                    ports.add(remote)  # the server's end (left in TIME_WAIT if it closed)
        return ports
