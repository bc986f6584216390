"""The process fleet's side of the fork server: start it, ask for workers, learn of their exits.

``ForkServer.launch`` returns a ``ForkedWorker``, a handle with the part of ``subprocess.Popen``
the fleet uses (``pid``, ``poll``, ``send_signal``, ``kill``, ``wait``). A forked worker is the
server's child, not the fleet's: its exit code comes from the server's ``exited`` event, and
signals go through a pidfd, so a pid reused after the worker ended is never signalled.

If the server dies, its workers live on (orphans, each watching the fleet's process) and their
pidfds still tell when they end; their exit codes are lost then and reported as
``LOST_EXIT_CODE``. The next launch starts a new server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ImgrecError

log = logging.getLogger(__name__)

LOST_EXIT_CODE = -255  # a worker that ended after its fork server died: code unknown
_START_TIMEOUT_S = 60.0  # the server's imports, on a busy machine
_LAUNCH_TIMEOUT_S = 10.0


class ForkServerError(ImgrecError):
    """The fork server is not running or did not answer; spawn the worker instead."""


def fork_supported() -> bool:
    """Fork and pidfds are there (Linux 5.3 or later)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):  # Python or kernel without pidfds
        return False
    return True


@dataclass
class _Generation:
    """One run of the server process; ``reading`` until its last event was read."""

    proc: subprocess.Popen[bytes]
    reading: bool = True
    ready: bool = False


class ForkedWorker:
    """One worker forked by the server, as the fleet sees it."""

    def __init__(self, server: ForkServer, generation: _Generation, pid: int) -> None:
        self._server = server
        self._generation = generation
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd: int | None
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # ended and reaped already: its exit event is on its way
            self._pidfd = None

    def _ended(self) -> bool:
        """The process is gone (its pidfd is readable once it exits)."""
        if self._pidfd is None:
            return True
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        return bool(readable)

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self._server.exit_code(self.pid)
            if code is None and not self._generation.reading and self._ended():
                code = LOST_EXIT_CODE
            if code is not None:
                self.returncode = code
                if self._pidfd is not None:
                    os.close(self._pidfd)
                    self._pidfd = None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is not None or self._pidfd is None:
            return
        with contextlib.suppress(ProcessLookupError):  # exited since poll
            signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                return code
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout or 0.0)
            self._server.wait_event(0.05)


class ForkServer:
    """A fork server process started with ``env``; thread-safe."""

    def __init__(self, env: Mapping[str, str], *,
                 launch_timeout_s: float = _LAUNCH_TIMEOUT_S) -> None:
        self._env = dict(env)
        self.launch_timeout_s = launch_timeout_s
        self._env.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS thread to fork around
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._gen: _Generation | None = None
        self._cmd_fd: int | None = None
        self._started: dict[str, int] = {}
        self._exits: dict[int, int] = {}
        self._abandoned: set[str] = set()  # launches given up on: kill if they start late

    def alive(self) -> bool:
        """The server runs, or its last events are still to be read."""
        with self._lock:
            return self._gen is not None and self._gen.reading

    @property
    def pid(self) -> int | None:
        with self._lock:
            return None if self._gen is None else self._gen.proc.pid

    def start(self) -> None:
        """Start the server if it is not running (it becomes ready in the background)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._gen is not None and self._gen.reading and self._gen.proc.poll() is None:
            return
        self._close_cmd_locked()
        cmd_r, cmd_w = os.pipe()
        event_r, event_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "imgrec.embedded.fork_server", str(cmd_r), str(event_w)],
                env=self._env, pass_fds=(cmd_r, event_w), start_new_session=True)
        finally:
            os.close(cmd_r)
            os.close(event_w)
        self._gen, self._cmd_fd = _Generation(proc), cmd_w
        threading.Thread(target=self._read_events, args=(self._gen, event_r),
                         name="fork-server-events", daemon=True).start()
        log.info("fork server started (pid %d)", proc.pid)

    def launch(self, worker_id: str, *, threads: int, parent_pid: int) -> ForkedWorker:
        """Fork a worker; raise ``ForkServerError`` if the server cannot."""
        request = json.dumps({"op": "launch", "worker_id": worker_id, "threads": threads,
                              "parent_pid": parent_pid}).encode() + b"\n"
        with self._lock:
            self._start_locked()
            try:
                assert self._cmd_fd is not None
                os.write(self._cmd_fd, request)
            except OSError as exc:
                raise ForkServerError(f"fork server unreachable: {exc}") from exc
            gen = self._gen
            assert gen is not None
            deadline = time.monotonic() + (self.launch_timeout_s if gen.ready
                                           else _START_TIMEOUT_S)
            while worker_id not in self._started:
                left = deadline - time.monotonic()
                if left <= 0 or not gen.reading:
                    # A server that does not answer is of no use: end it, so that it cannot
                    # fork this worker later behind the fleet's back; the next launch starts
                    # a new one.
                    self._abandoned.add(worker_id)
                    with contextlib.suppress(OSError):
                        gen.proc.kill()
                    raise ForkServerError(f"fork server did not start worker {worker_id}")
                self._changed.wait(min(left, 0.5))
            pid = self._started.pop(worker_id)
        return ForkedWorker(self, gen, pid)

    def exit_code(self, pid: int) -> int | None:
        with self._lock:
            return self._exits.pop(pid, None)

    def wait_event(self, timeout_s: float) -> None:
        with self._lock:
            self._changed.wait(timeout_s)

    def _read_events(self, gen: _Generation, fd: int) -> None:
        with os.fdopen(fd, "rb") as events:
            for line in events:
                event = json.loads(line)
                with self._lock:
                    if event["event"] == "started":
                        self._started_event(str(event["worker_id"]), int(event["pid"]))
                    elif event["event"] == "exited":
                        self._exits[int(event["pid"])] = int(event["code"])
                    elif event["event"] == "ready":
                        gen.ready = True
                    self._changed.notify_all()
        proc = gen.proc
        proc.wait()
        with self._lock:
            gen.reading = False
            self._changed.notify_all()
        if proc.returncode:
            log.warning("fork server (pid %d) ended with code %d", proc.pid, proc.returncode)
        else:
            log.info("fork server (pid %d) stopped", proc.pid)

    def _started_event(self, worker_id: str, pid: int) -> None:
        if worker_id in self._abandoned:
            self._abandoned.discard(worker_id)
            log.warning("worker %s started after its launch was given up; killing it", worker_id)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the server has not reaped it: the pid is its
            return
        self._started[worker_id] = pid

    def _close_cmd_locked(self) -> None:
        if self._cmd_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._cmd_fd)
            self._cmd_fd = None

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the server (its end of file); workers it forked are not touched."""
        with self._lock:
            self._close_cmd_locked()
            if self._gen is None:
                return
            proc = self._gen.proc
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
