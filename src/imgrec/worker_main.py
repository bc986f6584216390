"""Entry point of one worker process: ``python -m imgrec.worker_main`` (also ``imgrec worker``).

Kept free of the web stack's imports so a worker is ready soon after launch. Settings come from
``IMGREC_*`` variables; SIGTERM and SIGINT finish the batch in hand, then exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from types import FrameType

from .ports import WorkerState

_STARTED = time.perf_counter()  # module import: about when the interpreter became ready
log = logging.getLogger("imgrec.worker")


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            log.warning("parent process %d is gone; stopping", parent_pid)
            stop.set()


def run_worker(
    worker_id: str | None = None,
    threads: int | None = None,
    parent_pid: int | None = None,
    until_empty: bool = False,
) -> int:
    from .backend import open_backend
    from .config import load_settings
    from .heartbeat import Heartbeat
    from .model.classifier import load_classifier
    from .worker import Worker

    imported = time.perf_counter()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in hand, then exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid, stop), daemon=True).start()

    settings = load_settings()
    backend = open_backend(settings)
    worker_id = worker_id or f"{os.uname().nodename}-{os.getpid()}"
    Heartbeat(backend.store, worker_id).beat(WorkerState.STARTING)
    opened = time.perf_counter()
    classifier = load_classifier(settings.model, threads=threads or settings.threads_per_worker())
    worker = Worker(backend, classifier, settings, worker_id=worker_id)
    ready = time.perf_counter()
    log.info("worker %s ready in %.0f ms (imports %.0f, settings+backend %.0f, model %.0f)",
             worker_id, (ready - _STARTED) * 1000, (imported - _STARTED) * 1000,
             (opened - imported) * 1000, (ready - opened) * 1000)
    counters = worker.run(stop, until_empty=until_empty)
    log.info("worker %s stopped after %d requests", worker_id, counters.received)
    backend.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imgrec-worker", description=__doc__)
    parser.add_argument("--worker-id")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--until-empty", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("IMGREC_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_worker(args.worker_id, args.threads, args.parent_pid, args.until_empty)


if __name__ == "__main__":
    raise SystemExit(main())
