"""The three seams between imgrec's logic and the machinery it runs on.

The worker, the web tier and the autoscaler talk only to these protocols. Each has an embedded
adapter (a directory, a SQLite file, local processes) and an AWS one (S3, SQS, EC2); one contract
test suite per protocol runs against every adapter.

All methods are synchronous and may block on I/O: async callers go through
Starlette's ``run_in_threadpool``. A new backend is one package that implements these and
exposes an ``open_backend(settings) -> imgrec.backend.Backend`` (see ``imgrec.backend``).
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class ObjectStore(Protocol):
    """A flat key -> bytes store (a directory, or an S3 bucket).

    Keys are relative, '/'-separated paths such as ``inputs/3f2a.../image``. A ``put`` is atomic:
    a reader sees the old object, the new one, or none, never a partial one.

    Example::

        store.put("results/abc.json", b"{}")
        assert store.exists("results/abc.json")
        assert list(store.list("results/")) == ["results/abc.json"]
    """

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous object."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if no object is there; False if one already was.

        Atomic across processes and machines (a directory: a hard link; S3: a conditional
        ``PutObject`` with ``If-None-Match: *``): of several callers racing on one key exactly
        one gets True. The first write wins; nothing is replaced.
        """
        ...

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """``put`` each (key, data); cheaper than one ``put`` each for many small objects.

        Every object is stored when it returns (durable as a ``put`` is); the group is not
        atomic: after a failure some of them may be stored.
        """
        ...

    def put_many_if_absent(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """``put_if_absent`` of each (key, data), in order: whether each was stored (a worker
        stores a batch's results at once; a directory then makes one directory fsync)."""
        ...

    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise ``ObjectNotFound`` if there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key that starts with ``prefix``, in lexicographic order."""
        ...


@dataclass(frozen=True, slots=True)
class Message:
    """A message as received: its body, the receipt to delete it with, how often it was received."""

    message_id: str
    receipt: str
    body: str
    receive_count: int
    sent_at: float


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Messages waiting to be received (``visible``), received but not deleted (``in_flight``)."""

    visible: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


@runtime_checkable
class Queue(Protocol):
    """A queue with SQS semantics.

    A received message stays invisible for ``visibility_s`` seconds; unless deleted by then it
    becomes visible again and its ``receive_count`` grows on the next receive. A queue created
    with a dead-letter queue and ``max_receives`` moves a message there instead of delivering it
    a ``max_receives + 1``-th time. ``receive`` with ``wait_s > 0`` long-polls: it returns as soon
    as a message is available (tens of milliseconds, across processes) or after ``wait_s``.

    Example::

        q.send(['{"id": "a"}'])
        [m] = q.receive(max_messages=10, wait_s=1.0, visibility_s=30)
        q.delete([m.receipt])
    """

    name: str

    def send(self, bodies: Sequence[str]) -> list[str]:
        """Enqueue the bodies (in one call where the backend allows); return their message ids."""
        ...

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]:
        """Receive up to ``max_messages``; wait up to ``wait_s`` seconds for the first one."""
        ...

    def delete(self, receipts: Sequence[str]) -> None:
        """Delete received messages by receipt; stale or unknown receipts are ignored."""
        ...

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        """Make a received message visible again after ``visibility_s`` seconds (0: at once)."""
        ...

    def depth(self) -> QueueDepth:
        """How many messages are visible and in flight (approximate on SQS)."""
        ...


@runtime_checkable
class QueueBroker(Protocol):
    """Opens and removes named queues (a SQLite file, or an SQS account and region)."""

    def open(
        self,
        name: str,
        *,
        dead_letter: str | None = None,
        max_receives: int | None = None,
        create: bool = True,
    ) -> Queue:
        """Return the queue named ``name``, creating it (and its redrive policy) if asked."""
        ...

    def delete_queue(self, name: str) -> None:
        """Remove a queue and its messages; a missing queue is not an error."""
        ...

    def close(self) -> None:
        """Release connections and files; queues opened from the broker stop working."""
        ...


class WorkerState(enum.StrEnum):
    """The life of one worker, as the fleet and the autoscaler see it."""

    STARTING = "starting"  # launched, model not loaded yet
    READY = "ready"  # idle, waiting for requests
    BUSY = "busy"  # classifying a batch
    DRAINING = "draining"  # told to stop; finishing the batch in hand
    STOPPED = "stopped"  # exited (reaped soon)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker of the fleet: its id, state, when it started and what it has done."""

    worker_id: str
    state: WorkerState
    launched_at: float
    last_seen: float
    idle_since: float | None = None
    processed: int = 0
    pid: int | None = None  # the worker's process id, where the fleet knows it
    ready_s: float | None = None  # launch-to-ready seconds, once it has been ready


@dataclass(frozen=True, slots=True)
class FleetHealth:
    """What a fleet measured about its workers, for the autoscaler and the status page.

    ``launch_to_ready_s`` holds the recent launch-to-ready times (seconds, oldest first);
    ``crashed`` counts the workers that ended without being drained since the fleet started;
    ``launch_problem`` says why launches are held back (a quota, no capacity), if they are;
    ``worker_kind`` names what a worker runs on, so measured rates and boot times are
    remembered per kind.

    Example::

        health = fleet.health()
        boot_s = statistics.median(health.launch_to_ready_s) if health.launch_to_ready_s else None
    """

    launch_to_ready_s: tuple[float, ...] = ()
    crashed: int = 0
    launch_problem: str | None = None
    worker_kind: str = "local"  # what a worker runs on: "local", or the EC2 instance type


@runtime_checkable
class Fleet(Protocol):
    """The app tier's workers: local processes, or EC2 instances."""

    def list(self) -> list[WorkerInfo]:
        """Every worker that is not yet gone, with its current state."""
        ...

    def launch(self, count: int) -> builtins.list[str]:
        """Start ``count`` workers (fewer if that would pass the cap); return their ids."""
        ...

    def drain(self, worker_ids: Sequence[str]) -> None:
        """Ask the workers to finish their batch in hand and stop."""
        ...

    def terminate(self, worker_ids: Sequence[str]) -> None:
        """Stop the workers at once, whatever their state (stuck booting, gone silent).

        Their requests in hand come back to the queue after the visibility timeout.
        """
        ...

    def health(self) -> FleetHealth:
        """Recent launch-to-ready times, how many workers crashed, why launches are held."""
        ...

    def close(self) -> None:
        """Stop every worker (gracefully) and release resources."""
        ...


@dataclass
class Backend:
    """Everything the tiers need from one backend: its store, queues and a fleet factory.

    Each backend package (``imgrec.embedded``, ``imgrec.aws``) has one entry point,
    ``open_backend(settings) -> Backend``; ``imgrec.backend.open_backend`` picks it by name.

    Example::

        backend = open_backend(settings)
        backend.requests.send([request.encode()])
        fleet = backend.open_fleet(max_workers=4)
    """

    store: ObjectStore
    broker: QueueBroker
    requests: Queue
    dead_letters: Queue
    description: str
    fleet_factory: Callable[[int], Fleet]
    bulk: Queue | None = None  # the lower-priority lane of batch items (``imgrec.lanes``)
    # Opens another bucket of the same provider read-only, for batches from s3://bucket/prefix.
    open_source: Callable[[str], ObjectStore] | None = None

    def open_fleet(self, max_workers: int) -> Fleet:
        """The backend's fleet of workers, at most ``max_workers`` at once."""
        return self.fleet_factory(max_workers)

    def close(self) -> None:
        self.broker.close()
