"""``Queue`` and ``QueueBroker`` on SQS: batches of 10, long polls of 0-20 whole seconds.

The broker maps imgrec's logical queue names (``requests``, ``replies-<id>``) to the stack's SQS
names (``<stack>-requests``), so several stacks share an account without colliding.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..chunks import chunks
from ..errors import BackendUnavailable, PermanentError, QueueNotFound
from ..messages import MAX_MESSAGE_BYTES
from ..ports import Message, QueueDepth
from .errors import EXISTS, NOT_FOUND_QUEUE, translated

log = logging.getLogger(__name__)

SQS_BATCH = 10
MAX_WAIT_S = 20
MAX_VISIBILITY_S = 43_200
_LONG_POLL_MARGIN_S = 2
# A batch call can succeed for some entries and fail for others (AWS's side: throttling, an
# internal error); only the failed entries are tried again, a few times with a short backoff.
_PARTIAL_ATTEMPTS = 3
_PARTIAL_BACKOFF_S = 0.1
_STALE_RECEIPT = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue",
                            "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"})


def wait_seconds(wait_s: float) -> int:
    """SQS's WaitTimeSeconds for a wait: whole seconds, 0-20 (under half a second: no wait)."""
    return max(0, min(MAX_WAIT_S, int(wait_s + 0.5)))


def long_poll_cap(client: Any) -> int:
    """The longest long poll the client's read timeout allows, with a 2 s margin (0-20 s).

    A long poll must end before the read timeout, or every idle receive would time out; a
    short read timeout is what makes a silent endpoint fail fast.
    """
    seconds = client.meta.config.read_timeout
    if not isinstance(seconds, (int, float)):
        return MAX_WAIT_S
    return max(0, min(MAX_WAIT_S, int(seconds) - _LONG_POLL_MARGIN_S))


def visibility_seconds(visibility_s: float) -> int:
    """SQS's VisibilityTimeout: whole seconds, 0-43200; a positive timeout is at least 1 s
    (rounded to 0 it would make a message visible again at once)."""
    if visibility_s <= 0:
        return 0
    return max(1, min(MAX_VISIBILITY_S, round(visibility_s)))


class SqsQueue:
    """One SQS queue. Example: ``SqsQueue(sqs, url, "requests").send(['{"id": "a"}'])``.

    Receives that wait (long polls) go through ``poll_client``, whose read timeout is longer
    than the wait; everything else through ``client``, whose timeouts are short.
    """

    def __init__(self, client: Any, url: str, name: str, *, poll_client: Any = None) -> None:
        self.client = client
        self.poll_client = poll_client if poll_client is not None else client
        self.url = url
        self.name = name
        self._max_wait = long_poll_cap(self.poll_client)

    def send(self, bodies: Sequence[str]) -> list[str]:
        ids: list[str] = []
        for chunk in chunks(bodies, SQS_BATCH):
            ids.extend(self._send_batch(chunk))
        return ids

    def _send_batch(self, chunk: Sequence[str]) -> list[str]:
        """One SendMessageBatch; entries that failed on AWS's side are sent again, alone."""
        pending = {str(i): body for i, body in enumerate(chunk)}
        by_id: dict[str, str] = {}
        for attempt in range(_PARTIAL_ATTEMPTS):
            entries = [{"Id": i, "MessageBody": b} for i, b in pending.items()]
            with translated(f"cannot send to queue {self.name}"):
                response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            by_id.update({e["Id"]: str(e["MessageId"]) for e in response.get("Successful", [])})
            failed = _failures(response, f"queue {self.name} refused a message")
            pending = {i: pending[i] for i in failed if i in pending}
            if not pending:
                return [by_id[str(i)] for i in range(len(chunk))]
            _pause(attempt)
        raise BackendUnavailable(
            f"queue {self.name} refused {len(pending)} of {len(chunk)} messages "
            f"{_PARTIAL_ATTEMPTS} times: {next(iter(failed.values()))}"
        )

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]:
        got: list[Message] = []
        wait = min(wait_seconds(wait_s), self._max_wait)
        while len(got) < max_messages:
            want = min(SQS_BATCH, max_messages - len(got))
            batch = self._receive_once(want, wait if not got else 0, visibility_s)
            got.extend(batch)
            if len(batch) < want:
                break
        return got

    def _receive_once(self, count: int, wait: int, visibility_s: float | None) -> list[Message]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": wait,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
        }
        if visibility_s is not None:
            kwargs["VisibilityTimeout"] = visibility_seconds(visibility_s)
        client = self.poll_client if wait > 0 else self.client
        with translated(f"cannot receive from queue {self.name}"):
            response = client.receive_message(**kwargs)
        return [_to_message(m) for m in response.get("Messages", [])]

    def delete(self, receipts: Sequence[str]) -> None:
        for chunk in chunks(receipts, SQS_BATCH):
            self._delete_batch(chunk)

    def _delete_batch(self, chunk: Sequence[str]) -> None:
        """One DeleteMessageBatch; entries that failed on AWS's side are deleted again, alone.

        A stale receipt (the message was received again, or is gone) is not a failure.
        """
        pending = {str(i): receipt for i, receipt in enumerate(chunk)}
        for attempt in range(_PARTIAL_ATTEMPTS):
            entries = [{"Id": i, "ReceiptHandle": r} for i, r in pending.items()]
            with translated(f"cannot delete from queue {self.name}"):
                response = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            failed = _failures(response, f"queue {self.name}: delete failed",
                               ignore=_STALE_RECEIPT)
            pending = {i: pending[i] for i in failed if i in pending}
            if not pending:
                return
            _pause(attempt)
        raise BackendUnavailable(
            f"queue {self.name}: {len(pending)} of {len(chunk)} deletes failed "
            f"{_PARTIAL_ATTEMPTS} times: {next(iter(failed.values()))}"
        )

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        with translated(f"cannot change visibility on queue {self.name}",
                        tolerate=_STALE_RECEIPT) as outcome:
            self.client.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt,
                VisibilityTimeout=visibility_seconds(visibility_s),
            )
        if outcome.tolerated:
            log.debug("stale receipt on %s: %s", self.name, outcome.tolerated)

    def depth(self) -> QueueDepth:
        with translated(f"cannot read the depth of queue {self.name}"):
            attrs = self.client.get_queue_attributes(
                QueueUrl=self.url,
                AttributeNames=["ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        return QueueDepth(
            visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def arn(self) -> str:
        with translated(f"cannot read the ARN of queue {self.name}"):
            attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])


