"""SQLite-specific behaviour beyond the shared queue contract: durability and cross-process wake."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from imgrec.embedded.sqlite_queue import SqliteBroker, SqliteQueue
from imgrec.errors import QueueNotFound


def test_messages_survive_reopening_the_file(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    first = SqliteBroker(db)
    first.open("requests").send(["a", "b"])
    [msg] = first.open("requests").receive(1, visibility_s=60)
    first.close()
    second = SqliteBroker(db)
    q = second.open("requests", create=False)
    depth = q.depth()
    assert (depth.visible, depth.in_flight) == (1, 1)
    assert [m.body for m in q.receive(5)] == ["b" if msg.body == "a" else "a"]
    second.close()


def test_long_poll_wakes_within_tens_of_ms_when_another_process_sends(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    broker = SqliteBroker(db)
    q = broker.open("requests")
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from imgrec.embedded.sqlite_queue import SqliteBroker\n"
        "q = SqliteBroker(Path(sys.argv[1])).open('requests')\n"
        "time.sleep(1.0)\n"
        "q.send([repr(time.time())])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(db)])
    try:
        got = q.receive(1, wait_s=15.0)
        woke_at = time.time()
    finally:
        proc.wait(timeout=30)
    assert len(got) == 1
    latency = woke_at - float(got[0].body)
    assert latency < 0.1, f"woke {latency * 1000:.0f} ms after the send"
    broker.close()


def test_zero_visibility_receive_does_not_loop(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "q.db")
    q = broker.open("q")
    q.send(["x"])
    got = q.receive(10, visibility_s=0)
    assert [m.body for m in got] == ["x"]
    broker.close()


def test_sending_to_a_deleted_queue_is_refused(tmp_path: Path) -> None:
    import pytest

    from imgrec.errors import QueueNotFound

    broker = SqliteBroker(tmp_path / "q.db")
    q = broker.open("replies-x")
    broker.delete_queue("replies-x")
    with pytest.raises(QueueNotFound):
        q.send(["late reply"])
    broker.close()


def _sends_waiting(broker: SqliteBroker, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(broker._pending) < n:
        assert time.monotonic() < deadline, "the sends never queued up"
        time.sleep(0.001)


def test_concurrent_sends_share_one_commit(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "q.db")
    q = broker.open("requests")
    commits = broker._local_commits
    with broker._lock:  # a commit in progress: the next sends queue up behind it
        threads = [threading.Thread(target=q.send, args=([f"m{i}"],)) for i in range(20)]
        for thread in threads:
            thread.start()
        _sends_waiting(broker, 20)
    for thread in threads:
        thread.join()
    assert broker._local_commits - commits == 1
    assert sorted(m.body for m in q.receive(10) + q.receive(10)) == sorted(f"m{i}"
                                                                          for i in range(20))


def test_a_missing_queue_in_a_group_fails_only_its_own_send(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "q.db")
    q = broker.open("requests")
    gone = broker.open("gone")
    broker.delete_queue("gone")
    outcomes: dict[str, BaseException | None] = {}

    def send(queue: SqliteQueue) -> None:
        try:
            queue.send(["x"])
            outcomes[queue.name] = None
        except QueueNotFound as exc:
            outcomes[queue.name] = exc

    with broker._lock:
        threads = [threading.Thread(target=send, args=(queue,)) for queue in (q, gone)]
        for thread in threads:
            thread.start()
        _sends_waiting(broker, 2)
    for thread in threads:
        thread.join()
    assert outcomes["requests"] is None
    assert isinstance(outcomes["gone"], QueueNotFound)
    assert [m.body for m in q.receive(5)] == ["x"]


def _waiting(broker: SqliteBroker, queue: str, timeout_s: float) -> tuple[threading.Thread,
                                                                          list[float]]:
    took: list[float] = []

    def wait() -> None:
        start = time.monotonic()
        broker._wait_for_change(timeout_s, queue)
        took.append(time.monotonic() - start)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.05)  # the waiter is waiting
    return thread, took


def test_a_local_send_wakes_the_receivers_of_its_queue_only(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "q.db")
    requests, replies = broker.open("requests"), broker.open("replies")
    other, other_took = _waiting(broker, "replies", 0.6)
    own, own_took = _waiting(broker, "requests", 5.0)
    requests.send(["r"])
    own.join()
    other.join()
    assert own_took[0] < 1.0
    assert other_took[0] >= 0.6
    assert [m.body for m in replies.receive(1)] == []


def test_every_waiter_of_a_process_sees_another_process_commit(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    broker = SqliteBroker(db)
    broker.open("requests")
    waiters = [_waiting(broker, name, 5.0) for name in ("replies", "requests-dead")]
    SqliteBroker(db).open("requests").send(["from elsewhere"])  # another connection
    for thread, took in waiters:
        thread.join()
        assert took[0] < 1.0


class _SlowToStartWaiting(SqliteBroker):
    """Widens the moment between a receive's empty look and the start of its wait."""

    def _wait_for_change(self, *args: object, **kwargs: object) -> None:
        time.sleep(0.05)
        super()._wait_for_change(*args, **kwargs)  # type: ignore[arg-type]


def test_a_commit_seen_by_another_waiter_between_look_and_wait_is_not_missed(
        tmp_path: Path) -> None:
    # A worker's two receivers (interactive and bulk lane) share one poll of the file. If the
    # bulk receiver's poll sees another process's send after the interactive receiver looked
    # (empty) but before it started waiting, that wake-up must still count for it.
    db = tmp_path / "q.db"
    broker = _SlowToStartWaiting(db)
    requests = broker.open("requests")
    broker.open("requests-bulk")
    bulk_waiter = threading.Thread(
        target=lambda: broker.open("requests-bulk").receive(1, wait_s=1.5))
    bulk_waiter.start()
    time.sleep(0.1)  # the bulk receiver is the one polling
    got: list[float] = []

    def receive() -> None:
        start = time.monotonic()
        requests.receive(1, wait_s=1.0)
        got.append(time.monotonic() - start)

    receiver = threading.Thread(target=receive)
    receiver.start()
    time.sleep(0.02)  # looked, found nothing, not waiting yet
    SqliteBroker(db).open("requests").send(["r"])  # another process's connection
    receiver.join()
    bulk_waiter.join()
    assert got[0] < 0.09, f"the receive took {got[0]:.3f} s: a lost wake-up"
