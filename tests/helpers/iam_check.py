"""Which IAM permissions an AWS call needs, and whether a policy grants them.

The fault proxy records every call a tier makes; ``needed`` turns one into the (action,
resource ARN) pairs IAM authorises it by, and ``granted`` checks a pair against a policy's
Allow statements. Conditions are not evaluated here (the policy tests check them statement by
statement): this proves that no call a tier makes falls outside every statement of its policy.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers.aws_faults import Call

# Calls that need no grant, or that no tier's policy could name a resource for.
_FREE = {("sts", "GetCallerIdentity")}
_EC2_UNSCOPED = {"DescribeInstances", "DescribeLaunchTemplates", "DescribeLaunchTemplateVersions",
                 "DescribeInstanceTypes", "DescribeSubnets", "DescribeSecurityGroups"}


@dataclass(frozen=True)
class Account:
    """What ARNs are built from, and the launch template a RunInstances names."""

    account: str
    region: str
    templates: dict[str, dict[str, Any]]  # launch template name -> id, ImageId, group ids


def needed(call: Call, where: Account) -> list[tuple[str, str]]:
    """The (action, resource) pairs IAM checks for ``call``."""
    if (call.service, call.action) in _FREE:
        return []
    if call.service == "sqs":
        return _sqs(call, where)
    if call.service == "s3":
        return _s3(call)
    if call.service == "ec2":
        return _ec2(call, where)
    return [(f"{call.service}:{call.action}", "*")]


def _sqs(call: Call, where: Account) -> list[tuple[str, str]]:
    params = call.params()
    name = params.get("QueueName") or params.get("QueueUrl", "").rsplit("/", 1)[-1]
    resource = f"arn:aws:sqs:{where.region}:{where.account}:{name}" if name else "*"
    # IAM has no batch actions: SendMessageBatch is authorised as SendMessage, and so on.
    return [(f"sqs:{call.action.removesuffix('Batch')}", resource)]


def _s3(call: Call) -> list[tuple[str, str]]:
    parts = urlsplit(call.path)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    query = parse_qs(parts.query, keep_blank_values=True)
    if not key:
        if call.method == "POST" and "delete" in query:
            return [("s3:DeleteObject", f"arn:aws:s3:::{bucket}/*")]
        if call.method in ("GET", "HEAD"):
            return [("s3:ListBucket", f"arn:aws:s3:::{bucket}")]
        return [(f"s3:{call.method}Bucket", f"arn:aws:s3:::{bucket}")]
    action = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject",
              "DELETE": "s3:DeleteObject"}[call.method]
    return [(action, f"arn:aws:s3:::{bucket}/{key}")]


def _ec2(call: Call, where: Account) -> list[tuple[str, str]]:
    params = call.params()
    arn = f"arn:aws:ec2:{where.region}:{where.account}"
    if call.action in _EC2_UNSCOPED:
        return [(f"ec2:{call.action}", "*")]
    if call.action == "TerminateInstances":
        ids = [v for k, v in params.items() if k.startswith("InstanceId.")]
        return [("ec2:TerminateInstances", f"{arn}:instance/{i}") for i in ids]
    if call.action == "RunInstances":
        template = where.templates[params["LaunchTemplate.LaunchTemplateName"]]
        pairs = [("ec2:RunInstances", f"{arn}:launch-template/{template['id']}"),
                 ("ec2:RunInstances", f"{arn}:instance/*"),
                 ("ec2:RunInstances", f"arn:aws:ec2:{where.region}::image/{template['image']}"),
                 ("ec2:RunInstances", f"{arn}:network-interface/*"),
                 ("ec2:RunInstances", f"{arn}:subnet/*"),
                 ("ec2:RunInstances", f"{arn}:volume/*"),
                 ("iam:PassRole", template["role_arn"])]
        pairs += [("ec2:RunInstances", f"{arn}:security-group/{g}") for g in template["groups"]]
        if any(k.startswith("TagSpecification.") for k in params):
            pairs.append(("ec2:CreateTags", f"{arn}:instance/*"))
        return pairs
    return [(f"ec2:{call.action}", "*")]


def granted(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an Allow statement of ``policy`` names this action on this resource."""
    for statement in policy["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) \
            else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) \
            else [statement["Resource"]]
        if any(fnmatch.fnmatchcase(action, a) for a in actions) and \
                any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return True
    return False


def refused(calls: list[Call], policy: dict[str, Any], where: Account) -> list[str]:
    """Every (action, resource) the calls needed that the policy does not grant."""
    missing = {f"{action} on {resource}" for call in calls for action, resource in
               needed(call, where) if not granted(policy, action, resource)}
    return sorted(missing)