def _failures(response: dict[str, Any], what: str,
              ignore: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    """The batch entries that failed on AWS's side, by entry id, with their error.

    An entry failed by the sender's fault (``SenderFault``: a malformed or oversized
    message) fails the same way every time: that raises ``PermanentError`` at once.
    """
    failed: dict[str, str] = {}
    for failure in response.get("Failed") or []:
        code = str(failure.get("Code"))
        if code in ignore:
            continue
        text = f"{code}: {failure.get('Message')}"
        if failure.get("SenderFault"):
            raise PermanentError(f"{what}: {text}")
        failed[str(failure.get("Id"))] = text
    return failed


def _pause(attempt: int) -> None:
    time.sleep(_PARTIAL_BACKOFF_S * 2**attempt)


def _to_message(raw: dict[str, Any]) -> Message:
    attrs = raw.get("Attributes", {})
    return Message(
        message_id=str(raw["MessageId"]),
        receipt=str(raw["ReceiptHandle"]),
        body=str(raw["Body"]),
        receive_count=int(attrs.get("ApproximateReceiveCount", 1)),
        sent_at=int(attrs.get("SentTimestamp", 0)) / 1000,
    )


def queue_attributes(
    *, visibility_s: float, dead_letter_arn: str | None = None, max_receives: int | None = None
) -> dict[str, str]:
    """The attributes every imgrec queue gets (pure; also used by ``aws up``)."""
    attrs = {
        "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
        "VisibilityTimeout": str(visibility_seconds(visibility_s)),
        "MessageRetentionPeriod": str(4 * 24 * 3600),
    }
    if dead_letter_arn is not None:
        attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(max_receives or 5)}
        )
    return attrs


class SqsBroker:
    """Opens the stack's SQS queues by logical name; ``name_of`` maps it to the SQS name.

    ``poll_client`` (default: ``client``) serves the queues' long polls.
    """

    def __init__(
        self,
        client: Any,
        name_of: Callable[[str], str] = lambda name: name,
        *,
        default_visibility_s: float = 30.0,
        poll_client: Any = None,
    ) -> None:
        self.client = client
        self.poll_client = poll_client
        self.name_of = name_of
        self.default_visibility_s = default_visibility_s
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def open(
        self,
        name: str,
        *,
        dead_letter: str | None = None,
        max_receives: int | None = None,
        create: bool = True,
    ) -> SqsQueue:
        sqs_name = self.name_of(name)
        if not create:
            return self._queue(self._url(sqs_name), name)
        dlq_arn = None
        if dead_letter is not None:
            dlq_arn = self.open(dead_letter).arn()
        attrs = queue_attributes(visibility_s=self.default_visibility_s,
                                 dead_letter_arn=dlq_arn, max_receives=max_receives)
        return self._queue(self.ensure(sqs_name, attrs), name)

    def _queue(self, url: str, name: str) -> SqsQueue:
        return SqsQueue(self.client, url, name, poll_client=self.poll_client)

    def ensure(self, sqs_name: str, attrs: dict[str, str]) -> str:
        """Create the queue, or bring an existing one's attributes to ``attrs``; return its URL."""
        with translated(f"cannot create queue {sqs_name}", tolerate=EXISTS) as existing:
            url = str(self.client.create_queue(QueueName=sqs_name, Attributes=attrs)["QueueUrl"])
        if existing.tolerated:
            url = self._url(sqs_name)
            with translated(f"cannot update queue {sqs_name}"):
                self.client.set_queue_attributes(QueueUrl=url, Attributes=attrs)
        with self._lock:
            self._urls[sqs_name] = url
        return url

    def _url(self, sqs_name: str) -> str:
        with self._lock:
            if sqs_name in self._urls:
                return self._urls[sqs_name]
        with translated(f"queue {sqs_name}"):
            url = str(self.client.get_queue_url(QueueName=sqs_name)["QueueUrl"])
        with self._lock:
            self._urls[sqs_name] = url
        return url

    def delete_queue(self, name: str) -> None:
        sqs_name = self.name_of(name)
        with self._lock:
            self._urls.pop(sqs_name, None)
        try:
            url = self._url(sqs_name)
        except QueueNotFound:
            return
        with self._lock:
            self._urls.pop(sqs_name, None)
        with translated(f"cannot delete queue {sqs_name}", tolerate=NOT_FOUND_QUEUE):
            self.client.delete_queue(QueueUrl=url)

    def close(self) -> None:
        """Nothing to release: boto3 clients close their connections when collected."""
