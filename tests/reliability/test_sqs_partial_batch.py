"""A SendMessageBatch or DeleteMessageBatch that fails for some entries only (AWS documents
that a batch call can return 200 with a ``Failed`` list) is retried for those entries alone:
nothing sent twice, nothing left undeleted (issue 12, item 10).

moto accepts whole batches, so the fault proxy (``tests/helpers/aws_faults``) drops the chosen
entries from the first batch call before moto sees it and answers for them as SQS does:
``Failed`` with ``SenderFault: false`` and ``InternalError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tests.helpers import aws_adapters
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.aws_faults import FaultProxy, SqsBatchEntriesFail

from imgrec.aws.sqs_queue import SqsBroker
from imgrec.errors import PermanentError

pytestmark = pytest.mark.aws
moto = aws_adapters.moto_fixture


@contextmanager
def _broker_behind(moto: Endpoint, fault: SqsBatchEntriesFail) -> Iterator[SqsBroker]:
    with FaultProxy(moto.url) as proxy:
        proxy.add(fault)
        yield SqsBroker(Endpoint(proxy.url).client("sqs"), lambda name: f"pb-{name}")


def test_a_partly_failed_send_resends_only_the_failed_entries(moto: Endpoint) -> None:
    fault = SqsBatchEntriesFail("SendMessageBatch", {"3", "7"})
    with _broker_behind(moto, fault) as broker:
        queue = broker.open("requests")
        bodies = [f"m{i}" for i in range(10)]
        ids = queue.send(bodies)
        got = []
        while batch := queue.receive(10, wait_s=0):
            got.extend(batch)
    assert fault.calls == [[str(i) for i in range(10)], ["3", "7"]]
    assert sorted(m.body for m in got) == sorted(bodies), "lost or sent twice"
    assert len(ids) == 10 and len(set(ids)) == 10
    by_body = {m.body: m.message_id for m in got}
    assert ids == [by_body[b] for b in bodies], "ids out of order"


def test_a_partly_failed_delete_deletes_only_the_failed_entries_again(moto: Endpoint) -> None:
    fault = SqsBatchEntriesFail("DeleteMessageBatch", {"0", "5"})
    with _broker_behind(moto, fault) as broker:
        queue = broker.open("requests")
        queue.send([f"m{i}" for i in range(6)])
        received = queue.receive(6, wait_s=1, visibility_s=1)
        assert len(received) == 6
        queue.delete([m.receipt for m in received])
        depth = queue.depth()
    assert fault.calls == [[str(i) for i in range(6)], ["0", "5"]]
    assert depth.total == 0


def test_a_sender_fault_is_permanent_and_not_retried(moto: Endpoint) -> None:
    fault = SqsBatchEntriesFail("SendMessageBatch", {"1"}, sender_fault=True)
    with _broker_behind(moto, fault) as broker:
        queue = broker.open("requests")
        with pytest.raises(PermanentError, match="InternalError"):
            queue.send(["a", "b"])
    assert fault.calls == [["0", "1"]]
