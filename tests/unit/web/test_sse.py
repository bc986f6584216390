"""The SSE encoding and the generic state stream, without a server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from imgrec.web.sse import ChangeNotifier, State, encode_comment, encode_event, state_events


def _parse(raw: bytes) -> list[tuple[str, dict[str, object]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if "data" in fields:
            out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def test_an_event_is_event_id_and_one_data_line_then_a_blank_line() -> None:
    raw = encode_event({"id": "a", "status": "done\nnow"}, event="state", event_id="7")
    assert raw == b'event: state\nid: 7\ndata: {"id":"a","status":"done\\nnow"}\n\n'
    assert encode_comment("keep-alive") == b": keep-alive\n\n"


def test_each_change_is_sent_once_and_the_stream_ends_when_all_are_final() -> None:
    states = {"a": ["queued", "queued", "done"], "b": ["failed"]}
    waits: list[Sequence[str]] = []

    async def read(key: str) -> State:
        status = states[key].pop(0) if len(states[key]) > 1 else states[key][0]
        return State({"id": key, "status": status}, final=status != "queued")

    async def wait_any(keys: Sequence[str], timeout_s: float) -> set[str]:
        waits.append(list(keys))
        return set()

    async def run() -> bytes:
        return b"".join([e async for e in state_events(["a", "b", "a"], read, wait_any)])

    events = _parse(asyncio.run(run()))
    assert events == [("state", {"id": "a", "status": "queued"}),
                      ("state", {"id": "b", "status": "failed"}),
                      ("state", {"id": "a", "status": "done"})]
    assert waits == [["a"], ["a"]]  # b was final at once; a was re-read until done


def test_a_stream_that_never_finishes_stops_after_max_s_with_keep_alives() -> None:
    now = [0.0]

    async def read(key: str) -> State:
        return State({"id": key, "status": "queued"}, final=False)

    async def wait_any(keys: Sequence[str], timeout_s: float) -> set[str]:
        now[0] += timeout_s
        return set()

    async def run() -> list[bytes]:
        return [e async for e in state_events(["a"], read, wait_any, poll_s=5, keepalive_s=10,
                                              max_s=30, clock=lambda: now[0])]

    events = asyncio.run(run())
    assert events[0].startswith(b"event: state")
    assert events[1:] == [encode_comment("keep-alive")] * 2


def test_the_notifier_wakes_a_waiter_from_another_thread() -> None:
    async def run() -> float:
        notifier = ChangeNotifier()
        loop = asyncio.get_running_loop()
        notifier.bind(loop)
        started = loop.time()
        waiter = asyncio.create_task(notifier.wait_any(["x", "y"], 30))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(notifier.notify, "y")
        assert await waiter == {"y"}
        assert notifier._waiting == {}
        assert await notifier.wait_any(["x"], 0.01) == set()  # a timeout
        return loop.time() - started

    assert asyncio.run(run()) < 5


def test_a_notified_key_alone_is_read_again() -> None:
    reads: list[str] = []
    done: set[str] = set()

    async def read(key: str) -> State:
        reads.append(key)
        return State({"id": key, "final": key in done}, final=key in done)

    async def wait_any(keys: Sequence[str], timeout_s: float) -> set[str]:
        done.add(keys[0])
        return {keys[0]}  # as the notifier does when that job's answer arrives

    async def run() -> int:
        return len([e async for e in state_events(["a", "b", "c"], read, wait_any)])

    assert asyncio.run(run()) == 6
    assert reads == ["a", "b", "c", "a", "b", "c"]
