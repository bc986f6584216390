"""Dead letters you can act on (issue 16, item 7), on the embedded backend and on moto.

A request really dies here: with ``max_receives`` 1 it is received once and never deleted, so
the queue moves it to the dead-letter queue on the next receive. The responder answers it and
records why; list, show, replay (same id, back on the request queue) and purge work on that.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.aws_adapters import moto_fixture as moto  # noqa: F401 - a fixture
from tests.helpers.dead_letters import kill_request
from tests.helpers.wheels import stand_in_wheel

from imgrec import keys
from imgrec.backend import open_backend
from imgrec.config import load_settings
from imgrec.dead_letters import DeadLetterNotFound, DeadLetters, InputGone
from imgrec.messages import ClassifyRequest, ClassifyResult
from imgrec.ports import Backend, Message
from imgrec.worker.dead_letters import DeadLetterResponder


@pytest.fixture(params=["embedded", pytest.param("aws-moto", marks=pytest.mark.aws)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        opened = open_backend(load_settings(state_dir=tmp_path / "state", max_receives=1))
    else:
        from imgrec.aws.provision import UpOptions, open_stack

        request.getfixturevalue("moto")
        open_stack("t1", None).up(UpOptions(wheel=stand_in_wheel(tmp_path), max_receives=1))
        opened = open_backend(load_settings(backend="aws", stack="t1"))
    yield opened
    opened.close()


def _collect(admin: DeadLetters, want: int) -> None:
    deadline = time.monotonic() + 10
    handled = 0
    while handled < want:
        assert time.monotonic() < deadline, f"only {handled} of {want} dead letters arrived"
        handled += admin.collect()


def test_a_dead_request_is_recorded_with_why_and_its_job_fails(backend: Backend) -> None:
    admin = DeadLetters(backend)
    request = kill_request(backend)
    _collect(admin, 1)

    [letter] = admin.list()
    assert letter.request_id == request.request_id
    assert letter.receive_count == 1
    assert letter.state == "dead" and letter.replays == 0
    assert "delivered 1 time and never finished" in letter.reason
    assert letter.died_at >= request.sent_at
    assert admin.show(request.request_id) == letter
    result = ClassifyResult.from_json(backend.store.get(keys.result_key(request.request_id)))
    assert not result.ok and result.error_code == "processing_failed"
    assert "imgrec dlq show" in (result.error or "")


def test_replay_queues_it_again_under_its_own_id(backend: Backend) -> None:
    admin = DeadLetters(backend)
    request = kill_request(backend)
    _collect(admin, 1)

    replayed = admin.replay(request.request_id)
    assert replayed.state == "replayed" and replayed.replays == 1
    assert not backend.store.exists(keys.result_key(request.request_id))  # queued again
    deadline = time.monotonic() + 10
    got: list[Message] = []
    while not got:
        assert time.monotonic() < deadline
        got = backend.requests.receive(1, wait_s=1)
    again = ClassifyRequest.decode(got[0].body)
    assert (again.request_id, again.key) == (request.request_id, request.key)
    backend.requests.delete([got[0].receipt])
    assert admin.show(request.request_id).state == "replayed"


def test_a_replay_whose_image_is_gone_says_so(backend: Backend) -> None:
    admin = DeadLetters(backend)
    request = kill_request(backend)
    _collect(admin, 1)
    backend.store.delete(request.key)

    with pytest.raises(InputGone, match="input image .* is gone"):
        admin.replay(request.request_id)
    # Nothing changed: the job still has its answer and nothing was queued.
    assert backend.store.exists(keys.result_key(request.request_id))
    assert backend.requests.receive(1, wait_s=0.5) == []


def test_purge_drops_one_or_all(backend: Backend) -> None:
    admin = DeadLetters(backend)
    first, second, third = kill_request(backend), kill_request(backend), kill_request(backend)
    _collect(admin, 3)
    assert {d.request_id for d in admin.list()} == {r.request_id for r in (first, second, third)}

    assert admin.purge(first.request_id) == 1
    with pytest.raises(DeadLetterNotFound):
        admin.show(first.request_id)
    assert admin.purge() == 2
    assert admin.list() == []
    with pytest.raises(DeadLetterNotFound):
        admin.purge(second.request_id)


def test_the_responder_records_as_it_answers(backend: Backend) -> None:
    request = kill_request(backend)
    responder = DeadLetterResponder(backend)
    deadline = time.monotonic() + 10
    while not responder.handle_once(wait_s=1):
        assert time.monotonic() < deadline
    assert DeadLetters(backend).show(request.request_id).receive_count == 1
