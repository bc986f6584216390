"""Every answer exactly once, under churn (issue 14, item 2): a property-based test.

Hypothesis drives random interleavings of the real pieces, in one process and one thread:
clients submit through the web tier's ``ClassifyService`` (sync requests wait on the real
``ReplyDispatcher``, async ones are looked up as jobs), and workers (the real ``Worker``, with
the real model) receive batches and run them step by step (parse, classify, store, reply,
delete). Between any two steps a worker can be killed (its batch abandoned; the embedded fleet
releases what it held at once, or its messages wait for their visibility to lapse), drained
(it finishes its batch, then leaves), or have its lease lapse while it still works (its batch
is received again by another worker: two workers on one request). At the end everything left
is handed to a fresh worker and checked: every accepted request was answered to its client
once, the stored result equals the bare model's, and nothing is left in any queue.

The embedded backend runs many examples; SQS and S3 on moto a few (each call is HTTP).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from tests.conftest import DevPhoto
from tests.helpers import aws_adapters

from imgrec import keys
from imgrec.config import Settings
from imgrec.embedded.backend import open_backend as open_embedded
from imgrec.embedded.process_fleet import release_held_requests
from imgrec.messages import ClassifyResult
from imgrec.model.classifier import Classifier, load_classifier
from imgrec.ports import Backend, Fleet
from imgrec.web.deadline import DeadlineCalls
from imgrec.web.replies import ReplyDispatcher
from imgrec.web.service import ClassifyService
from imgrec.web.uploads import Upload
from imgrec.worker.batch import BatchRun
from imgrec.worker.loop import Worker

PHOTOS = 8
MAX_WORKERS = 3
HOUR_S = 3600.0  # nothing expires by the clock: lapses are the machine's moves


@dataclass
class _Live:
    worker: Worker
    batch: BatchRun | None = None


@dataclass
class _World:
    """One example's service: a backend, the web tier's pieces, and what the clients hold."""

    backend: Backend
    settings: Settings
    classifier: Classifier
    loop: asyncio.AbstractEventLoop
    service: ClassifyService
    dispatcher: ReplyDispatcher
    calls: DeadlineCalls
    sync: dict[str, tuple[str, asyncio.Future[ClassifyResult]]] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)  # async job id -> photo name
    resolutions: dict[str, int] = field(default_factory=dict)
    workers: dict[str, _Live] = field(default_factory=dict)
    all_workers: list[Worker] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)  # receipts of killed workers
    counter: int = 0
    launched: int = 0
    kills_mid_batch: int = 0
    live_lapses: int = 0


class Churn(RuleBasedStateMachine):
    """The state machine; ``open_world`` (set per backend) builds each example's service."""

    open_world: Callable[[], tuple[Backend, Settings, Callable[[], None]]]
    seen: Counter[str]  # what the examples exercised, summed (printed; the test checks it)
    classifier: Classifier
    photos: list[DevPhoto]
    bare: dict[str, int]

    world: _World
    _close: Callable[[], None]

    @initialize()
    def start(self) -> None:
        backend, cfg, close = type(self).open_world()
        loop = asyncio.new_event_loop()
        reply_queue = keys.reply_queue_name()
        dispatcher = ReplyDispatcher(backend.broker.open(reply_queue), backend.store)
        dispatcher.bind(loop)
        calls = DeadlineCalls(timeout_s=30)
        service = ClassifyService(backend, dispatcher, reply_queue, sync_timeout_s=HOUR_S,
                                  calls=calls, retention_s=HOUR_S)
        self.world = _World(backend, cfg, self.classifier, loop, service, dispatcher, calls)
        self._close = close
        # Every example starts with work in hand: two workers, each holding a batch.
        for _ in range(2):
            self.launch()
        self.submit(3, wait=True)
        self.submit(2, wait=False)
        for live in self.world.workers.values():
            messages = live.worker.receive_batch(0.0)
            if messages:
                live.batch = live.worker.start_batch(messages)

    def teardown(self) -> None:
        world = getattr(self, "world", None)
        if world is None:
            return
        try:
            self._settle_and_check(world)
        finally:
            world.calls.close()
            world.loop.close()
            self._close()

    # -- clients -----------------------------------------------------------------------

    @rule(n=st.integers(1, 3), wait=st.booleans())
    def submit(self, n: int, wait: bool) -> None:
        w = self.world
        for _ in range(n):
            photo = self.photos[w.counter % len(self.photos)]
            w.counter += 1
            upload = Upload(photo.path.read_bytes(), photo.path.name, "JPEG")
            request_id, future = w.loop.run_until_complete(w.service.submit(upload, wait=wait))
            if future is None:
                w.jobs[request_id] = photo.path.name
                continue
            w.sync[request_id] = (photo.path.name, future)
            w.resolutions[request_id] = 0

            def count(_f: object, rid: str = request_id) -> None:
                w.resolutions[rid] += 1

            future.add_done_callback(count)

    @rule()
    def dispatch_replies(self) -> None:
        w = self.world
        w.dispatcher.dispatch_once()
        w.loop.run_until_complete(asyncio.sleep(0))  # run the futures' callbacks

    # -- the fleet -----------------------------------------------------------------------

    @precondition(lambda self: len(self.world.workers) < MAX_WORKERS)
    @rule()
    def launch(self) -> None:
        w = self.world
        w.launched += 1
        worker_id = f"w{w.launched}"
        worker = Worker(w.backend, w.classifier, w.settings, worker_id=worker_id,
                        report_receipts=True)
        w.workers[worker_id] = _Live(worker)
        w.all_workers.append(worker)

    def _pick(self, data: st.DataObject, busy: bool | None) -> _Live | None:
        candidates = sorted(k for k, v in self.world.workers.items()
                            if busy is None or (v.batch is not None) == busy)
        if not candidates:
            return None
        return self.world.workers[data.draw(st.sampled_from(candidates))]

    @rule(data=st.data())
    def receive(self, data: st.DataObject) -> None:
        live = self._pick(data, busy=False)
        if live is not None:
            messages = live.worker.receive_batch(0.0)
            if messages:
                live.batch = live.worker.start_batch(messages)

    @rule(data=st.data(), all_steps=st.booleans())
    def work(self, data: st.DataObject, all_steps: bool) -> None:
        """A worker runs the next step of its batch (or all that are left)."""
        live = self._pick(data, busy=True)
        if live is None or live.batch is None:
            return
        if all_steps:
            live.batch.run()
        else:
            live.batch.advance()
        if live.batch.finished:
            live.worker.leases.drop(live.batch.receipts)
            live.batch = None

    @rule(data=st.data(), release=st.booleans(), more_steps=st.integers(0, 4))
    def kill(self, data: st.DataObject, release: bool, more_steps: int) -> None:
        """SIGKILL, after the worker ran up to ``more_steps`` more steps of its batch: the batch
        is abandoned wherever it was."""
        live = self._pick(data, busy=None)
        if live is None:
            return
        w = self.world
        del w.workers[live.worker.worker_id]
        if live.batch is None:
            return
        for _ in range(more_steps):
            if live.batch.done_steps < len(BatchRun.STEPS) - 1:  # not past the last one
                live.batch.advance()
        w.kills_mid_batch += 1
        if release:  # the process fleet saw the exit: it releases from the heartbeat
            release_held_requests(w.backend.store, w.backend.requests, live.worker.worker_id)
        else:  # the visibility timeout will bring them back (``lapse``)
            w.orphaned.extend(live.batch.receipts)

    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        """Scale-in: the worker finishes the batch in hand, then stops."""
        live = self._pick(data, busy=None)
        if live is None:
            return
        if live.batch is not None:
            live.batch.run()
        del self.world.workers[live.worker.worker_id]

    @rule(data=st.data(), live_too=st.booleans(), more_steps=st.integers(0, 4))
    def lapse(self, data: st.DataObject, live_too: bool, more_steps: int) -> None:
        """Visibility timeouts run out: the dead workers' messages come back, and with
        ``live_too`` also a live worker's (a lease not extended in time), after it ran up to
        ``more_steps`` more steps: it goes on working, and another worker takes the batch too."""
        w = self.world
        receipts, w.orphaned = w.orphaned, []
        live = self._pick(data, busy=True) if live_too else None
        if live is not None and live.batch is not None:
            for _ in range(more_steps):  # how far it got when its lease ran out
                if live.batch.done_steps < len(BatchRun.STEPS) - 1:
                    live.batch.advance()
            receipts.extend(live.batch.receipts)
            w.live_lapses += 1
        for receipt in receipts:
            w.backend.requests.change_visibility(receipt, 0)

    @invariant()
    def answered_at_most_once(self) -> None:
        world = getattr(self, "world", None)
        if world is not None:
            assert all(n <= 1 for n in world.resolutions.values())

    # -- the end -------------------------------------------------------------------------

    def _settle_and_check(self, w: _World) -> None:
        for receipt in w.orphaned:
            w.backend.requests.change_visibility(receipt, 0)
        for live in w.workers.values():  # the survivors finish what they hold
            if live.batch is not None:
                live.batch.run()
        last = Worker(w.backend, w.classifier, w.settings, worker_id="last")
        for _ in range(100):
            messages = last.receive_batch(0.0)
            if not messages:
                break
            last.start_batch(messages).run()
        while w.dispatcher.dispatch_once():
            pass
        w.loop.run_until_complete(asyncio.sleep(0))

        seen = type(self).seen
        seen["examples"] += 1
        seen["requests"] += len(w.sync) + len(w.jobs)
        seen["duplicate replies ignored"] += w.dispatcher.duplicates
        seen["kills mid-batch"] += w.kills_mid_batch
        seen["live leases lapsed"] += w.live_lapses
        seen["redelivered results reused"] += sum(
            worker.counters.reused for worker in w.all_workers) + last.counters.reused
        for request_id, (name, future) in w.sync.items():
            assert future.done(), f"sync request {request_id} ({name}) never answered"
            assert w.resolutions[request_id] == 1
            assert future.result().class_index == self.bare[name], name
        for request_id, name in w.jobs.items():
            status = w.loop.run_until_complete(w.service.lookup(request_id))
            assert status.state == "done" and status.result is not None, (request_id, status)
            assert status.result.class_index == self.bare[name], name
        assert w.backend.requests.depth().total == 0
        assert w.backend.dead_letters.depth().total == 0


