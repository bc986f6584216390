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
from ..errors import ImgrecError, ObjectNotFound
from ..ports import FleetHealth, ObjectStore, WorkerInfo, WorkerState
from ..worker.heartbeat import HeartbeatRecord
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
    """Worker instances of one stack, at most ``max_workers`` pending or running at once.

    EC2 is eventually consistent: an instance that RunInstances returned may not show in
    DescribeInstances for a while. Until it does (or ``unseen_grace_s`` passes) it still
    counts, as a starting worker, so a lagging Describe never takes the fleet past its cap.
    A refused launch (no vCPU quota left, no capacity, throttled) holds further launches back,
    5 s doubling to 5 min, instead of asking again every tick; ``health`` says why.
    """

    def __init__(
        self,
        ec2: Any,
        names: StackNames,
        store: ObjectStore,
        *,
        max_workers: int,
        clock: Callable[[], float] = time.time,
        unseen_grace_s: float = 300.0,
    ) -> None:
        self.ec2 = ec2
        self.names = names
        self.store = store
        self.max_workers = max_workers
        self.unseen_grace_s = unseen_grace_s
        self.monotonic: Callable[[], float] = time.monotonic
        self._clock = clock
        self._launched: set[str] = set()
        self._unseen: dict[str, tuple[float, float]] = {}  # id -> (monotonic, wall) at launch
        self._terminated: set[str] = set()
        self._alive_seen: set[str] = set()
        self._ready_s: dict[str, float] = {}
        self._readiness: deque[float] = deque(maxlen=20)
        self._crashed: set[str] = set()
        self._backoff = LaunchBackoff()
        self._kind: str | None = None
        self._lock = threading.Lock()

    def _instances(self, states: tuple[str, ...]) -> list[dict[str, Any]]:
        return resources.stack_instances(self.ec2, self.names, ROLE_WORKER, states)

    def _not_yet_described(self, described: set[str]) -> dict[str, float]:
        """Launched instances Describe does not show yet: id -> wall-clock launch time."""
        now = self.monotonic()
        with self._lock:
            for worker_id, (at, _wall) in list(self._unseen.items()):
                if worker_id in described or now - at > self.unseen_grace_s:
                    del self._unseen[worker_id]
            return {i: wall for i, (_at, wall) in self._unseen.items()}

    def launch(self, count: int) -> list[str]:
        with self._lock:
            if not self._backoff.allows(self.monotonic()):
                return []
        described = {str(i["InstanceId"]) for i in self._instances(_ALIVE)}
        alive = described | set(self._not_yet_described(described))
        room = min(count, self.max_workers - len(alive))
        if room <= 0:
            return []
        try:
            with translated(f"cannot launch workers from "
                            f"{self.names.launch_template(ROLE_WORKER)}"):
                response = self._run(room)
        except ImgrecError as exc:
            with self._lock:
                wait_s = self._backoff.refused(self.monotonic(), str(exc))
            log.warning("launch refused: %s; holding launches for %.0f s", exc, wait_s)
            return []
        ids = [str(i["InstanceId"]) for i in response["Instances"]]
        with self._lock:
            self._backoff.succeeded()
            self._launched.update(ids)
            for worker_id in ids:
                self._unseen[worker_id] = (self.monotonic(), self._clock())
        log.info("launched %d worker instance(s): %s", len(ids), ", ".join(ids))
        return ids

    def _run(self, count: int) -> Any:
        # MinCount=1: as many as the account's quota and EC2's capacity allow, not all or none.
        return self.ec2.run_instances(
            LaunchTemplate={"LaunchTemplateName": self.names.launch_template(ROLE_WORKER),
                            "Version": "$Default"},
            MinCount=1, MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": k, "Value": v} for k, v in self.names.stack_tags(ROLE_WORKER).items()]}],
        )

    def list(self) -> list[WorkerInfo]:
        instances = self._instances(_ALIVE + _LEAVING)
        infos: list[WorkerInfo] = []
        for inst in instances:
            worker_id = str(inst["InstanceId"])
            ec2_state = inst["State"]["Name"]
            beat = self._heartbeat(worker_id) if ec2_state == "running" else None
            if ec2_state in _LEAVING and worker_id in self._terminated:
                self._forget_heartbeat(worker_id)  # a late beat of a worker we terminated
            launched = inst["LaunchTime"].timestamp() if "LaunchTime" in inst else self._clock()
            state = worker_state(ec2_state, beat)
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
        described = {w.worker_id for w in infos}
        for worker_id, launched in self._not_yet_described(described).items():
            infos.append(WorkerInfo(worker_id=worker_id, state=WorkerState.STARTING,
                                    launched_at=launched, last_seen=launched))
        self._note_gone({w.worker_id for w in infos if w.state != WorkerState.DRAINING})
        return infos

    def _heartbeat(self, worker_id: str) -> HeartbeatRecord | None:
        """One live worker's heartbeat: a GET per live worker, never a listing of history."""
        try:
            return HeartbeatRecord.from_json(self.store.get(keys.heartbeat_key(worker_id)))
        except ObjectNotFound:
            return None
        except (ImgrecError, ValueError, KeyError, TypeError) as exc:
            log.debug("heartbeat of %s unreadable: %s", worker_id, exc)
            return None

    def _forget_heartbeat(self, worker_id: str) -> None:
        with contextlib.suppress(ImgrecError):  # the bucket's lifecycle rule expires leftovers
            self.store.delete(keys.heartbeat_key(worker_id))

    def _note_ready(self, worker_id: str, ready_s: float) -> None:
        # A worker's running heartbeat is created right after its model loaded.
        with self._lock:
            if worker_id not in self._ready_s:
                self._ready_s[worker_id] = max(0.0, ready_s)
                self._readiness.append(self._ready_s[worker_id])

    def _note_gone(self, alive: set[str]) -> None:
        """Workers that stopped being alive without being terminated by us have crashed."""
        with self._lock:
            gone = self._alive_seen - alive
            for worker_id in gone:
                if worker_id not in self._terminated:
                    self._crashed.add(worker_id)
                self._ready_s.pop(worker_id, None)
            self._alive_seen = alive
        for worker_id in gone:
            self._forget_heartbeat(worker_id)

    def health(self) -> FleetHealth:
        kind = self._worker_kind()
        with self._lock:
            return FleetHealth(launch_to_ready_s=tuple(self._readiness),
                               crashed=len(self._crashed),
                               launch_problem=self._backoff.problem(self.monotonic()),
                               worker_kind=kind)

    def _worker_kind(self) -> str:
        """The worker template's instance type (looked up once), so estimates are per type."""
        if self._kind is None:
            try:
                template = resources.describe_launch_template(
                    self.ec2, self.names.launch_template(ROLE_WORKER))
            except ImgrecError:
                return "ec2"
            data = template.get("LaunchTemplateData", {}) if template else {}
            self._kind = str(data.get("InstanceType") or "ec2")
        return self._kind

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

    def terminate(self, worker_ids: Sequence[str]) -> None:
        """Terminate the named workers whatever their state (stuck booting, silent)."""
        self._terminate(list(worker_ids))

    def _terminate(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with translated("cannot terminate worker instances"):
            self.ec2.terminate_instances(InstanceIds=list(ids))
        with self._lock:
            self._terminated.update(ids)
            for worker_id in ids:
                self._unseen.pop(worker_id, None)
        for worker_id in ids:
            self._forget_heartbeat(worker_id)
        log.info("terminating worker instance(s): %s", ", ".join(ids))

    def close(self) -> None:
        """Terminate the instances this fleet launched (others of the stack keep running)."""
        alive = {str(i["InstanceId"]) for i in self._instances(_ALIVE)}
        self._terminate(sorted(self._launched & alive))


class LaunchBackoff:
    """When launches may be tried again after refusals: 5 s, doubling to 5 min (not thread-safe).

    Example::

        backoff = LaunchBackoff()
        backoff.refused(now=0.0, why="VcpuLimitExceeded")  # 5.0
        backoff.allows(now=4.0)                            # False
    """

    def __init__(self, first_s: float = 5.0, max_s: float = 300.0) -> None:
        self.first_s, self.max_s = first_s, max_s
        self._wait_s = 0.0
        self._until = 0.0
        self._why: str | None = None

    def allows(self, now: float) -> bool:
        return now >= self._until

    def refused(self, now: float, why: str) -> float:
        self._wait_s = min(self.max_s, max(self.first_s, 2 * self._wait_s))
        self._until = now + self._wait_s
        self._why = why
        return self._wait_s

    def succeeded(self) -> None:
        self._wait_s, self._until, self._why = 0.0, 0.0, None

    def problem(self, now: float) -> str | None:
        if self._why is None:
            return None
        left = max(0.0, self._until - now)
        return f"launches held for {left:.0f} s more: {self._why}"
