"""Why an instance did not come up: the install script's failure line in its console output.

The user data's install script ends a failed boot with one console line starting
``imgrec-install: FAILED:`` (``imgrec.deploy.BOOT_FAILED``); EC2 keeps the console output
(GetConsoleOutput; ``Latest`` asks Nitro instances for the newest, not the boot-time copy).
"""

from __future__ import annotations

import logging
from typing import Any

from ..deploy import BOOT_FAILED
from ..errors import ImgrecError
from .errors import translated

log = logging.getLogger(__name__)


def failure_line(console: str) -> str | None:
    """The last failure line of a console output, without its timestamp prefix (pure)."""
    for line in reversed(console.splitlines()):
        at = line.find(BOOT_FAILED)
        if at >= 0:
            return line[at:].strip()
    return None


def boot_failure(ec2: Any, instance_id: str) -> str | None:
    """The instance's boot failure, or None (booted, still booting, or console unreadable)."""
    try:
        with translated(f"console output of {instance_id}"):
            output = ec2.get_console_output(InstanceId=instance_id, Latest=True).get("Output")
    except ImgrecError as exc:
        log.debug("no console output: %s", exc)
        return None
    return failure_line(output or "")
