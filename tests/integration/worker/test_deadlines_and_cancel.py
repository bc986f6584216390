"""The worker honours deadlines and cancels (issue 16, items 2 and 3): real model, SQLite, store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.conftest import DevPhoto

from imgrec import job_states, keys
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


def _enqueue(backend: Backend, data: bytes, reply_to: str | None,
             deadline: float | None = None) -> ClassifyRequest:
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), reply_to, time.time(),
                              deadline=deadline)
    backend.store.put(request.key, data)
    backend.requests.send([request.encode()])
    return request


def _stored(backend: Backend, request: ClassifyRequest) -> ClassifyResult:
    return ClassifyResult.from_json(backend.store.get(keys.result_key(request.request_id)))


def test_a_backlog_of_expired_requests_is_cleared_without_inference(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto]
) -> None:
    replies = backend.broker.open("replies_dl")
    past = time.time() - 5
    expired = [_enqueue(backend, p.path.read_bytes(), "replies_dl", deadline=past)
               for p in dev_photos[:20]]
    # Had they been fetched, these would fail as not an image: the inputs are never read.
    backend.store.put(expired[0].key, b"not an image at all")
    counters = Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)

    assert counters.received == 20 and counters.deadline_exceeded == 20
    assert counters.classified == 0 and counters.failed == 0
    for request in expired:
        stored = _stored(backend, request)
        assert job_states.state_of(stored) == "deadline_exceeded", stored
        assert "deadline" in (stored.error or "")
    answered = []
    while batch := replies.receive(10, wait_s=0.5):
        answered += [Reply.decode(m.body) for m in batch]
    assert {r.request_id for r in answered} == {r.request_id for r in expired}
    assert all(r.result is not None and r.result.error_code == "deadline_exceeded"
               for r in answered)
    assert backend.requests.depth().total == 0


def test_requests_within_their_deadline_are_classified(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto]
) -> None:
    later = _enqueue(backend, dev_photos[0].path.read_bytes(), None, deadline=time.time() + 60)
    legacy = _enqueue(backend, dev_photos[1].path.read_bytes(), None)  # no deadline at all
    late = _enqueue(backend, dev_photos[2].path.read_bytes(), None, deadline=time.time() - 1)
    counters = Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)

    assert counters.classified == 2 and counters.deadline_exceeded == 1
    assert _stored(backend, later).ok and _stored(backend, legacy).ok
    assert _stored(backend, late).error_code == "deadline_exceeded"


def test_a_cancelled_job_is_never_classified(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto]
) -> None:
    replies = backend.broker.open("replies_c")
    request = _enqueue(backend, dev_photos[0].path.read_bytes(), "replies_c")
    # What DELETE /api/v1/jobs/{id} does: the cancel result first, then the input goes.
    assert backend.store.put_if_absent(keys.result_key(request.request_id),
                                       job_states.cancelled_result(request.request_id).to_json())
    backend.store.delete(request.key)
    counters = Worker(backend, classifier, settings).run(threading.Event(), until_empty=True)

    assert counters.classified == 0 and counters.superseded == 1
    assert job_states.state_of(_stored(backend, request)) == "cancelled"
    [reply] = replies.receive(10, wait_s=1)
    answer = Reply.decode(reply.body).result
    assert answer is not None and answer.error_code == "cancelled"


def test_a_worker_that_classified_a_job_cancelled_meanwhile_does_not_overwrite_the_cancel(
    backend: Backend, settings: Settings, classifier: Classifier, dev_photos: list[DevPhoto]
) -> None:
    request = _enqueue(backend, dev_photos[0].path.read_bytes(), None)
    worker = Worker(backend, classifier, settings)
    run = worker.start_batch(worker.receive_batch(1.0))
    while run.next_step != "store":  # parse and classify: the model has run
        run.advance()
    assert worker.counters.classified == 1
    backend.store.put_if_absent(keys.result_key(request.request_id),
                                job_states.cancelled_result(request.request_id).to_json())
    run.run()

    assert job_states.state_of(_stored(backend, request)) == "cancelled"
    assert worker.counters.superseded == 1
    assert backend.requests.depth().total == 0
