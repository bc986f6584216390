"""The Fleet contract: local processes and EC2 instances (on moto) keep the same promises.

What the controller and the status page rely on: launch within the cap, every launched worker
listed (starting until its heartbeat says otherwise), terminate at once, health measured, close
leaves nothing running. EC2 workers never boot on moto; process workers really start.
"""

from __future__ import annotations

import time

from imgrec.ports import Backend, FleetHealth, WorkerState

ALIVE = {WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY}


def _alive(backend_fleet: object, ids: set[str]) -> set[str]:
    from imgrec.ports import Fleet

    assert isinstance(backend_fleet, Fleet)
    return {w.worker_id for w in backend_fleet.list() if w.state in ALIVE} & ids


def test_launch_stays_within_the_cap_and_lists_every_worker(fleet_backend: Backend) -> None:
    fleet = fleet_backend.open_fleet(2)
    try:
        ids = fleet.launch(3)
        assert len(ids) == 2 and len(set(ids)) == 2
        assert fleet.launch(1) == []
        listed = {w.worker_id: w for w in fleet.list()}
        assert set(ids) <= set(listed)
        for worker_id in ids:
            assert listed[worker_id].state in ALIVE
            assert listed[worker_id].launched_at <= time.time() + 1
    finally:
        fleet.close()


def test_terminate_frees_the_place_at_once(fleet_backend: Backend) -> None:
    fleet = fleet_backend.open_fleet(1)
    try:
        [first] = fleet.launch(1)
        fleet.terminate([first])
        deadline = time.monotonic() + 20
        while _alive(fleet, {first}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(fleet, {first})
        assert len(fleet.launch(1)) == 1
        assert fleet.health().crashed == 0  # ended on purpose, not a crash
    finally:
        fleet.close()


def test_health_says_what_the_fleet_measured(fleet_backend: Backend) -> None:
    fleet = fleet_backend.open_fleet(1)
    try:
        health = fleet.health()
        assert isinstance(health, FleetHealth)
        assert health.crashed == 0 and health.launch_problem is None
        assert health.worker_kind in ("local", "c7i.large")
        assert all(s >= 0 for s in health.launch_to_ready_s)
    finally:
        fleet.close()


def test_close_leaves_no_worker_running(fleet_backend: Backend) -> None:
    fleet = fleet_backend.open_fleet(2)
    ids = set(fleet.launch(2))
    fleet.close()
    deadline = time.monotonic() + 30
    while _alive(fleet, ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(fleet, ids)