def _no_fleet(_max: int) -> Fleet:
    raise AssertionError("workers are driven by the test")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier("mobilenet_v2", threads=1)


def _run(machine: type[Churn], classifier: Classifier, photos: list[DevPhoto],
         bare_top1: dict[str, int], *, examples: int, steps: int,
         derandomize: bool = False) -> None:
    machine.classifier = classifier
    machine.photos = photos[:PHOTOS]
    machine.bare = bare_top1
    machine.seen = Counter()
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None,
        derandomize=derandomize,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    ))
    print(f"{machine.__name__}: {dict(machine.seen)}")
    # The examples must have exercised the churn, or passing shows nothing.
    for what in ("kills mid-batch", "live leases lapsed", "duplicate replies ignored",
                 "redelivered results reused"):
        assert machine.seen[what] > 0, f"no example had {what}: {dict(machine.seen)}"


def _worker_settings(state: Path) -> Settings:
    return Settings(state_dir=state, batch_size=4, visibility_timeout_s=HOUR_S,
                    max_receives=100, durability="crash")


def test_every_request_is_answered_once_under_churn_on_the_embedded_queue(
    classifier: Classifier, dev_photos: list[DevPhoto], bare_top1: dict[str, int]
) -> None:
    def open_world() -> tuple[Backend, Settings, Callable[[], None]]:
        tmp = TemporaryDirectory(prefix="imgrec-churn-")
        cfg = _worker_settings(Path(tmp.name) / "state")
        backend = open_embedded(cfg)

        def close() -> None:
            backend.close()
            tmp.cleanup()

        return backend, cfg, close

    class Embedded(Churn):
        pass

    Embedded.open_world = staticmethod(open_world)
    _run(Embedded, classifier, dev_photos, bare_top1, examples=100, steps=50)


