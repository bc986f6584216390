"""Workers forked by the fork server: they answer, their deaths are seen, they end with serve.

Real worker processes, the real model, real SQLite queues and a directory store; the fleet
runs in this process (its fork server is its child) or, for the death of serve, in a child
process that the test kills.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import DevPhoto

from imgrec import keys
from imgrec.backend import Backend, open_backend
from imgrec.config import load_settings
from imgrec.embedded.fork_client import fork_supported
from imgrec.embedded.process_fleet import ProcessFleet
from imgrec.messages import ClassifyRequest, Reply
from imgrec.model.classifier import load_classifier
from imgrec.ports import WorkerState
from imgrec.worker.heartbeat import HeartbeatRecord

pytestmark = pytest.mark.skipif(not fork_supported(), reason="needs fork and pidfds (Linux)")

REPLIES = "replies-fork-test"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    backend = open_backend(load_settings(state_dir=tmp_path / "state", worker_threads=1,
                                         worker_start="fork", visibility_timeout_s=300))
    yield backend
    backend.close()


@pytest.fixture
def fleet(backend: Backend) -> Iterator[ProcessFleet]:
    fleet = backend.open_fleet(2)
    assert isinstance(fleet, ProcessFleet)
    yield fleet
    fleet.close()


def _parent_of(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return int(raw[raw.rindex(")") + 2:].split()[1])


def _ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (an orphan's new parent may be slow to)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return raw[raw.rindex(")") + 2] in "ZX"


def _wait_ready(fleet: ProcessFleet, ids: list[str], timeout_s: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready = {w.worker_id: w.pid for w in fleet.list()
                 if w.worker_id in ids and w.state == WorkerState.READY and w.pid}
        if len(ready) == len(ids):
            return ready
        time.sleep(0.05)
    raise AssertionError(f"workers {ids} not ready: {fleet.list()}")


def _enqueue(backend: Backend, data: bytes) -> str:
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), REPLIES, time.time())
    backend.store.put(request.key, data)
    backend.requests.send([request.encode()])
    return request_id


def test_forked_workers_answer_like_the_bare_model(
    backend: Backend, fleet: ProcessFleet, dev_photos: list[DevPhoto]
) -> None:
    ids = fleet.launch(2)
    pids = _wait_ready(fleet, ids)
    assert fleet.forks is not None
    assert {_parent_of(pid) for pid in pids.values()} == {fleet.forks.pid}  # forked, not spawned
    photos = dev_photos[:12]
    bare = load_classifier("mobilenet_v2", threads=1).classify_images(
        [p.path.read_bytes() for p in photos])
    replies = backend.broker.open(REPLIES)
    want = {_enqueue(backend, p.path.read_bytes()): b for p, b in zip(photos, bare, strict=True)}
    got: dict[str, Reply] = {}
    deadline = time.monotonic() + 60
    while len(got) < len(want) and time.monotonic() < deadline:
        for message in replies.receive(10, wait_s=1):
            reply = Reply.decode(message.body)
            got[reply.request_id] = reply
            replies.delete([message.receipt])
    assert set(got) == set(want)
    for request_id, reply in got.items():
        assert reply.result is not None and reply.result.ok
        assert reply.result.class_index == want[request_id].class_index  # type: ignore[union-attr]
    assert all(s >= 0 for s in fleet.health().launch_to_ready_s)


def test_out_of_memory_the_kernel_picks_a_worker_before_the_fork_server(
    fleet: ProcessFleet,
) -> None:
    pids = _wait_ready(fleet, fleet.launch(1))
    assert fleet.forks is not None

    def score(pid: int) -> int:
        return int(Path(f"/proc/{pid}/oom_score_adj").read_text())

    assert [score(pid) for pid in pids.values()] == [300]
    assert fleet.forks.pid is not None and score(fleet.forks.pid) < 300


def test_a_killed_forked_worker_is_a_crash_and_its_requests_come_back(
    backend: Backend, fleet: ProcessFleet, dev_photos: list[DevPhoto]
) -> None:
    [worker_id] = fleet.launch(1)
    pid = _wait_ready(fleet, [worker_id])[worker_id]
    os.kill(pid, signal.SIGSTOP)  # frozen: its heartbeat stays what the test writes below
    _enqueue(backend, dev_photos[0].path.read_bytes())
    [held] = backend.requests.receive(1, wait_s=1, visibility_s=300)
    key = keys.heartbeat_key(worker_id)
    beat = HeartbeatRecord.from_json(backend.store.get(key))
    beat.receipts = [held.receipt]
    backend.store.put(key, beat.to_json())
    assert (backend.requests.depth().visible, backend.requests.depth().in_flight) == (0, 1)

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while any(w.worker_id == worker_id for w in fleet.list()):
        assert time.monotonic() < deadline, "the killed worker is still listed"
        time.sleep(0.05)
    assert fleet.crashed == [(worker_id, -signal.SIGKILL)]
    assert fleet.released == 1
    assert backend.requests.depth().visible == 1  # visible again at once, not in 300 s


def test_a_dead_fork_server_is_replaced_and_its_orphan_still_supervised(
    fleet: ProcessFleet,
) -> None:
    [first] = fleet.launch(1)
    first_pid = _wait_ready(fleet, [first])[first]
    assert fleet.forks is not None and fleet.forks.pid is not None
    old_server = fleet.forks.pid
    os.kill(old_server, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while fleet.forks.alive():
        assert time.monotonic() < deadline, "the fleet never saw its fork server die"
        time.sleep(0.05)
    assert first in {w.worker_id for w in fleet.list()}  # the orphan works on

    [second] = fleet.launch(1)
    second_pid = _wait_ready(fleet, [second])[second]
    assert fleet.forks.pid not in (None, old_server)
    assert _parent_of(second_pid) == fleet.forks.pid

    fleet.terminate([first])
    while first in {w.worker_id for w in fleet.list()}:
        assert time.monotonic() < deadline + 20, "the orphan's end was never seen"
        time.sleep(0.05)
    assert _ended(first_pid)
    assert fleet.crashed == []  # terminated on purpose


_FLEET_IN_A_CHILD = textwrap.dedent("""
    import sys, time
    from imgrec.backend import open_backend
    from imgrec.config import load_settings
    backend = open_backend(load_settings(state_dir=sys.argv[1], worker_threads=1,
                                         worker_start="fork"))
    fleet = backend.open_fleet(1)
    [worker_id] = fleet.launch(1)
    while not [w for w in fleet.list() if w.worker_id == worker_id and w.ready_s]:
        time.sleep(0.05)
    [pid] = [w.pid for w in fleet.list()]
    print(pid, fleet.forks.pid, flush=True)
    time.sleep(600)
