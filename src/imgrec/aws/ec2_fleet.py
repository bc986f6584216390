"""``Fleet`` of EC2 instances launched from the stack's worker launch template.

An instance's worker id is its instance id (the user data passes it to the worker), so the
worker's heartbeat in the store tells a running instance's state: starting (booting, loading
the model), ready or busy. Draining terminates only idle workers; systemd on the instance stops
the worker gracefully. The cap counts every pending and running worker of the stack, not only
the ones this process launched, so two web tiers cannot overshoot it together.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .. import keys
from ..errors import ImgrecError
from ..ports import FleetHealth, ObjectStore, WorkerInfo, WorkerState
from ..worker.heartbeat import HeartbeatRecord, read_heartbeats
from . import resources
from .errors import translated
from .naming import ROLE_WORKER, StackNames

log = logging.getLogger(__name__)
_ALIVE = ("pending", "running")
_LEAVING = ("shutting-down", "stopping", "stopped")


def worker_state(ec2_state: str, beat: HeartbeatRecord | None) -> WorkerState:
    """A worker's state from its instance state and its heartbeat (pure)."""
    if ec2_state in _LEAVING:
        return WorkerState.DRAINING
    if ec2_state == "pending" or beat is None:
        return WorkerState.STARTING
    if beat.state == WorkerState.STOPPED:
        return WorkerState.DRAINING
    return beat.state


class Ec2Fleet:
    """Worker instances of one stack, at most ``max_workers`` pending or running at once."""

    def __init__(
        self,
        ec2: Any,
        names: StackNames,
        store: ObjectStore,
        *,
        max_workers: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ec2 = ec2
        self.names = names
        self.store = store
        self.max_workers = max_workers
        self._clock = clock
        self._launched: set[str] = set()
        self._terminated: set[str] = set()
        self._alive_seen: set[str] = set()
        self._ready_s: dict[str, float] = {}
        self._readiness: deque[float] = deque(maxlen=20)
        self._crashed: set[str] = set()
        self._lock = threading.Lock()

    def _instances(self, states: tuple[str, ...]) -> list[dict[str, Any]]:
        return resources.stack_instances(self.ec2, self.names, ROLE_WORKER, states)

    def launch(self, count: int) -> list[str]:
        with self._lock:
            alive = len(self._instances(_ALIVE))
            room = min(count, self.max_workers - alive)
            if room <= 0:
                return []
            what = f"cannot launch workers from {self.names.launch_template(ROLE_WORKER)}"
            # All-or-nothing failed for lack of capacity: one is better than none.
            short = {"InsufficientInstanceCapacity"} if room > 1 else set()
            with translated(what, tolerate=short) as outcome:
                response = self._run(room)
            if outcome.tolerated:
                with translated(what):
                    response = self._run(1)
            ids = [str(i["InstanceId"]) for i in response["Instances"]]
            self._launched.update(ids)
        log.info("launched %d worker instance(s): %s", len(ids), ", ".join(ids))
        return ids

    def _run(self, count: int) -> Any:
        return self.ec2.run_instances(
            LaunchTemplate={"LaunchTemplateName": self.names.launch_template(ROLE_WORKER),
                            "Version": "$Default"},
            MinCount=count, MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": k, "Value": v} for k, v in self.names.stack_tags(ROLE_WORKER).items()]}],
        )

    def list(self) -> list[WorkerInfo]:
        instances = self._instances(_ALIVE + _LEAVING)
        beats = read_heartbeats(self.store) if instances else {}
        infos: list[WorkerInfo] = []
        for inst in instances:
            worker_id = str(inst["InstanceId"])
            beat = beats.get(worker_id)
            launched = inst["LaunchTime"].timestamp() if "LaunchTime" in inst else self._clock()
            state = worker_state(inst["State"]["Name"], beat)
            if beat is not None and state != WorkerState.STARTING:
                self._note_ready(worker_id, beat.started_at - launched)
            infos.append(WorkerInfo(
                worker_id=worker_id,
                state=state,
                launched_at=launched,
                last_seen=beat.updated_at if beat else launched,
                idle_since=beat.idle_since if beat else None,
                processed=beat.processed if beat else 0,
                pid=beat.pid if beat else None,
                ready_s=self._ready_s.get(worker_id),
            ))
        self._note_gone({w.worker_id for w in infos if w.state != WorkerState.DRAINING})
        return infos

    def _note_ready(self, worker_id: str, ready_s: float) -> None:
        # A worker's running heartbeat is created right after its model loaded.
        with self._lock:
            if worker_id not in self._ready_s:
                self._ready_s[worker_id] = max(0.0, ready_s)
                self._readiness.append(self._ready_s[worker_id])

    def _note_gone(self, alive: set[str]) -> None:
        """Workers that stopped being alive without being terminated by us have crashed."""
        with self._lock:
            for worker_id in self._alive_seen - alive:
                if worker_id not in self._terminated:
                    self._crashed.add(worker_id)
                self._ready_s.pop(worker_id, None)
            self._alive_seen = alive

    def health(self) -> FleetHealth:
        with self._lock:
            return FleetHealth(launch_to_ready_s=tuple(self._readiness),
                               crashed=len(self._crashed))

    def drain(self, worker_ids: Sequence[str]) -> None:
        """Terminate the named workers that are idle; busy or starting ones are left alone."""
        wanted = set(worker_ids)
        idle = [w.worker_id for w in self.list()
                if w.worker_id in wanted and w.state == WorkerState.READY]
        skipped = wanted - set(idle)
        if skipped:
            log.info("not draining %d worker(s) that are not idle: %s", len(skipped),
                     ", ".join(sorted(skipped)))
        self._terminate(idle)

    def _terminate(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with translated("cannot terminate worker instances"):
            self.ec2.terminate_instances(InstanceIds=list(ids))
        with self._lock:
            self._terminated.update(ids)
        for worker_id in ids:
            with contextlib.suppress(ImgrecError):  # a stale heartbeat is harmless
                self.store.delete(keys.heartbeat_key(worker_id))
        log.info("terminating worker instance(s): %s", ", ".join(ids))

    def close(self) -> None:
        """Terminate the instances this fleet launched (others of the stack keep running)."""
        alive = {str(i["InstanceId"]) for i in self._instances(_ALIVE)}
        self._terminate(sorted(self._launched & alive))
