"""The fork server: one process that imports the worker's modules once, then forks workers.

A worker started from scratch spends most of its start in imports (ONNX Runtime, numpy,
Pillow, the worker's own modules). The process fleet starts this server once
(``python -m imgrec.embedded.fork_server CMD_FD EVENT_FD``) and asks it for workers; each fork
is ready to load its model at once. The ONNX session is created after the fork, in the child:
ONNX Runtime's state (its thread pools) must not cross a fork, and with the model file in the
page cache a session opens in tens of milliseconds.

The protocol is JSON lines over two pipes, so the server needs nothing but the standard
library to talk:

- ``CMD_FD`` (fleet -> server): ``{"op": "launch", "worker_id", "threads", "parent_pid"}``;
  end of file (the fleet closed it, or its process died) stops the server. Its workers keep
  running: each watches ``parent_pid`` (the fleet's process) itself.
- ``EVENT_FD`` (server -> fleet): ``{"event": "ready", "pid"}`` once the imports are done,
  ``{"event": "started", "worker_id", "pid"}`` per fork, ``{"event": "exited", "pid", "code"}``
  when a worker ends (the server is their parent and reaps them; ``code`` as ``Popen``'s
  ``returncode``: negative for a signal).

The server keeps one thread and opens no file, database or socket before it forks, so a child
inherits no lock held by another thread and no connection it would share.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_WORKER_OOM_SCORE_ADJ = 300  # of -1000..1000; the server and the web tier stay at 0


def preload() -> None:
    """Import what a worker needs before it loads its model (the slow part of its start)."""
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401
    from PIL import Image, JpegImagePlugin, PngImagePlugin  # noqa: F401

    from .. import messages  # noqa: F401
    from ..config import load_settings
    from ..errors import ImgrecError
    from ..model import classifier, optimized, preprocess, spec  # noqa: F401
    from ..worker import heartbeat, loop, main  # noqa: F401
    from . import backend as embedded_backend  # noqa: F401
    from . import dir_store, sqlite_queue  # noqa: F401

    # Warm what every child does first: validate the settings, read the model's spec and
    # labels (files read and closed; nothing stays open across the fork). A bad setting or
    # model is the child's to report, with the message the user needs.
    with contextlib.suppress(ImgrecError):
        spec.resolve_model(load_settings().model)


def _send(fd: int, event: dict[str, Any]) -> None:
    os.write(fd, json.dumps(event).encode() + b"\n")


def _run_child(request: dict[str, Any]) -> int:
    """In the forked child: the worker, as ``imgrec worker`` would run it."""
    from ..config import load_settings
    from ..errors import ImgrecError
    from ..worker.main import run_worker

    started = time.perf_counter()
    try:
        settings = load_settings(worker_threads=int(request["threads"]))
        return run_worker(settings, worker_id=str(request["worker_id"]),
                          parent_pid=int(request["parent_pid"]), started=started)
    except ImgrecError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


def _first_for_the_oom_killer() -> None:
    """Out of memory, the kernel should kill a worker (replaced, its requests redelivered),
    not the smaller fork server: its death would take the workers' exit codes with it. Raising
    one's own score needs no privilege."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text(f"{_WORKER_OOM_SCORE_ADJ}\n")


def _fork_worker(request: dict[str, Any], inherited_fds: tuple[int, ...]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()  # its own session, like a spawned worker: a terminal's Ctrl-C misses it
        _first_for_the_oom_killer()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited_fds:
            os.close(fd)
        code = _run_child(request)
    except BaseException:  # noqa: BLE001 - a child must never return into the server's loop
        log.exception("worker %s failed", request.get("worker_id"))
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip the interpreter's and C++ libraries' exit handlers: they belong to the server
        # (ONNX Runtime's static state would try to join threads that only the server has).
        os._exit(code)
    return 0  # pragma: no cover - unreachable


def _reap(event_fd: int) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(event_fd, {"event": "exited", "pid": pid,
                         "code": os.waitstatus_to_exitcode(status)})


def serve(cmd_fd: int, event_fd: int) -> int:
    """Answer launch requests until ``cmd_fd`` reaches end of file."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the fleet stops the server, not a Ctrl-C
    inherited = (cmd_fd, event_fd, wake_r, wake_w)
    preload()
    # Objects the imports made stay out of the collector's sight, so that collections in the
    # workers do not write to (and copy) the pages they share with this process.
    gc.freeze()
    _send(event_fd, {"event": "ready", "pid": os.getpid()})
    pending = b""
    while True:
        try:
            readable, _, _ = select.select([cmd_fd, wake_r], [], [])
        except InterruptedError:  # pragma: no cover - select retries itself (PEP 475)
            continue
        if wake_r in readable:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
            _reap(event_fd)
        if cmd_fd not in readable:
            continue
        chunk = os.read(cmd_fd, 65536)
        if not chunk:
            _reap(event_fd)
            return 0
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            request = json.loads(line)
            if request.get("op") == "launch":
                pid = _fork_worker(request, inherited)
                _send(event_fd, {"event": "started", "worker_id": request["worker_id"],
                                 "pid": pid})


def main(argv: list[str]) -> int:
    level = os.environ.get("IMGREC_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(int(argv[0]), int(argv[1]))
    except BrokenPipeError:  # the fleet is gone: nobody to tell about exits any more
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
