"""IAM policy documents of a stack (pure): each grants only what its tier needs, on its stack.

Workers read inputs, write results and heartbeats, take requests and answer on reply queues.
The web tier also uploads inputs (and deletes them on cancel), keeps the records of
idempotency keys, owns its reply queue, reads the dead-letter queue and runs
the EC2 fleet from the stack's worker launch template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import keys
from .naming import ROLE_WORKER, TAG_ROLE, TAG_STACK, WHEEL_PREFIX, StackNames

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
            _statement("ConsumeRequests", [*_CONSUME, "sqs:ListQueueTags"],
                       [names.queue_arn(names.request_queue), names.queue_arn(names.bulk_queue)]),
            _statement("AnswerReplies", ["sqs:SendMessage", "sqs:GetQueueUrl"], [replies]),
            # The backend looks the dead-letter queue up at start; workers never touch it.
            _statement("FindDeadLetters", ["sqs:GetQueueUrl"],
                       [names.queue_arn(names.dead_letter_queue)]),
        ],
    }


@dataclass(frozen=True)
class WorkerLaunch:
    """What the web tier may launch: the stack's worker template, instance type and image."""

    template_id: str
    instance_type: str
    image_id: str
    security_group_id: str


def _ec2_arn(names: StackNames, kind: str, resource: str = "*", *, account: bool = True) -> str:
    return f"arn:aws:ec2:{names.region}:{names.account if account else ''}:{kind}/{resource}"


def web_policy(names: StackNames, launch: WorkerLaunch) -> Policy:
    """The web tier's policy: uploads, replies, dead letters, and the stack's worker fleet."""
    inp, out = names.inputs_bucket, names.outputs_bucket
    template_arn = _ec2_arn(names, "launch-template", launch.template_id)
    from_template = {"ArnLike": {"ec2:LaunchTemplate": template_arn},
                     "Bool": {"ec2:IsLaunchTemplateResource": "true"}}
    workers_of_stack = {"StringEquals": {f"aws:ResourceTag/{TAG_STACK}": names.stack,
                                         f"aws:ResourceTag/{TAG_ROLE}": ROLE_WORKER}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("Inputs", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                       [_objects(names, inp, keys.INPUTS_PREFIX)]),
            _statement("Outputs", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                       [_objects(names, out, keys.RESULTS_PREFIX),
                        _objects(names, out, keys.HEARTBEATS_PREFIX),
                        _objects(names, out, keys.AUTOSCALE_PREFIX),
                        _objects(names, out, keys.WEB_TIERS_PREFIX),
                        _objects(names, out, keys.IDEMPOTENCY_PREFIX),
                        _objects(names, out, keys.CALLBACKS_PREFIX),
                        _objects(names, out, keys.DEAD_LETTERS_PREFIX),
                        _objects(names, out, keys.BATCHES_PREFIX)]),
            _statement("ListBuckets", ["s3:ListBucket"],
                       [names.bucket_arn(inp), names.bucket_arn(out)]),
            _statement("SendRequests", ["sqs:SendMessage", "sqs:GetQueueUrl",
                                        "sqs:GetQueueAttributes", "sqs:ListQueueTags"],
                       [names.queue_arn(names.request_queue), names.queue_arn(names.bulk_queue)]),
            _statement("DeadLetters", _CONSUME, [names.queue_arn(names.dead_letter_queue)]),
            _statement("ReplyQueues", [*_CONSUME, "sqs:CreateQueue", "sqs:DeleteQueue",
                                       "sqs:SetQueueAttributes", "sqs:SendMessage",
                                       "sqs:TagQueue"],
                       [names.queue_arn(names.reply_queue_prefix + "*")]),
            _statement("LaunchFromTheWorkerTemplate", ["ec2:RunInstances"], [template_arn]),
            _statement("LaunchWorkerInstances", ["ec2:RunInstances"],
                       [_ec2_arn(names, "instance")],
                       Condition={**from_template,
                                  "StringEquals": {"ec2:InstanceType": launch.instance_type}}),
            _statement("LaunchWithTheWorkerImage", ["ec2:RunInstances"],
                       [_ec2_arn(names, "image", launch.image_id, account=False)]),
            _statement("LaunchWithTheWorkerGroup", ["ec2:RunInstances"],
                       [_ec2_arn(names, "security-group", launch.security_group_id)]),
            _statement("LaunchNetworkAndDisk", ["ec2:RunInstances"],
                       [_ec2_arn(names, "network-interface"), _ec2_arn(names, "subnet"),
                        _ec2_arn(names, "volume")], Condition=from_template),
            _statement("TagWhatItLaunches", ["ec2:CreateTags"],
                       [_ec2_arn(names, "instance"), _ec2_arn(names, "volume"),
                        _ec2_arn(names, "network-interface")],
                       Condition={"StringEquals": {"ec2:CreateAction": "RunInstances"}}),
            _statement("TerminateStackWorkers", ["ec2:TerminateInstances"],
                       [_ec2_arn(names, "instance")], Condition=workers_of_stack),
            # Describe* cannot be limited to resources in IAM. The fleet reads its instances,
            # and its worker template's instance type (to remember boot times per type).
            _statement("DescribeInstances", ["ec2:DescribeInstances",
                                             "ec2:DescribeLaunchTemplateVersions"], ["*"]),
            _statement("PassWorkerRole", ["iam:PassRole"], [names.role_arn(ROLE_WORKER)],
                       Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
        ],
    }


def policy_resources(policy: Policy) -> list[str]:
    """Every resource a policy names (for checks and ``aws status``)."""
    found: list[str] = []
    for statement in policy["Statement"]:
        res = statement.get("Resource", [])
        found.extend([res] if isinstance(res, str) else res)
    return found
