"""A live worker keeps its requests; a dead or hung one's go to another worker quickly."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from tests.helpers import aws_adapters
from tests.reliability.support import blank_png

from imgrec import keys
from imgrec.backend import Backend, open_backend
from imgrec.config import Settings
from imgrec.embedded.process_fleet import release_held_requests
from imgrec.messages import ClassifyRequest, ClassifyResult
from imgrec.model.classifier import Classifier, load_classifier
from imgrec.ports import Fleet, Message, WorkerState
from imgrec.worker.heartbeat import HeartbeatRecord
from imgrec.worker.lease import Leases
from imgrec.worker.loop import Worker


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier("mobilenet_v2", threads=1)


def _backend(tmp_path: Path, **overrides: object) -> tuple[Backend, Settings]:
    settings = Settings(state_dir=tmp_path / "state", **overrides)  # type: ignore[arg-type]
    return open_backend(settings), settings


def _enqueue(backend: Backend, data: bytes) -> ClassifyRequest:
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), None, time.time())
    backend.store.put(request.key, data)
    backend.requests.send([request.encode()])
    return request


def test_a_batch_slower_than_the_visibility_timeout_is_never_redelivered(
    tmp_path: Path, classifier: Classifier
) -> None:
    """Three 36-megapixel PNGs take 1-3 s to decode; the visibility timeout is 0.3 s."""
    backend, settings = _backend(tmp_path, visibility_timeout_s=0.3, batch_size=3)
    _assert_a_slow_batch_is_kept(backend, settings, classifier, images=3)


@pytest.mark.aws
def test_a_batch_slower_than_the_visibility_timeout_is_never_redelivered_on_sqs(
    request: pytest.FixtureRequest, tmp_path: Path, classifier: Classifier
) -> None:
    """The same on SQS and S3 (moto): visibility in whole seconds, so 1 s and six images."""
    from imgrec.aws.s3_store import S3Store
    from imgrec.aws.sqs_queue import SqsBroker

    moto = aws_adapters.moto_endpoint(request)
    prefix = f"lease{uuid.uuid4().hex[:6]}"
    moto.client("s3").create_bucket(Bucket=prefix)
    broker = SqsBroker(moto.client("sqs"), lambda name: f"{prefix}-{name}")
    backend = Backend(store=S3Store(moto.client("s3"), prefix), broker=broker,
                      requests=broker.open(keys.REQUEST_QUEUE),
                      dead_letters=broker.open(keys.DEAD_LETTER_QUEUE),
                      description="moto", fleet_factory=_no_fleet)
    settings = Settings(state_dir=tmp_path / "unused", visibility_timeout_s=1.0, batch_size=6)
    try:
        _assert_a_slow_batch_is_kept(backend, settings, classifier, images=6)
    finally:
        aws_adapters.reset_moto(moto)


def _no_fleet(_max: int) -> Fleet:
    raise AssertionError("no fleet in this test")


def _assert_a_slow_batch_is_kept(backend: Backend, settings: Settings, classifier: Classifier,
                                 *, images: int) -> None:
    big = blank_png(6000, 6000, color_type=2)
    requests = [_enqueue(backend, big) for _ in range(images)]
    stolen: list[Message] = []
    done = threading.Event()

    def thief() -> None:  # another worker, receiving whatever becomes visible
        while not done.is_set():
            stolen.extend(backend.requests.receive(10, wait_s=0.05, visibility_s=60))

    worker = Worker(backend, classifier, settings)
    counters = []
    started = time.monotonic()
    working = threading.Thread(target=lambda: counters.append(
        worker.run(threading.Event(), until_empty=True)))
    working.start()
    while backend.requests.depth().in_flight < images:  # the worker has the batch in hand
        assert time.monotonic() - started < 30
        time.sleep(0.005)
    stealing = threading.Thread(target=thief)
    stealing.start()
    try:
        working.join(timeout=120)
    finally:
        done.set()
        stealing.join()
    took = time.monotonic() - started
    [counted] = counters

    assert took > 2 * settings.visibility_timeout_s, f"the batch was not slow ({took:.1f} s)"
    assert stolen == [], "a request was redelivered while its worker was working on it"
    assert worker.leases.extensions >= images
    assert counted.received == images and counted.classified == images
    assert counted.reused == 0
    for req in requests:
        assert ClassifyResult.from_json(backend.store.get(keys.result_key(req.request_id))).ok
    assert backend.requests.depth().total == 0


def test_leases_extend_held_messages_and_give_up_on_a_hung_batch(tmp_path: Path) -> None:
    backend, _ = _backend(tmp_path)
    backend.requests.send(["a", "b"])
    kept, hung = backend.requests.receive(2, wait_s=1, visibility_s=0.3)
    now = [0.0]
    leases = Leases(backend.requests, visibility_s=15, max_hold_s=10, clock=lambda: now[0])
    leases.hold([kept.receipt])
    assert leases.extend_due() == 0  # just received: nothing to extend yet
    now[0] = 6.0
    assert leases.extend_due() == 1  # kept: a third of the timeout since it was received
    leases.hold([hung.receipt])
    now[0] = 10.5  # kept: held 10.5 s, over max_hold_s; hung: 4.5 s, not due yet
    assert leases.extend_due() == 0
    assert leases.held() == (hung.receipt,)
    now[0] = 11.5  # hung: due, and under max_hold_s
    assert leases.extend_due() == 1
    time.sleep(0.5)  # both messages' original 0.3 s visibility is over
    assert backend.requests.receive(10, wait_s=0) == [], "both were extended"
    leases.drop([hung.receipt])


def test_the_fleet_releases_what_a_dead_worker_held(tmp_path: Path) -> None:
    backend, _ = _backend(tmp_path)
    backend.requests.send(["a", "b", "c"])
    held = backend.requests.receive(3, wait_s=1, visibility_s=60)
    backend.requests.delete([held[0].receipt])  # deleted before the worker died: stale
    record = HeartbeatRecord("w-dead", WorkerState.BUSY, 0.0, 0.0, None, 0, 1, "h",
                             receipts=[m.receipt for m in held])
    backend.store.put(keys.heartbeat_key("w-dead"), record.to_json())

    assert release_held_requests(backend.store, backend.requests, "w-dead") == 3
    again = backend.requests.receive(10, wait_s=0)
    assert sorted(m.body for m in again) == ["b", "c"]
    assert all(m.receive_count == 2 for m in again)
    assert release_held_requests(backend.store, backend.requests, "w-unknown") == 0
