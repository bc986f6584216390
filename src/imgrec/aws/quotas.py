"""Whether the stack's cap fits the account's On-Demand vCPU quota (read from Service Quotas).

EC2 limits running On-Demand instances by vCPUs per instance family group, not by count: a cap
of 20 c7i.large (2 vCPUs each) needs 40 vCPUs of the "Standard" quota, which new accounts often
have less of. Past the quota, RunInstances fails with VcpuLimitExceeded.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ImgrecError
from .errors import translated

# "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", in vCPUs.
STANDARD_QUOTA_CODE = "L-1216C47A"
_STANDARD_FAMILY = re.compile(r"^[acdhimrtz]\d")


def vcpus(ec2: Any, instance_type: str) -> int | None:
    """The instance type's default vCPU count; None if EC2 does not say."""
    try:
        with translated(f"instance type {instance_type}"):
            found = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    except ImgrecError:
        return None
    return int(found[0]["VCpuInfo"]["DefaultVCpus"]) if found else None


def standard_vcpu_quota(quotas: Any) -> float | None:
    """The account's Standard On-Demand vCPU quota in this region; None if unreadable."""
    try:
        with translated("On-Demand vCPU quota (servicequotas:GetServiceQuota)"):
            quota = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=STANDARD_QUOTA_CODE)
    except ImgrecError:
        return None
    return float(quota["Quota"]["Value"])


def quota_check(instance_type: str, instances: int, per_instance: int | None,
                quota: float | None) -> tuple[str, str]:
    """(status, detail) of the check, for ``aws up``'s report (pure)."""
    if not _STANDARD_FAMILY.match(instance_type):
        return "unchecked", f"{instance_type} is not in the Standard quota group"
    if per_instance is None or quota is None:
        return "unchecked", "quota or vCPUs unreadable (servicequotas:GetServiceQuota)"
    needed = instances * per_instance
    if needed > quota:
        return "WARNING", (f"{instances} x {instance_type} need {needed} vCPUs, the quota is "
                           f"{quota:g}: at most {int(quota // per_instance)} will run; ask for "
                           "more in Service Quotas or lower --max-workers")
    return "fits", f"{needed} of {quota:g} vCPUs"