@pytest.mark.aws
def test_every_request_is_answered_once_under_churn_on_sqs_and_s3(
    request: pytest.FixtureRequest, classifier: Classifier, dev_photos: list[DevPhoto],
    bare_top1: dict[str, int],
) -> None:
    import uuid

    from imgrec.aws.s3_store import S3Store
    from imgrec.aws.sqs_queue import SqsBroker

    moto = aws_adapters.moto_endpoint(request)

    def open_world() -> tuple[Backend, Settings, Callable[[], None]]:
        prefix = f"churn{uuid.uuid4().hex[:6]}"
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=prefix)
        broker = SqsBroker(moto.client("sqs"), lambda name: f"{prefix}-{name}",
                           default_visibility_s=HOUR_S)
        requests = broker.open(keys.REQUEST_QUEUE, dead_letter=keys.DEAD_LETTER_QUEUE,
                               max_receives=100)
        backend = Backend(store=S3Store(s3, prefix), broker=broker, requests=requests,
                          dead_letters=broker.open(keys.DEAD_LETTER_QUEUE),
                          description="moto", fleet_factory=_no_fleet)
        return backend, _worker_settings(Path("/nonexistent")), lambda: None

    class OnMoto(Churn):
        pass

    OnMoto.open_world = staticmethod(open_world)
    try:
        # Few examples (each call is HTTP): the same ones every run, chosen to cover the churn.
        _run(OnMoto, classifier, dev_photos, bare_top1, examples=25, steps=30, derandomize=True)
    finally:
        aws_adapters.reset_moto(moto)
