"""Simulated EC2 instances: every instance moto says is running boots as a container here.

The harness polls moto's DescribeInstances (optionally only one stack's instances, by the
``imgrec:stack`` tag). A new pending or running instance boots in its own container with its
own user data (DescribeInstanceAttribute ``userData``, unmodified), its instance profile's
credentials behind a metadata endpoint and its launch template's shutdown behaviour; an
instance terminated or stopped in moto is powered off and its copy removed; a container that
powers itself off is terminated (or stopped) in moto, as EC2 does. Consoles are kept after the
copy is gone and answer ``GetConsoleOutput`` through ``ec2_url``.

Example::

    with InstanceHarness(moto.url, tmp_path / "instances", base, stack="t1") as fleet:
        ec2.run_instances(...)
        box = fleet.wait_for_boot(instance_id, timeout_s=30)
        box.container.wait_for_unit("imgrec-worker.service", timeout_s=120)
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from tests.helpers.aws_adapters import ACCESS_KEY, REGION, SECRET_KEY

from .container import Container, Seed
from .ec2_front import Ec2Front
from .imds import AssumedRoleCredentials, InstanceMetadata, MetadataServer

log = logging.getLogger(__name__)
_UP = ("pending", "running")
_TEMPLATE_ID_TAG = "aws:ec2launchtemplate:id"
_TEMPLATE_VERSION_TAG = "aws:ec2launchtemplate:version"


@dataclass
class SimulatedInstance:
    """One instance the harness booted, and what became of it (times are ``time.time()``)."""

    instance_id: str
    role: str | None
    container: Container
    launched_at: float
    shutdown_behavior: str
    booted_at: float = 0.0
    ended_at: float | None = None
    end_reason: str = ""
    stopping: bool = False
    events: list[tuple[float, str]] = field(default_factory=list)

    @property
    def gone(self) -> bool:
        """Powered off and its copy removed."""
        return self.ended_at is not None


class InstanceHarness:
    """Boots moto's instances as systemd-nspawn containers on ``base`` until ``stop()``."""

    def __init__(self, moto_url: str, work_dir: Path, base: Path, *, stack: str | None = None,
                 region: str = REGION, environment: Mapping[str, str] | None = None,
                 poll_s: float = 0.5, stop_timeout_s: float = 90.0) -> None:
        self.moto_url = moto_url.rstrip("/")
        self.work_dir = work_dir
        self.base = base
        self.stack = stack
        self.region = region
        self.environment = dict(environment or {})
        self.poll_s = poll_s
        self.stop_timeout_s = stop_timeout_s
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                        aws_secret_access_key=SECRET_KEY, region_name=region)
        config = Config(retries={"total_max_attempts": 3, "mode": "standard"})
        self.ec2 = session.client("ec2", endpoint_url=self.moto_url, config=config)
        self.iam = session.client("iam", endpoint_url=self.moto_url, config=config)
        sts = session.client("sts", endpoint_url=self.moto_url, config=config)
        self.account = str(sts.get_caller_identity()["Account"])
        self.imds = MetadataServer(AssumedRoleCredentials(sts))
        self.front = Ec2Front(self.moto_url, self.console)
        self._instances: dict[str, SimulatedInstance] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="instance-harness", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="instance-stop")

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> InstanceHarness:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> InstanceHarness:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.imds.start()
        self.front.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; power every container off and remove its copy."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            left = [i for i in self._instances.values() if not i.gone and not i.stopping]
            for inst in left:
                inst.stopping = True
        futures = [self._pool.submit(self._power_off, i, "harness stopped") for i in left]
        for future in futures:
            future.result()
        self._pool.shutdown(wait=True)
        self.front.stop()
        self.imds.stop()

    @property
    def ec2_url(self) -> str:
        """EC2 endpoint whose GetConsoleOutput shows the simulated consoles.

        For ``AWS_ENDPOINT_URL_EC2`` of whoever reads consoles (``imgrec aws status``, a test).
        """
        return self.front.url

    # --- queries ------------------------------------------------------------------------------

    def instances(self) -> list[SimulatedInstance]:
        with self._lock:
            return list(self._instances.values())

    def instance(self, instance_id: str) -> SimulatedInstance | None:
        with self._lock:
            return self._instances.get(instance_id)

    def console(self, instance_id: str) -> str | None:
        inst = self.instance(instance_id)
        if inst is None:
            with self._lock:
                failure = self._failed.get(instance_id)
            return f"simulated instance did not boot: {failure}\n" if failure else None
        return inst.container.console()

    def wait_for_boot(self, instance_id: str, timeout_s: float = 30.0) -> SimulatedInstance:
        """The instance once its container has been started."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            inst = self.instance(instance_id)
            if inst is not None:
                return inst
            with self._lock:
                failure = self._failed.get(instance_id)
            if failure:
                raise RuntimeError(f"{instance_id} did not boot: {failure}")
            time.sleep(0.1)
        raise TimeoutError(f"{instance_id} was not booted within {timeout_s:.0f} s")

    def wait_until_gone(self, instance_id: str, timeout_s: float = 120.0) -> SimulatedInstance:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            inst = self.instance(instance_id)
            if inst is not None and inst.gone:
                return inst
            time.sleep(0.1)
        raise TimeoutError(f"the container of {instance_id} still exists after {timeout_s:.0f} s")

    def kill(self, instance_id: str, *, terminate: bool = True) -> SimulatedInstance:
        """Lose the instance at once: SIGKILL its container (no unit stops gracefully).

        ``terminate`` also terminates it in EC2, as when AWS retires a failed host; without,
        the instance stays ``running`` in EC2 with nothing alive in it, as a hung instance.
        """
        inst = self.instance(instance_id)
        if inst is None or inst.gone:
            raise RuntimeError(f"{instance_id} is not running here")
        inst.stopping = True
        inst.container.kill()
        if terminate:
            self.ec2.terminate_instances(InstanceIds=[instance_id])
        self._ended(inst, "killed" + (" and terminated in EC2" if terminate else ""))
        return inst

    # --- the watch loop -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - moto busy or restarting: try again next tick
                log.exception("instance harness tick failed")
            self._stop.wait(self.poll_s)

    def _tick(self) -> None:
        for described in self._describe():
            instance_id = str(described["InstanceId"])
            state = str(described["State"]["Name"])
            with self._lock:
                known = self._instances.get(instance_id)
                failed = instance_id in self._failed
            if known is None and not failed and state in _UP:
                self._boot(described)
            elif known is not None and state not in _UP and not known.stopping:
                known.stopping = True
                self._pool.submit(self._power_off, known, f"instance {state} in EC2")
        for inst in self.instances():
            if not inst.stopping and not inst.container.running:
                inst.stopping = True
                self._pool.submit(self._shut_itself_down, inst)

    def _describe(self) -> list[dict[str, Any]]:
        filters = [{"Name": "tag:imgrec:stack", "Values": [self.stack]}] if self.stack else []
        found: list[dict[str, Any]] = []
        for page in self.ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                found.extend(reservation["Instances"])
        return found

    def _boot(self, described: dict[str, Any]) -> None:
        instance_id = str(described["InstanceId"])
        try:
            meta, behavior = self._metadata(described)
            env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds.endpoint(instance_id),
                   "AWS_ENDPOINT_URL": self.moto_url, **self.environment}
            container = Container(self.base, self.work_dir / instance_id,
                                  Seed(instance_id, meta.user_data, instance_id, env))
            tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
            inst = SimulatedInstance(instance_id, tags.get("imgrec:role"), container,
                                     described["LaunchTime"].timestamp(), behavior)
            self.imds.register(meta)
            container.boot()
        except Exception as exc:  # noqa: BLE001 - reported as this instance's console
            log.exception("cannot boot %s", instance_id)
            with self._lock:
                self._failed[instance_id] = f"{type(exc).__name__}: {exc}"
            return
        inst.booted_at = container.booted_at or time.time()
        inst.events.append((inst.booted_at, "booted"))
        with self._lock:
            self._instances[instance_id] = inst
        log.info("booted %s (%s) %.1f s after its launch", instance_id, inst.role,
                 inst.booted_at - inst.launched_at)

    def _metadata(self, described: dict[str, Any]) -> tuple[InstanceMetadata, str]:
        instance_id = str(described["InstanceId"])
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        encoded = attr.get("UserData", {}).get("Value") or ""
        template = self._template_data(described)
        profile = described.get("IamInstanceProfile") or template.get("IamInstanceProfile") or {}
        role_name, role_arn = self._role(profile)
        meta = InstanceMetadata(
            instance_id=instance_id, region=self.region, account=self.account,
            instance_type=str(described.get("InstanceType", "")),
            image_id=str(described.get("ImageId", "")), role_name=role_name, role_arn=role_arn,
            user_data=base64.b64decode(encoded) if encoded else b"")
        return meta, str(template.get("InstanceInitiatedShutdownBehavior", "stop"))

    def _template_data(self, described: dict[str, Any]) -> dict[str, Any]:
        """The launch template version the instance came from (moto does not copy all of it)."""
        tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        if _TEMPLATE_ID_TAG not in tags:
            return {}
        versions = self.ec2.describe_launch_template_versions(
            LaunchTemplateId=tags[_TEMPLATE_ID_TAG],
            Versions=[tags.get(_TEMPLATE_VERSION_TAG, "$Default")])["LaunchTemplateVersions"]
        return dict(versions[0]["LaunchTemplateData"]) if versions else {}

    def _role(self, profile: dict[str, Any]) -> tuple[str | None, str | None]:
        name = profile.get("Name") or str(profile.get("Arn", "")).rsplit("/", 1)[-1]
        if not name:
            return None, None
        roles = self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
        if not roles:
            return None, None
        return str(roles[0]["RoleName"]), str(roles[0]["Arn"])

    # --- endings ------------------------------------------------------------------------------

    def _power_off(self, inst: SimulatedInstance, reason: str) -> None:
        try:
            inst.container.power_off(timeout_s=self.stop_timeout_s)
        finally:
            self._ended(inst, reason)

    def _shut_itself_down(self, inst: SimulatedInstance) -> None:
        """The container powered off by itself: EC2 stops or terminates the instance."""
        process = inst.container.process
        reason = f"shut itself down (exit {process.returncode if process else None})"
        try:
            if inst.shutdown_behavior == "terminate":
                self.ec2.terminate_instances(InstanceIds=[inst.instance_id])
            else:
                self.ec2.stop_instances(InstanceIds=[inst.instance_id])
        except Exception:  # noqa: BLE001 - the instance may be gone from moto already
            log.exception("cannot end %s in EC2", inst.instance_id)
        finally:
            self._ended(inst, reason)

    def _ended(self, inst: SimulatedInstance, reason: str) -> None:
        try:
            inst.container.remove()
        finally:
            self.imds.unregister(inst.instance_id)
            inst.ended_at = time.time()
            inst.end_reason = reason
            inst.events.append((inst.ended_at, reason))
            log.info("%s gone: %s", inst.instance_id, reason)
