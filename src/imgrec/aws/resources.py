"""Idempotent create / describe / delete of one AWS resource each: the steps ``aws up`` takes.

Every ``ensure_*`` returns what it did (``created``, ``updated``, ``unchanged``); every
``delete_*`` returns ``deleted`` or ``absent``. A missing resource is never an error on delete,
so ``aws down`` also cleans up after a half-finished ``up``.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from .errors import ABSENT, EXISTS, translated
from .naming import StackNames

_TEMPLATE_ABSENT = ABSENT | {"InvalidLaunchTemplateName.MalformedException",
                             "InvalidLaunchTemplateId.VersionNotFound"}


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# --- S3 -------------------------------------------------------------------------------------

def ensure_bucket(s3: Any, names: StackNames, bucket: str, *, expire_days: int | None) -> str:
    """A private, encrypted bucket with public access blocked (and expiry of old objects)."""
    # us-east-1 answers CreateBucket on one's own existing bucket with 200: ask first.
    if describe_bucket_exists(s3, bucket):
        status = "unchanged"
    else:
        status = _create_bucket(s3, names, bucket)
    with translated(f"cannot configure bucket {bucket}"):
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tags(names.stack_tags())})
        if expire_days:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
                "Rules": [{"ID": "expire-old-objects", "Status": "Enabled",
                           "Filter": {"Prefix": ""}, "Expiration": {"Days": expire_days}}]})
    return status


def _create_bucket(s3: Any, names: StackNames, bucket: str) -> str:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if names.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": names.region}
    with translated(f"cannot create bucket {bucket}", tolerate=EXISTS) as outcome:
        s3.create_bucket(**kwargs)
    return "unchanged" if outcome.tolerated else "created"


def describe_bucket_exists(s3: Any, bucket: str) -> bool:
    with translated(f"bucket {bucket}", tolerate=ABSENT) as outcome:
        s3.head_bucket(Bucket=bucket)
    return not outcome.tolerated


def describe_bucket(s3: Any, bucket: str) -> str | None:
    """``private, encrypted`` if the bucket exists and is configured so; None if absent."""
    if not describe_bucket_exists(s3, bucket):
        return None
    with translated(f"bucket {bucket}"):
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    private = "public access blocked" if all(block.values()) else "PUBLIC ACCESS NOT BLOCKED"
    algos = {r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules["Rules"]}
    return f"{private}, encrypted ({', '.join(sorted(algos))})"


def delete_bucket(s3: Any, bucket: str) -> str:
    """Empty the bucket (every object) and delete it."""
    with translated(f"cannot delete bucket {bucket}", tolerate=ABSENT) as outcome:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
    return "absent" if outcome.tolerated else "deleted"


# --- IAM ------------------------------------------------------------------------------------

def ensure_role(iam: Any, names: StackNames, role: str, trust: dict[str, Any],
                policy_name: str, policy: dict[str, Any]) -> str:
    """The role with exactly this inline policy, and an instance profile holding it."""
    what = f"cannot create IAM role {role}"
    with translated(what, tolerate=EXISTS) as existing:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust),
                        Description=f"imgrec stack {names.stack}",
                        Tags=_tags(names.stack_tags()))
    status = "unchanged" if existing.tolerated else "created"
    current = _inline_policy(iam, role, policy_name)
    if current != policy:
        with translated(what):
            iam.put_role_policy(RoleName=role, PolicyName=policy_name,
                                PolicyDocument=json.dumps(policy))
        status = "updated" if status == "unchanged" else status
    with translated(what, tolerate=EXISTS):
        iam.create_instance_profile(InstanceProfileName=role, Tags=_tags(names.stack_tags()))
    with translated(what):
        profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
        if role not in {r["RoleName"] for r in profile.get("Roles", [])}:
            iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
    return status


def _inline_policy(iam: Any, role: str, policy_name: str) -> dict[str, Any] | None:
    with translated(f"IAM role {role}", tolerate=ABSENT) as outcome:
        doc = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    if outcome.tolerated:
        return None
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def describe_role(iam: Any, role: str, policy_name: str) -> dict[str, Any] | None:
    """The role's inline policy (None if the role or its instance profile is missing)."""
    with translated(f"IAM role {role}", tolerate=ABSENT) as outcome:
        iam.get_instance_profile(InstanceProfileName=role)
    return None if outcome.tolerated else _inline_policy(iam, role, policy_name)


