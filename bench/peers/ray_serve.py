"""Ray Serve as a child process (``ray_app.py`` in ``.venv-ray``), for the side-by-side bench.

    with RayServe(REPO / ".venv-ray" / "bin" / "python") as ray:
        ray.wait_ready()
        load(ray.url, ...)                 # the same client as for imgrec
        tree_cpu_s(ray.pid)                # GCS, raylet, proxy and replicas are its descendants

``make bench PEERS=ray`` creates the venv (``ray[serve]`` from PyPI, see the Makefile).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

HERE = Path(__file__).resolve().parent
APP = HERE / "ray_app.py"
REPO = HERE.parent.parent
DEFAULT_PYTHON = REPO / ".venv-ray" / "bin" / "python"
READY = "READY"


class PeerError(RuntimeError):
    """The peer could not be started or did not become ready; the message has its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in ticks) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> start time (to tell a reused pid apart)."""
    stats = {int(e.name): _stat(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        if stat is not None:
            children.setdefault(stat[0], []).append(pid)
    found: dict[int, int] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        stat = stats.get(pid)
        if stat is not None:
            found[pid] = stat[1]
            todo.extend(children.get(pid, []))
    return found


def ray_command(python: Path, port: int, model: str, temp_dir: Path) -> list[str]:
    return [str(python), str(APP), "--port", str(port), "--model", model,
            "--temp-dir", str(temp_dir)]


class RayServe:
    """One local Ray cluster serving the model on a free port of 127.0.0.1."""

    def __init__(self, python: Path = DEFAULT_PYTHON, *, model: str = "mobilenet_v2",
                 log_path: Path | None = None) -> None:
        if not python.is_file():
            raise PeerError(f"no Ray venv at {python.parent.parent}: run `make bench PEERS=ray`")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path or Path(os.devnull)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGREC_", "VIRTUAL_ENV"))}
        env["PYTHONPATH"] = str(REPO / "src")
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rayb-", dir="/tmp"))
        self.proc = subprocess.Popen(ray_command(python, self.port, model, self.temp_dir), env=env,
                                     stdout=subprocess.PIPE, stderr=self._log)
        self.version = "unknown"  # Ray's, from the app's READY line
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith(READY):
                self.version = line.split()[-1]
                self._ready.set()
            self._log.write(raw)

    def wait_ready(self, timeout_s: float = 180) -> float:
        """Seconds from now until the application answers; PeerError if it exits or times out."""
        start = time.perf_counter()
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None:
                raise PeerError(f"Ray Serve exited with {self.proc.returncode}; {self._tail()}")
            if time.perf_counter() - start > timeout_s:
                raise PeerError(f"Ray Serve not ready after {timeout_s:.0f} s; {self._tail()}")
        return time.perf_counter() - start

    def _tail(self) -> str:
        if self.log_path == Path(os.devnull):
            return "no log kept"
        self._log.flush()
        return "log tail:\n" + self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout_s: float = 60) -> None:
        """SIGTERM: the app shuts Serve and its Ray cluster down; SIGKILL if it hangs.

        Ray's dashboard and runtime-env agents outlive ``ray.shutdown()`` (reparented to init,
        deaf to SIGTERM), so the processes seen under the app before stopping it are killed
        if they are still there afterwards.
        """
        family = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        deadline = time.perf_counter() + 5
        while family and time.perf_counter() < deadline:
            family = {pid: t for pid, t in family.items() if (_stat(pid) or (0, -1))[1] == t}
            time.sleep(0.2)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reader.join(timeout=5)
        self._log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayServe:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
