"""``Queue`` and ``QueueBroker`` on SQS: batches of 10, long polls of 0-20 whole seconds.

The broker maps imgrec's logical queue names (``requests``, ``replies-<id>``) to the stack's SQS
names (``<stack>-requests``), so several stacks share an account without colliding.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import BackendUnavailable, QueueNotFound
from ..messages import MAX_MESSAGE_BYTES
from ..ports import Message, QueueDepth
from .errors import error_code, translate, translated

log = logging.getLogger(__name__)

SQS_BATCH = 10
MAX_WAIT_S = 20
MAX_VISIBILITY_S = 43_200
_LONG_POLL_MARGIN_S = 2
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight"}
_QUEUE_EXISTS = {"QueueAlreadyExists", "QueueNameExists"}


def wait_seconds(wait_s: float) -> int:
    """SQS's WaitTimeSeconds for a wait: whole seconds, 0-20 (under half a second: no wait)."""
    return max(0, min(MAX_WAIT_S, int(wait_s + 0.5)))


def long_poll_cap(client: Any) -> int:
    """The longest long poll the client's read timeout allows, with a 2 s margin (0-20 s).

    A long poll must end before the read timeout, or every idle receive would time out; a
    short read timeout is what makes a silent endpoint fail fast.
    """
    config = getattr(getattr(client, "meta", None), "config", None)
    seconds = getattr(config, "read_timeout", None)
    if not isinstance(seconds, (int, float)):
        return MAX_WAIT_S
    return max(0, min(MAX_WAIT_S, int(seconds) - _LONG_POLL_MARGIN_S))


def visibility_seconds(visibility_s: float) -> int:
    return max(0, min(MAX_VISIBILITY_S, round(visibility_s)))


def _chunks(items: Sequence[str], size: int = SQS_BATCH) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SqsQueue:
    """One SQS queue. Example: ``SqsQueue(sqs, url, "requests").send(['{"id": "a"}'])``."""

    def __init__(self, client: Any, url: str, name: str) -> None:
        self.client = client
        self.url = url
        self.name = name
        self._max_wait = long_poll_cap(client)

    def send(self, bodies: Sequence[str]) -> list[str]:
        ids: list[str] = []
        for chunk in _chunks(bodies):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
            with translated(f"cannot send to queue {self.name}"):
                response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                first = failed[0]
                raise BackendUnavailable(
                    f"queue {self.name} refused {len(failed)} of {len(chunk)} messages: "
                    f"{first.get('Code')}: {first.get('Message')}"
                )
            by_id = {e["Id"]: e["MessageId"] for e in response.get("Successful", [])}
            ids.extend(str(by_id[str(i)]) for i in range(len(chunk)))
        return ids

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
        with translated(f"cannot receive from queue {self.name}"):
            response = self.client.receive_message(**kwargs)
        return [_to_message(m) for m in response.get("Messages", [])]

    def delete(self, receipts: Sequence[str]) -> None:
        for chunk in _chunks(receipts):
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            with translated(f"cannot delete from queue {self.name}"):
                response = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            for failure in response.get("Failed") or []:
                if failure.get("Code") not in _STALE_RECEIPT:
                    raise BackendUnavailable(
                        f"queue {self.name}: delete failed: {failure.get('Code')}: "
                        f"{failure.get('Message')}"
                    )

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        try:
            self.client.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt,
                VisibilityTimeout=visibility_seconds(visibility_s),
            )
        except ClientError as exc:
            if error_code(exc) in _STALE_RECEIPT:
                log.debug("stale receipt on %s: %s", self.name, exc)
                return
            raise translate(exc, f"cannot change visibility on queue {self.name}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"cannot change visibility on queue {self.name}") from exc

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
    """Opens the stack's SQS queues by logical name; ``name_of`` maps it to the SQS name."""

    def __init__(
        self,
        client: Any,
        name_of: Callable[[str], str] = lambda name: name,
        *,
        default_visibility_s: float = 30.0,
    ) -> None:
        self.client = client
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
            return SqsQueue(self.client, self._url(sqs_name), name)
        dlq_arn = None
        if dead_letter is not None:
            dlq_arn = self.open(dead_letter).arn()
        attrs = queue_attributes(visibility_s=self.default_visibility_s,
                                 dead_letter_arn=dlq_arn, max_receives=max_receives)
        url = self.ensure(sqs_name, attrs)
        return SqsQueue(self.client, url, name)

    def ensure(self, sqs_name: str, attrs: dict[str, str]) -> str:
        """Create the queue, or bring an existing one's attributes to ``attrs``; return its URL."""
        try:
            url = str(self.client.create_queue(QueueName=sqs_name, Attributes=attrs)["QueueUrl"])
        except ClientError as exc:
            if error_code(exc) not in _QUEUE_EXISTS:
                raise translate(exc, f"cannot create queue {sqs_name}") from exc
            url = self._url(sqs_name)
            with translated(f"cannot update queue {sqs_name}"):
                self.client.set_queue_attributes(QueueUrl=url, Attributes=attrs)
        except BotoCoreError as exc:
            raise translate(exc, f"cannot create queue {sqs_name}") from exc
        with self._lock:
            self._urls[sqs_name] = url
        return url

    def _url(self, sqs_name: str) -> str:
        with self._lock:
            if sqs_name in self._urls:
                return self._urls[sqs_name]
        try:
            url = str(self.client.get_queue_url(QueueName=sqs_name)["QueueUrl"])
        except (ClientError, BotoCoreError) as exc:
            err = translate(exc, f"queue {sqs_name}")
            if isinstance(err, QueueNotFound):
                raise QueueNotFound(f"queue {sqs_name} does not exist") from exc
            raise err from exc
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
        try:
            self.client.delete_queue(QueueUrl=url)
        except ClientError as exc:
            if not isinstance(translate(exc, ""), QueueNotFound):
                raise translate(exc, f"cannot delete queue {sqs_name}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"cannot delete queue {sqs_name}") from exc

    def close(self) -> None:
        """Nothing to release: boto3 clients close their connections when collected."""
