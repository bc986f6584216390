"""A reply queue seen missing once is retried later, not silenced for good (issue 12, item 10)."""

from __future__ import annotations

from pathlib import Path

from imgrec.embedded.sqlite_queue import SqliteBroker
from imgrec.worker.reply_queues import ReplyQueues


def test_a_queue_gone_once_is_tried_again_after_the_ttl(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "q.db")
    now = [0.0]
    replies = ReplyQueues(broker, gone_ttl_s=30, clock=lambda: now[0])

    assert replies.send("replies-a", ["r1"]) is False  # not there (yet)
    queue = broker.open("replies-a")  # it appears: a transient QueueNotFound
    now[0] = 29.0
    assert replies.send("replies-a", ["r2"]) is False  # still remembered as gone
    now[0] = 31.0
    assert replies.send("replies-a", ["r3"]) is True
    assert [m.body for m in queue.receive(10)] == ["r3"]


def test_a_queue_deleted_while_open_is_noticed_and_retried(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "q.db")
    now = [0.0]
    replies = ReplyQueues(broker, gone_ttl_s=30, clock=lambda: now[0])
    broker.open("replies-b")
    assert replies.send("replies-b", ["r1"]) is True
    broker.delete_queue("replies-b")
    assert replies.send("replies-b", ["r2"]) is False
    queue = broker.open("replies-b")
    now[0] = 31.0
    assert replies.send("replies-b", ["r3"]) is True
    assert [m.body for m in queue.receive(10)] == ["r3"]


def test_only_the_most_recent_queues_are_remembered(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "q.db")
    replies = ReplyQueues(broker, max_queues=3)
    for i in range(10):
        broker.open(f"replies-{i}")
        assert replies.send(f"replies-{i}", ["r"])
    assert len(replies) == 3
