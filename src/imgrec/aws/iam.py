"""IAM policy documents of a stack (pure): each grants only what its tier needs, on its stack.

Workers read inputs, write results and heartbeats, take requests and answer on reply queues.
The web tier also uploads inputs, owns its reply queue, reads the dead-letter queue and runs
the EC2 fleet from the stack's worker launch template.
"""

from __future__ import annotations

from typing import Any

from .. import keys
from .naming import ROLE_WORKER, TAG_STACK, WHEEL_PREFIX, StackNames

Policy = dict[str, Any]

_CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def assume_role_policy() -> Policy:
    """Lets EC2 instances take the role (through the instance profile)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    }


def _objects(names: StackNames, bucket: str, prefix: str) -> str:
    return f"{names.bucket_arn(bucket)}/{prefix}*"


def worker_policy(names: StackNames) -> Policy:
    """The worker role's inline policy: exactly the stack's buckets and queues."""
    out = names.outputs_bucket
    replies = names.queue_arn(names.reply_queue_prefix + "*")
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("ReadInputs", ["s3:GetObject"],
                       [_objects(names, names.inputs_bucket, keys.INPUTS_PREFIX)]),
            _statement("ReadWriteResultsAndHeartbeats", ["s3:GetObject", "s3:PutObject"],
                       [_objects(names, out, keys.RESULTS_PREFIX),
                        _objects(names, out, keys.HEARTBEATS_PREFIX)]),
            _statement("ReadWheel", ["s3:GetObject"], [_objects(names, out, WHEEL_PREFIX)]),
            _statement("ListOutputs", ["s3:ListBucket"], [names.bucket_arn(out)]),
            _statement("ConsumeRequests", _CONSUME, [names.queue_arn(names.request_queue)]),
            _statement("AnswerReplies", ["sqs:SendMessage", "sqs:GetQueueUrl"], [replies]),
            # The backend looks the dead-letter queue up at start; workers never touch it.
            _statement("FindDeadLetters", ["sqs:GetQueueUrl"],
                       [names.queue_arn(names.dead_letter_queue)]),
        ],
    }


def web_policy(names: StackNames, worker_template_arn: str) -> Policy:
    """The web tier's policy: uploads, replies, dead letters, and the stack's worker fleet."""
    inp, out = names.inputs_bucket, names.outputs_bucket
    stack_tag = {"StringEquals": {f"aws:ResourceTag/{TAG_STACK}": names.stack}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("Inputs", ["s3:GetObject", "s3:PutObject"],
                       [_objects(names, inp, keys.INPUTS_PREFIX)]),
            _statement("Outputs", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                       [_objects(names, out, keys.RESULTS_PREFIX),
                        _objects(names, out, keys.HEARTBEATS_PREFIX)]),
            _statement("ListBuckets", ["s3:ListBucket"],
                       [names.bucket_arn(inp), names.bucket_arn(out)]),
            _statement("SendRequests", ["sqs:SendMessage", "sqs:GetQueueUrl",
                                        "sqs:GetQueueAttributes"],
                       [names.queue_arn(names.request_queue)]),
            _statement("DeadLetters", _CONSUME, [names.queue_arn(names.dead_letter_queue)]),
            _statement("ReplyQueues", [*_CONSUME, "sqs:CreateQueue", "sqs:DeleteQueue",
                                       "sqs:SetQueueAttributes", "sqs:SendMessage"],
                       [names.queue_arn(names.reply_queue_prefix + "*")]),
            _statement("LaunchWorkers", ["ec2:RunInstances"], [worker_template_arn]),
            _statement("LaunchWorkersResources", ["ec2:RunInstances", "ec2:CreateTags"], ["*"],
                       Condition={"ArnLike": {"ec2:LaunchTemplate": worker_template_arn}}),
            _statement("TerminateStackWorkers", ["ec2:TerminateInstances"], ["*"],
                       Condition=stack_tag),
            # Describe* cannot be limited to resources in IAM.
            _statement("DescribeInstances", ["ec2:DescribeInstances"], ["*"]),
            _statement("PassWorkerRole", ["iam:PassRole"], [names.role_arn(ROLE_WORKER)]),
        ],
    }


def policy_resources(policy: Policy) -> list[str]:
    """Every resource a policy names (for checks and ``aws status``)."""
    found: list[str] = []
    for statement in policy["Statement"]:
        res = statement.get("Resource", [])
        found.extend([res] if isinstance(res, str) else res)
    return found
