"""Two request lanes behind one queue (``imgrec.lanes``), on every queue adapter."""

from __future__ import annotations

import time

from imgrec.lanes import LanedRequests, is_bulk_receipt
from imgrec.ports import Message, QueueBroker


def _lanes(broker: QueueBroker, queue_name: str) -> LanedRequests:
    return LanedRequests(broker.open(f"{queue_name}-i"), broker.open(f"{queue_name}-b"))


def _receive_all(lanes: LanedRequests, n: int) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        got += lanes.receive_batch(max_size=10, bulk_max_size=10, first_wait_s=0.5,
                                   fill_wait_s=0.01, visibility_s=30)
    return got


def test_interactive_messages_are_taken_before_bulk_ones(broker: QueueBroker,
                                                         queue_name: str) -> None:
    lanes = _lanes(broker, queue_name)
    assert lanes.bulk is not None
    lanes.bulk.send([f"b{i}" for i in range(5)])
    lanes.send(["i0", "i1"])
    first = _receive_all(lanes, 2)
    assert sorted(m.body for m in first) == ["i0", "i1"]
    assert not any(is_bulk_receipt(m.receipt) for m in first)
    rest = _receive_all(lanes, 5)
    assert sorted(m.body for m in rest) == [f"b{i}" for i in range(5)]
    assert all(is_bulk_receipt(m.receipt) for m in rest)


def test_a_batch_never_mixes_the_lanes_and_bulk_batches_are_capped(
    broker: QueueBroker, queue_name: str
) -> None:
    lanes = _lanes(broker, queue_name)
    assert lanes.bulk is not None
    lanes.bulk.send([f"b{i}" for i in range(6)])
    batch: list[Message] = []
    deadline = time.monotonic() + 10
    while not batch and time.monotonic() < deadline:
        batch = lanes.receive_batch(max_size=10, bulk_max_size=3, first_wait_s=0.5,
                                    fill_wait_s=0.05, visibility_s=30)
    assert 1 <= len(batch) <= 3
    lanes.send(["i0"])
    [only] = _receive_all(lanes, 1)
    assert only.body == "i0"


def test_delete_and_visibility_go_to_the_lane_a_message_came_from(
    broker: QueueBroker, queue_name: str
) -> None:
    lanes = _lanes(broker, queue_name)
    assert lanes.bulk is not None
    lanes.send(["i0"])
    lanes.bulk.send(["b0", "b1"])
    got = _receive_all(lanes, 3)
    assert lanes.depth().in_flight == 3
    by_body = {m.body: m for m in got}
    lanes.change_visibility(by_body["b1"].receipt, 0)  # released: visible again at once
    lanes.delete([by_body["i0"].receipt, by_body["b0"].receipt])
    [again] = _receive_all(lanes, 1)
    assert again.body == "b1" and again.receive_count == 2
    lanes.delete([again.receipt])
    deadline = time.monotonic() + 10
    while lanes.depth().total and time.monotonic() < deadline:
        time.sleep(0.2)  # SQS's approximate counts lag a little
    interactive, bulk = lanes.lane_depths()
    assert interactive.total == 0 and bulk.total == 0


def test_depth_counts_both_lanes(broker: QueueBroker, queue_name: str) -> None:
    lanes = _lanes(broker, queue_name)
    assert lanes.bulk is not None
    lanes.send(["i0"])
    lanes.bulk.send(["b0", "b1"])
    deadline = time.monotonic() + 10
    while lanes.depth().visible < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lanes.depth().visible == 3
    interactive, bulk = lanes.lane_depths()
    assert (interactive.visible, bulk.visible) == (1, 2)
