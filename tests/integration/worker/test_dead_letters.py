"""A request whose workers die every time ends in the dead-letter queue and is answered."""

from __future__ import annotations

import time
from pathlib import Path

from imgrec import keys
from imgrec.backend import open_backend
from imgrec.config import Settings
from imgrec.messages import ClassifyRequest, ClassifyResult, Reply
from imgrec.worker.dead_letters import DeadLetterResponder


def test_a_request_that_never_completes_is_answered_with_an_error(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", max_receives=2)
    backend = open_backend(settings)
    replies = backend.broker.open("replies-dlq")
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), "replies-dlq", time.time())
    backend.store.put(request.key, b"whatever")
    backend.requests.send([request.encode()])

    for _ in range(2):  # two workers take it and die before answering
        [msg] = backend.requests.receive(1, wait_s=1, visibility_s=0)
        assert msg.body == request.encode()
    assert backend.requests.receive(1, wait_s=0.2) == []  # third receive moves it aside
    assert backend.dead_letters.depth().visible == 1

    assert DeadLetterResponder(backend).handle_once(wait_s=1) == 1
    result = ClassifyResult.from_json(backend.store.get(keys.result_key(request_id)))
    assert not result.ok and result.error_code == "processing_failed"
    [reply] = replies.receive(1, wait_s=1)
    assert Reply.decode(reply.body).result == result
    assert backend.dead_letters.depth().total == 0
