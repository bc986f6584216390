"""One simulated instance: a systemd-nspawn container booted on an overlay of the rootfs.

The instance's user data goes in unmodified as a cloud-init NoCloud seed, with the EC2 instance
id as its ``instance-id``. What the platform provides around an instance (the metadata endpoint
at 169.254.169.254, the AWS endpoints) comes as systemd's ``DefaultEnvironment``, written into
the copy's ``/etc/systemd/system.conf.d/``: every unit, cloud-init's included, sees it, exactly
as a unit on EC2 sees the platform. The container shares the host's network, so it reaches moto
and the S3 server on 127.0.0.1.

The console is ``--console=read-only``: nspawn gives the container a pseudo-terminal as
``/dev/console`` and copies what is written to it (systemd's boot status, cloud-init's output)
to the log. (With ``--console=pipe`` the container has no ``/dev/console`` and systemd writes
its status nowhere.)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import spawner

_SAFE_ENV_VALUE = re.compile(r'^[^\s"\\]*$')
_ENV_DROP_IN = "etc/systemd/system.conf.d/90-simulated-ec2.conf"
_SEED_DIR = "var/lib/cloud/seed/nocloud"
_CONTAINER_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "LANG": "C.UTF-8"}


class ContainerError(RuntimeError):
    """The container could not be started or did not do what was asked in time."""


@dataclass(frozen=True)
class Seed:
    """What one instance boots with: its id, its own user data and the platform environment."""

    instance_id: str
    user_data: bytes
    hostname: str
    environment: Mapping[str, str] = field(default_factory=dict)

    def meta_data(self) -> str:
        return f"instance-id: {self.instance_id}\nlocal-hostname: {self.hostname}\n"

    def environment_drop_in(self) -> str:
        for key, value in self.environment.items():
            if not re.match(r"^[A-Z_][A-Z0-9_]*$", key) or not _SAFE_ENV_VALUE.match(value):
                raise ValueError(f"cannot pass {key}={value!r} as a DefaultEnvironment entry")
        entries = " ".join(f'"{k}={v}"' for k, v in sorted(self.environment.items()))
        return ("# The simulated EC2 platform (tests/instances): metadata and AWS endpoints.\n"
                f"[Manager]\nDefaultEnvironment={entries}\n")


class Container:
    """A booted copy of ``base`` (read-only lower layer) under ``work_dir``.

    Example::

        box = Container(base, tmp / "i-123", Seed("i-123", user_data, "ip-10-0-0-1"))
        box.boot()
        box.wait_for_unit("imgrec-worker.service", timeout_s=60)
        box.power_off()
        box.remove()
    """

    def __init__(self, base: Path, work_dir: Path, seed: Seed) -> None:
        self.base = base
        self.work_dir = work_dir
        self.seed = seed
        self.console_path = work_dir / "console.log"
        self._layers = work_dir / "layers"
        self.root = self._layers / "merged"
        self.process: subprocess.Popen[bytes] | None = None
        self.booted_at: float | None = None  # time.time() when nspawn was started
        self._pid1: int | None = None
        self._mounted = False

    # --- lifecycle ----------------------------------------------------------------------------

    def boot(self) -> None:
        """Make the copy, seed it and start systemd in it (returns at once)."""
        self._mount_overlay()
        seed_dir = self.root / _SEED_DIR
        seed_dir.mkdir(parents=True, exist_ok=True)
        (seed_dir / "meta-data").write_text(self.seed.meta_data())
        (seed_dir / "user-data").write_bytes(self.seed.user_data)
        drop_in = self.root / _ENV_DROP_IN
        drop_in.parent.mkdir(parents=True, exist_ok=True)
        drop_in.write_text(self.seed.environment_drop_in())
        cmd = ["systemd-nspawn", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
               "--console=read-only", "--link-journal=no", f"--machine={self.seed.instance_id}"]
        with open(self.console_path, "ab") as console:
            self.process = spawner.popen(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.booted_at = time.time()

    def _mount_overlay(self) -> None:
        upper, work = self._layers / "upper", self._layers / "work"
        for path in (upper, work, self.root):
            path.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={self.base},upperdir={upper},workdir={work}"
        done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options,
                               str(self.root)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ContainerError(f"cannot mount the overlay for {self.seed.instance_id}: "
                                 f"{done.stderr.strip()}")
        self._mounted = True

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pid1(self, timeout_s: float = 30.0) -> int:
        """The host pid of the container's PID 1 (systemd)."""
        if self._pid1 is not None:
            return self._pid1
        if self.process is None:
            raise ContainerError("not booted")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = _namespace_init(self.process.pid)
            if found is not None:
                self._pid1 = found
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise ContainerError(f"no PID 1 in container {self.seed.instance_id}:\n"
                             f"{self.console()[-3000:]}")

    def power_off(self, timeout_s: float = 90.0) -> int:
        """Shut the container down as EC2 does an instance (systemd stops every unit)."""
        if self.process is None:
            return 0
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            # SIGRTMIN+4 asks systemd to power off; repeated because one sent before systemd
            # has set up its handlers (an instance terminated as it boots) is lost.
            with contextlib.suppress(ContainerError, ProcessLookupError):
                os.kill(self.pid1(timeout_s=1), signal.SIGRTMIN + 4)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        if self.process.poll() is None:
            self.kill()
        return self.process.wait()

    def kill(self) -> None:
        """Stop the container at once, as a crashed instance (SIGKILL to its PID 1)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ContainerError, ProcessLookupError):
            os.kill(self.pid1(timeout_s=1), signal.SIGKILL)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def remove(self) -> None:
        """Delete the instance's copy (the console log stays for its post-mortem)."""
        if self.running:
            raise ContainerError(f"container {self.seed.instance_id} still running")
        if self._mounted:
            done = subprocess.run(["umount", str(self.root)], capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.root)], check=False)
            self._mounted = False
        shutil.rmtree(self._layers, ignore_errors=True)

    # --- inside -------------------------------------------------------------------------------

    def run(self, args: Sequence[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container (all its namespaces, as root)."""
        # The container's own environment, not this process's (no host settings or keys).
        return subprocess.run(["nsenter", "-t", str(self.pid1()), "-a", "--", *args],
                              capture_output=True, text=True, check=False, timeout=timeout_s,
                              env=_CONTAINER_ENV)

    def unit_state(self, unit: str) -> str:
        done = self.run(["systemctl", "is-active", unit])
        return done.stdout.strip() or done.stderr.strip()

    def wait_for_unit(self, unit: str, timeout_s: float) -> float:
        """Wait until ``unit`` is active; return the seconds from boot to then."""
        deadline = time.monotonic() + timeout_s
        state = "unknown"
        while time.monotonic() < deadline:
            if not self.running:
                break
            state = self.unit_state(unit)
            if state == "active":
                assert self.booted_at is not None
                return time.time() - self.booted_at
            time.sleep(0.2)
        raise ContainerError(f"{unit} in {self.seed.instance_id} is {state!r}, not active, "
                             f"after {timeout_s:.0f} s; console:\n{self.console()[-4000:]}")

    def wait_for_cloud_init(self, timeout_s: float) -> str:
        """Wait until cloud-init has run every stage; its status (``done`` or ``error``)."""
        self.pid1()
        try:
            done = self.run(["cloud-init", "status", "--wait"], timeout_s=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(f"cloud-init in {self.seed.instance_id} still running after "
                                 f"{timeout_s:.0f} s:\n{self.console()[-4000:]}") from exc
        return done.stdout.strip().rsplit(" ", 1)[-1]

    def console(self) -> str:
        """Everything the container wrote to its console so far."""
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _namespace_init(parent: int) -> int | None:
    """The child of ``parent`` that is PID 1 of its own pid namespace."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        nspids = fields.get("NSpid", "").split()
        if fields.get("PPid", "").strip() == str(parent) and len(nspids) > 1 and nspids[-1] == "1":
            return int(entry.name)
    return None
