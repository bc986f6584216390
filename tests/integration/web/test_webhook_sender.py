"""The webhook sender on a real store and a real receiver on 127.0.0.1, driven step by step."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers.webhook_receiver import webhook_receiver

from imgrec import keys
from imgrec.embedded.dir_store import DirectoryStore
from imgrec.messages import ClassifyResult, TopPrediction
from imgrec.web.webhook_sender import WebhookSender
from imgrec.web.webhooks import CallbackRecord, verify

SECRET = b"k"


def _sender(store: DirectoryStore, owner: str = "replies_me") -> WebhookSender:
    return WebhookSender(store, SECRET, owner=owner, allow_private=True, max_attempts=3,
                         backoff_s=0.01, timeout_s=5)


def _finished(store: DirectoryStore) -> str:
    request_id = keys.new_request_id()
    result = ClassifyResult(request_id, True, "m", (TopPrediction("tench", 0, 0.9),))
    store.put(keys.result_key(request_id), result.to_json())
    return request_id


def test_nothing_is_sent_before_the_answer_and_once_after(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "o")
    sender = _sender(store)
    with webhook_receiver() as receiver:
        request_id = keys.new_request_id()
        sender.register(request_id, receiver.url)
        assert sender.attempt(request_id) == CallbackRecord(receiver.url, "replies_me")
        store.put(keys.result_key(request_id), ClassifyResult.failure(
            request_id, "not_an_image", "no").to_json())
        delivered = sender.attempt(request_id)
        assert delivered is not None and delivered.state == "delivered"
        assert sender.attempt(request_id) == delivered  # not again
    [delivery] = receiver.deliveries
    assert verify(SECRET, delivery.headers["X-Imgrec-Signature"], delivery.body, now=time.time())
    assert json.loads(delivery.body) == {"id": request_id, "status": "failed", "result": None,
                                         "error": "not_an_image", "detail": "no"}
    sender.stop()


def test_the_sweep_takes_over_only_from_web_tiers_that_are_gone(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "o")
    alive, gone = _finished(store), _finished(store)
    store.put(keys.web_tier_key("replies_alive"), b"{}")
    with webhook_receiver() as receiver:
        store.put(keys.callback_key(alive), CallbackRecord(receiver.url, "replies_alive").to_json())
        store.put(keys.callback_key(gone), CallbackRecord(receiver.url, "replies_gone").to_json())
        sender = _sender(store)
        assert sender.sweep() == 1
        sender.start()
        try:
            assert receiver.arrived.wait(10)
        finally:
            sender.stop()
    assert [d.headers["X-Imgrec-Job"] for d in receiver.deliveries] == [gone]
    assert sender.record(alive) == CallbackRecord(receiver.url, "replies_alive")
    record = sender.record(gone)
    assert record is not None and record.state == "delivered"


def test_a_refused_target_fails_without_a_request(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "o")
    request_id = _finished(store)
    sender = WebhookSender(store, SECRET, owner="replies_me", allow_private=False,
                           max_attempts=1, backoff_s=0.01, timeout_s=5)
    with webhook_receiver() as receiver:
        store.put(keys.callback_key(request_id),
                  CallbackRecord(receiver.url, "replies_me").to_json())
        record = sender.attempt(request_id)
    sender.stop()
    assert record is not None and record.state == "failed"
    assert "loopback, private or link-local" in (record.last_error or "")
    assert receiver.deliveries == []
