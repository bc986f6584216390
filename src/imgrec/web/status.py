"""``GET /api/v1/status``: queue depth, workers, scaling decisions, throughput and history.

Works with the autoscaler (``mode: autoscale``), pinned workers (``mode: fixed``) and a web tier
without workers (no fleet, no controller: empty lists).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from ..ports import WorkerInfo, WorkerState
from .cost import cost_section

if TYPE_CHECKING:
    from .app import Runtime

_STATES = (WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY, WorkerState.DRAINING)


def _worker_entry(w: WorkerInfo) -> dict[str, Any]:
    return {
        "id": w.worker_id, "state": w.state.value, "processed": w.processed,
        "launched_at": w.launched_at, "idle_since": w.idle_since,
        "pid": w.pid, "ready_s": w.ready_s,
    }


def _workers(workers: list[WorkerInfo]) -> dict[str, Any]:
    by_state = {s.value: 0 for s in _STATES}
    for w in workers:
        if w.state.value in by_state:
            by_state[w.state.value] += 1
    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "list": [_worker_entry(w) for w in workers],
    }


def build_status(rt: Runtime) -> dict[str, Any]:
    """The status document (blocking: reads the queue and the fleet)."""
    depth = rt.backend.requests.depth()
    bulk = rt.backend.bulk.depth() if rt.backend.bulk is not None else None
    dead = rt.backend.dead_letters.depth()
    stats = rt.metrics.recent.stats()
    settings = rt.settings
    scaling: dict[str, Any] = {
        "mode": "fixed" if settings.workers is not None else "autoscale",
        "min": settings.workers if settings.workers is not None else settings.min_workers,
        "max": settings.workers if settings.workers is not None else settings.max_workers,
        "decisions": [],
        "launch_to_ready_s": None,
        "problems": [],
    }
    history: list[dict[str, Any]] = []
    workers: list[WorkerInfo] = []
    if rt.scaling is not None:
        controller = rt.scaling.controller
        # The controller's last tick already listed the fleet; listing it again per status
        # poll would cost heartbeat reads (and, on EC2, a DescribeInstances) per open page.
        seen = controller.last_workers()
        workers = seen if seen is not None else rt.scaling.fleet.list()
        scaling.update(mode=controller.mode, min=controller.settings.min_workers,
                       max=controller.settings.max_workers, launch_to_ready_s=controller.boot_s())
        scaling["problems"] = controller.problems()
        scaling["decisions"] = [
            {"time": d.time, "launch": d.launch, "drain": list(d.drain), "reason": d.reason,
             "inputs": d.inputs}
            for d in controller.recent_decisions()
        ]
        history = [
            {"t": h.t, "visible": h.visible, "in_flight": h.in_flight, "workers": h.workers,
             "busy": h.busy, "answered_per_s": h.answered_per_s, "p50_ms": h.p50_ms}
            for h in controller.recent_history()
        ]
    return {
        "time": time.time(),
        "backend": rt.backend.description,
        "queue": {"visible": depth.visible, "in_flight": depth.in_flight,
                  "dead_letter": dead.visible + dead.in_flight},
        # "queue" is the interactive lane (as before lanes existed); batch items wait here.
        "bulk": None if bulk is None else {"visible": bulk.visible, "in_flight": bulk.in_flight},
        "cost": cost_section(rt.scaling.controller if rt.scaling is not None else None),
        "workers": _workers(workers),
        "scaling": scaling,
        "throughput": {"answered_per_s": stats.answered_per_s,
                       "latency_ms": {"p50": stats.p50_ms, "p95": stats.p95_ms}},
        "history": history,
    }


def status_router(runtime: Callable[[], Runtime]) -> APIRouter:
    """The ``/api/v1/status`` route, reading the running app's ``Runtime``."""
    router = APIRouter()

    @router.get("/api/v1/status", summary="Queue, workers, scaling decisions and throughput")
    async def status() -> dict[str, Any]:
        rt = runtime()
        return await rt.calls.run("reading the status", build_status, rt)

    return router
