"""``imgrec aws up / status / down``: create, show and delete one stack's resources.

``up`` is idempotent (a second run reports everything ``unchanged``); ``down`` deletes by the
stack's names and tags only, so it removes exactly what ``up`` made, also after a failed ``up``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import keys
from ..config import Settings
from ..deploy import DeployConfig, render_cloud_init
from ..errors import ConfigError, ImgrecError, NameCoolingDown, PermanentError
from . import costs, iam, quotas, resources, wheelhouse
from .boot_report import boot_failure
from .errors import translated
from .images import ami_parameter, platform
from .naming import ROLE_WEB, ROLE_WORKER, TAG_BUCKET_SUFFIX, StackNames, new_bucket_suffix
from .session import AwsSession
from .sqs_queue import SqsBroker, queue_attributes

log = logging.getLogger(__name__)
Progress = Callable[[str, str, str], None]  # (kind, name, status)
HEARTBEAT_EXPIRY_DAYS = 1  # a heartbeat left by a worker (or web tier) that died unseen


@dataclass(frozen=True)
class UpOptions:
    """What ``aws up`` is asked to build (CLI options)."""

    instance_type: str = "c7i.large"
    ami: str | None = None
    with_web: bool = False
    allow_cidr: str | None = None
    port: int = 80
    wheel: Path | None = None
    wheelhouse: Path | None = None  # a directory of wheels built elsewhere
    visibility_timeout_s: float = 30.0
    max_receives: int = 5
    model: str = "mobilenet_v2"
    web_settings: tuple[tuple[str, str], ...] = (("max_workers", "20"),)
    retention_days: float = 3.0  # Settings.retention_days: inputs and results, then 410
    vpc_id: str | None = None  # None: the account's default VPC
    subnet_id: str | None = None  # None: a default subnet of that VPC


@dataclass(frozen=True)
class ResourceStatus:
    kind: str
    name: str
    status: str
    detail: str = ""


def checked_web_settings(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The web tier's settings, refused here (with the reason) if the tier would refuse them."""
    from ..config import load_settings

    unknown = [name for name, _ in pairs if name not in Settings.model_fields]
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; `imgrec settings "
                          "--markdown` lists them")
    load_settings(backend="aws", stack="check", **dict(pairs))
    return pairs


