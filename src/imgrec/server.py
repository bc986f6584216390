"""``imgrec serve``: the web tier in this process, the workers as child processes.

Ctrl-C or SIGTERM stops accepting connections, finishes requests in progress, drains the
workers (each finishes its batch in hand) and exits. Accepted requests are durable in the
queue, so a restart picks them up again.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import uvicorn

from .backend import open_backend
from .config import Settings
from .fleets import open_fleet
from .ports import Fleet, WorkerState

log = logging.getLogger(__name__)


class FixedSizeSupervisor:
    """Keeps exactly ``count`` workers alive: replaces one that crashed or exited."""

    def __init__(self, fleet: Fleet, count: int, *, tick_s: float = 1.0) -> None:
        self.fleet = fleet
        self.count = count
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def tick(self) -> None:
        alive = [w for w in self.fleet.list() if w.state != WorkerState.DRAINING]
        missing = self.count - len(alive)
        if missing > 0:
            self.fleet.launch(missing)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep supervising whatever happened
                log.exception("supervisor tick failed")
            self._stop.wait(self.tick_s)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its shutdown, which would skip draining the workers."""

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


def run_server(settings: Settings) -> None:
    from .web.app import create_app

    backend = open_backend(settings)
    count = settings.workers if settings.workers is not None else settings.max_workers
    fleet = open_fleet(settings, backend, max_workers=max(count, 1))
    supervisor = FixedSizeSupervisor(fleet, count)
    app = create_app(settings, backend)
    app.state.fleet = fleet
    supervisor.start()
    log.info("imgrec serving on http://%s:%d (%d workers, %s)", settings.host, settings.port,
             count, backend.description)
    server = _Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                       timeout_graceful_shutdown=max(5, int(settings.sync_timeout_s)))
    )
    try:
        server.run()
    finally:
        supervisor.stop()
        fleet.close()
        backend.close()
        log.info("imgrec stopped")
