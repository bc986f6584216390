"""The instances' machine image and CPU: Debian 12, as the simulated instances in tests boot.

The AMI is the latest Debian 12 (bookworm) from its public SSM parameter, so an instance has the
distribution, Python (3.11), cloud-init and systemd that ``tests/instances`` boot under
systemd-nspawn. The CPU architecture of an instance type picks both the AMI and the wheels of
the wheelhouse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEBIAN_12 = "/aws/service/debian/release/12/latest/{arch}"
# Graviton families carry a "g" after the generation digit: t4g, c6gn, m7gd, r8g, ...
_ARM_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*$")


@dataclass(frozen=True)
class Platform:
    """What an instance runs: its CPU (``uname -m``), Debian's name for it, Python, glibc."""

    machine: str  # x86_64 | aarch64
    debian_arch: str  # amd64 | arm64
    python: tuple[int, int] = (3, 11)  # Debian 12's python3
    glibc: tuple[int, int] = (2, 36)  # Debian 12's libc6

    def wheel_platforms(self) -> list[str]:
        """pip ``--platform`` tags of wheels that run here, newest first."""
        newest = self.glibc[1]
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in range(newest, 16, -1)]
        legacy = ["manylinux2014"] + (["manylinux2010", "manylinux1"]
                                      if self.machine == "x86_64" else [])
        return tags + [f"{name}_{self.machine}" for name in legacy]

    @property
    def python_tag(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}"


def platform(instance_type: str) -> Platform:
    """The platform of an instance type (Graviton families are arm64, the rest x86_64)."""
    family = instance_type.split(".", 1)[0]
    if _ARM_FAMILY.match(family):
        return Platform(machine="aarch64", debian_arch="arm64")
    return Platform(machine="x86_64", debian_arch="amd64")


def ami_parameter(instance_type: str) -> str:
    """The public SSM parameter of the latest Debian 12 AMI for the instance type's CPU."""
    return _DEBIAN_12.format(arch=platform(instance_type).debian_arch)
