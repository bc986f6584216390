"""The Queue contract (SQS semantics): every adapter must pass every test here."""

from __future__ import annotations

import threading
import time

import pytest

from imgrec.errors import QueueNotFound
from imgrec.ports import Message, QueueBroker


def test_send_then_receive_returns_the_body(broker: QueueBroker, queue_name: str) -> None:
    q = broker.open(queue_name)
    [mid] = q.send(['{"id": "a"}'])
    [msg] = q.receive(1, wait_s=1.0, visibility_s=30)
    assert msg.body == '{"id": "a"}'
    assert msg.message_id == mid
    assert msg.receive_count == 1
    assert msg.sent_at > 0


def test_batch_send_and_receive_respects_max(broker: QueueBroker, queue_name: str) -> None:
    q = broker.open(queue_name)
    ids = q.send([f"m{i}" for i in range(15)])
    assert len(set(ids)) == 15
    got = q.receive(10, wait_s=1.0, visibility_s=30)
    assert 1 <= len(got) <= 10
    seen = {m.body for m in got}
    deadline = time.monotonic() + 10
    while len(seen) < 15 and time.monotonic() < deadline:
        seen |= {m.body for m in q.receive(10, wait_s=1.0, visibility_s=30)}
    assert seen == {f"m{i}" for i in range(15)}


def test_received_message_is_hidden_then_redelivered(broker: QueueBroker, queue_name: str) -> None:
    q = broker.open(queue_name)
    q.send(["x"])
    [first] = q.receive(1, wait_s=1.0, visibility_s=1)
    assert q.receive(1, wait_s=0.0) == []
    time.sleep(1.3)
    [again] = q.receive(1, wait_s=2.0, visibility_s=30)
    assert again.body == "x"
    assert again.receive_count == 2
    assert again.receipt != first.receipt


def test_delete_removes_for_good(broker: QueueBroker, queue_name: str) -> None:
    q = broker.open(queue_name)
    q.send(["x", "y"])
    got = q.receive(10, wait_s=1.0, visibility_s=1)
    while len(got) < 2:
        got += q.receive(10, wait_s=1.0, visibility_s=1)
    q.delete([m.receipt for m in got])
    time.sleep(1.3)
    assert q.receive(10, wait_s=0.5) == []
    assert q.depth().total == 0


def test_change_visibility_zero_makes_it_visible_at_once(
    broker: QueueBroker, queue_name: str
) -> None:
    q = broker.open(queue_name)
    q.send(["x"])
    [msg] = q.receive(1, wait_s=1.0, visibility_s=60)
    q.change_visibility(msg.receipt, 0)
    [again] = q.receive(1, wait_s=2.0, visibility_s=60)
    assert again.body == "x"


def test_depth_counts_visible_and_in_flight(broker: QueueBroker, queue_name: str) -> None:
    q = broker.open(queue_name)
    q.send(["a", "b", "c"])
    got = q.receive(1, wait_s=1.0, visibility_s=60)
    assert len(got) == 1
    depth = q.depth()
    assert (depth.visible, depth.in_flight) == (2, 1)
    assert depth.total == 3


def test_long_poll_wakes_soon_after_a_send(broker: QueueBroker, queue_name: str) -> None:
    q = broker.open(queue_name)
    sender = threading.Timer(0.3, lambda: q.send(["late"]))
    started = time.monotonic()
    sender.start()
    got = q.receive(1, wait_s=5.0, visibility_s=30)
    waited = time.monotonic() - started
    sender.join()
    assert [m.body for m in got] == ["late"]
    assert waited < 2.0  # woke on the send, not at the end of the 5 s wait


def test_long_poll_on_an_empty_queue_waits_then_returns_nothing(
    broker: QueueBroker, queue_name: str
) -> None:
    q = broker.open(queue_name)
    started = time.monotonic()
    assert q.receive(1, wait_s=1.0) == []
    assert time.monotonic() - started >= 0.9


def test_dead_letter_after_max_receives(broker: QueueBroker, queue_name: str) -> None:
    dlq_name = f"{queue_name}-dead"
    q = broker.open(queue_name, dead_letter=dlq_name, max_receives=2)
    dlq = broker.open(dlq_name)
    q.send(["poison"])
    for attempt in (1, 2):
        [msg] = q.receive(1, wait_s=2.0, visibility_s=1)
        assert msg.receive_count == attempt
        q.change_visibility(msg.receipt, 0)
    deadline = time.monotonic() + 10
    moved: list[Message] = []
    while not moved and time.monotonic() < deadline:
        assert q.receive(1, wait_s=0.5, visibility_s=1) == []
        moved = dlq.receive(1, wait_s=0.5, visibility_s=30)
    assert [m.body for m in moved] == ["poison"]


def test_concurrent_receivers_get_every_message(
    broker: QueueBroker, queue_name: str, request: pytest.FixtureRequest
) -> None:
    """Nothing is lost between receivers; SQLite also never hands one message to two of them.

    SQS standard queues deliver at least once (a copy may come twice, and moto's receive has
    no lock between threads: getmoto/moto#519); the workers are built for it (a redelivered
    request reuses its stored result).
    """
    exactly_once = request.node.callspec.params["broker"] == "sqlite"
    q = broker.open(queue_name)
    bodies = [f"m{i}" for i in range(60)]
    for start in range(0, len(bodies), 10):
        q.send(bodies[start:start + 10])
    seen: list[str] = []
    lock = threading.Lock()
    give_up = time.monotonic() + 30

    def consume() -> None:
        # An empty receive does not mean an empty queue (SQS samples its servers, moto under
        # load answers late): stop once everything is seen, not at the first empty answer.
        while time.monotonic() < give_up:
            with lock:
                if set(seen) >= set(bodies):
                    return
            got = q.receive(10, wait_s=0.5, visibility_s=60)
            with lock:
                seen.extend(m.body for m in got)
            q.delete([m.receipt for m in got])

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(seen) == set(bodies)
    if exactly_once:
        assert sorted(seen) == sorted(bodies)


def test_open_without_create_raises_for_a_missing_queue(
    broker: QueueBroker, queue_name: str
) -> None:
    with pytest.raises(QueueNotFound):
        broker.open(f"{queue_name}-missing", create=False)


def test_deleted_queue_is_gone(broker: QueueBroker, queue_name: str) -> None:
    broker.open(queue_name).send(["x"])
    broker.delete_queue(queue_name)
    with pytest.raises(QueueNotFound):
        broker.open(queue_name, create=False)
    broker.delete_queue(queue_name)  # deleting twice is fine