class Stack:
    """One stack's resources in one account and region."""

    def __init__(self, session: AwsSession, names: StackNames,
                 progress: Progress | None = None) -> None:
        self.session = session
        self.names = names
        self.progress = progress or (lambda kind, name, status: None)
        self.s3 = session.client("s3")
        self.sqs = session.client("sqs")
        # The bucket suffix: kept in the request queue's tags; from the account's bucket list
        # after a half-finished up or down; a new one while the stack has no buckets at all.
        suffix = resources.queue_bucket_suffix(self.sqs, names)
        if suffix is None:
            suffix = resources.owned_bucket_suffix(self.s3, names)
        self.names = replace(names, bucket_suffix=new_bucket_suffix() if suffix is None
                             else suffix)
        self.iam = session.client("iam")
        self.ec2 = session.client("ec2")
        self.broker = SqsBroker(self.sqs)
        self.name_cooldown_s = 90.0  # SQS: 60 s after DeleteQueue, with a margin
        self.cooldown_poll_s = 5.0
        self.sleep: Callable[[float], None] = time.sleep

    def _report(self, out: list[ResourceStatus], kind: str, name: str, status: str,
                detail: str = "") -> None:
        out.append(ResourceStatus(kind, name, status, detail))
        self.progress(kind, name, status)

    # --- up ---------------------------------------------------------------------------------

    def up(self, opts: UpOptions) -> list[ResourceStatus]:
        n = self.names
        if opts.with_web and not opts.allow_cidr:
            raise ConfigError("--with-web needs --allow-cidr (who may open the page, "
                              "e.g. 203.0.113.7/32)")
        out: list[ResourceStatus] = []
        days = math.ceil(opts.retention_days)  # S3 expires in whole days
        expiry = {n.inputs_bucket: {keys.INPUTS_PREFIX: days},
                  n.outputs_bucket: {keys.RESULTS_PREFIX: days, keys.IDEMPOTENCY_PREFIX: days,
                                     keys.BATCHES_PREFIX: days,
                                     keys.CALLBACKS_PREFIX: days,
                                     keys.DEAD_LETTERS_PREFIX: days,
                                     keys.HEARTBEATS_PREFIX: HEARTBEAT_EXPIRY_DAYS,
                                     keys.WEB_TIERS_PREFIX: HEARTBEAT_EXPIRY_DAYS}}
        for bucket in n.buckets:
            status = resources.ensure_bucket(self.s3, n, bucket, expire=expiry[bucket])
            self._report(out, "bucket", bucket, status)
        self._report(out, "queue", n.dead_letter_queue, self._ensure_queue(
            n.dead_letter_queue, queue_attributes(visibility_s=opts.visibility_timeout_s)))
        dlq_arn = n.queue_arn(n.dead_letter_queue)
        for queue in (n.request_queue, n.bulk_queue):  # both lanes share the dead letters
            self._report(out, "queue", queue, self._ensure_queue(
                queue, queue_attributes(visibility_s=opts.visibility_timeout_s,
                                        dead_letter_arn=dlq_arn,
                                        max_receives=opts.max_receives)))
        wheels, status = wheelhouse.prepare(
            self.s3, n.outputs_bucket, platform(opts.instance_type), wheel=opts.wheel,
            directory=opts.wheelhouse, progress=self.progress)
        self._report(out, "wheelhouse", f"s3://{n.outputs_bucket}/{wheels.key}", status)
        cfg = DeployConfig(stack=n.stack, region=n.region, bucket=n.outputs_bucket,
                           wheelhouse_key=wheels.key, wheelhouse_sha256=wheels.sha256,
                           wheel_name=wheels.wheel_name,
                           visibility_timeout_s=opts.visibility_timeout_s,
                           web_settings=checked_web_settings(
                               (("retention_days", f"{opts.retention_days:g}"),
                                *opts.web_settings)),
                           port=opts.port, model=opts.model)
        ami = opts.ami or self._latest_ami(opts.instance_type)
        self._report(out, "role", n.role(ROLE_WORKER), resources.ensure_role(
            self.iam, n, n.role(ROLE_WORKER), iam.assume_role_policy(),
            n.policy(ROLE_WORKER), iam.worker_policy(n)))
        worker_lt, worker_group = self._tier(out, ROLE_WORKER, cfg, ami, opts, [])
        self._check_quota(opts)
        if opts.with_web:
            self._report(out, "role", n.role(ROLE_WEB), resources.ensure_role(
                self.iam, n, n.role(ROLE_WEB), iam.assume_role_policy(),
                n.policy(ROLE_WEB), iam.web_policy(n, iam.WorkerLaunch(
                    worker_lt, opts.instance_type, ami, worker_group))))
            ingress = [{"IpProtocol": "tcp", "FromPort": opts.port, "ToPort": opts.port,
                        "IpRanges": [{"CidrIp": opts.allow_cidr}]}]
            web_lt, _group = self._tier(out, ROLE_WEB, cfg, ami, opts, ingress)
            self._ensure_web_instance(out, web_lt)
        return out

    def _check_quota(self, opts: UpOptions) -> None:
        cap = int(dict(opts.web_settings).get("max_workers", "20")) + int(opts.with_web)
        status, detail = quotas.quota_check(
            opts.instance_type, cap, quotas.vcpus(self.ec2, opts.instance_type),
            quotas.standard_vcpu_quota(self.session.client("service-quotas")))
        self.progress("vCPU quota", f"{cap} x {opts.instance_type}", f"{status}: {detail}")
        if status == "WARNING":
            log.warning("vCPU quota: %s", detail)

    def _create_queue_when_allowed(self, name: str, attrs: dict[str, str]) -> str:
        """SQS refuses a queue name for 60 s after a queue of that name was deleted: wait."""
        deadline = time.monotonic() + self.name_cooldown_s
        while True:
            try:
                return self.broker.ensure(name, attrs)
            except NameCoolingDown:
                if time.monotonic() > deadline:
                    raise
                self.progress("queue", name, "deleted recently; SQS allows the name again "
                              "60 s after a delete, waiting")
                self.sleep(self.cooldown_poll_s)

    def _ensure_queue(self, name: str, attrs: dict[str, str]) -> str:
        try:
            current = self.sqs.get_queue_attributes(
                QueueUrl=self.sqs.get_queue_url(QueueName=name)["QueueUrl"],
                AttributeNames=list(attrs))["Attributes"]
        except Exception:  # noqa: BLE001 - absent (or unreadable): create_queue tells which
            current = None
        if current is not None and _same_attrs(current, attrs):
            return "unchanged"
        url = self._create_queue_when_allowed(name, attrs)
        tags = {**self.names.stack_tags(), TAG_BUCKET_SUFFIX: self.names.bucket_suffix}
        with translated(f"cannot tag queue {name}"):
            self.sqs.tag_queue(QueueUrl=url, Tags=tags)
        return "created" if current is None else "updated"

    def _latest_ami(self, instance_type: str) -> str:
        param = ami_parameter(instance_type)
        with translated(f"cannot find the Debian 12 AMI ({param}); pass --ami"):
            return str(self.session.client("ssm").get_parameter(Name=param)["Parameter"]["Value"])

    def _tier(self, out: list[ResourceStatus], role: str, cfg: DeployConfig, ami: str,
              opts: UpOptions, ingress: list[dict[str, Any]]) -> tuple[str, str]:
        """The tier's security group and launch template; returns (template id, group id)."""
        n = self.names
        status, group_id = resources.ensure_security_group(self.ec2, n, role, ingress,
                                                           self._vpc(opts))
        self._report(out, "security group", n.security_group(role), status, group_id)
        network: dict[str, Any] = {"SecurityGroupIds": [group_id]}
        if opts.subnet_id:
            network = {"NetworkInterfaces": [{
                "DeviceIndex": 0, "SubnetId": opts.subnet_id, "Groups": [group_id],
                "AssociatePublicIpAddress": True}]}  # to reach S3/SQS without endpoints
        data = {
            "ImageId": ami,
            "InstanceType": opts.instance_type,
            "IamInstanceProfile": {"Name": n.role(role)},
            **network,
            "UserData": resources.user_data(render_cloud_init(cfg, role)),
            "InstanceInitiatedShutdownBehavior": "terminate",
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [
                {"Key": k, "Value": v} for k, v in n.stack_tags(role).items()]}],
        }
        status, template_id = resources.ensure_launch_template(self.ec2, n, role, data)
        self._report(out, "launch template", n.launch_template(role), status, template_id)
        return template_id, group_id

    def _vpc(self, opts: UpOptions) -> str | None:
        """The VPC asked for, or the one of the subnet asked for (None: the default VPC)."""
        if opts.vpc_id or not opts.subnet_id:
            return opts.vpc_id
        with translated(f"subnet {opts.subnet_id}"):
            [subnet] = self.ec2.describe_subnets(SubnetIds=[opts.subnet_id])["Subnets"]
        return str(subnet["VpcId"])

    def _ensure_web_instance(self, out: list[ResourceStatus], template_id: str) -> None:
        running = resources.stack_instances(self.ec2, self.names, ROLE_WEB,
                                            states=("pending", "running"))
        if running:
            self._report(out, "instance", running[0]["InstanceId"], "unchanged", "web")
            return
        launched = _run_with_profile_retry(lambda: self.ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Default"},
            MinCount=1, MaxCount=1), "cannot launch the web instance", self.sleep)
        self._report(out, "instance", launched["Instances"][0]["InstanceId"], "created", "web")

    # --- status -----------------------------------------------------------------------------

    def status(self) -> list[ResourceStatus]:
        """Every resource of the stack, present or not, with a short description."""
        n = self.names
        out: list[ResourceStatus] = []
        for bucket in n.buckets:
            detail = resources.describe_bucket(self.s3, bucket)
            out.append(ResourceStatus("bucket", bucket, "present" if detail else "missing",
                                      detail or ""))
        for queue in (n.request_queue, n.bulk_queue, n.dead_letter_queue):
            out.append(self._queue_status(queue))
        for url in self._reply_queue_urls():
            out.append(ResourceStatus("queue", url.rsplit("/", 1)[-1], "present", "reply queue"))
        for role in (ROLE_WORKER, ROLE_WEB):
            policy = resources.describe_role(self.iam, n.role(role), n.policy(role))
            if policy is None and role == ROLE_WEB:
                continue
            out.append(ResourceStatus(
                "role", n.role(role), "present" if policy else "missing",
                f"{len(iam.policy_resources(policy))} resources in its policy" if policy else ""))
            group = resources.find_security_group(self.ec2, n, role)
            out.append(ResourceStatus("security group", n.security_group(role),
                                      "present" if group else "missing", group or ""))
            template = resources.describe_launch_template(self.ec2, n.launch_template(role))
            out.append(ResourceStatus(
                "launch template", n.launch_template(role), "present" if template else "missing",
                str(template["LaunchTemplateId"]) if template else ""))
        running: dict[str, int] = {}
        workers = 0
        for inst in resources.stack_instances(self.ec2, n):
            role = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}.get("imgrec:role", "?")
            if inst["State"]["Name"] in ("pending", "running"):
                kind = str(inst.get("InstanceType", "?"))
                running[kind] = running.get(kind, 0) + 1
                workers += role == ROLE_WORKER
            address = inst.get("PublicDnsName") or inst.get("PublicIpAddress") or ""
            detail = f"{role} {inst.get('InstanceType', '')} {address}".strip()
            failed = boot_failure(self.ec2, inst["InstanceId"])
            out.append(ResourceStatus("instance", inst["InstanceId"], inst["State"]["Name"],
                                      f"{detail}; {failed}" if failed else detail))
        out.append(self._cost(running, workers))
        return out

    def _cost(self, running: dict[str, int], workers: int) -> ResourceStatus:
        """The stack's estimated hourly cost now: instances, and S3 and SQS requests."""
        from ..config import load_settings

        settings = load_settings(backend="aws", stack=self.names.stack)
        lines = costs.hourly_cost(running, workers, heartbeat_s=settings.heartbeat_s,
                                  tick_s=settings.autoscale_tick_s,
                                  poll_wait_s=settings.poll_wait_s)
        amount, complete = costs.total(lines)
        detail = "; ".join(f"{line.item} ${line.per_hour:.4f}" if line.per_hour is not None
                           else f"{line.item} (price unknown)" for line in lines)
        return ResourceStatus("cost", "per hour (us-east-1 prices, 2024)",
                              f"${amount:.3f}" + ("" if complete else "+"), detail)

    def _queue_status(self, queue: str) -> ResourceStatus:
        try:
            q = self.broker.open(queue, create=False)
        except ImgrecError:
            return ResourceStatus("queue", queue, "missing")
        depth = q.depth()
        return ResourceStatus("queue", queue, "present",
                              f"{depth.visible} waiting, {depth.in_flight} in flight")

    def _reply_queue_urls(self) -> list[str]:
        with translated("cannot list the stack's reply queues"):
            urls = self.sqs.list_queues(QueueNamePrefix=self.names.reply_queue_prefix)
        return [str(u) for u in urls.get("QueueUrls", [])]

    # --- down -------------------------------------------------------------------------------

    def down(self) -> list[ResourceStatus]:
        """Delete every resource of the stack (instances first); report each."""
        n = self.names
        out: list[ResourceStatus] = []
        self._terminate_instances(out)
        for role in (ROLE_WEB, ROLE_WORKER):
            self._report(out, "launch template", n.launch_template(role),
                         resources.delete_launch_template(self.ec2, n.launch_template(role)))
            self._report(out, "security group", n.security_group(role),
                         resources.delete_security_group(self.ec2, n, role))
            self._report(out, "role", n.role(role), resources.delete_role(self.iam, n.role(role)))
        for url in self._reply_queue_urls():
            self.broker.delete_queue(url.rsplit("/", 1)[-1])
            self._report(out, "queue", url.rsplit("/", 1)[-1], "deleted")
        for queue in (n.bulk_queue, n.request_queue, n.dead_letter_queue):
            present = self._queue_status(queue).status == "present"
            self.broker.delete_queue(queue)
            self._report(out, "queue", queue, "deleted" if present else "absent")
        for bucket in n.buckets:
            self._report(out, "bucket", bucket, resources.delete_bucket(self.s3, bucket))
        return out

    def _terminate_instances(self, out: list[ResourceStatus], timeout_s: float = 600) -> None:
        instances = resources.stack_instances(self.ec2, self.names)
        ids = [i["InstanceId"] for i in instances if i["State"]["Name"] != "shutting-down"]
        if ids:
            with translated("cannot terminate the stack's instances"):
                self.ec2.terminate_instances(InstanceIds=ids)
        deadline = time.monotonic() + timeout_s
        while resources.stack_instances(self.ec2, self.names) and time.monotonic() < deadline:
            time.sleep(5)
        for instance_id in ids:
            self._report(out, "instance", instance_id, "terminated")


