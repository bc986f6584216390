"""``imgrec serve``: the web tier in this process, the workers as child processes.

The web app's lifespan starts the autoscaler (``imgrec.autoscale.controller``), which starts
and drains the workers: elastic between ``min_workers`` and ``max_workers`` by default, or
exactly ``workers`` when that is set.

Ctrl-C or SIGTERM stops accepting connections, finishes requests in progress, drains the
workers (each finishes its batch in hand) and exits. Accepted requests are durable in the
queue, so a restart picks them up again.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import threading
import types
from collections.abc import Callable, Iterator

import uvicorn

from .backend import open_backend
from .config import Settings
from .errors import ConfigError

log = logging.getLogger(__name__)
_GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (Python's default: 700)
_KEEP_ALIVE_S = 75  # as nginx's keepalive_timeout; above the 60 s idle timeout of AWS's ALB


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its shutdown, which would skip draining the workers."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
        self.on_exit()  # open event streams would hold the graceful shutdown to its timeout
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def check_address_free(host: str, port: int) -> None:
    """Fail early with a clear message, before workers start, if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}; "
                "stop what uses it or pick another port with --port"
            ) from exc


def run_server(settings: Settings) -> None:
    from .autoscale.controller import Controller, policy_settings
    from .autoscale.memory import EstimateMemory
    from .lanes import LanedRequests
    from .web.app import Scaling, create_app

    check_address_free(settings.host, settings.port)
    backend = open_backend(settings)
    mode, bounds = policy_settings(settings)
    fleet = backend.open_fleet(max(bounds.max_workers, 1))
    # The fleet serves both lanes, so the autoscaler sizes it for their summed depth.
    controller = Controller(LanedRequests(backend.requests, backend.bulk), fleet, bounds, mode=mode,
                            tick_s=settings.autoscale_tick_s,
                            boot_deadline_s=settings.boot_deadline_s,
                            silent_after_s=settings.worker_silent_after_s,
                            memory=EstimateMemory(backend.store, settings.model))
    app = create_app(settings, backend, scaling=Scaling(fleet, controller))
    log.info("imgrec serving on http://%s:%d (%s, %d..%d workers, %s)", settings.host,
             settings.port, mode, bounds.min_workers, bounds.max_workers, backend.description)
    server = _Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                       timeout_graceful_shutdown=max(5, int(settings.sync_timeout_s)),
                       # uvicorn's default of 5 s closes a client's idle connection between two
                       # bursts (a grading run, a page left open), and it reconnects for the next.
                       timeout_keep_alive=_KEEP_ALIVE_S),
        on_exit=app.state.end_streams,
    )
    # What the imports and start-up made lives as long as the process: moved out of the
    # collector's generations, a full collection no longer walks it (it was a fifth of the event
    # loop's CPU under load), and young collections come less often (docs/performance.md).
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    try:
        server.run()
    finally:
        backend.close()
        log.info("imgrec stopped")
