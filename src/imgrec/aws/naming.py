"""Every AWS resource name of a stack, derived from the stack name in one place.

Queues and IAM names are ``<stack>-<kind>`` (``t1-requests``, ``t1-worker``). S3 bucket names are
global across all accounts, and a deleted name can be taken by anyone, so buckets also carry the
account id, the region and a random suffix made by the first ``aws up`` and kept with the stack
(a tag of its request queue): ``<stack>-inputs-<account>-<region>-<suffix>``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from .. import keys
from ..errors import ConfigError

TAG_STACK = "imgrec:stack"
TAG_ROLE = "imgrec:role"
TAG_BUCKET_SUFFIX = "imgrec:bucket-suffix"
ROLE_WORKER = "worker"
ROLE_WEB = "web"
WHEEL_PREFIX = "deploy/"

_STACK = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_SUFFIX = re.compile(r"^[a-z0-9]{0,8}$")


def new_bucket_suffix() -> str:
    """Six random lowercase hex characters (a deleted bucket name must not come back to us)."""
    return secrets.token_hex(3)


def validate_stack(stack: str) -> str:
    """Return the stack name, or raise ``ConfigError`` if it cannot name AWS resources."""
    if not _STACK.match(stack) or stack.endswith("-") or "--" in stack:
        raise ConfigError(
            f"invalid stack name {stack!r}: use 1-20 lowercase letters, digits and single "
            "hyphens, starting with a letter (e.g. 'demo' or 'imgrec-prod')"
        )
    return stack


@dataclass(frozen=True)
class StackNames:
    """The names of one stack's resources in one account and region."""

    stack: str
    account: str
    region: str
    bucket_suffix: str = ""

    def __post_init__(self) -> None:
        validate_stack(self.stack)
        if not _SUFFIX.match(self.bucket_suffix):
            raise ConfigError(f"invalid bucket suffix {self.bucket_suffix!r}")

    def _bucket(self, kind: str) -> str:
        suffix = f"-{self.bucket_suffix}" if self.bucket_suffix else ""
        return f"{self.bucket_prefix(kind)}{suffix}"

    def bucket_prefix(self, kind: str) -> str:
        """The bucket name before its suffix (``aws down`` finds leftovers by it)."""
        return f"{self.stack}-{kind}-{self.account}-{self.region}"

    @property
    def inputs_bucket(self) -> str:
        return self._bucket("inputs")

    @property
    def outputs_bucket(self) -> str:
        return self._bucket("outputs")

    @property
    def buckets(self) -> tuple[str, str]:
        return (self.inputs_bucket, self.outputs_bucket)

    def queue(self, logical: str) -> str:
        """The SQS name of a logical queue name (``requests`` -> ``t1-requests``)."""
        name = f"{self.stack}-{logical}"
        if not _QUEUE_NAME.match(name):
            raise ConfigError(f"invalid queue name {name!r} (letters, digits, - and _, max 80)")
        return name

    @property
    def request_queue(self) -> str:
        return self.queue(keys.REQUEST_QUEUE)

    @property
    def bulk_queue(self) -> str:
        return self.queue(keys.BULK_REQUEST_QUEUE)

    @property
    def dead_letter_queue(self) -> str:
        return self.queue(keys.DEAD_LETTER_QUEUE)

    @property
    def reply_queue_prefix(self) -> str:
        return f"{self.stack}-{keys.REPLY_QUEUE_PREFIX}"

    def role(self, role: str) -> str:
        """IAM role and instance profile name of the workers or the web tier."""
        return f"{self.stack}-{role}"

    def policy(self, role: str) -> str:
        return f"{self.stack}-{role}-policy"

    def security_group(self, role: str) -> str:
        return f"{self.stack}-{role}"

    def launch_template(self, role: str) -> str:
        return f"{self.stack}-{role}"

    def wheel_key(self, wheel_name: str) -> str:
        return f"{WHEEL_PREFIX}{wheel_name}"

    # ARNs (partition "aws"; GovCloud/China are not supported).
    def bucket_arn(self, bucket: str) -> str:
        return f"arn:aws:s3:::{bucket}"

    def queue_arn(self, queue: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{queue}"

    def role_arn(self, role: str) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.role(role)}"

    def stack_tags(self, role: str | None = None) -> dict[str, str]:
        tags = {TAG_STACK: self.stack}
        if role:
            tags[TAG_ROLE] = role
        return tags