""")


def test_workers_and_fork_server_end_when_the_fleets_process_dies(tmp_path: Path) -> None:
    env = {**os.environ, "IMGREC_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-c", _FLEET_IN_A_CHILD, str(tmp_path / "state")],
                            stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        worker_pid, server_pid = (int(v) for v in proc.stdout.readline().split())
        assert not _ended(worker_pid) and not _ended(server_pid)
        proc.kill()  # like a SIGKILLed imgrec serve: no drain, no goodbye
        proc.wait()
        deadline = time.monotonic() + 20
        while not (_ended(worker_pid) and _ended(server_pid)):
            assert time.monotonic() < deadline, "a worker or the fork server outlived serve"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_hung_fork_server_is_ended_and_the_worker_spawned(fleet: ProcessFleet) -> None:
    assert fleet.forks is not None
    fleet.forks.launch_timeout_s = 1.0
    [first] = fleet.launch(1)
    _wait_ready(fleet, [first])
    hung = fleet.forks.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)  # alive, never answers
    [second] = fleet.launch(1)
    second_pid = _wait_ready(fleet, [second])[second]
    assert _parent_of(second_pid) == os.getpid()  # spawned by the fleet itself
    deadline = time.monotonic() + 10
    while not _ended(hung):
        assert time.monotonic() < deadline, "the hung fork server was left running"
        time.sleep(0.05)
