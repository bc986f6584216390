"""A ``Fleet`` of local worker processes: launch, drain with SIGTERM, reap the ones that exited.

A worker's state comes from its process (alive or not) and its heartbeat in the store
(starting, ready, busy). Workers run in their own session, so a Ctrl-C in the terminal reaches
only ``imgrec serve``, which then drains them; a worker whose parent dies stops by itself.
A worker that exits without being drained is reaped and counted as crashed (non-zero code) or
gone; the controller launches a replacement when the backlog (or ``min``) still wants one.
Launch-to-ready time (launch until the heartbeat written with the model loaded) is measured
for every worker and reported by ``health``.

A worker lists the receipts of the requests it holds in its heartbeat before it starts on them.
When the fleet reaps a worker it makes those requests visible again at once: a killed worker's
batch goes to another worker within a tick of the autoscaler (0.5 s), not after the visibility
timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from .. import keys
from ..config import Settings
from ..errors import ImgrecError, ObjectNotFound
from ..ports import FleetHealth, ObjectStore, Queue, WorkerInfo, WorkerState
from ..worker.heartbeat import HeartbeatRecord, read_heartbeats
from .fork_client import ForkServer, ForkServerError, fork_supported

log = logging.getLogger(__name__)


class WorkerProcess(Protocol):
    """What the fleet uses of a worker process: ``subprocess.Popen`` or a ``ForkedWorker``."""

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def send_signal(self, signum: int, /) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


@dataclass
class _Process:
    worker_id: str
    popen: WorkerProcess
    launched_at: float
    draining: bool = False
    ready_s: float | None = None


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``IMGREC_*`` variables, so a child process sees the same ones.

    Secrets (the API key) are left out: workers never need them, and a child's environment
    is readable in ``/proc``.
    """
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None or isinstance(value, SecretStr):
            continue
        env[f"IMGREC_{name.upper()}"] = str(value)
    return env


