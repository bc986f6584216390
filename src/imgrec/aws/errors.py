"""Translate botocore's exceptions into imgrec's, at the seam (``raise ... from exc``).

Every boto3 call in ``imgrec.aws`` runs inside ``translated(what)``. Where an AWS error code is
an expected outcome rather than a failure (a bucket that already exists, a queue already
deleted), the block names it in ``tolerate`` and reads what happened from the ``Outcome``::

    with translated(f"cannot create bucket {bucket}", tolerate=EXISTS) as outcome:
        s3.create_bucket(Bucket=bucket)
    return "unchanged" if outcome.tolerated else "created"
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from ..errors import (
    BackendUnavailable,
    ConfigError,
    ImgrecError,
    ObjectNotFound,
    PermanentError,
    QueueNotFound,
)

EXISTS = frozenset({"BucketAlreadyOwnedByYou", "EntityAlreadyExists", "InvalidGroup.Duplicate",
                    "InvalidLaunchTemplateName.AlreadyExistsException", "QueueAlreadyExists",
                    "QueueNameExists"})
ABSENT = frozenset({"NoSuchBucket", "NoSuchEntity", "NoSuchKey", "InvalidGroup.NotFound",
                    "InvalidLaunchTemplateName.NotFoundException",
                    "InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateId.Malformed",
                    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "404",
                    "NotFound"})
NOT_FOUND_OBJECT = {"NoSuchKey", "404", "NotFound"}
NOT_FOUND_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_RETRYABLE = {
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown",
    "ServiceUnavailable", "InternalError", "InternalFailure", "RequestTimeout",
    "RequestThrottled", "KMS.ThrottlingException",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
           "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidAccessKeyId"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, what: str) -> ImgrecError:
    """The imgrec exception for a botocore failure while doing ``what``."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError(
            f"{what}: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or run on an instance with an instance profile)"
        )
    if isinstance(exc, NoRegionError):
        return ConfigError(f"{what}: no AWS region (pass --region or set AWS_REGION)")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in NOT_FOUND_QUEUE:
            return QueueNotFound(f"{what}: queue does not exist")
        if code in NOT_FOUND_OBJECT:
            return ObjectNotFound(what)
        if code == "NoSuchBucket":
            return ConfigError(f"{what}: bucket does not exist (run `imgrec aws up` first)")
        if code in _DENIED:
            return PermanentError(f"{what}: access denied by AWS ({code}: {message})")
        if code in _RETRYABLE or status >= 500:
            return BackendUnavailable(f"{what}: {code}: {message}")
        return PermanentError(f"{what}: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        # Connection refused, timeouts, DNS: the service may be back later.
        return BackendUnavailable(f"{what}: {exc}")
    return BackendUnavailable(f"{what}: {exc}")


@dataclass
class Outcome:
    """How a ``translated`` block ended: ``tolerated`` is the AWS error code it let pass."""

    tolerated: str | None = None


@contextmanager
def translated(what: str, *, tolerate: Collection[str] = ()) -> Iterator[Outcome]:
    """Run a block of boto3 calls; re-raise any botocore failure as an imgrec error.

    A ``ClientError`` whose code is in ``tolerate`` ends the block quietly instead, with the
    code in the yielded ``Outcome``.
    """
    outcome = Outcome()
    try:
        yield outcome
    except ClientError as exc:
        code = error_code(exc)
        if code in tolerate:
            outcome.tolerated = code
            return
        raise translate(exc, what) from exc
    except BotoCoreError as exc:
        raise translate(exc, what) from exc
