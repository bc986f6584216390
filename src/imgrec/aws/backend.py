"""The AWS backend's entry point: a stack's S3 buckets, SQS queues and EC2 worker fleet."""

from __future__ import annotations

import logging
from dataclasses import replace

from .. import keys
from ..config import Settings
from ..errors import ConfigError, QueueNotFound
from ..ports import Backend, Fleet, Queue
from .ec2_fleet import Ec2Fleet
from .errors import translated
from .naming import StackNames, validate_stack
from .resources import queue_bucket_suffix
from .s3_store import S3Store, StackStore
from .session import AwsSession
from .sqs_queue import SqsBroker

log = logging.getLogger(__name__)


def stack_names(settings: Settings, session: AwsSession) -> StackNames:
    """The stack's names, with the bucket suffix its request queue keeps in a tag."""
    if not settings.stack:
        raise ConfigError("the aws backend needs a stack name (--stack or IMGREC_STACK)")
    names = StackNames(validate_stack(settings.stack), session.account, session.region)
    suffix = queue_bucket_suffix(session.client("sqs"), names)
    if suffix is None:
        raise ConfigError(f"stack {names.stack} has no request queue: run `imgrec aws up "
                          f"--stack {names.stack} --region {names.region}` first")
    return replace(names, bucket_suffix=suffix)


def open_backend(settings: Settings, session: AwsSession | None = None) -> Backend:
    """The stack's store and queues; they must exist (``imgrec aws up`` creates them)."""
    session = session or AwsSession(settings.region)
    names = stack_names(settings, session)
    s3 = session.client("s3")
    missing_hint = f"run `imgrec aws up --stack {names.stack} --region {names.region}` first"
    with translated(f"stack {names.stack}: bucket {names.outputs_bucket} ({missing_hint})"):
        s3.head_bucket(Bucket=names.outputs_bucket)
    store = StackStore(S3Store(s3, names.inputs_bucket), S3Store(s3, names.outputs_bucket))
    broker = SqsBroker(session.client("sqs"), names.queue,
                       default_visibility_s=settings.visibility_timeout_s,
                       poll_client=session.poll_client("sqs"))
    try:
        requests = broker.open(keys.REQUEST_QUEUE, create=False)
        dead_letters = broker.open(keys.DEAD_LETTER_QUEUE, create=False)
    except QueueNotFound as exc:
        raise ConfigError(f"stack {names.stack} has no request queue: {missing_hint}") from exc
    try:
        bulk: Queue | None = broker.open(keys.BULK_REQUEST_QUEUE, create=False)
    except QueueNotFound:  # a stack made before batches existed: single requests still work
        log.warning("stack %s has no bulk lane (%s): batches are refused; %s", names.stack,
                    names.queue(keys.BULK_REQUEST_QUEUE), missing_hint)
        bulk = None

    def fleet(max_workers: int) -> Fleet:
        return Ec2Fleet(session.client("ec2"), names, store, max_workers=max_workers)

    return Backend(
        store=store,
        broker=broker,
        requests=requests,
        dead_letters=dead_letters,
        description=f"aws stack {names.stack} ({names.region})",
        fleet_factory=fleet,
        bulk=bulk,
        open_source=lambda bucket: S3Store(s3, bucket),
    )