class ProcessFleet:
    """Local ``imgrec`` worker processes, at most ``max_workers`` alive at once."""

    def __init__(
        self,
        store: ObjectStore,
        settings: Settings,
        *,
        requests: Queue | None = None,
        max_workers: int | None = None,
        threads_per_worker: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.requests = requests
        self.released = 0  # requests of dead workers made visible again, since the start
        self.max_workers = max_workers or settings.max_workers
        self.threads_per_worker = threads_per_worker or settings.threads_per_worker()
        self.crashed: list[tuple[str, int]] = []  # (worker id, exit code), since the start
        self.readiness_s: deque[float] = deque(maxlen=20)
        self._clock = clock
        self._procs: dict[str, _Process] = {}
        self._lock = threading.Lock()
        self._env = {**os.environ, **settings_env(settings)}
        self._env.pop("IMGREC_API_KEY", None)
        self._env["IMGREC_STATE_DIR"] = str(settings.state_dir.resolve())
        self.forks: ForkServer | None = None
        if settings.worker_start == "fork" and fork_supported():
            self.forks = ForkServer(self._env)
            self.forks.start()  # imports in the background: the first launch finds it ready

    def launch(self, count: int) -> list[str]:
        ids: list[str] = []
        with self._lock:
            self._reap_locked()
            room = self.max_workers - sum(1 for p in self._procs.values() if not p.draining)
            for _ in range(max(0, min(count, room))):
                worker_id = f"w-{uuid.uuid4().hex[:8]}"
                launched_at = self._clock()
                popen = self._start(worker_id)
                self._procs[worker_id] = _Process(worker_id, popen, launched_at)
                ids.append(worker_id)
        if ids:
            log.info("launched %d worker(s): %s", len(ids), ", ".join(ids))
        return ids

    def _start(self, worker_id: str) -> WorkerProcess:
        if self.forks is not None:
            try:
                return self.forks.launch(worker_id, threads=self.threads_per_worker,
                                         parent_pid=os.getpid())
            except ForkServerError as exc:
                log.warning("%s; spawning worker %s instead", exc, worker_id)
        cmd = [
            sys.executable, "-m", "imgrec", "worker",
            "--worker-id", worker_id,
            "--worker-threads", str(self.threads_per_worker),
            "--parent-pid", str(os.getpid()),
        ]
        return subprocess.Popen(cmd, env=self._env, start_new_session=True)

    def drain(self, worker_ids: Sequence[str]) -> None:
        with self._lock:
            for worker_id in worker_ids:
                proc = self._procs.get(worker_id)
                if proc is None or proc.draining:
                    continue
                proc.draining = True
                if proc.popen.poll() is None:
                    proc.popen.send_signal(signal.SIGTERM)
        if worker_ids:
            log.info("draining worker(s): %s", ", ".join(worker_ids))

    def list(self) -> list[WorkerInfo]:
        beats = read_heartbeats(self.store)
        with self._lock:
            self._reap_locked()
            infos: list[WorkerInfo] = []
            for proc in self._procs.values():
                beat = beats.get(proc.worker_id)
                state = beat.state if beat else WorkerState.STARTING
                if beat and state != WorkerState.STARTING and proc.ready_s is None:
                    self._note_ready(proc, beat.started_at)
                if state == WorkerState.STOPPED:
                    state = WorkerState.DRAINING
                if proc.draining:
                    state = WorkerState.DRAINING
                infos.append(
                    WorkerInfo(
                        worker_id=proc.worker_id,
                        state=state,
                        launched_at=proc.launched_at,
                        last_seen=beat.updated_at if beat else proc.launched_at,
                        idle_since=beat.idle_since if beat else None,
                        processed=beat.processed if beat else 0,
                        pid=proc.popen.pid,
                        ready_s=proc.ready_s,
                    )
                )
        return infos

    def _note_ready(self, proc: _Process, ready_at: float) -> None:
        # The worker's READY heartbeat is created right after its model loaded.
        proc.ready_s = max(0.0, ready_at - proc.launched_at)
        self.readiness_s.append(proc.ready_s)
        log.info("worker %s ready %.0f ms after launch", proc.worker_id, proc.ready_s * 1000)

    def terminate(self, worker_ids: Sequence[str]) -> None:
        """Kill the named workers (SIGKILL): for workers stuck starting or gone silent."""
        with self._lock:
            for worker_id in worker_ids:
                proc = self._procs.get(worker_id)
                if proc is not None and proc.popen.poll() is None:
                    proc.draining = True  # ended on purpose: not counted as a crash
                    proc.popen.kill()
        if worker_ids:
            log.warning("killed worker(s): %s", ", ".join(worker_ids))

    def health(self) -> FleetHealth:
        with self._lock:
            self._reap_locked()
            return FleetHealth(launch_to_ready_s=tuple(self.readiness_s),
                               crashed=len(self.crashed))

    def close(self, timeout_s: float = 30.0) -> None:
        self.drain(list(self._procs))
        deadline = time.monotonic() + timeout_s
        for proc in list(self._procs.values()):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in time; killing it", proc.worker_id)
                proc.popen.kill()
                proc.popen.wait()
        with self._lock:
            self._reap_locked()
        if self.forks is not None:
            self.forks.close()

    def _reap_locked(self) -> None:
        for worker_id, proc in list(self._procs.items()):
            code = proc.popen.poll()
            if code is None:
                continue
            del self._procs[worker_id]
            if code != 0 and not proc.draining:
                self.crashed.append((worker_id, code))
                log.warning("worker %s exited with code %d", worker_id, code)
            if self.requests is not None:
                self.released += release_held_requests(self.store, self.requests, worker_id)
            with contextlib.suppress(ImgrecError):  # cleanup only
                self.store.delete(keys.heartbeat_key(worker_id))


def release_held_requests(store: ObjectStore, requests: Queue, worker_id: str) -> int:
    """Make the requests a dead worker held visible again now; return how many were listed.

    Receipts the worker deleted meanwhile, or that were received again since, match nothing:
    releasing them is a no-op, so the list may be stale.
    """
    try:
        record = HeartbeatRecord.from_json(store.get(keys.heartbeat_key(worker_id)))
    except ObjectNotFound:
        return 0
    except (ImgrecError, ValueError, KeyError, TypeError) as exc:
        log.warning("heartbeat of %s unreadable; its requests come back after the visibility "
                    "timeout: %s", worker_id, exc)
        return 0
    released = 0
    for receipt in record.receipts:
        try:
            requests.change_visibility(receipt, 0)
            released += 1
        except ImgrecError as exc:
            log.warning("request of %s not released (it comes back after the visibility "
                        "timeout): %s", worker_id, exc)
    if released:
        log.info("released %d request(s) held by worker %s", released, worker_id)
    return released
