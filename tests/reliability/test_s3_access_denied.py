"""S3 answers 403 AccessDenied, not 404, for a missing key when the caller lacks s3:ListBucket
(the worker role has no ListBucket on the inputs bucket). A missing input must then be an error
result for that one request, never a worker crash (issue 12, item 6).

moto always says 404, so the fault proxy (``tests/helpers/aws_faults``) sits between the
worker's S3 client and moto and rewrites each 404 ``NoSuchKey`` (and a bodiless 404 to a HEAD)
into the 403 S3 sends.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import DevPhoto
from tests.helpers import aws_adapters
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.aws_faults import FaultProxy, MissingKeyForbidden

from imgrec import keys
from imgrec.aws.s3_store import S3Store
from imgrec.aws.sqs_queue import SqsBroker
from imgrec.config import Settings
from imgrec.errors import PermanentError
from imgrec.messages import ClassifyRequest, ClassifyResult, Reply
from imgrec.model.classifier import load_classifier
from imgrec.ports import Backend, Fleet
from imgrec.worker.loop import Worker

pytestmark = pytest.mark.aws
moto = aws_adapters.moto_fixture

@pytest.fixture
def denying_s3(moto: Endpoint) -> Iterator[FaultProxy]:
    """S3 answering a missing key with 403, as it does for a caller without s3:ListBucket."""
    with FaultProxy(moto.url) as proxy:
        proxy.add(MissingKeyForbidden())
        yield proxy


def _no_fleet(_max: int) -> Fleet:
    raise AssertionError("no fleet in this test")


def test_a_missing_input_read_as_403_is_an_error_result_not_a_crash(
    moto: Endpoint, denying_s3: FaultProxy, dev_photos: list[DevPhoto], tmp_path: Path,
) -> None:
    bucket = f"inputs-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=bucket)
    store = S3Store(Endpoint(denying_s3.url).client("s3"), bucket)
    with pytest.raises(PermanentError, match="access denied"):
        store.get("inputs/never-uploaded")  # the proxy answers as S3 does
    broker = SqsBroker(moto.client("sqs"), lambda name: f"ad-{name}")
    requests = broker.open(keys.REQUEST_QUEUE)
    replies = broker.open("replies-ad")
    backend = Backend(store=store, broker=broker, requests=requests,
                      dead_letters=broker.open(keys.DEAD_LETTER_QUEUE),
                      description="moto behind a 403 proxy", fleet_factory=_no_fleet)

    def request(data: bytes | None) -> ClassifyRequest:
        request_id = keys.new_request_id()
        req = ClassifyRequest(request_id, keys.input_key(request_id), "replies-ad", time.time())
        if data is not None:
            store.put(req.key, data)
        return req

    photo = dev_photos[0].path.read_bytes()
    missing, good, redelivered = request(None), request(photo), request(photo)
    requests.send([redelivered.encode()])
    # A worker took it once and died before storing a result: its next delivery looks for a
    # stored result first, and that missing key reads as 403 too.
    requests.receive(1, wait_s=1, visibility_s=1)
    time.sleep(1.5)
    requests.send([missing.encode(), good.encode()])

    settings = Settings(state_dir=tmp_path / "unused", visibility_timeout_s=30)
    worker = Worker(backend, load_classifier("mobilenet_v2", threads=1), settings)
    counters = worker.run(threading.Event(), until_empty=True)

    [denial] = denying_s3.faults
    assert isinstance(denial, MissingKeyForbidden)
    assert denial.rewritten >= 3  # the probe above, then the worker's two reads
    answers: dict[str, ClassifyResult | None] = {}
    for _ in range(5):
        if len(answers) == 3:
            break
        for msg in replies.receive(10, wait_s=1):
            reply = Reply.decode(msg.body)
            answers[reply.request_id] = reply.result
    assert set(answers) == {missing.request_id, good.request_id, redelivered.request_id}
    failed = answers[missing.request_id]
    assert failed is not None and failed.error_code == "input_missing", failed
    for ok in (good, redelivered):
        result = ClassifyResult.from_json(store.get(keys.result_key(ok.request_id)))
        assert result.ok and result.class_index == dev_photos[0].class_index
    assert counters.received == 3 and counters.failed == 1 and counters.classified == 2
    assert requests.depth().total == 0
