"""The simulated instances' root filesystem: built by ``tools/build-rootfs.sh``, unpacked once.

The tarball is the cache (``.cache/rootfs-<hash of the build script>.tar``); the unpacked copy
next to it (``rootfs-<hash>.d``) is the read-only lower layer every instance's overlay shares.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers.paths import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "tools" / "build-rootfs.sh"
INSTALL_SCRIPT = REPO_ROOT / "tools" / "install-instance-deps.sh"


class RootfsError(RuntimeError):
    """The root filesystem could not be built or unpacked."""


def cannot_boot_reason() -> str | None:
    """Why this machine cannot boot simulated instances at all, or None if it may."""
    if os.geteuid() != 0:
        return "simulated instances need root (systemd-nspawn, overlay mounts)"
    if shutil.which("systemd-nspawn") is None or shutil.which("debootstrap") is None:
        done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0 or shutil.which("systemd-nspawn") is None:
            return f"systemd-nspawn not installable: {done.stderr.strip()[-200:]}"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup file system at /sys/fs/cgroup: systemd-nspawn cannot run"
    return None


def build_tarball() -> Path:
    """The rootfs tarball, built first if the build script changed (about a minute)."""
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True,
                          check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RootfsError(f"{BUILD_SCRIPT} failed (exit {done.returncode}); see its output")
    path = Path(lines[-1])
    if not path.is_file():
        raise RootfsError(f"{BUILD_SCRIPT} printed {path}, which is not a file")
    return path


def unpacked(tarball: Path) -> Path:
    """The tarball unpacked beside it, once per tarball (concurrent callers wait)."""
    target = tarball.with_suffix(".d")
    done_stamp = tarball.with_suffix(".d.ok")
    if done_stamp.exists():
        return target
    with open(tarball.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done_stamp.exists():
            return target
        partial = target.with_name(f"{target.name}.partial")
        for old in (partial, target):
            if old.exists():
                shutil.rmtree(old)
        partial.mkdir()
        done = subprocess.run(["tar", "-C", str(partial), "--numeric-owner", "-xpf",
                               str(tarball)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RootfsError(f"unpacking {tarball} failed: {done.stderr.strip()[-500:]}")
        partial.rename(target)
        done_stamp.touch()
    return target


def trial_run(base: Path) -> str | None:
    """None if systemd-nspawn can start a process in ``base``; else its first error line."""
    done = subprocess.run(
        ["systemd-nspawn", "-D", str(base), "--read-only", "--register=no", "--keep-unit",
         "--quiet", "--console=pipe", "--link-journal=no", "/bin/true"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"
