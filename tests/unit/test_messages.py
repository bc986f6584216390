from __future__ import annotations

import json

import pytest

from imgrec.messages import (
    MAX_MESSAGE_BYTES,
    ClassifyRequest,
    ClassifyResult,
    MessageError,
    Reply,
    TopPrediction,
)


def _result(label: str = "brambling") -> ClassifyResult:
    top5 = tuple(TopPrediction(f"{label}{i}", 10 + i, 0.5 / (i + 1)) for i in range(5))
    return ClassifyResult("a" * 32, True, "mobilenet_v2", top5, timings_ms={"queue_ms": 1.5})


def test_request_round_trips_and_is_small() -> None:
    req = ClassifyRequest("a" * 32, "inputs/" + "a" * 32, "replies-0123456789ab", 1700000000.123)
    body = req.encode()
    assert len(body.encode()) < 200
    assert ClassifyRequest.decode(body) == req


def test_result_round_trips() -> None:
    result = _result()
    again = ClassifyResult.from_json(result.to_json())
    assert again == result
    assert again.label == "brambling0" and again.class_index == 10


def test_reply_carries_the_result_when_it_fits() -> None:
    reply = Reply("a" * 32, _result())
    body = reply.encode()
    assert len(body.encode()) <= MAX_MESSAGE_BYTES
    assert Reply.decode(body).result == _result()


def test_reply_falls_back_to_a_reference_when_too_big() -> None:
    big = _result(label="x" * 300)
    body = Reply(big.request_id, big).encode()
    assert len(body.encode()) <= MAX_MESSAGE_BYTES
    decoded = Reply.decode(body)
    assert decoded.result is None and decoded.request_id == big.request_id


def test_failure_results_truncate_long_errors() -> None:
    result = ClassifyResult.failure("b" * 32, "corrupt_image", "e" * 5000)
    assert not result.ok and result.label is None
    assert len(result.error or "") <= 300


@pytest.mark.parametrize("body", ["", "not json", "[]", json.dumps({"key": "x"})])
def test_malformed_requests_raise_message_error(body: str) -> None:
    with pytest.raises(MessageError):
        ClassifyRequest.decode(body)


def test_request_over_the_limit_is_refused() -> None:
    with pytest.raises(MessageError):
        ClassifyRequest("a" * 32, "k" * 2000, None, 0.0).encode()


def test_a_request_carries_its_deadline_and_older_messages_have_none() -> None:
    req = ClassifyRequest("a" * 32, "inputs/" + "a" * 32, "replies_0123456789ab", 1700000000.5,
                          deadline=1700000030.25)
    body = req.encode()
    assert json.loads(body)["dl"] == 1700000030.25
    assert ClassifyRequest.decode(body) == req
    old = json.dumps({"v": 1, "id": "a" * 32, "key": "inputs/x", "reply_to": None, "t": 1.0})
    assert ClassifyRequest.decode(old).deadline is None
    assert "dl" not in json.loads(ClassifyRequest("a" * 32, "k", None, 1.0).encode())
