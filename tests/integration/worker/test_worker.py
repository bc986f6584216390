"""The worker with the real model, real SQLite queues and a real directory store."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.conftest import DevPhoto

from imgrec import keys
from imgrec.backend import Backend, open_backend
from imgrec.config import Settings
from imgrec.messages import ClassifyRequest, ClassifyResult, Reply
from imgrec.model.classifier import Classifier, load_classifier
from imgrec.worker.loop import Worker


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier("mobilenet_v2", threads=1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", batch_size=8, visibility_timeout_s=30)


@pytest.fixture
def backend(settings: Settings) -> Backend:
    return open_backend(settings)


def _enqueue(backend: Backend, data: bytes, reply_to: str | None) -> ClassifyRequest:
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), reply_to, time.time())
    backend.store.put(request.key, data)
    backend.requests.send([request.encode()])
    return request


def test_a_batch_is_classified_stored_answered_and_deleted(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto]
) -> None:
    replies = backend.broker.open("replies-test")
    photos = dev_photos[:6]
    requests = [_enqueue(backend, p.path.read_bytes(), "replies-test") for p in photos]
    counters = Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)

    assert counters.received == 6 and counters.classified == 6
    assert counters.batch_sizes == [6]  # one ONNX batch, not six
    expected = classifier.classify_images([p.path.read_bytes() for p in photos])
    for request, want in zip(requests, expected, strict=True):
        stored = ClassifyResult.from_json(backend.store.get(keys.result_key(request.request_id)))
        assert stored.ok and stored.class_index == want.class_index  # type: ignore[union-attr]
    answered = {Reply.decode(m.body).request_id for m in replies.receive(10, wait_s=1)}
    assert answered == {r.request_id for r in requests}
    assert backend.requests.depth().total == 0


def test_a_redelivered_request_reuses_the_stored_result(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto]
) -> None:
    request = _enqueue(backend, dev_photos[0].path.read_bytes(), None)
    Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)
    first = backend.store.get(keys.result_key(request.request_id))

    # The same request again, received once by a worker that then died before deleting it.
    backend.requests.send([request.encode()])
    [lost] = backend.requests.receive(1, wait_s=1, visibility_s=0.5)
    time.sleep(0.7)
    counters = Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)

    assert counters.reused == 1 and counters.classified == 0  # no second inference
    assert backend.store.get(keys.result_key(request.request_id)) == first
    assert backend.requests.depth().total == 0
    assert lost.receive_count == 1


@pytest.mark.parametrize(
    ("kind", "code"), [("text", "not_an_image"), ("truncated", "corrupt_image")]
)
def test_an_undecodable_image_gets_an_error_result_at_once(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto],
    kind: str, code: str,
) -> None:
    photo = dev_photos[2].path.read_bytes()
    data = b"this is not an image" if kind == "text" else photo[: len(photo) // 3]
    bad = _enqueue(backend, data, None)
    good = _enqueue(backend, dev_photos[1].path.read_bytes(), None)
    counters = Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)

    result = ClassifyResult.from_json(backend.store.get(keys.result_key(bad.request_id)))
    assert not result.ok and result.error_code == code and result.error
    assert ClassifyResult.from_json(backend.store.get(keys.result_key(good.request_id))).ok
    assert counters.failed == 1 and counters.classified == 1
    assert backend.requests.depth().total == 0
    assert backend.dead_letters.depth().total == 0


def test_a_missing_input_gets_an_error_result(
    backend: Backend, settings: Settings, classifier: Classifier
) -> None:
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), None, time.time())
    backend.requests.send([request.encode()])
    Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)
    result = ClassifyResult.from_json(backend.store.get(keys.result_key(request_id)))
    assert result.error_code == "input_missing"


def test_a_malformed_message_is_dropped_not_retried(
    backend: Backend, settings: Settings, classifier: Classifier
) -> None:
    backend.requests.send(["{not json"])
    counters = Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)
    assert counters.malformed == 1
    assert backend.requests.depth().total == 0


def test_sigterm_finishes_the_batch_in_hand_then_exits(
    backend: Backend, settings: Settings, dev_photos: list[DevPhoto]
) -> None:
    requests = [_enqueue(backend, p.path.read_bytes(), None) for p in dev_photos[:40]]
    env = {"IMGREC_STATE_DIR": str(settings.state_dir), "IMGREC_BATCH_SIZE": "4",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgrec", "worker", "--worker-id", "w-test", "--threads", "1"],
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(True for _ in backend.store.list(keys.RESULTS_PREFIX)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    done = {k for k in backend.store.list(keys.RESULTS_PREFIX)}
    depth = backend.requests.depth()
    assert depth.in_flight == 0  # nothing received was left half done
    assert len(done) + depth.visible == len(requests)
    assert 0 < len(done) < len(requests)


def test_a_handler_with_a_step_hook_calls_it_before_every_step(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto]
) -> None:
    # The bulk loop's hook (wait while an interactive batch is in hand) runs between steps.
    request = _enqueue(backend, dev_photos[0].path.read_bytes(), None)
    messages = backend.requests.receive(1, wait_s=1)
    calls: list[bool] = []

    def hook() -> None:
        calls.append(backend.store.exists(keys.result_key(request.request_id)))

    assert Worker(backend, classifier, settings).handle_batch(messages, hook)
    # parse, classify, store, reply, delete: the result is stored by the third step
    assert calls == [False, False, False, True, True]
    assert backend.requests.depth().total == 0
