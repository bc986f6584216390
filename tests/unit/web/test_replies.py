"""The reply dispatcher with a real SQLite reply queue: each request is resolved once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from imgrec.embedded.dir_store import DirectoryStore
from imgrec.embedded.sqlite_queue import SqliteBroker
from imgrec.messages import ClassifyResult, Reply, TopPrediction
from imgrec.web.replies import ReplyDispatcher


def _result(request_id: str) -> ClassifyResult:
    return ClassifyResult(request_id, True, "m", (TopPrediction("tench", 0, 0.9),))


def test_duplicate_and_unknown_replies_are_ignored(tmp_path: Path) -> None:
    queue = SqliteBroker(tmp_path / "q.db").open("replies-t")
    dispatcher = ReplyDispatcher(queue, DirectoryStore(tmp_path / "o"), poll_wait_s=0.2)

    async def scenario() -> ClassifyResult:
        dispatcher.start(asyncio.get_running_loop())
        future = dispatcher.expect("a" * 32)
        body = Reply("a" * 32, _result("a" * 32)).encode()
        queue.send([body, body, Reply("b" * 32, _result("b" * 32)).encode()])
        result = await asyncio.wait_for(future, timeout=5)
        for _ in range(50):
            if queue.depth().total == 0:
                break
            await asyncio.sleep(0.05)
        return result

    try:
        result = asyncio.run(scenario())
    finally:
        dispatcher.stop()
    assert result.label == "tench"
    assert dispatcher.duplicates == 1  # the second reply for "a"
    assert dispatcher.unclaimed == 1  # the reply nobody waited for
    assert dispatcher.waiting == 0
    assert queue.depth().total == 0


def test_a_reference_reply_is_resolved_from_the_store(tmp_path: Path) -> None:
    queue = SqliteBroker(tmp_path / "q.db").open("replies-t")
    store = DirectoryStore(tmp_path / "o")
    store.put(f"results/{'c' * 32}.json", _result("c" * 32).to_json())
    dispatcher = ReplyDispatcher(queue, store, poll_wait_s=0.2)

    async def scenario() -> ClassifyResult:
        dispatcher.start(asyncio.get_running_loop())
        future = dispatcher.expect("c" * 32)
        queue.send([Reply("c" * 32, None).encode()])
        return await asyncio.wait_for(future, timeout=5)

    try:
        assert asyncio.run(scenario()) == _result("c" * 32)
    finally:
        dispatcher.stop()


def test_replies_to_tracked_jobs_report_their_latency(tmp_path: Path) -> None:
    queue = SqliteBroker(tmp_path / "q.db").open("replies-t")
    seen: list[tuple[str, float]] = []
    dispatcher = ReplyDispatcher(
        queue, DirectoryStore(tmp_path / "o"), poll_wait_s=0.2,
        on_tracked_answer=lambda result, latency: seen.append((result.request_id, latency)),
    )

    async def scenario() -> None:
        dispatcher.start(asyncio.get_running_loop())
        dispatcher.track("d" * 32)
        queue.send([Reply("d" * 32, _result("d" * 32)).encode()])
        for _ in range(100):
            if seen:
                return
            await asyncio.sleep(0.02)

    try:
        asyncio.run(scenario())
    finally:
        dispatcher.stop()
    assert [rid for rid, _ in seen] == ["d" * 32]
    assert 0 <= seen[0][1] < 5
    assert dispatcher.unclaimed == 0


def test_on_answer_hears_every_reply_and_a_replay_is_answered_anew(tmp_path: Path) -> None:
    queue = SqliteBroker(tmp_path / "q.db").open("replies-t")
    dispatcher = ReplyDispatcher(queue, DirectoryStore(tmp_path / "o"))
    heard: list[str] = []
    dispatcher.on_answer = heard.append
    dispatcher.track("a" * 32)
    body = Reply("a" * 32, _result("a" * 32)).encode()
    queue.send([body, body, Reply("b" * 32, _result("b" * 32)).encode()])
    handled = 0
    while handled < 3:
        handled += dispatcher.dispatch_once(wait_s=1.0)
    assert heard == ["a" * 32, "a" * 32, "b" * 32]  # the duplicate too: it may be a replay
    assert dispatcher.duplicates == 1
    dispatcher.track("a" * 32)  # replayed: its next reply is an answer, not a duplicate
    queue.send([body])
    while not dispatcher.dispatch_once(wait_s=1.0):
        pass
    assert dispatcher.duplicates == 1
