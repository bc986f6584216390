"""Entry point of one worker process, ``imgrec worker`` (the process fleet runs the same).

Settings come from the command's flags and ``IMGREC_*`` variables; SIGTERM and SIGINT finish
the batch in hand, then exit 0. A worker started by ``imgrec serve`` is given the parent's pid
and stops by itself when that parent is gone.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from types import FrameType

from ..config import Settings
from ..ports import WorkerState

log = logging.getLogger(__name__)


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    """Set ``stop`` once ``parent_pid`` ends.

    The parent is the supervising fleet's process, which is not this process's parent when
    a fork server forked it: a pidfd tells when that process ends (and cannot be fooled by a
    reused pid); without pidfds, a change of parent does.
    """
    try:
        pidfd = os.pidfd_open(parent_pid)
    except ProcessLookupError:
        pidfd = -1
    except (AttributeError, OSError):  # no pidfds (not Linux, or before 5.3)
        pidfd = None
    if pidfd is None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                break
    elif pidfd >= 0:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)  # readable once the process has ended
        try:
            while not stop.is_set() and not poller.poll(1000):
                pass
        finally:
            os.close(pidfd)
    if not stop.is_set():
        log.warning("parent process %d is gone; stopping", parent_pid)
        stop.set()


def run_worker(
    settings: Settings,
    *,
    worker_id: str | None = None,
    parent_pid: int | None = None,
    until_empty: bool = False,
    started: float | None = None,
) -> int:
    """Load the model, serve requests until stopped; ``started``: perf_counter at process start."""
    from ..backend import open_backend
    from ..model.classifier import load_classifier
    from .heartbeat import Heartbeat
    from .loop import Worker

    started = started if started is not None else time.perf_counter()
    imported = time.perf_counter()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in hand, then exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid, stop), daemon=True).start()

    backend = open_backend(settings)
    worker_id = worker_id or f"{os.uname().nodename}-{os.getpid()}"
    Heartbeat(backend.store, worker_id).beat(WorkerState.STARTING)
    opened = time.perf_counter()
    # Workers on this machine share the state directory: the first one's optimised graph
    # makes the next ones' sessions open faster.
    graph_cache = settings.state_dir / "graphs" if settings.backend == "embedded" else None
    classifier = load_classifier(settings.model, threads=settings.threads_per_worker(),
                                 run_batch=settings.run_batch_size, graph_cache=graph_cache)
    # A worker with a parent is supervised by the local process fleet, which releases the
    # requests it holds when it dies (from the receipts in its heartbeat).
    worker = Worker(backend, classifier, settings, worker_id=worker_id,
                    report_receipts=parent_pid is not None)
    ready = time.perf_counter()
    log.info("worker %s ready in %.0f ms (imports %.0f, backend %.0f, model %.0f)",
             worker_id, (ready - started) * 1000, (imported - started) * 1000,
             (opened - imported) * 1000, (ready - opened) * 1000)
    counters = worker.run(stop, until_empty=until_empty)
    log.info("worker %s stopped after %d requests", worker_id, counters.received)
    backend.close()
    return 0