def delete_role(iam: Any, role: str) -> str:
    what = f"cannot delete IAM role {role}"
    with translated(what, tolerate=ABSENT) as no_profile:
        profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
        for r in profile.get("Roles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=role,
                                                  RoleName=r["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=role)
    with translated(what, tolerate=ABSENT) as no_role:
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=name)
        iam.delete_role(RoleName=role)
    return "absent" if no_profile.tolerated and no_role.tolerated else "deleted"


# --- EC2 ------------------------------------------------------------------------------------

def find_security_group(ec2: Any, names: StackNames, role: str) -> str | None:
    with translated(f"security group {names.security_group(role)}"):
        groups = ec2.describe_security_groups(Filters=[
            {"Name": "group-name", "Values": [names.security_group(role)]},
            {"Name": f"tag:{'imgrec:stack'}", "Values": [names.stack]},
        ])["SecurityGroups"]
    return str(groups[0]["GroupId"]) if groups else None


def ensure_security_group(ec2: Any, names: StackNames, role: str,
                          ingress: list[dict[str, Any]]) -> tuple[str, str]:
    """The group of the tier with exactly ``ingress`` (workers: none); returns (status, id)."""
    group_id = find_security_group(ec2, names, role)
    status = "unchanged"
    with translated(f"cannot create security group {names.security_group(role)}"):
        if group_id is None:
            group_id = str(ec2.create_security_group(
                GroupName=names.security_group(role),
                Description=f"imgrec {role} of stack {names.stack}",
                TagSpecifications=[{"ResourceType": "security-group",
                                    "Tags": _tags(names.stack_tags(role))}],
            )["GroupId"])
            status = "created"
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        current = _normalise_ingress(group.get("IpPermissions", []))
        if current != _normalise_ingress(ingress):
            if group.get("IpPermissions"):
                ec2.revoke_security_group_ingress(GroupId=group_id,
                                                  IpPermissions=group["IpPermissions"])
            if ingress:
                ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ingress)
            status = "updated" if status == "unchanged" else status
    return status, group_id


def _normalise_ingress(perms: list[dict[str, Any]]) -> set[tuple[str, int, int, str]]:
    return {(str(p.get("IpProtocol")), int(p.get("FromPort", -1)), int(p.get("ToPort", -1)),
             str(r["CidrIp"])) for p in perms for r in p.get("IpRanges", [])}


def delete_security_group(ec2: Any, names: StackNames, role: str, timeout_s: float = 300) -> str:
    group_id = find_security_group(ec2, names, role)
    if group_id is None:
        return "absent"
    deadline = time.monotonic() + timeout_s
    while True:
        # Terminated instances release their network interfaces a little later.
        in_use = {"DependencyViolation"} if time.monotonic() < deadline else set()
        with translated(f"cannot delete security group {group_id}",
                        tolerate=ABSENT | in_use) as outcome:
            ec2.delete_security_group(GroupId=group_id)
        if outcome.tolerated != "DependencyViolation":
            return "absent" if outcome.tolerated else "deleted"
        time.sleep(5)


def describe_launch_template(ec2: Any, name: str) -> dict[str, Any] | None:
    """The template's id, ARN-ready fields and latest data; None if absent."""
    with translated(f"launch template {name}", tolerate=_TEMPLATE_ABSENT) as outcome:
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateName=name, Versions=["$Latest"])["LaunchTemplateVersions"]
    return dict(versions[0]) if not outcome.tolerated and versions else None


def ensure_launch_template(ec2: Any, names: StackNames, role: str,
                           data: dict[str, Any]) -> tuple[str, str]:
    """The template with ``data`` as its default version; returns (status, template id)."""
    name = names.launch_template(role)
    current = describe_launch_template(ec2, name)
    with translated(f"cannot create launch template {name}"):
        if current is None:
            created = ec2.create_launch_template(
                LaunchTemplateName=name, LaunchTemplateData=data,
                TagSpecifications=[{"ResourceType": "launch-template",
                                    "Tags": _tags(names.stack_tags(role))}],
            )["LaunchTemplate"]
            return "created", str(created["LaunchTemplateId"])
        template_id = str(current["LaunchTemplateId"])
        if _same_template(current["LaunchTemplateData"], data):
            return "unchanged", template_id
        version = ec2.create_launch_template_version(
            LaunchTemplateId=template_id, LaunchTemplateData=data,
        )["LaunchTemplateVersion"]["VersionNumber"]
        ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))
    return "updated", template_id


def _same_template(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    keys = ("ImageId", "InstanceType", "UserData", "SecurityGroupIds")
    if any(current.get(k) != wanted.get(k) for k in keys):
        return False
    return bool(current.get("IamInstanceProfile", {}).get("Name")
                == wanted["IamInstanceProfile"]["Name"])


def delete_launch_template(ec2: Any, name: str) -> str:
    current = describe_launch_template(ec2, name)
    if current is None:
        return "absent"
    with translated(f"cannot delete launch template {name}",
                    tolerate=_TEMPLATE_ABSENT) as outcome:
        ec2.delete_launch_template(LaunchTemplateId=current["LaunchTemplateId"])
    return "absent" if outcome.tolerated else "deleted"


def user_data(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def stack_instances(ec2: Any, names: StackNames, role: str | None = None,
                    states: tuple[str, ...] = ("pending", "running", "stopping", "stopped",
                                                "shutting-down")) -> list[dict[str, Any]]:
    filters = [{"Name": "tag:imgrec:stack", "Values": [names.stack]},
               {"Name": "instance-state-name", "Values": list(states)}]
    if role:
        filters.append({"Name": "tag:imgrec:role", "Values": [role]})
    found: list[dict[str, Any]] = []
    with translated(f"cannot list the instances of stack {names.stack}"):
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                found.extend(reservation["Instances"])
    return found
