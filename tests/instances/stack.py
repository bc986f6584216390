"""What the simulated-instance tests watch of a stack: its workers' heartbeats in the store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from imgrec.aws.naming import ROLE_WORKER, StackNames
from imgrec.aws.s3_store import S3Store
from imgrec.aws.session import AwsSession
from imgrec.errors import ImgrecError
from imgrec.ports import WorkerState
from imgrec.worker.heartbeat import read_heartbeats

from .harness import InstanceHarness, SimulatedInstance


@dataclass(frozen=True)
class ReadyWorker:
    """A worker instance and when it launched, booted and first said READY (``time.time()``)."""

    instance_id: str
    launched_at: float
    booted_at: float
    ready_at: float


def heartbeat_store(names: StackNames) -> S3Store:
    """The stack's outputs bucket, as this process's environment reaches it (moto)."""
    return S3Store(AwsSession(names.region).client("s3"), names.outputs_bucket)


def consoles(harness: InstanceHarness, instances: list[SimulatedInstance]) -> str:
    return "\n".join(f"--- console of {i.instance_id} ---\n"
                     f"{(harness.console(i.instance_id) or '')[-3000:]}" for i in instances)


def wait_for_ready_workers(harness: InstanceHarness, names: StackNames, *, count: int,
                           timeout_s: float) -> list[ReadyWorker]:
    """The first ``count`` booted worker instances whose heartbeat says READY (or BUSY)."""
    store = heartbeat_store(names)
    ready: dict[str, ReadyWorker] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        booted = {i.instance_id: i for i in harness.instances() if i.role == ROLE_WORKER}
        for worker_id, beat in read_heartbeats(store).items():
            inst = booted.get(worker_id)
            if inst and worker_id not in ready and beat.state in (WorkerState.READY,
                                                                   WorkerState.BUSY):
                ready[worker_id] = ReadyWorker(worker_id, inst.launched_at, inst.booted_at,
                                               beat.updated_at)
        if len(ready) >= count:
            return sorted(ready.values(), key=lambda w: w.ready_at)[:count]
        time.sleep(0.5)
    workers = [i for i in harness.instances() if i.role == ROLE_WORKER]
    raise TimeoutError(f"{len(ready)} of {count} workers ready after {timeout_s:.0f} s "
                       f"({len(workers)} booted)\n{consoles(harness, workers)}")


class ReadinessWatch:
    """Records, in the background, when each booted worker first beat READY or BUSY.

    Example::

        with ReadinessWatch(harness, names) as watch:
            ...  # load
        watch.ready  # {instance id: ReadyWorker}
    """

    def __init__(self, harness: InstanceHarness, names: StackNames, poll_s: float = 0.5) -> None:
        self.harness = harness
        self.store = heartbeat_store(names)
        self.poll_s = poll_s
        self.ready: dict[str, ReadyWorker] = {}
        self.processed: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readiness-watch", daemon=True)

    def __enter__(self) -> ReadinessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            booted = {i.instance_id: i for i in self.harness.instances()
                      if i.role == ROLE_WORKER}
            try:
                beats = read_heartbeats(self.store)
            except ImgrecError:
                continue
            for worker_id, beat in beats.items():
                inst = booted.get(worker_id)
                if inst is None:
                    continue
                self.processed[worker_id] = max(beat.processed,
                                                self.processed.get(worker_id, 0))
                if worker_id not in self.ready and beat.state in (WorkerState.READY,
                                                                  WorkerState.BUSY):
                    self.ready[worker_id] = ReadyWorker(worker_id, inst.launched_at,
                                                        inst.booted_at, beat.updated_at)