def _same_attrs(current: dict[str, str], wanted: dict[str, str]) -> bool:
    for key, value in wanted.items():
        if key == "RedrivePolicy":
            have = json.loads(current.get(key, "{}"))
            want = json.loads(value)
            if (have.get("deadLetterTargetArn") != want["deadLetterTargetArn"]
                    or str(have.get("maxReceiveCount")) != str(want["maxReceiveCount"])):
                return False
        elif current.get(key) != value:
            return False
    return True


# A new instance profile can take a minute or two to reach EC2; RunInstances fails until then.
PROFILE_RETRY_WAITS_S = (2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0)  # about two minutes


def _run_with_profile_retry(call: Callable[[], Any], what: str,
                            sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run ``call``, waiting out a new instance profile's propagation with backoff."""
    for wait_s in (*PROFILE_RETRY_WAITS_S, None):
        try:
            with translated(what):
                return call()
        except PermanentError as exc:
            if wait_s is None or "iamInstanceProfile" not in str(exc):
                raise
            log.info("instance profile not visible to EC2 yet; retrying in %.0f s", wait_s)
            sleep(wait_s)
    raise AssertionError("unreachable")


def open_stack(stack: str, region: str | None, progress: Progress | None = None) -> Stack:
    from .naming import validate_stack

    session = AwsSession(region)
    names = StackNames(validate_stack(stack), session.account, session.region)
    return Stack(session, names, progress)
