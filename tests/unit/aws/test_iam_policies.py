"""The rendered IAM policies: least privilege that holds, linted by parliament (issue 12.9)."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from parliament import analyze_policy_string

from imgrec.aws import iam
from imgrec.aws.naming import StackNames

NAMES = StackNames("demo", "123456789012", "eu-west-1", "ab12cd")
LAUNCH = iam.WorkerLaunch("lt-0123", "c7i.large", "ami-0123", "sg-0123")
POLICIES = {"worker": iam.worker_policy(NAMES), "web": iam.web_policy(NAMES, LAUNCH)}

# Findings parliament reports that are right for these policies, each with the reason.
EXPLAINED = {
    # RunInstances authorises every resource it touches (instance, image, group, interface,
    # subnet, volume) separately; one statement per resource type is how each gets its own
    # condition, so each statement covers some of RunInstances' formats by design.
    ("web", "RESOURCE_MISMATCH", "ec2:RunInstances"),
}


def _statements(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if action in s["Action"]]


@pytest.mark.parametrize("tier", sorted(POLICIES))
def test_parliament_finds_nothing_unexplained(tier: str) -> None:
    findings = analyze_policy_string(json.dumps(POLICIES[tier])).findings
    unexplained = [
        (f.issue, f.detail) for f in findings
        if not all((tier, f.issue, d.get("action")) in EXPLAINED
                   for d in (f.detail if isinstance(f.detail, list) else [{}]))
    ]
    assert not unexplained


@pytest.mark.parametrize("other", ["demo-replies", "demo-replies-x", "demo-replies-abc", "demo-x"])
def test_no_wildcard_matches_another_stacks_queues(other: str) -> None:
    theirs = StackNames(other, NAMES.account, NAMES.region)
    their_queues = [theirs.queue_arn(q) for q in (
        theirs.request_queue, theirs.dead_letter_queue, theirs.reply_queue_prefix + "tier1",
        theirs.queue("replies-tier1"))]
    for policy in POLICIES.values():
        for statement in policy["Statement"]:
            if not any(a.startswith("sqs:") for a in statement["Action"]):
                continue
            for resource in statement["Resource"]:
                assert not [q for q in their_queues if fnmatch.fnmatchcase(q, resource)], resource


def test_the_web_tier_launches_only_the_stacks_template_type_and_image() -> None:
    web = POLICIES["web"]
    for statement in _statements(web, "ec2:RunInstances"):
        resources = statement["Resource"]
        pinned = {f"arn:aws:ec2:eu-west-1:123456789012:launch-template/{LAUNCH.template_id}",
                  f"arn:aws:ec2:eu-west-1::image/{LAUNCH.image_id}",
                  f"arn:aws:ec2:eu-west-1:123456789012:security-group/{LAUNCH.security_group_id}"}
        if set(resources) <= pinned:
            continue
        condition = statement["Condition"]
        assert condition["ArnLike"]["ec2:LaunchTemplate"].endswith(LAUNCH.template_id)
        assert condition["Bool"]["ec2:IsLaunchTemplateResource"] == "true"
        if any(":instance/" in r for r in resources):
            assert condition["StringEquals"]["ec2:InstanceType"] == LAUNCH.instance_type
    [terminate] = _statements(web, "ec2:TerminateInstances")
    assert terminate["Condition"]["StringEquals"] == {"aws:ResourceTag/imgrec:stack": "demo",
                                                      "aws:ResourceTag/imgrec:role": "worker"}


def test_the_web_tier_may_delete_the_inputs_it_cleans_up() -> None:
    [inputs] = [s for s in POLICIES["web"]["Statement"] if s["Sid"] == "Inputs"]
    assert "s3:DeleteObject" in inputs["Action"]
